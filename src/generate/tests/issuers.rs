//! Refused specs, issuers loaded from existing CAs, names rebuilt for rcgen, redaction,
//! file layouts and key types.

use super::*;
use crate::istio::{intermediate_files, leaf_files, root_files};

#[test]
fn invalid_specs_are_typed_errors() {
    let bad_root = |f: &dyn Fn(&mut RootSpec)| {
        let mut s = RootSpec {
            key_type: KeyType::EcP256,
            ..RootSpec::istio()
        };
        f(&mut s);
        root(&s, NOW).unwrap_err()
    };
    assert!(matches!(
        bad_root(&|s| s.days = 0),
        GenerateError::InvalidSpec { field: "days", .. }
    ));
    assert!(matches!(
        bad_root(&|s| s.days = u32::MAX),
        GenerateError::InvalidSpec { field: "days", .. }
    ));
    assert!(matches!(
        bad_root(&|s| s.subject = Name::new()),
        GenerateError::InvalidSpec {
            field: "subject",
            ..
        }
    ));
    assert!(matches!(
        bad_root(&|s| s.key_usage = KeyUsage(KeyUsage::DIGITAL_SIGNATURE)),
        GenerateError::InvalidSpec {
            field: "key_usage",
            ..
        }
    ));
    for (attr, value) in [
        (Attribute::Country, "USA"),
        (Attribute::Country, "us"),
        (Attribute::CommonName, &"x".repeat(65) as &str),
        (Attribute::Organization, "tab\there"),
        (Attribute::EmailAddress, "ü@example.com"),
    ] {
        let value = value.to_owned();
        let e = bad_root(&|s| s.subject.set(attr, value.clone()));
        assert!(
            matches!(e, GenerateError::InvalidName { attribute, .. } if attribute == attr),
            "{attr} {value:?}: {e}"
        );
    }
    // 64 characters of a multi-byte script are fine (the limit counts characters).
    root(
        &RootSpec {
            key_type: KeyType::EcP256,
            subject: Name::new().with(Attribute::CommonName, "ü".repeat(64)),
            ..RootSpec::istio()
        },
        NOW,
    )
    .unwrap();

    let r = ec_root();
    let issuer = r.issuer().unwrap();
    let bad_leaf = |f: &dyn Fn(&mut LeafSpec)| {
        let mut s = ec_leaf_spec();
        f(&mut s);
        leaf(&s, &issuer, NOW).unwrap_err()
    };
    assert!(matches!(
        bad_leaf(&|s| s.ttl = Duration::ZERO),
        GenerateError::InvalidSpec { field: "ttl", .. }
    ));
    assert!(matches!(
        bad_leaf(&|s| s.backdate = Duration::seconds(-1)),
        GenerateError::InvalidSpec {
            field: "backdate",
            ..
        }
    ));
    assert!(matches!(
        bad_leaf(&|s| s.san_critical = false),
        GenerateError::InvalidSpec {
            field: "san_critical",
            ..
        }
    ));
    assert!(matches!(
        bad_leaf(&|s| s.dns_names = vec!["bad name\u{7f}".into()]),
        GenerateError::InvalidSpec { .. }
    ));
    // A long TTL works, with a warning.
    let long = leaf(
        &LeafSpec {
            ttl: Duration::days(91),
            ..ec_leaf_spec()
        },
        &issuer,
        NOW,
    )
    .unwrap();
    assert!(matches!(
        long.warnings[..],
        [Warning::LeafTtlAboveIstioMaximum { .. }]
    ));
}

