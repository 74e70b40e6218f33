//! Istio's CA secrets: reading every form, istiod's load checks by version, writing, and the
//! `meshtrust check` command, on Istio's samples and on material made with Istio's own recipe.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use meshtrust::istio::{
    self, CaSecret, DataPlane, Finding, IstioProfile, SecretForm, SecretKind, Severity,
};
use time::OffsetDateTime;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/istio-samples")
            .join(name),
    )
    .unwrap()
}

fn now() -> OffsetDateTime {
    // Inside the validity of every sample CA (they expire 2033).
    OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap()
}

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|x| x.code.as_str()).collect()
}

fn errors(f: &[Finding]) -> Vec<&'static str> {
    f.iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| x.code.as_str())
        .collect()
}

/// Istio's samples as cacerts: A (cert-chain.pem = intermediate alone), and the -alt set
/// (cert-chain-alt.pem = intermediate + root B).
fn set_a() -> CaSecret {
    CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    )
}
fn set_alt() -> CaSecret {
    CaSecret::cacerts(
        &sample("ca-cert-alt.pem"),
        &sample("ca-key-alt.pem"),
        &sample("cert-chain-alt.pem"),
        &sample("root-cert-alt.pem"),
    )
}
fn set_alt2() -> CaSecret {
    CaSecret::cacerts(
        &sample("ca-cert-alt-2.pem"),
        &sample("ca-key-alt-2.pem"),
        &sample("cert-chain-alt-2.pem"),
        &sample("root-cert-alt.pem"),
    )
}

#[test]
fn istio_samples_pass() {
    for (name, s) in [("A", set_a()), ("alt", set_alt())] {
        let f = istio::check(&s, &IstioProfile::default(), now());
        assert!(errors(&f).is_empty(), "{name}: {f:#?}");
        assert!(
            !codes(&f).contains(&"cert-chain-not-ca-cert-first"),
            "{name}"
        );
    }
    // Intermediate + root in cert-chain.pem: the root goes twice to peers (istio#39001).
    assert!(
        codes(&istio::check(&set_alt(), &IstioProfile::default(), now()))
            .contains(&"cert-chain-root-repeated")
    );
}

#[test]
fn the_alt_2_sample_key_does_not_match_its_certificate() {
    // A real defect of Istio's samples/certs: ca-key-alt-2.pem belongs to no certificate.
    let f = istio::check(&set_alt2(), &IstioProfile::default(), now());
    assert_eq!(errors(&f), ["ca-key-mismatch"], "{f:#?}");
}

#[test]
fn cert_chain_written_root_first_passes_with_the_warning() {
    let root_first = [sample("root-cert-alt.pem"), sample("ca-cert-alt.pem")].concat();
    let s = CaSecret::cacerts(
        &sample("ca-cert-alt.pem"),
        &sample("ca-key-alt.pem"),
        &root_first,
        &sample("root-cert-alt.pem"),
    );
    let f = istio::check(&s, &IstioProfile::default(), now());
    assert!(errors(&f).is_empty(), "{f:#?}");
    let w: Vec<_> = f
        .iter()
        .filter(|x| x.code.as_str() == "cert-chain-not-ca-cert-first")
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].severity, Severity::Warning);
}

