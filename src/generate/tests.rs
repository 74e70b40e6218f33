use super::*;
use crate::cert::{BasicConstraints, Role};
use crate::istio::{intermediate_files, leaf_files, root_files};
use crate::pem;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

fn ec_root() -> Generated {
    root(
        &RootSpec {
            key_type: KeyType::EcP256,
            ..RootSpec::istio()
        },
        NOW,
    )
    .unwrap()
}

fn ec_intermediate(root: &Generated, cluster: &str) -> Generated {
    intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio(cluster)
        },
        &root.issuer().unwrap(),
        NOW,
    )
    .unwrap()
}

fn ec_leaf_spec() -> LeafSpec {
    LeafSpec {
        key_type: KeyType::EcP256,
        ..LeafSpec::istio(SpiffeId::istio("cluster.local", "default", "sleep").unwrap())
    }
}

fn ext_summary(c: &Certificate) -> Vec<(&'static str, bool)> {
    c.extensions()
        .map(|e| (e.name.unwrap_or("?"), e.critical))
        .collect()
}

use crate::fixtures::{sample_cert as fixture_cert, sample_key as fixture_key};

fn sha1(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, b)
        .as_ref()
        .to_vec()
}

/// The exact DER of `O=Istio, CN=<cn>[, L=<l>]` with UTF8Strings, as OpenSSL writes it.
fn istio_name_der(cn: &str, l: Option<&str>) -> Vec<u8> {
    let atv = |oid: u8, v: &str| {
        let mut seq = vec![0x06, 0x03, 0x55, 0x04, oid];
        seq.extend(crate::key::tlv(0x0c, v.as_bytes()));
        crate::key::tlv(0x31, &crate::key::tlv(0x30, &seq))
    };
    let mut body = atv(0x0a, "Istio");
    body.extend(atv(0x03, cn));
    if let Some(l) = l {
        body.extend(atv(0x07, l));
    }
    crate::key::tlv(0x30, &body)
}

#[test]
fn root_has_istio_fields() {
    let r = ec_root();
    let c = &r.certificate;
    assert_eq!(c.role(), Role::Root);
    assert_eq!(c.version(), 3);
    assert_eq!(c.subject_der(), istio_name_der("Root CA", None));
    assert_eq!(c.issuer_der(), c.subject_der());
    assert_eq!(c.not_before(), NOW);
    assert_eq!(c.not_after(), NOW + Duration::days(3650));
    assert_eq!(
        ext_summary(c),
        [
            ("subjectKeyIdentifier", false),
            ("basicConstraints", true),
            ("keyUsage", true)
        ]
    );
    assert_eq!(
        c.basic_constraints(),
        Some(BasicConstraints {
            ca: true,
            path_len: None
        })
    );
    assert_eq!(c.key_usage(), Some(KeyUsage(ISTIO_CA_KEY_USAGE)));
    assert_eq!(c.subject_key_id().unwrap(), sha1(c.public_key()));
    assert_eq!(c.authority_key_id(), None);
    assert!(r.chain.is_empty());
    assert_eq!(r.trust_bundle, r.cert_pem.as_bytes());
    assert_eq!(r.cert_pem, c.to_pem());
    assert!(r.key.matches(c));
    assert!(r.clamped.is_none() && r.warnings.is_empty());
}

#[test]
fn now_with_nanoseconds_is_truncated_to_what_the_certificate_holds() {
    let r = root(
        &RootSpec {
            key_type: KeyType::EcP256,
            ..RootSpec::istio()
        },
        NOW + Duration::nanoseconds(999_999_999),
    )
    .unwrap();
    assert_eq!(r.certificate.not_before(), NOW);
}

#[test]
fn intermediate_has_istio_fields_and_links_to_the_root() {
    let r = ec_root();
    let ca = ec_intermediate(&r, "cluster1");
    let c = &ca.certificate;
    assert_eq!(c.role(), Role::Intermediate);
    assert_eq!(
        c.subject_der(),
        istio_name_der("Intermediate CA", Some("cluster1"))
    );
    assert_eq!(c.issuer_der(), r.certificate.subject_der());
    assert_eq!(c.not_before(), NOW);
    assert_eq!(c.not_after(), NOW + Duration::days(730));
    assert_eq!(
        ext_summary(c),
        [
            ("subjectKeyIdentifier", false),
            ("basicConstraints", true),
            ("keyUsage", true),
            ("subjectAltName", false),
            ("authorityKeyIdentifier", false)
        ]
    );
    assert_eq!(
        c.basic_constraints(),
        Some(BasicConstraints {
            ca: true,
            path_len: Some(0)
        })
    );
    assert_eq!(c.san_dns_names(), ["istiod.istio-system.svc"]);
    assert_eq!(c.authority_key_id(), r.certificate.subject_key_id());
    assert_eq!(c.subject_key_id().unwrap(), sha1(c.public_key()));
    c.verify_signed_by(&r.certificate).unwrap();
    assert_eq!(ca.chain, std::slice::from_ref(&r.certificate));
    assert_eq!(ca.trust_bundle, r.cert_pem.as_bytes());
    assert_ne!(c.serial(), r.certificate.serial());
}

