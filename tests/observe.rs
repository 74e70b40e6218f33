//! `meshtrust::observe` on Istio's own istioctl captures: every spelling parses to the leaf,
//! chain and roots it holds (fingerprints checked with the `openssl` binary), errors are
//! positioned, and tables resolve their serials against known certificates.

use std::path::Path;
use std::process::{Command, Stdio};

use meshtrust::observe::{
    self, CertRef, IdentityStatus, MeshState, Observation, ProxyKind, ProxyReport, Reader,
};
use meshtrust::testkit::dumps;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istioctl/");

fn fixture(p: &str) -> Vec<u8> {
    std::fs::read(Path::new(DIR).join(p)).unwrap()
}

fn proxies(o: Observation) -> Vec<ProxyReport> {
    match o {
        Observation::Proxies(p) => p,
        other => panic!("expected proxies, got {other:?}"),
    }
}

/// SHA-256 of each PEM block, by `openssl x509 -fingerprint -sha256`.
fn openssl_fingerprints(pem: &str) -> Vec<String> {
    pem.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|block| {
            let mut child = Command::new("openssl")
                .args(["x509", "-noout", "-fingerprint", "-sha256"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("the openssl binary (test oracle)");
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(block.trim_start().as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            let text = String::from_utf8(out.stdout).unwrap();
            text.trim()
                .rsplit('=')
                .next()
                .unwrap()
                .replace(':', "")
                .to_lowercase()
        })
        .collect()
}

fn b64_decode(s: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

fn fp(c: &CertRef) -> String {
    c.cert().unwrap().fingerprint().to_string()
}

/// snake_case -> camelCase for every object key (istioctl's `-o json` spelling).
fn camel(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let mut out = String::new();
                    let mut up = false;
                    for ch in k.chars() {
                        if ch == '_' {
                            up = true;
                        } else if up {
                            out.extend(ch.to_uppercase());
                            up = false;
                        } else {
                            out.push(ch);
                        }
                    }
                    (out, camel(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(camel).collect()),
        other => other.clone(),
    }
}

#[test]
fn envoy_dump_both_spellings_match_openssl() {
    let raw = fixture("proxy-config-secret/config_dump.json");
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let secrets = &v["configs"][0]["dynamic_active_secrets"];
    let chain_pem = b64_decode(
        secrets[0]["secret"]["tls_certificate"]["certificate_chain"]["inline_bytes"]
            .as_str()
            .unwrap(),
    );
    let root_pem = b64_decode(
        secrets[1]["secret"]["validation_context"]["trusted_ca"]["inline_bytes"]
            .as_str()
            .unwrap(),
    );
    let want_chain = openssl_fingerprints(&chain_pem);
    let want_roots = openssl_fingerprints(&root_pem);
    assert_eq!((want_chain.len(), want_roots.len()), (2, 1));

    let camel_bytes = serde_json::to_vec(&camel(&v)).unwrap();
    assert!(String::from_utf8_lossy(&camel_bytes).contains("dynamicActiveSecrets"));
    let unwrapped = serde_json::to_vec(&camel(&v["configs"][0])).unwrap();
    for (name, bytes) in [
        ("productpage.json", &raw[..]),
        ("productpage.json", &camel_bytes[..]),
        ("productpage.json", &unwrapped[..]),
    ] {
        let p = proxies(observe::read(name, bytes).unwrap());
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!(p.name, "productpage");
        assert_eq!(p.kind, ProxyKind::Sidecar);
        assert_eq!(p.status, IdentityStatus::Active);
        assert_eq!(fp(p.leaf.as_ref().unwrap()), want_chain[0]);
        assert_eq!(p.chain.iter().map(fp).collect::<Vec<_>>(), want_chain[1..]);
        assert_eq!(p.roots.iter().map(fp).collect::<Vec<_>>(), want_roots);
        assert!(
            p.identity
                .as_deref()
                .is_some_and(|i| i.starts_with("spiffe://cluster.local/"))
        );
    }
}

#[test]
fn ztunnel_dump_pre_126_and_126_forms() {
    let raw = fixture("ztunnel-config/dump-pre-1.26.json");
    let p = proxies(observe::read("ztunnel-x.json", &raw).unwrap());
    assert_eq!(p.len(), 4);
    let v: Value = serde_json::from_slice(&raw).unwrap();
    let chain = &v["certificates"][0]["certChain"];
    let leaf_want = openssl_fingerprints(chain[0]["pem"].as_str().unwrap());
    let root_want = openssl_fingerprints(chain[1]["pem"].as_str().unwrap());
    assert_eq!(
        p[0].name,
        "ztunnel-x/spiffe://cluster.local/ns/istio-system/sa/istiod"
    );
    assert_eq!(p[0].kind, ProxyKind::Ztunnel);
    assert_eq!(fp(p[0].leaf.as_ref().unwrap()), leaf_want[0]);
    assert!(p[0].chain.is_empty());
    assert_eq!(p[0].roots.iter().map(fp).collect::<Vec<_>>(), root_want);
    assert_eq!(p[1].status, IdentityStatus::Initializing);
    assert!(
        matches!(&p[2].status, IdentityStatus::Unavailable(why) if why == "the identity is no longer needed")
    );
    assert!(
        matches!(&p[3].status, IdentityStatus::Unavailable(why) if why.contains("CERTIFICATE_VERIFY_FAILED"))
    );

    // 1.26+: rootCerts, base64 PEM, decimal serials; and the array alone (istioctl -o json).
    let mut modern = v.clone();
    for e in modern["certificates"].as_array_mut().unwrap() {
        let mut chain = e["certChain"].as_array().cloned().unwrap_or_default();
        let conv = |c: &Value| {
            let pem = c["pem"].as_str().unwrap();
            let cert = meshtrust::Bundle::parse(pem.as_bytes()).unwrap();
            let cert = cert.certificates().next().unwrap().clone();
            let mut c = c.clone();
            c["pem"] = Value::String(base64_encode(pem.as_bytes()));
            c["serialNumber"] = Value::String(dumps::hex_to_decimal(&cert.serial_hex()));
            c
        };
        if chain.len() >= 2 {
            let root = chain.pop().unwrap();
            e["rootCerts"] = Value::Array(vec![conv(&root)]);
        }
        e["certChain"] = Value::Array(chain.iter().map(conv).collect());
    }
    let array = serde_json::to_vec(&modern["certificates"]).unwrap();
    let modern = serde_json::to_vec(&modern).unwrap();
    for bytes in [&modern, &array] {
        let q = proxies(observe::read("ztunnel-x.json", bytes).unwrap());
        assert_eq!(q, p, "the 1.26 form reads to the same identities");
    }
}

fn base64_encode(b: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b).unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout)
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn tables_resolve_serials_against_known_certificates() {
    let table = fixture("proxy-config-secret/output.txt");
    let p = proxies(observe::read("productpage.txt", &table).unwrap());
    assert_eq!(
        p[0].leaf,
        Some(CertRef::Serial("6fbee254c22900615cb1f74e3d2f1713".into()))
    );
    assert_eq!(
        p[0].roots,
        vec![CertRef::Serial("193a543fe2b0d9cd4847675394dfc54".into())]
    );

    let zt = fixture("ztunnel-config/certificates-summary.txt");
    let z = proxies(observe::read("ztunnel-x.txt", &zt).unwrap());
    assert_eq!(z.len(), 4);
    assert_eq!(
        z[0].leaf,
        Some(CertRef::Serial("e5dfb59150b2ba7f108d93dcec5aa613".into()))
    );
    assert_eq!(
        z[0].roots,
        vec![CertRef::Serial("8a516645c40ce76c2c0d27ab4e2461c1".into())]
    );
    assert_eq!(z[1].status, IdentityStatus::Initializing);

    // With the dump read too, the table's root serial resolves; the table's leaf (a
    // different pod's) matches no certificate and says so.
    let mut r = Reader::new();
    let obs = vec![
        r.read(
            "productpage.json",
            &fixture("proxy-config-secret/config_dump.json"),
        )
        .unwrap(),
        r.read("productpage-table.txt", &table).unwrap(),
    ];
    let at = time::macros::datetime!(2023-05-15 12:00 UTC);
    let mesh = MeshState::evaluate(obs, &[], &Default::default(), at);
    let (dump, tab) = (&mesh.proxies[0], &mesh.proxies[1]);
    assert_eq!(
        tab.trusts, dump.trusts,
        "the table's ROOTCA serial resolved"
    );
    assert_eq!(tab.leaf.as_ref().unwrap().sha256, None);
    let dump_leaf = dump.leaf.as_ref().unwrap();
    assert_eq!(tab.leaf.as_ref().unwrap().serial, dump_leaf.serial);
    assert_eq!(dump_leaf.verifies, Some(true), "{:?}", dump.warnings);
}

#[test]
fn errors_name_input_and_json_path() {
    let raw = fixture("proxy-config-secret/config_dump.json");
    let mut v: Value = serde_json::from_slice(&raw).unwrap();
    v["configs"][0]["dynamic_active_secrets"][1]["secret"]["validation_context"]["trusted_ca"]["inline_bytes"] =
        Value::String("not base64!".into());
    let e = observe::read("pod.json", &serde_json::to_vec(&v).unwrap()).unwrap_err();
    assert_eq!(e.input, "pod.json");
    assert_eq!(
        e.location,
        "configs[0].dynamic_active_secrets[1].secret.validation_context.trusted_ca.inline_bytes"
    );
    let e = observe::read("pod.json", b"{\"configs\": [1]}").unwrap_err();
    assert_eq!(e.location, "configs[0]");
    let e = observe::read("pod.json", b"{\"configs\": [\n").unwrap_err();
    assert!(e.location.starts_with("line 2"), "{e}");
    let e = observe::read("z.json", br#"{"certificates": [{"identity": "x", "certChain": [{"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}]}]}"#).unwrap_err();
    assert_eq!(e.location, "certificates[0].certChain[0].pem");
    let e = observe::read("t.txt", b"hello: [").unwrap_err();
    assert!(e.to_string().starts_with("t.txt: line"), "{e}");
}

#[test]
fn configmap_list_yaml_and_json() {
    let root = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/istio-samples/root-cert.pem"
    ))
    .unwrap();
    let json = dumps::configmaps(&[("default", &root), ("bookinfo", b"x")]);
    let Observation::ConfigMaps(c) = observe::read("cm.json", json.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].root_cert, root);
    let mut yaml = String::from(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: istio-ca-root-cert\n    namespace: default\n  data:\n    root-cert.pem: |\n",
    );
    for l in String::from_utf8(root.clone()).unwrap().lines() {
        yaml.push_str(&format!("      {l}\n"));
    }
    let Observation::ConfigMaps(y) = observe::read("cm.yaml", yaml.as_bytes()).unwrap() else {
        panic!()
    };
    assert_eq!(y[0].root_cert, root);
    let secret = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fuzz/corpus/cacerts_manifest/sample-a.yaml"
    ))
    .unwrap();
    assert!(matches!(
        observe::read("s.yaml", &secret).unwrap(),
        Observation::CaSecret(_)
    ));
}