#[test]
fn issuer_checks() {
    let r = ec_root();
    let ca = ec_intermediate(&r, "c");
    let l = leaf(&ec_leaf_spec(), &ca.issuer().unwrap(), NOW).unwrap();
    // A leaf cannot sign.
    let e = Issuer::new(l.certificate.clone(), l.key.clone()).unwrap_err();
    assert!(matches!(e, GenerateError::NotCa { .. }), "{e}");
    // Someone else's key.
    let e = Issuer::new(r.certificate.clone(), ca.key.clone()).unwrap_err();
    assert!(
        matches!(e, GenerateError::Key(KeyError::Mismatch { .. })),
        "{e}"
    );
    // pathlen 0 forbids intermediates.
    let e = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("x")
        },
        &ca.issuer().unwrap(),
        NOW,
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            GenerateError::PathLen {
                issuer_path_len: 0,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("may not sign intermediate"), "{e}");
    // An expired root.
    let e = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("x")
        },
        &r.issuer().unwrap(),
        NOW + Duration::days(3651),
    )
    .unwrap_err();
    assert!(matches!(e, GenerateError::IssuerExpired { .. }), "{e}");
    // A root not valid yet: allowed, with a warning.
    let early = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("x")
        },
        &r.issuer().unwrap(),
        NOW - Duration::hours(1),
    )
    .unwrap();
    assert!(matches!(
        early.warnings[..],
        [Warning::IssuerNotYetValid { .. }]
    ));
    // A chain that does not belong.
    let other = ec_root();
    let e = Issuer::new(ca.certificate.clone(), ca.key.clone())
        .unwrap()
        .with_chain(vec![other.certificate.clone()])
        .unwrap_err();
    assert!(
        matches!(e, GenerateError::BrokenChain { index: 0, .. }),
        "{e}"
    );
    // Without a chain an intermediate has no trust bundle for CA directories.
    let bare = Issuer::new(ca.certificate.clone(), ca.key.clone()).unwrap();
    assert!(bare.trust_bundle().is_empty());
    let l = leaf(&ec_leaf_spec(), &bare, NOW).unwrap();
    assert!(matches!(
        leaf_files(Path::new("/x"), &l),
        Err(GenerateError::NoTrustBundle)
    ));
}

#[test]
fn istio_samples_sign_with_their_pkcs1_keys_and_exact_issuer_names() {
    let now = datetime!(2024-06-01 0:00 UTC);
    // samples/certs ca-cert.pem: C/ST/L/O/CN with PrintableString and UTF8String, no SKI,
    // key in PKCS#1.
    let ca = fixture_cert("ca-cert.pem");
    let key = fixture_key("ca-key.pem");
    assert_eq!(key.format(), crate::key::KeyFormat::Pkcs1);
    let issuer = Issuer::new(ca.clone(), key)
        .unwrap()
        .with_chain(vec![fixture_cert("root-cert.pem")])
        .unwrap();
    let spec = LeafSpec {
        key_type: KeyType::EcP256,
        ..LeafSpec::istio(SpiffeId::istio("trust-domain-foo", "foo", "foo").unwrap())
    };
    let l = leaf(&spec, &issuer, now).unwrap();
    assert_eq!(l.certificate.issuer_der(), ca.subject_der());
    l.certificate.verify_signed_by(&ca).unwrap();
    assert_eq!(l.certificate.authority_key_id(), None);
    assert!(matches!(
        l.warnings[..],
        [Warning::IssuerWithoutKeyId { .. }]
    ));
    // The chain is checked: root-cert-alt did not sign ca-cert.
    let e = Issuer::new(ca, fixture_key("ca-key.pem"))
        .unwrap()
        .with_chain(vec![fixture_cert("root-cert-alt.pem")])
        .unwrap_err();
    assert!(matches!(e, GenerateError::BrokenChain { .. }), "{e}");

    // ca-cert-alt.pem (tools/certs output, L=cluster1, pathlen 0) signs leaves with an AKI
    // but no intermediates.
    let alt = fixture_cert("ca-cert-alt.pem");
    let issuer = Issuer::new(alt.clone(), fixture_key("ca-key-alt.pem"))
        .unwrap()
        .with_chain(vec![fixture_cert("root-cert-alt.pem")])
        .unwrap();
    assert_eq!(
        issuer.trust_bundle(),
        fixture_cert("root-cert-alt.pem").to_pem().as_bytes()
    );
    let l = leaf(&spec, &issuer, now).unwrap();
    assert_eq!(l.certificate.issuer_der(), alt.subject_der());
    assert_eq!(l.certificate.authority_key_id(), alt.subject_key_id());
    let e = intermediate(&IntermediateSpec::istio("x"), &issuer, now).unwrap_err();
    assert!(matches!(e, GenerateError::PathLen { .. }), "{e}");

    // ca-key-alt-2.pem does not belong to ca-cert-alt-2.pem (a defect of Istio's samples).
    let e = Issuer::new(
        fixture_cert("ca-cert-alt-2.pem"),
        fixture_key("ca-key-alt-2.pem"),
    )
    .unwrap_err();
    assert!(
        matches!(e, GenerateError::Key(KeyError::Mismatch { .. })),
        "{e}"
    );
}