#[test]
fn intermediate_is_clamped_to_the_root_and_says_so() {
    let r = root(
        &RootSpec {
            key_type: KeyType::EcP256,
            days: 100,
            ..RootSpec::istio()
        },
        NOW,
    )
    .unwrap();
    let ca = ec_intermediate(&r, "c");
    assert_eq!(ca.certificate.not_after(), r.certificate.not_after());
    let clamp = ca.clamped.clone().unwrap();
    assert_eq!(clamp.requested_not_after, NOW + Duration::days(730));
    assert_eq!(clamp.not_after, NOW + Duration::days(100));
    assert_eq!(clamp.limited_by, "CN=Root CA,O=Istio");
    assert!(
        clamp.to_string().contains("2026-06-09T12:00:00Z"),
        "{clamp}"
    );
    // Exactly at the limit: no clamp.
    let exact = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            days: 100,
            ..IntermediateSpec::istio("c")
        },
        &r.issuer().unwrap(),
        NOW,
    )
    .unwrap();
    assert!(exact.clamped.is_none());
    assert_eq!(exact.certificate.not_after(), r.certificate.not_after());
}

#[test]
fn leaf_is_what_istiod_signs() {
    let r = ec_root();
    let ca = ec_intermediate(&r, "cluster1");
    let l = leaf(&ec_leaf_spec(), &ca.issuer().unwrap(), NOW).unwrap();
    let c = &l.certificate;
    assert_eq!(c.role(), Role::Leaf);
    assert_eq!(c.subject_der(), [0x30, 0x00]);
    assert_eq!(c.subject(), "");
    assert_eq!(c.not_before(), NOW - Duration::minutes(2));
    assert_eq!(c.not_after(), NOW + Duration::hours(24));
    assert_eq!(
        ext_summary(c),
        [
            ("keyUsage", true),
            ("extendedKeyUsage", false),
            ("basicConstraints", true),
            ("authorityKeyIdentifier", false),
            ("subjectAltName", true)
        ]
    );
    assert_eq!(
        c.basic_constraints(),
        Some(BasicConstraints {
            ca: false,
            path_len: None
        })
    );
    assert_eq!(c.key_usage(), Some(KeyUsage(ISTIO_LEAF_KEY_USAGE)));
    assert_eq!(
        c.extended_key_usage().unwrap(),
        [ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth]
    );
    assert_eq!(c.san_uris(), ["spiffe://cluster.local/ns/default/sa/sleep"]);
    assert_eq!(c.authority_key_id(), ca.certificate.subject_key_id());
    assert_eq!(c.subject_key_id(), None);
    c.verify_signed_by(&ca.certificate).unwrap();
    assert_eq!(l.chain, [ca.certificate.clone(), r.certificate.clone()]);
    assert_eq!(
        l.cert_chain_pem(),
        [l.cert_pem.clone(), ca.cert_pem.clone(), r.cert_pem.clone()].concat()
    );
}

#[test]
fn leaf_ttl_is_capped_by_the_issuer_chain() {
    let r = ec_root();
    // An intermediate that expires in 10 hours.
    let ca = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            days: 1,
            ..IntermediateSpec::istio("c")
        },
        &r.issuer().unwrap(),
        NOW - Duration::hours(14),
    )
    .unwrap();
    let issuer = ca.issuer().unwrap();
    assert_eq!(issuer.first_expiring(), &ca.certificate);
    let l = leaf(&ec_leaf_spec(), &issuer, NOW).unwrap();
    assert_eq!(l.certificate.not_after(), NOW + Duration::hours(10));
    let clamp = l.clamped.unwrap();
    assert_eq!(clamp.requested_not_after, NOW + Duration::hours(24));
    assert_eq!(clamp.limited_by, "L=c,CN=Intermediate CA,O=Istio");
    // A short TTL is not clamped.
    let short = leaf(
        &LeafSpec {
            ttl: Duration::hours(1),
            ..ec_leaf_spec()
        },
        &issuer,
        NOW,
    )
    .unwrap();
    assert!(short.clamped.is_none());
    assert_eq!(short.certificate.not_after(), NOW + Duration::hours(1));
    // Past the intermediate's end: refused.
    let e = leaf(&ec_leaf_spec(), &issuer, NOW + Duration::hours(10)).unwrap_err();
    assert!(matches!(e, GenerateError::IssuerExpired { .. }), "{e}");
}

#[test]
fn serials_are_positive_128_bit_and_distinct() {
    let r = ec_root();
    let issuer = r.issuer().unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut top_bit_set = 0;
    for _ in 0..64 {
        let l = leaf(&ec_leaf_spec(), &issuer, NOW).unwrap();
        let s = l.certificate.serial().to_vec();
        // DER INTEGER content: positive (sign bit clear), at most 16 value bytes + 0x00 pad.
        assert!(s[0] & 0x80 == 0, "negative serial {s:02x?}");
        assert!(s.len() <= 17 && !s.is_empty(), "{s:02x?}");
        if s.len() == 17 {
            assert_eq!(s[0], 0);
            assert!(s[1] & 0x80 != 0, "non-minimal {s:02x?}");
            top_bit_set += 1;
        }
        assert!(s.iter().any(|&b| b != 0));
        assert!(seen.insert(s), "duplicate serial");
    }
    // The full 128 bits are random: the top bit is set in about half of them (not cleared,
    // as a 127-bit generator would). P(no top bit in 64) = 2^-64.
    assert!(top_bit_set > 0);
}

