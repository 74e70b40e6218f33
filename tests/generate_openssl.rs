//! `meshtrust::generate` against OpenSSL, the tool Istio's recipes run:
//! - Istio's tools/certs recipe (common.mk's rendered configs, Makefile.selfsigned.mk's
//!   commands) run with the `openssl` binary, compared field by field with meshtrust's output;
//! - `openssl verify -x509_strict` on every generated chain, for every key type;
//! - roots made by OpenSSL with awkward names and keys in every format, as issuers.

mod common;

use std::path::Path;

use common::recipe::{istio_recipe, openssl, read_cert, read_key};

use meshtrust::generate::{
    self, GenerateError, Generated, IntermediateSpec, Issuer, KeyType, LeafSpec, RootSpec,
};
use meshtrust::{Certificate, SpiffeId};
use time::OffsetDateTime;

/// One attribute: (type OID bytes, string tag, value bytes).
type Atv = (Vec<u8>, u8, Vec<u8>);

/// A name as its attributes per RDN, RDNs in order.
fn name_structure(der: &[u8]) -> Vec<Vec<Atv>> {
    let name: x509_cert::name::Name = der::Decode::from_der(der).unwrap();
    name.as_ref()
        .iter()
        .map(|rdn| {
            rdn.as_ref()
                .iter()
                .map(|atv| {
                    (
                        atv.oid.as_bytes().to_vec(),
                        der::Encode::to_der(&atv.value).unwrap()[0],
                        atv.value.value().to_vec(),
                    )
                })
                .collect()
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq)]
struct Shape {
    version: u8,
    signature_algorithm: String,
    signature_algorithms_match: bool,
    issuer: Vec<Vec<Atv>>,
    subject: Vec<Vec<Atv>>,
    key: String,
    lifetime_days: i64,
    serial_positive: bool,
    /// (name, critical, value bytes) in certificate order; key identifiers reduced to
    /// their length, their values are checked separately.
    extensions: Vec<(String, bool, Vec<u8>)>,
}

fn shape(c: &Certificate) -> Shape {
    Shape {
        version: c.version(),
        signature_algorithm: c.signature_algorithm().name(),
        signature_algorithms_match: c.signature_algorithms_match(),
        issuer: name_structure(c.issuer_der()),
        subject: name_structure(c.subject_der()),
        key: c.key_algorithm().to_string(),
        lifetime_days: (c.not_after() - c.not_before()).whole_days(),
        serial_positive: c.serial()[0] & 0x80 == 0,
        extensions: c
            .extensions()
            .map(|e| {
                let name = e.name.map(str::to_owned).unwrap_or(e.oid.clone());
                let value = match e.name {
                    Some("subjectKeyIdentifier") | Some("authorityKeyIdentifier") => {
                        vec![e.value.len() as u8]
                    }
                    _ => e.value.to_vec(),
                };
                (name, e.critical, value)
            })
            .collect(),
    }
}

fn sha1(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
        .as_ref()
        .to_vec()
}

/// `openssl x509 -text` without the parts that must differ (keys, serials, dates, key ids).
fn openssl_text(dir: &Path, pem_file: &str) -> String {
    let text = openssl(
        dir,
        &[
            "x509",
            "-in",
            pem_file,
            "-noout",
            "-text",
            "-certopt",
            "no_pubkey,no_sigdump,no_serial,no_validity",
        ],
    );
    let mut out = Vec::new();
    let mut skip_next = false;
    for line in text.lines() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if line.contains("Key Identifier") {
            skip_next = true;
        }
        out.push(line);
    }
    out.join("\n")
}