#[test]
fn bootstrap_metadata_spiffe_trust_domains_and_warming_secrets() {
    let certs = meshtrust::testkit::bundles::sample_certificates();
    let b64 = |c: &[meshtrust::Certificate]| {
        base64_encode(c.iter().map(|c| c.to_pem()).collect::<String>().as_bytes())
    };
    let dump = serde_json::json!({"configs": [
        {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
         "bootstrap": {"node": {"id": "router~10.0.0.1~istio-ingressgateway-abc.istio-system~istio-system.svc.cluster.local"}}},
        {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
         "dynamic_warming_secrets": [{"name": "default", "secret": {"tls_certificate": {"certificate_chain": {"inline_bytes": b64(&certs[..1])}}}}],
         "dynamic_active_secrets": [{"name": "ROOTCA", "secret": {"validation_context": {"custom_validator_config": {"typed_config": {"trust_domains": [
             {"name": "cluster.local", "trust_bundle": {"inline_bytes": b64(&certs[1..2])}},
             {"name": "other.example", "trust_bundle": {"inline_bytes": b64(&certs[2..3])}}]}}}}}]}
    ]});
    let p = proxies(observe::read("whatever.json", dump.to_string().as_bytes()).unwrap());
    assert_eq!(p[0].name, "istio-ingressgateway-abc.istio-system");
    assert_eq!(p[0].kind, ProxyKind::Gateway);
    assert_eq!(p[0].status, IdentityStatus::Warming);
    assert_eq!(p[0].leaf.as_ref().and_then(|l| l.cert()), Some(&certs[0]));
    let roots: Vec<_> = p[0]
        .roots
        .iter()
        .filter_map(|r| r.cert())
        .cloned()
        .collect();
    assert_eq!(roots, certs[1..3].to_vec());
}

