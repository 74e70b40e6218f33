use super::*;
use crate::cert::{BasicConstraints, Role};
use crate::cert::{ExtendedKeyUsage, SpiffeId};
use crate::key::KeyError;
use crate::pem;
use time::macros::datetime;

mod issuers;

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

/// A root with every field set away from Istio's defaults.
fn custom_root() -> Generated {
    let subject = Name::new()
        .with(Attribute::Country, "DE")
        .with(Attribute::Organization, "Beispiel GmbH")
        .with(Attribute::OrganizationalUnit, "Plattform")
        .with(Attribute::CommonName, "Wurzel-CA ü")
        .with(Attribute::EmailAddress, "pki@example.com");
    root(
        &RootSpec {
            subject,
            key_type: KeyType::EcP384,
            days: 30,
            key_usage: KeyUsage(KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN),
            path_len: Some(2),
        },
        NOW,
    )
    .unwrap()
}

#[test]
fn every_root_field_is_overridable() {
    let r = custom_root();
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
}

#[test]
fn every_intermediate_and_leaf_field_is_overridable() {
    let r = custom_root();
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