#[cfg(feature = "rsa-keygen")] // the recipe is RSA 4096
#[test]
fn istio_recipe_field_by_field() {
    let t = tempfile::tempdir().unwrap();
    let (o_root, o_ca) = istio_recipe(t.path());

    let now = OffsetDateTime::now_utc();
    let m_root = generate::root(&RootSpec::istio(), now).unwrap();
    let m_ca = generate::intermediate(
        &IntermediateSpec {
            // The recipe's 730 days; say so explicitly in case the default ever changes.
            days: 730,
            ..IntermediateSpec::istio("cluster1")
        },
        &m_root.issuer().unwrap(),
        now,
    )
    .unwrap();
    assert!(m_ca.clamped.is_none());

    assert_eq!(shape(&m_root.certificate), shape(&o_root), "root");
    assert_eq!(shape(&m_ca.certificate), shape(&o_ca), "intermediate");
    // The shape is what the recipe says, not merely what both happen to agree on.
    assert_eq!(o_root.key_algorithm().to_string(), "RSA 4096");
    assert_eq!(shape(&o_root).lifetime_days, 3650);
    assert_eq!(shape(&o_ca).lifetime_days, 730);

    // Key identifiers: the same method (SHA-1 of the key bits) and the same linkage.
    for (m, o) in [(&m_root.certificate, &o_root), (&m_ca.certificate, &o_ca)] {
        assert_eq!(o.subject_key_id().unwrap(), sha1(o.public_key()));
        assert_eq!(m.subject_key_id().unwrap(), sha1(m.public_key()));
    }
    assert_eq!(o_root.authority_key_id(), None);
    assert_eq!(m_root.certificate.authority_key_id(), None);
    assert_eq!(o_ca.authority_key_id(), o_root.subject_key_id());
    assert_eq!(
        m_ca.certificate.authority_key_id(),
        m_root.certificate.subject_key_id()
    );

    // OpenSSL's own rendering of both, with the parts that must differ removed.
    std::fs::write(t.path().join("m-root.pem"), &m_root.cert_pem).unwrap();
    std::fs::write(t.path().join("m-ca.pem"), &m_ca.cert_pem).unwrap();
    assert_eq!(
        openssl_text(t.path(), "m-root.pem"),
        openssl_text(t.path(), "root-cert.pem")
    );
    assert_eq!(
        openssl_text(t.path(), "m-ca.pem"),
        openssl_text(t.path(), "cluster1/ca-cert.pem")
    );

    // meshtrust can sign under the OpenSSL-made root, and OpenSSL under meshtrust's: the
    // results are interchangeable.
    let o_issuer = Issuer::new(o_root.clone(), read_key(&t.path().join("root-key.pem"))).unwrap();
    let mixed =
        generate::intermediate(&IntermediateSpec::istio("cluster2"), &o_issuer, now).unwrap();
    assert_eq!(shape(&mixed.certificate), {
        let mut s = shape(&o_ca);
        s.subject = name_structure(mixed.certificate.subject_der());
        s
    });
    std::fs::write(t.path().join("mixed.pem"), &mixed.cert_pem).unwrap();
    openssl(
        t.path(),
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root-cert.pem",
            "mixed.pem",
        ],
    );
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// `openssl verify -x509_strict` of leaf <- intermediate <- root, plus the intermediate alone,
/// plus the leaf for TLS client and server use.
fn openssl_verify_chain(dir: &Path, root: &Generated, ca: &Generated, leaf: &Generated) {
    write(dir, "root.pem", root.cert_pem.as_bytes());
    write(dir, "ca.pem", ca.cert_pem.as_bytes());
    write(dir, "leaf.pem", leaf.cert_pem.as_bytes());
    write(dir, "ca-chain.pem", ca.cert_chain_pem().as_bytes());
    let ok = |s: String| assert!(s.contains(": OK"), "{s}");
    ok(openssl(
        dir,
        &["verify", "-x509_strict", "-CAfile", "root.pem", "ca.pem"],
    ));
    for purpose in ["sslserver", "sslclient"] {
        ok(openssl(
            dir,
            &[
                "verify",
                "-x509_strict",
                "-purpose",
                purpose,
                "-CAfile",
                "root.pem",
                "-untrusted",
                "ca-chain.pem",
                "leaf.pem",
            ],
        ));
    }
}