#[test]
fn broken_secrets_fail_each_with_its_code() {
    let p = IstioProfile::default();
    // The key of another certificate.
    let s = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key-alt.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    );
    assert_eq!(errors(&istio::check(&s, &p, now())), ["ca-key-mismatch"]);
    // A leaf as ca-cert (with its own key it still is no CA).
    let s = CaSecret::cacerts(
        &sample("leaf-workload-foo-cert.pem"),
        &sample("workload-foo-key.pem"),
        &sample("leaf-workload-foo-cert.pem"),
        &sample("root-cert.pem"),
    );
    let e = errors(&istio::check(&s, &p, now()));
    assert!(e.contains(&"ca-cert-not-ca"), "{e:?}");
    // The wrong root.
    let s = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert-alt.pem"),
    );
    assert_eq!(errors(&istio::check(&s, &p, now())), ["ca-cert-unverified"]);
    // A missing file: an error from 1.27, a warning-and-fallback for a missing key before.
    let mut s = set_a();
    let mut files: Vec<(String, Vec<u8>)> = s
        .file_names()
        .map(|n| (n.to_owned(), s.file(n).unwrap().to_vec()))
        .collect();
    files.retain(|(n, _)| n != "ca-key.pem");
    s = CaSecret::from_files("cacerts", "istio-system", SecretForm::Memory, files.clone());
    assert!(errors(&istio::check(&s, &p, now())).contains(&"incomplete-ca-bundle"));
    let old = IstioProfile {
        istio_version: "1.26".parse().unwrap(),
        ..IstioProfile::default()
    };
    let f = istio::check(&s, &old, now());
    assert_eq!(codes(&f), ["missing-ca-key"]);
    assert_eq!(f[0].severity, Severity::Warning);
    files.push(("ca-key.pem".to_owned(), sample("ca-key.pem")));
    files.retain(|(n, _)| n != "root-cert.pem");
    let s = CaSecret::from_files("cacerts", "istio-system", SecretForm::Memory, files);
    assert!(errors(&istio::check(&s, &old, now())).contains(&"missing-file"));
    // More than one block in ca-cert.pem: only the first counts.
    let two = [sample("ca-cert.pem"), sample("root-cert.pem")].concat();
    let s = CaSecret::cacerts(
        &two,
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    );
    let f = istio::check(&s, &p, now());
    assert!(
        codes(&f).contains(&"ca-cert-extra-blocks") && errors(&f).is_empty(),
        "{f:#?}"
    );
    // A private key in the published root file.
    let leak = [sample("root-cert.pem"), sample("ca-key.pem")].concat();
    let s = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &leak,
    );
    assert!(errors(&istio::check(&s, &p, now())).contains(&"private-key-in-bundle"));
    // Expired: check after the samples' 2033 expiry.
    let later = OffsetDateTime::from_unix_timestamp(2_100_000_000).unwrap();
    let f = istio::check(&set_alt(), &p, later);
    assert!(errors(&f).contains(&"ca-expired"), "{f:#?}");
    let soon = set_alt().ca_cert().unwrap().not_after() - time::Duration::days(30);
    assert!(codes(&istio::check(&set_alt(), &p, soon)).contains(&"ca-expiring"));
}

#[test]
fn multi_root_bundles_need_multiroot_and_a_capable_ztunnel() {
    let ab = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert-combined.pem"),
    );
    let off = IstioProfile::default();
    assert!(errors(&istio::check(&ab, &off, now())).contains(&"multiple-roots-without-multiroot"));
    let on = IstioProfile {
        multiroot: true,
        ..IstioProfile::default()
    };
    assert!(errors(&istio::check(&ab, &on, now())).is_empty());
    for (z, bad) in [
        ("1.24.3", true),
        ("1.24.4", true),
        ("1.25.2", true),
        ("1.24.6", false),
        ("1.25.3", false),
        ("1.26.0", false),
    ] {
        let amb = IstioProfile {
            data_plane: DataPlane::Ambient,
            ztunnel_version: Some(z.parse().unwrap()),
            ..on.clone()
        };
        let f = istio::check(&ab, &amb, now());
        assert_eq!(
            errors(&f).contains(&"ztunnel-multiroot-unsupported"),
            bad,
            "{z}: {f:#?}"
        );
        if bad {
            let msg = &f
                .iter()
                .find(|x| x.code.as_str() == "ztunnel-multiroot-unsupported")
                .unwrap()
                .message;
            assert!(msg.contains("1.24.6+, 1.25.3+ or 1.26.0+"), "{msg}");
        }
    }
    // A single-root bundle is fine for any ztunnel.
    let amb = IstioProfile {
        data_plane: DataPlane::Ambient,
        ztunnel_version: Some("1.24.3".parse().unwrap()),
        ..on
    };
    assert!(errors(&istio::check(&set_a(), &amb, now())).is_empty());
}