/// One reader keeps the CA certificates and root files every proxy repeats; what it returns,
/// and every error, is what a fresh reader returns for the same input.
#[test]
fn a_warm_reader_answers_as_a_fresh_one() {
    let certs = meshtrust::testkit::bundles::sample_certificates();
    let (root, ca, leaf) = (&certs[0], &certs[2], &certs[5]);
    let good = dumps::envoy(
        &[leaf.clone(), ca.clone()],
        std::slice::from_ref(root),
        false,
    );
    // The chain as PEM text (`inline_string`), whole, damaged in the leaf (the CA block after
    // it is cached by then), with CRLF lines, and with text around the blocks.
    let inline = |pem: &str| {
        serde_json::json!({"configs": [{"dynamic_active_secrets": [
            {"name": "default", "secret": {"tls_certificate": {"certificate_chain": {"inline_string": pem}}}},
            {"name": "ROOTCA", "secret": {"validation_context": {"trusted_ca": {"inline_string": root.to_pem()}}}}
        ]}]})
        .to_string()
    };
    let pem = format!("{}{}", leaf.to_pem(), ca.to_pem());
    let inputs = [
        ("a.json", good.clone()),
        ("b.json", good),
        ("c.json", inline(&pem)),
        ("d.json", inline(&pem.replacen("MII", "MI!", 1))),
        ("e.json", inline(&pem.replace('\n', "\r\n"))),
        ("f.json", inline(&format!("leaf:\n{pem}trailing text\n"))),
        (
            "g.json",
            inline(&format!("{pem}-----END CERTIFICATE-----\n")),
        ),
        ("h.json", inline(&ca.to_pem())),
    ];
    let mut warm = Reader::new();
    for _ in 0..2 {
        for (name, text) in &inputs {
            let w = warm.read(name, text.as_bytes());
            let f = Reader::new().read(name, text.as_bytes());
            match (w, f) {
                (Ok(Observation::Proxies(w)), Ok(Observation::Proxies(f))) => {
                    assert_eq!(w, f, "{name}")
                }
                (Err(w), Err(f)) => assert_eq!(w, f, "{name}"),
                (w, f) => panic!("{name}: warm {w:?}, fresh {f:?}"),
            }
        }
    }
    for bad in ["d.json", "g.json"] {
        let text = &inputs.iter().find(|(n, _)| *n == bad).unwrap().1;
        let err = warm.read(bad, text.as_bytes()).unwrap_err();
        assert!(err.message.contains("PEM"), "{err}");
    }
}