#[test]
fn openssl_verifies_chains_for_every_key_type() {
    let t = tempfile::tempdir().unwrap();
    let now = OffsetDateTime::now_utc();
    let id = SpiffeId::istio("cluster.local", "ns1", "sa1").unwrap();
    let types: Vec<KeyType> = KeyType::ALL.into_iter().filter(|k| k.available()).collect();
    for (i, &k) in types.iter().enumerate() {
        let root = generate::root(
            &RootSpec {
                key_type: k,
                ..RootSpec::istio()
            },
            now,
        )
        .unwrap();
        // Each CA key type signs the next one's key type, so every pair of signing and
        // subject algorithms appears.
        let next = types[(i + 1) % types.len()];
        let ca = generate::intermediate(
            &IntermediateSpec {
                key_type: next,
                ..IntermediateSpec::istio("c")
            },
            &root.issuer().unwrap(),
            now,
        )
        .unwrap();
        for leaf_type in [KeyType::EcP256, KeyType::Rsa2048] {
            if !leaf_type.available() {
                continue;
            }
            let leaf = generate::leaf(
                &LeafSpec {
                    key_type: leaf_type,
                    ..LeafSpec::istio(id.clone())
                },
                &ca.issuer().unwrap(),
                now,
            )
            .unwrap();
            openssl_verify_chain(t.path(), &root, &ca, &leaf);
            // And the key files OpenSSL reads are the certificates' keys.
            write(t.path(), "leaf-key.pem", leaf.key_pem().as_bytes());
            let from_key = openssl(t.path(), &["pkey", "-in", "leaf-key.pem", "-pubout"]);
            let from_cert = openssl(t.path(), &["x509", "-in", "leaf.pem", "-noout", "-pubkey"]);
            assert_eq!(from_key, from_cert, "{k} -> {next} -> {leaf_type}");
        }
    }
}

/// Makes a self-signed CA with OpenSSL from a config text and a key file.
fn openssl_root(dir: &Path, conf: &str, key: &str, out: &str) -> Certificate {
    write(dir, "tmp.cnf", conf.as_bytes());
    openssl(
        dir,
        &[
            "req", "-x509", "-new", "-key", key, "-config", "tmp.cnf", "-utf8", "-days", "30",
            "-out", out,
        ],
    );
    read_cert(&dir.join(out))
}

fn ca_conf(mask: &str, dn: &str) -> String {
    format!(
        "[ req ]\nprompt = no\ndistinguished_name = dn\nstring_mask = {mask}\n\
         x509_extensions = ext\n[ dn ]\n{dn}\n[ ext ]\nbasicConstraints = critical, CA:true\n\
         keyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n"
    )
}

#[test]
fn openssl_roots_with_awkward_names_and_every_key_format_sign_exactly() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let now = OffsetDateTime::now_utc();
    // Keys in the three formats Istio reads: PKCS#8, PKCS#1 RSA, SEC1 EC.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "pkcs8.pem",
        ],
    );
    openssl(d, &["genrsa", "-traditional", "-out", "pkcs1.pem", "2048"]);
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sec1.pem",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "p384.pem",
        ],
    );
    assert!(
        std::fs::read_to_string(d.join("pkcs1.pem"))
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY")
    );
    assert!(
        std::fs::read_to_string(d.join("sec1.pem"))
            .unwrap()
            .starts_with("-----BEGIN EC PRIVATE KEY")
    );

    let cases = [
        // Istio's samples/certs root: PrintableString C, UTF8String ST/L/O/OU/CN, IA5 email.
        (
            "samples",
            ca_conf(
                "utf8only",
                "C = US\nST = California\nL = Sunnyvale\nO = Istio\nOU = Test\nCN = Root CA\n\
                 emailAddress = testrootca@istio.io",
            ),
            "pkcs1.pem",
        ),
        // PrintableStrings where possible, a BMPString for non-Latin text, IA5 email.
        (
            "printable-bmp",
            ca_conf(
                "default",
                "C = JP\nO = Acme Printable\nOU = 東京\nCN = Root CA\nemailAddress = pki@example.com",
            ),
            "sec1.pem",
        ),
        (
            "pkcs8-rsa",
            ca_conf("utf8only", "CN = Plain RSA Root"),
            "pkcs8.pem",
        ),
        (
            "p384",
            ca_conf("nombstr", "O = Istio\nCN = P-384 Root"),
            "p384.pem",
        ),
    ];
    let id = SpiffeId::istio("cluster.local", "default", "default").unwrap();
    for (what, conf, key) in &cases {
        let root_file = format!("{what}-root.pem");
        let root_cert = openssl_root(d, conf, key, &root_file);
        let issuer = Issuer::new(root_cert.clone(), read_key(&d.join(key))).unwrap();
        let ca = generate::intermediate(
            &IntermediateSpec {
                key_type: KeyType::EcP256,
                ..IntermediateSpec::istio("c1")
            },
            &issuer,
            now,
        )
        .unwrap();
        assert_eq!(
            ca.certificate.issuer_der(),
            root_cert.subject_der(),
            "{what}"
        );
        assert_eq!(
            ca.certificate.authority_key_id(),
            root_cert.subject_key_id(),
            "{what}"
        );
        let leaf = generate::leaf(
            &LeafSpec {
                key_type: KeyType::EcP256,
                ..LeafSpec::istio(id.clone())
            },
            &ca.issuer().unwrap(),
            now,
        )
        .unwrap();
        let root_gen = Generated {
            certificate: root_cert.clone(),
            key: read_key(&d.join(key)),
            cert_pem: std::fs::read_to_string(d.join(&root_file)).unwrap(),
            chain: vec![],
            trust_bundle: vec![],
            clamped: None,
            warnings: vec![],
        };
        openssl_verify_chain(d, &root_gen, &ca, &leaf);
    }

    // What rcgen cannot write is refused before anything is signed.
    let refused = [
        (
            "multi-valued RDN",
            ca_conf("utf8only", "CN = placeholder"),
            vec!["-multivalue-rdn", "-subj", "/O=Istio/CN=Root CA+OU=x"],
        ),
        (
            "repeated OU",
            ca_conf("utf8only", "O = Istio\n0.OU = a\n1.OU = b\nCN = Root CA"),
            vec![],
        ),
        (
            "T61String with Latin-1",
            ca_conf("default", "O = Zürich AG\nCN = Root CA"),
            vec![],
        ),
    ];
    for (what, conf, extra) in &refused {
        write(d, "tmp.cnf", conf.as_bytes());
        let mut args = vec![
            "req",
            "-x509",
            "-new",
            "-key",
            "sec1.pem",
            "-config",
            "tmp.cnf",
            "-utf8",
            "-days",
            "30",
            "-out",
            "refused.pem",
        ];
        args.extend(extra.iter().copied());
        openssl(d, &args);
        let cert = read_cert(&d.join("refused.pem"));
        let e = Issuer::new(cert, read_key(&d.join("sec1.pem"))).unwrap_err();
        assert!(
            matches!(e, GenerateError::UnrepresentableIssuerName { .. }),
            "{what}: {e}"
        );
    }
}