#[test]
fn material_made_with_istios_recipe_passes() {
    let dir = tempfile::tempdir().unwrap();
    common::recipe::istio_recipe(dir.path());
    // Makefile.selfsigned.mk's <name>-cacerts: cert-chain.pem = ca-cert + root.
    let c1 = dir.path().join("cluster1");
    let chain = [
        std::fs::read(c1.join("ca-cert.pem")).unwrap(),
        std::fs::read(dir.path().join("root-cert.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(c1.join("cert-chain.pem"), chain).unwrap();
    std::fs::copy(dir.path().join("root-cert.pem"), c1.join("root-cert.pem")).unwrap();
    let s = istio::read_path(&c1).unwrap();
    let f = istio::check(&s, &IstioProfile::default(), OffsetDateTime::now_utc());
    assert!(errors(&f).is_empty(), "{f:#?}");
    assert_eq!(s.ca_cert().unwrap().key_algorithm().bits(), 4096);
}

fn all_forms(s: &CaSecret, dir: &Path) -> Vec<(String, CaSecret)> {
    let d = dir.join("dir");
    istio::write_dir(s, &d, false).unwrap();
    let y = dir.join("s.yaml");
    std::fs::write(&y, s.to_manifest_yaml().as_bytes()).unwrap();
    let j = dir.join("s.json");
    std::fs::write(&j, s.to_manifest_json().as_bytes()).unwrap();
    vec![
        ("dir".to_owned(), istio::read_path(&d).unwrap()),
        ("yaml".to_owned(), istio::read_path(&y).unwrap()),
        ("json".to_owned(), istio::read_path(&j).unwrap()),
    ]
}

#[test]
fn round_trip_byte_for_byte_in_every_form() {
    let no_newline = sample("root-cert-combined.pem");
    let cases = [
        set_a(),
        set_alt(),
        CaSecret::cacerts(
            &sample("ca-cert.pem"),
            &sample("ca-key.pem"),
            &sample("cert-chain.pem"),
            &no_newline,
        ),
        CaSecret::from_files(
            "istio-ca-secret",
            "istio-system",
            SecretForm::Memory,
            [
                ("ca-cert.pem", sample("root-cert.pem")),
                ("ca-key.pem", sample("ca-key.pem")),
                ("cert-chain.pem", vec![]),
                ("key.pem", vec![]),
                ("root-cert.pem", sample("root-cert.pem")),
            ],
        ),
        CaSecret::from_files(
            "cacerts",
            "istio-system",
            SecretForm::Memory,
            [
                ("tls.crt", sample("ca-cert.pem")),
                ("tls.key", sample("ca-key.pem")),
                ("ca.crt", sample("root-cert.pem")),
            ],
        ),
    ];
    for (i, s) in cases.iter().enumerate() {
        let tmp = tempfile::tempdir().unwrap();
        for (form, back) in all_forms(s, tmp.path()) {
            assert_eq!(back.kind, s.kind, "case {i} {form}");
            assert_eq!(back.layout, s.layout, "case {i} {form}");
            assert_eq!(back.name, s.name, "case {i} {form}");
            let names: Vec<&str> = s.file_names().collect();
            assert_eq!(
                back.file_names().collect::<Vec<_>>(),
                names,
                "case {i} {form}"
            );
            for n in names {
                assert_eq!(back.file(n), s.file(n), "case {i} {form} {n}");
            }
        }
    }
    assert_eq!(cases[3].kind, SecretKind::SelfSigned);
}

#[test]
fn directory_modes_and_no_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("cacerts");
    istio::write_dir(&set_a(), &d, false).unwrap();
    let mode = |n: &str| std::fs::metadata(d.join(n)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("ca-key.pem"), 0o600);
    assert_eq!(mode("ca-cert.pem"), 0o644);
    assert_eq!(mode("root-cert.pem"), 0o644);
    assert!(istio::write_dir(&set_alt(), &d, false).is_err());
    assert_eq!(
        std::fs::read(d.join("ca-cert.pem")).unwrap(),
        sample("ca-cert.pem"),
        "nothing half-written"
    );
}

#[test]
fn kubectl_output_and_string_data_are_read() {
    // What `kubectl get secret cacerts -n istio-system -o yaml` prints (fields kubectl adds).
    let b64 = |n: &str| meshtrust_b64(&sample(n));
    let yaml = format!(
        "apiVersion: v1\ndata:\n  ca-cert.pem: {}\n  ca-key.pem: {}\n  cert-chain.pem: {}\n  root-cert.pem: {}\nkind: Secret\nmetadata:\n  creationTimestamp: \"2025-05-12T16:48:20Z\"\n  name: cacerts\n  namespace: istio-system\n  resourceVersion: \"1234\"\n  uid: 0b5b7f5c-1111-2222-3333-444455556666\ntype: Opaque\n",
        b64("ca-cert.pem"),
        b64("ca-key.pem"),
        b64("cert-chain.pem"),
        b64("root-cert.pem")
    );
    let s = istio::parse_manifest(yaml.as_bytes()).unwrap();
    assert!(errors(&istio::check(&s, &IstioProfile::default(), now())).is_empty());
    // stringData with block scalars, as operators write manifests by hand; stringData wins.
    let indent = |n: &str| {
        String::from_utf8(sample(n))
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cacerts\n  namespace: istio-system\ndata:\n  root-cert.pem: aGVsbG8=\nstringData:\n  ca-cert.pem: |\n{}  ca-key.pem: |\n{}  cert-chain.pem: |\n{}  root-cert.pem: |\n{}",
        indent("ca-cert.pem"),
        indent("ca-key.pem"),
        indent("cert-chain.pem"),
        indent("root-cert.pem")
    );
    let s = istio::parse_manifest(manifest.as_bytes()).unwrap();
    assert_eq!(
        s.file("root-cert.pem").unwrap(),
        &sample("root-cert.pem")[..]
    );
    assert!(errors(&istio::check(&s, &IstioProfile::default(), now())).is_empty());
    // A List (kubectl get secret -o yaml without a name).
    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: other\n  data:\n    tls.crt: aGVsbG8=\n- apiVersion: v1\n  kind: Secret\n  metadata:\n    name: cacerts\n  data:\n    root-cert.pem: {}\n",
        b64("root-cert.pem")
    );
    assert_eq!(
        istio::parse_manifest(list.as_bytes())
            .unwrap()
            .file("root-cert.pem")
            .unwrap(),
        &sample("root-cert.pem")[..]
    );
}

fn meshtrust_b64(data: &[u8]) -> String {
    // Through the public writer: a one-file secret's manifest carries the encoding.
    let s = CaSecret::from_files(
        "x",
        "y",
        SecretForm::Memory,
        [("root-cert.pem", data.to_vec())],
    );
    let yaml = s.to_manifest_yaml();
    yaml.lines()
        .find_map(|l| l.strip_prefix("  root-cert.pem: "))
        .unwrap()
        .to_owned()
}

#[test]
fn keys_never_appear_in_output_debug_or_errors() {
    let key_text = String::from_utf8(sample("ca-key.pem")).unwrap();
    let key_lines: Vec<&str> = key_text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let leaked = |s: &str| {
        key_lines
            .iter()
            .any(|l| l.len() > 20 && s.contains(&l[..20]))
    };
    let s = set_a();
    assert!(!leaked(&format!("{s:?}")));
    assert!(!leaked(&format!("{:?}", s.ca_key().unwrap())));
    let bad = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &sample("ca-key-alt.pem"),
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    );
    for f in istio::check(&bad, &IstioProfile::default(), now()) {
        assert!(!leaked(&f.message));
    }
    // A key that does not parse: the error says where, not what.
    let mut broken = key_text.clone().into_bytes();
    let mid = broken.len() / 2;
    broken[mid] = b'*';
    let s = CaSecret::cacerts(
        &sample("ca-cert.pem"),
        &broken,
        &sample("cert-chain.pem"),
        &sample("root-cert.pem"),
    );
    let f = istio::check(&s, &IstioProfile::default(), now());
    assert!(codes(&f).contains(&"unreadable-file"));
    for x in &f {
        assert!(!leaked(&x.message), "{}", x.message);
    }
    // The CLI on a directory with the key: stdout and stderr, text and JSON.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    istio::write_dir(&bad, &d, false).unwrap();
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshtrust"));
        cmd.args(["check", "--istio-version", "1.31.0"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg(&d).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(
            !leaked(&String::from_utf8_lossy(&out.stdout))
                && !leaked(&String::from_utf8_lossy(&out.stderr))
        );
    }
}

#[test]
fn check_command_contract() {
    let tmp = tempfile::tempdir().unwrap();
    let d: PathBuf = tmp.path().join("c");
    istio::write_dir(&set_a(), &d, false).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args(args)
            .output()
            .unwrap()
    };
    // No version: a usage error naming the known versions (no command assumes one).
    let out = run(&["check", "--json", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--istio-version") && err.contains("1.22.0 to 1.31.x"),
        "{err}"
    );
    let out = run(&[
        "check",
        "--istio-version",
        "1.30.0",
        "--ambient",
        d.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ztunnel-version"));
    // Newer than modelled: accepted, with a warning that it is checked as the newest.
    let out = run(&["check", "--istio-version", "1.32.1", d.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checked as 1.31.0"));
    let out = run(&[
        "check",
        "--json",
        "--istio-version",
        "1.31.0",
        d.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["findings"].is_array());
    // Multi-root without --multiroot: exit 1 with the code.
    std::fs::write(d.join("root-cert.pem"), sample("root-cert-combined.pem")).unwrap();
    let out = run(&[
        "check",
        "--json",
        "--istio-version",
        "1.31.0",
        d.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["findings"].as_array().unwrap();
    assert!(
        f.iter()
            .any(|x| x["code"] == "multiple-roots-without-multiroot"
                && x["severity"] == "error"
                && x["message"].is_string())
    );
    let out = run(&[
        "check",
        "--multiroot",
        "--istio-version",
        "1.31.0",
        "--ambient",
        "--ztunnel-version",
        "1.25.1",
        d.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ztunnel-multiroot-unsupported"));
    let out = run(&[
        "check",
        "--multiroot",
        "--istio-version",
        "1.28",
        d.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    // Unreadable input: exit 2.
    let y = tmp.path().join("bad.yaml");
    std::fs::write(&y, "kind: Secret\ndata:\n  ca-cert.pem: not*base64\n").unwrap();
    let out = run(&["check", "--istio-version", "1.31", y.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
    let out = run(&[
        "check",
        "--istio-version",
        "1.31",
        tmp.path().join("nope").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn same_named_roots_and_an_intermediate_without_aki_warn() {
    use meshtrust::testkit::{Aki, CertSpec, Issued, KeyType, TestKey};
    // Istio's tools name every root "O=Istio, CN=Root CA": during a rotation both are trusted.
    let r1 = Issued::self_signed(
        &CertSpec::root("Istio", "Root CA"),
        &TestKey::pooled(KeyType::EcP256, 1),
    )
    .unwrap();
    let r2 = Issued::self_signed(
        &CertSpec::root("Istio", "Root CA"),
        &TestKey::pooled(KeyType::EcP256, 2),
    )
    .unwrap();
    let roots = [r1.pem(), r2.pem()].concat();
    let profile = IstioProfile {
        multiroot: true,
        ..IstioProfile::default()
    };
    for (aki, warned) in [(Aki::Omit, true), (Aki::FromIssuer, false)] {
        let ik = TestKey::pooled(KeyType::EcP256, 3);
        let int = r1
            .issue(
                &CertSpec::intermediate("Istio", "Intermediate CA").aki(aki.clone()),
                &ik,
            )
            .unwrap();
        let key = meshtrust::pem::encode(&meshtrust::pem::Label::PrivateKey, ik.pkcs8_der());
        let chain = [int.pem(), r1.pem()].concat();
        let s = CaSecret::cacerts(
            int.pem().as_bytes(),
            key.as_bytes(),
            chain.as_bytes(),
            roots.as_bytes(),
        );
        let f = istio::check(&s, &profile, now());
        assert!(errors(&f).is_empty(), "{f:#?}");
        assert_eq!(
            codes(&f).contains(&"same-name-roots-without-aki"),
            warned,
            "{aki:?}: {f:#?}"
        );
    }
}

#[test]
fn boolean_profile_flags_do_not_swallow_the_path() {
    // `--multiroot PATH` must read PATH as the secret, not as the flag's value.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("c");
    istio::write_dir(&set_a(), &d, false).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_meshtrust"))
            .args(args)
            .output()
            .unwrap()
    };
    for flags in [
        &["--multiroot"][..],
        &["--xds-agent"],
        &["--multiroot=true", "--xds-agent=false"],
    ] {
        let mut args = vec!["check", "--istio-version", "1.31.0"];
        args.extend_from_slice(flags);
        args.push(d.to_str().unwrap());
        let out = run(&args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// CRLs made by `openssl ca -gencrl` (an independent producer) over Istio-recipe material.
fn openssl_crl(dir: &Path, name: &str, cert: &Path, key: &Path) -> Vec<u8> {
    let ca = dir.join(format!("crl-{name}"));
    std::fs::create_dir_all(&ca).unwrap();
    std::fs::write(ca.join("index.txt"), "").unwrap();
    std::fs::write(ca.join("crlnumber"), "01\n").unwrap();
    std::fs::write(
        ca.join("ca.cnf"),
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n",
    )
    .unwrap();
    common::recipe::openssl(
        &ca,
        &[
            "ca",
            "-gencrl",
            "-config",
            "ca.cnf",
            "-cert",
            cert.to_str().unwrap(),
            "-keyfile",
            key.to_str().unwrap(),
            "-out",
            "crl.pem",
        ],
    );
    std::fs::read(ca.join("crl.pem")).unwrap()
}

/// ca-crl.pem from 1.27.0: a CRL signed by every certificate of cert-chain.pem passes, in
/// either order; one missing, or a signature broken, is refused naming what is missing;
/// before 1.27.0 the file is not read.
#[test]
fn ca_crl_signed_by_every_chain_certificate_passes_from_1_27_0() {
    let dir = tempfile::tempdir().unwrap();
    common::recipe::istio_recipe(dir.path());
    let (d, c1) = (dir.path(), dir.path().join("cluster1"));
    let chain = [
        std::fs::read(c1.join("ca-cert.pem")).unwrap(),
        std::fs::read(d.join("root-cert.pem")).unwrap(),
    ]
    .concat();
    std::fs::write(c1.join("cert-chain.pem"), chain).unwrap();
    std::fs::copy(d.join("root-cert.pem"), c1.join("root-cert.pem")).unwrap();
    let by_ca = openssl_crl(d, "ca", &c1.join("ca-cert.pem"), &c1.join("ca-key.pem"));
    let by_root = openssl_crl(d, "root", &d.join("root-cert.pem"), &d.join("root-key.pem"));
    let base = istio::read_path(&c1).unwrap();
    let at = OffsetDateTime::now_utc();
    let with_crl = |crl: &[u8], version: &str| {
        let mut s = base.clone();
        s.set_file(istio::CA_CRL, crl.to_vec());
        let profile = IstioProfile {
            istio_version: version.parse().unwrap(),
            ..IstioProfile::default()
        };
        istio::check(&s, &profile, at)
    };
    let both = [by_ca.as_slice(), by_root.as_slice()].concat();
    let reversed = [by_root.as_slice(), by_ca.as_slice()].concat();
    for crl in [&both, &reversed] {
        for v in ["1.26.2", "1.27.0", "1.30.0"] {
            let f = with_crl(crl, v);
            assert!(errors(&f).is_empty(), "{v}: {f:#?}");
        }
    }
    // Only the intermediate's CRL: the root signs none.
    let f = with_crl(&by_ca, "1.27.0");
    assert_eq!(errors(&f), ["ca-crl-unsigned"], "{f:#?}");
    let root = istio::read_path(&c1).unwrap().root_bundle().unwrap();
    let root_subject = root.certificates().next().unwrap().subject();
    assert!(f[0].message.contains(root_subject), "{}", f[0].message);
    assert!(
        errors(&with_crl(&by_ca, "1.26.2")).is_empty(),
        "not read before 1.27.0"
    );
    // The root's CRL with its signature broken (one base64 character of the last line).
    let text = String::from_utf8(by_root.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let sig_line = lines.len() - 2;
    let mut broken: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let flipped: String = broken[sig_line]
        .chars()
        .enumerate()
        .map(|(i, ch)| {
            if i == 3 {
                if ch == 'A' { 'B' } else { 'A' }
            } else {
                ch
            }
        })
        .collect();
    broken[sig_line] = flipped;
    let broken = [by_ca.clone(), (broken.join("\n") + "\n").into_bytes()].concat();
    assert_eq!(errors(&with_crl(&broken, "1.27.0")), ["ca-crl-unsigned"]);
}
