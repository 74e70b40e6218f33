use super::*;

use crate::fixtures::sample_cert as first_cert;

#[test]
fn istio_sample_root() {
    let root = first_cert("root-cert.pem");
    assert_eq!(root.role(), Role::Root);
    assert!(root.is_ca());
    assert!(matches!(root.key_algorithm(), KeyAlgorithm::Rsa { .. }));
    assert!(root.subject().contains("O=Istio"), "{}", root.subject());
    assert_eq!(root.subject(), root.issuer());
    assert!(root.not_before() < root.not_after());
}

#[test]
fn istio_sample_intermediate_and_leaf() {
    let root = first_cert("root-cert.pem");
    let ca = first_cert("ca-cert.pem");
    assert_eq!(ca.role(), Role::Intermediate);
    ca.verify_signed_by(&root).unwrap();
    assert_eq!(ca.issuer_der(), root.subject_der());
    let alt_root = first_cert("root-cert-alt.pem");
    assert_eq!(
        ca.verify_signed_by(&alt_root),
        Err(SignatureError::BadSignature)
    );

    let leaf = first_cert("leaf-workload-foo-cert.pem");
    assert_eq!(leaf.role(), Role::Leaf);
    assert_eq!(leaf.subject(), "");
    let ids = leaf.spiffe_ids();
    assert_eq!(ids.len(), 1, "{:?}", leaf.san_uris());
    assert_eq!(ids[0].trust_domain(), "trust-domain-foo");
}

#[test]
fn intermediate_cluster1_extensions() {
    let ca = first_cert("ca-cert-alt.pem");
    assert_eq!(
        ca.basic_constraints(),
        Some(BasicConstraints {
            ca: true,
            path_len: Some(0)
        })
    );
    assert!(ca.key_usage().unwrap().contains(KeyUsage::KEY_CERT_SIGN));
    assert!(ca.subject().contains("L=cluster1"), "{}", ca.subject());
    assert_eq!(ca.san_dns_names(), ["istiod.istio-system.svc"]);
    let root = first_cert("root-cert-alt.pem");
    assert_eq!(ca.authority_key_id(), root.subject_key_id());
    assert!(ca.subject_key_id().is_some());
    assert!(ca.unhandled_critical_extensions().is_empty());
}

#[test]
fn malformed_inputs_are_errors_not_panics() {
    let der = first_cert("root-cert.pem").der().to_vec();
    for cut in [0, 1, 2, 10, 100, der.len() - 1] {
        assert!(Certificate::from_der(&der[..cut]).is_err(), "cut {cut}");
    }
    let mut extra = der.clone();
    extra.push(0);
    assert!(Certificate::from_der(&extra).is_err());
    // Flip every byte in turn: never a panic.
    for i in 0..der.len() {
        let mut m = der.clone();
        m[i] ^= 0xff;
        let _ = Certificate::from_der(&m).map(|c| (c.role(), c.subject().len()));
    }
}

#[test]
fn spiffe_ids() {
    for bad in [
        "http://x/ns/a/sa/b",
        "spiffe://",
        "spiffe:///ns/a",
        "spiffe://td/ns/a/",
        "spiffe://td/./a",
        "spiffe://td:8080/a",
        "spiffe://user@td/a",
        "spiffe://td/a?q",
        "spiffe://td/a#f",
    ] {
        assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
    }
    let id = SpiffeId::istio("td", "ns1", "sa1").unwrap();
    assert_eq!(id.to_string(), "spiffe://td/ns/ns1/sa/sa1");
    let other: SpiffeId = "spiffe://td/workload".parse().unwrap();
    assert_eq!(other.namespace(), None);
}