#[test]
fn path_length_is_checked_along_the_whole_chain() {
    // root (pathlen:1) -> A (CA, no pathlen, made by OpenSSL): a further intermediate under A
    // would be the second below the root; refuse it, naming the root. Leaves under A are fine.
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "root.key",
        ],
    );
    openssl(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "a.key",
        ],
    );
    write(
        d,
        "root.cnf",
        ca_conf("utf8only", "CN = Root pathlen 1")
            .replace("CA:true", "CA:true, pathlen:1")
            .as_bytes(),
    );
    openssl(
        d,
        &[
            "req", "-x509", "-new", "-key", "root.key", "-config", "root.cnf", "-days", "30",
            "-out", "root.pem",
        ],
    );
    write(d, "a.cnf", ca_conf("utf8only", "CN = A").as_bytes());
    openssl(
        d,
        &[
            "req", "-new", "-key", "a.key", "-config", "a.cnf", "-out", "a.csr",
        ],
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "a.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            "root.key",
            "-CAcreateserial",
            "-days",
            "20",
            "-extfile",
            "a.cnf",
            "-extensions",
            "ext",
            "-out",
            "a.pem",
        ],
    );
    let a = Issuer::new(read_cert(&d.join("a.pem")), read_key(&d.join("a.key")))
        .unwrap()
        .with_chain(vec![read_cert(&d.join("root.pem"))])
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let e = generate::intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("x")
        },
        &a,
        now,
    )
    .unwrap_err();
    assert!(
        matches!(&e, GenerateError::PathLen { issuer_path_len: 1, depth: 1, subject } if subject == "CN=Root pathlen 1"),
        "{e}"
    );
    let leaf = generate::leaf(
        &LeafSpec {
            key_type: KeyType::EcP256,
            ..LeafSpec::istio(SpiffeId::istio("td", "ns", "sa").unwrap())
        },
        &a,
        now,
    )
    .unwrap();
    assert_eq!(
        leaf.certificate.not_after() - leaf.certificate.not_before(),
        time::Duration::minutes(24 * 60 + 2)
    );
    write(d, "leaf.pem", leaf.cert_pem.as_bytes());
    openssl(
        d,
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "a.pem",
            "leaf.pem",
        ],
    );
}