/// Signs a throwaway certificate whose SUBJECT is the rebuilt name, to compare its bytes with
/// the original (no key of the original is needed).
fn rebuild(name_der: &[u8]) -> Result<Vec<u8>, GenerateError> {
    let dn = name::rcgen_from_der(name_der)?;
    let key = generate_key(KeyType::EcP256)?;
    let signer = Signer::new(&key)?;
    let p = params(
        dn,
        NOW,
        NOW + Duration::days(1),
        vec![ext::basic_constraints(true, None)],
    )?;
    let der = p.self_signed(&signer).unwrap().der().to_vec();
    Ok(Certificate::from_der(&der).unwrap().subject_der().to_vec())
}

#[test]
fn existing_names_are_rebuilt_byte_for_byte() {
    for f in [
        "root-cert.pem",
        "root-cert-alt.pem",
        "ca-cert.pem",
        "ca-cert-alt.pem",
        "ca-cert-alt-2.pem",
    ] {
        let c = fixture_cert(f);
        assert_eq!(rebuild(c.subject_der()).unwrap(), c.subject_der(), "{f}");
    }
    let seed = std::fs::read(format!(
        "{}/tests/fixtures/seeds/seed002-combined-root.pem",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for b in pem::parse(&seed).unwrap() {
        let c = Certificate::from_der(&b.der).unwrap();
        assert_eq!(rebuild(c.subject_der()).unwrap(), c.subject_der());
    }
    // BMPString and UniversalString values survive too.
    let atv = |tag: u8, v: &[u8]| {
        let mut seq = vec![0x06, 0x03, 0x55, 0x04, 0x03];
        seq.extend(crate::key::tlv(tag, v));
        crate::key::tlv(0x31, &crate::key::tlv(0x30, &seq))
    };
    let bmp = crate::key::tlv(0x30, &atv(0x1e, &[0x00, b'R', 0x00, 0xfc]));
    assert_eq!(rebuild(&bmp).unwrap(), bmp);
    let uni = crate::key::tlv(0x30, &atv(0x1c, &[0, 0, 0, b'R']));
    assert_eq!(rebuild(&uni).unwrap(), uni);
}

#[test]
fn names_rcgen_cannot_write_are_refused() {
    let atv = |oid: u8, tag: u8, v: &str| {
        let mut seq = vec![0x06, 0x03, 0x55, 0x04, oid];
        seq.extend(crate::key::tlv(tag, v.as_bytes()));
        crate::key::tlv(0x30, &seq)
    };
    // Multi-valued RDN: O=a + CN=b in one SET.
    let multi = crate::key::tlv(
        0x30,
        &crate::key::tlv(0x31, &[atv(0x0a, 0x0c, "a"), atv(0x03, 0x0c, "b")].concat()),
    );
    // Two OUs.
    let twice = crate::key::tlv(
        0x30,
        &[
            crate::key::tlv(0x31, &atv(0x0b, 0x0c, "a")),
            crate::key::tlv(0x31, &atv(0x0b, 0x0c, "b")),
        ]
        .concat(),
    );
    // NumericString, and a PrintableString holding '@' (outside its alphabet).
    let numeric = crate::key::tlv(0x30, &crate::key::tlv(0x31, &atv(0x05, 0x12, "123")));
    let printable_at = crate::key::tlv(0x30, &crate::key::tlv(0x31, &atv(0x03, 0x13, "a@b")));
    for (what, der) in [
        ("multi-valued", multi),
        ("appears twice", twice),
        ("0x12", numeric),
        ("rcgen refuses", printable_at),
    ] {
        let e = rebuild(&der).unwrap_err();
        assert!(
            matches!(&e, GenerateError::UnrepresentableIssuerName { reason } if reason.contains(what)),
            "{what}: {e}"
        );
    }
}

#[test]
fn debug_and_errors_never_show_key_material() {
    let r = ec_root();
    let pem = r.key_pem();
    let body: String = pem.lines().nth(1).unwrap().to_owned();
    for shown in [
        format!("{r:?}"),
        format!("{:?}", r.issuer().unwrap()),
        format!("{:?}", root_files(Path::new("d"), &r)),
    ] {
        assert!(!shown.contains(&body[..24]), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(
        PrivateKey::from_pem(pem.as_bytes()).unwrap().algorithm(),
        r.key.algorithm()
    );
}

#[test]
fn file_layouts_are_istios() {
    let r = ec_root();
    let ca = ec_intermediate(&r, "cluster1");
    let out = Path::new("/out");
    let rf = root_files(out, &r);
    assert_eq!(
        rf.iter()
            .map(|f| (f.path().to_owned(), f.mode()))
            .collect::<Vec<_>>(),
        [
            (out.join("root-cert.pem"), 0o644),
            (out.join("root-key.pem"), 0o600)
        ]
    );
    let cf = intermediate_files(out, "cluster1", &ca).unwrap();
    let get = |n: &str| {
        cf.iter()
            .find(|f| f.path() == out.join("cluster1").join(n))
            .unwrap()
    };
    assert_eq!(get("ca-cert.pem").contents(), ca.cert_pem.as_bytes());
    assert!(get("ca-key.pem").is_secret());
    assert_eq!(
        get("cert-chain.pem").contents(),
        [ca.cert_pem.as_bytes(), r.cert_pem.as_bytes()].concat()
    );
    assert_eq!(get("root-cert.pem").contents(), r.cert_pem.as_bytes());
    assert_eq!(cf.len(), 4);
    // A trust bundle given byte for byte (two roots, CRLF) is copied as is.
    let other = ec_root();
    let bundle = [r.cert_pem.as_bytes(), other.cert_pem.as_bytes()]
        .concat()
        .iter()
        .flat_map(|&b| {
            if b == b'\n' {
                vec![b'\r', b'\n']
            } else {
                vec![b]
            }
        })
        .collect::<Vec<u8>>();
    let issuer = r.issuer().unwrap().with_trust_bundle(bundle.clone());
    let ca2 = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("c2")
        },
        &issuer,
        NOW,
    )
    .unwrap();
    let cf2 = intermediate_files(out, "c2", &ca2).unwrap();
    assert_eq!(cf2[3].contents(), bundle);
    for bad in ["", ".", "..", "a/b", "/abs", "x\n"] {
        assert!(
            matches!(
                intermediate_files(out, bad, &ca),
                Err(GenerateError::InvalidClusterName { .. })
            ),
            "{bad:?}"
        );
    }
    let l = leaf(&ec_leaf_spec(), &ca.issuer().unwrap(), NOW).unwrap();
    let lf = leaf_files(out, &l).unwrap();
    assert_eq!(
        lf.iter()
            .map(|f| f.path().file_name().unwrap().to_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        [
            "cert-chain.pem",
            "key.pem",
            "root-cert.pem",
            "workload-cert.pem"
        ]
    );
    assert_eq!(
        lf[0].contents(),
        [
            l.cert_pem.as_bytes(),
            ca.cert_pem.as_bytes(),
            r.cert_pem.as_bytes()
        ]
        .concat()
    );
}

#[test]
fn key_types_parse_and_name() {
    for k in KeyType::ALL {
        assert_eq!(k.name().parse::<KeyType>().unwrap(), k);
    }
    assert!("rsa1024".parse::<KeyType>().is_err());
}

#[cfg(feature = "rsa-keygen")]
#[test]
fn rsa_keys_have_the_requested_size_and_sign_sha256() {
    for (k, bits) in [(KeyType::Rsa2048, 2048), (KeyType::Rsa3072, 3072)] {
        let key = generate_key(k).unwrap();
        assert_eq!(
            key.algorithm(),
            crate::signature::KeyAlgorithm::Rsa { bits }
        );
        let r = root(
            &RootSpec {
                key_type: k,
                ..RootSpec::istio()
            },
            NOW,
        )
        .unwrap();
        assert_eq!(
            r.certificate.signature_algorithm(),
            &crate::signature::SignatureAlgorithm::RsaPkcs1(crate::signature::Hash::Sha256)
        );
    }
}

#[cfg(not(feature = "rsa-keygen"))]
#[test]
fn rsa_without_the_feature_is_a_typed_error_naming_it() {
    for k in [KeyType::Rsa2048, KeyType::Rsa3072, KeyType::Rsa4096] {
        assert!(!k.available());
        let e = generate_key(k).unwrap_err();
        assert_eq!(e, GenerateError::RsaKeygenUnavailable { key_type: k });
        assert!(e.to_string().contains("rsa-keygen"), "{e}");
        assert!(matches!(
            root(&RootSpec::istio(), NOW),
            Err(GenerateError::RsaKeygenUnavailable { .. })
        ));
    }
    // Existing RSA CAs still sign with ring alone.
    let now = datetime!(2024-06-01 0:00 UTC);
    let issuer = Issuer::new(
        fixture_cert("ca-cert-alt.pem"),
        fixture_key("ca-key-alt.pem"),
    )
    .unwrap();
    leaf(&ec_leaf_spec(), &issuer, now).unwrap();
}

/// The certificate with its subject field replaced by `subject` (signature left stale: only
/// the fields matter here).
fn with_subject(cert: &Certificate, subject: &[u8]) -> Certificate {
    use crate::derwalk::Walker;
    let tlvs = |der: &[u8]| -> Vec<Vec<u8>> {
        let mut w = Walker::new(der);
        let seq = w.any().unwrap();
        let mut inner = seq.walker();
        let mut out = Vec::new();
        while !inner.is_empty() {
            out.push(der[inner.any().unwrap().span()].to_vec());
        }
        out
    };
    let mut fields = tlvs(cert.tbs_der());
    fields[5] = subject.to_vec();
    let outer = tlvs(cert.der());
    let tbs = crate::key::tlv(0x30, &fields.concat());
    Certificate::from_der(&crate::key::tlv(
        0x30,
        &[tbs, outer[1].clone(), outer[2].clone()].concat(),
    ))
    .unwrap()
}

#[test]
fn an_issuer_name_rcgen_would_re_encode_is_caught_after_signing() {
    // CN with a non-minimally encoded OID (2.5.4.3 as 55 80 04 03): the name parses and maps to
    // commonName, but rcgen writes 55 04 03, so the signed issuer field would differ.
    let mut atv = vec![0x06, 0x04, 0x55, 0x80, 0x04, 0x03];
    atv.extend(crate::key::tlv(0x0c, b"Root CA"));
    let odd = crate::key::tlv(0x30, &crate::key::tlv(0x31, &crate::key::tlv(0x30, &atv)));
    assert_ne!(rebuild(&odd).unwrap(), odd);

    let r = ec_root();
    let patched = with_subject(&r.certificate, &odd);
    assert_eq!(patched.subject_der(), odd);
    let issuer = Issuer::new(patched, r.key.clone()).unwrap();
    for result in [
        intermediate(
            &IntermediateSpec {
                key_type: KeyType::EcP256,
                ..IntermediateSpec::istio("c")
            },
            &issuer,
            NOW,
        ),
        leaf(&ec_leaf_spec(), &issuer, NOW),
    ] {
        let e = result.unwrap_err();
        assert!(
            matches!(&e, GenerateError::IssuerNameMismatch { expected, .. } if expected.contains("55800403")),
            "{e}"
        );
    }
}