#[test]
fn every_field_is_overridable() {
    let subject = Name::new()
        .with(Attribute::Country, "DE")
        .with(Attribute::Organization, "Beispiel GmbH")
        .with(Attribute::OrganizationalUnit, "Plattform")
        .with(Attribute::CommonName, "Wurzel-CA ü")
        .with(Attribute::EmailAddress, "pki@example.com");
    let r = root(
        &RootSpec {
            subject,
            key_type: KeyType::EcP384,
            days: 30,
            key_usage: KeyUsage(KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN),
            path_len: Some(2),
        },
        NOW,
    )
    .unwrap();
    let c = &r.certificate;
    let subject = c.subject();
    for part in ["CN=Wurzel-CA ü", "OU=Plattform", "O=Beispiel GmbH", "C=DE"] {
        assert!(subject.contains(part), "{subject}");
    }
    // String types: C PrintableString, emailAddress IA5String, the rest UTF8String.
    let tags: Vec<u8> = {
        let d = c.subject_der();
        let mut w = crate::derwalk::Walker::new(d);
        let seq = w.any().unwrap();
        let mut rdns = seq.walker();
        let mut tags = Vec::new();
        while !rdns.is_empty() {
            let set = rdns.any().unwrap();
            let atv = set.walker().any().unwrap();
            let mut a = atv.walker();
            a.any().unwrap();
            tags.push(a.any().unwrap().tag);
        }
        tags
    };
    assert_eq!(tags, [0x13, 0x0c, 0x0c, 0x0c, 0x16]);
    assert_eq!(c.key_algorithm(), crate::signature::KeyAlgorithm::EcP384);
    assert_eq!(
        c.signature_algorithm(),
        &crate::signature::SignatureAlgorithm::Ecdsa(crate::signature::Hash::Sha384)
    );
    assert_eq!(c.not_after(), NOW + Duration::days(30));
    assert_eq!(
        c.key_usage(),
        Some(KeyUsage(KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN))
    );
    assert_eq!(
        c.basic_constraints(),
        Some(BasicConstraints {
            ca: true,
            path_len: Some(2)
        })
    );

    // An intermediate with pathlen 1 and no SAN under it; then one more level.
    let ca = intermediate(
        &IntermediateSpec {
            subject: Name::new().with(Attribute::CommonName, "Tier 1"),
            key_type: KeyType::Ed25519,
            days: 10,
            key_usage: KeyUsage(KeyUsage::KEY_CERT_SIGN),
            path_len: Some(1),
            dns_names: vec![],
        },
        &r.issuer().unwrap(),
        NOW,
    )
    .unwrap();
    assert!(ca.certificate.san_dns_names().is_empty());
    assert!(
        !ext_summary(&ca.certificate)
            .iter()
            .any(|(n, _)| *n == "subjectAltName")
    );
    let ca2 = intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("deep")
        },
        &ca.issuer().unwrap(),
        NOW,
    )
    .unwrap();
    assert_eq!(ca2.chain.len(), 2);
    // pathlen 1 -> 0 is fine; pathlen 1 -> 1 or none is not.
    for bad in [None, Some(1)] {
        let e = intermediate(
            &IntermediateSpec {
                key_type: KeyType::EcP256,
                path_len: bad,
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
                    issuer_path_len: 1,
                    ..
                }
            ),
            "{e}"
        );
    }

    // A leaf with a subject, DNS names, non-critical SAN, other EKU, custom lifetimes.
    let l = leaf(
        &LeafSpec {
            spiffe_id: "spiffe://example.org/workload".parse().unwrap(),
            dns_names: vec!["svc.example.org".into()],
            subject: Name::new().with(Attribute::CommonName, "svc"),
            san_critical: false,
            key_type: KeyType::EcP384,
            ttl: Duration::hours(2),
            backdate: Duration::ZERO,
            key_usage: KeyUsage(KeyUsage::DIGITAL_SIGNATURE),
            extended_key_usage: vec![ExtendedKeyUsage::Other("1.3.6.1.5.5.7.3.4".into())],
        },
        &ca2.issuer().unwrap(),
        NOW,
    )
    .unwrap();
    let lc = &l.certificate;
    assert_eq!(lc.subject(), "CN=svc");
    assert_eq!(lc.not_before(), NOW);
    assert_eq!(lc.not_after(), NOW + Duration::hours(2));
    assert_eq!(lc.san_dns_names(), ["svc.example.org"]);
    assert_eq!(
        lc.extended_key_usage().unwrap(),
        [ExtendedKeyUsage::Other("1.3.6.1.5.5.7.3.4".into())]
    );
    assert!(
        ext_summary(lc).contains(&("subjectAltName", false)),
        "{:?}",
        ext_summary(lc)
    );
    assert_eq!(l.chain.len(), 3);
}

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
