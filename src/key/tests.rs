use super::*;

use crate::fixtures::sample as fixture;

fn cert(name: &str) -> Certificate {
    Certificate::from_der(&pem::parse(&fixture(name)).unwrap()[0].der).unwrap()
}

#[test]
fn istio_sample_keys_match_their_certificates() {
    let key = PrivateKey::from_pem(&fixture("ca-key.pem")).unwrap();
    assert_eq!(key.format(), KeyFormat::Pkcs1);
    assert!(key.matches(&cert("ca-cert.pem")));
    assert!(!key.matches(&cert("ca-cert-alt.pem")));
    assert!(matches!(
        key.check_matches(&cert("root-cert.pem")),
        Err(KeyError::Mismatch { .. })
    ));
    let alt = PrivateKey::from_pem(&fixture("ca-key-alt.pem")).unwrap();
    assert!(alt.matches(&cert("ca-cert-alt.pem")));
    // Istio's samples/certs ca-key-alt-2.pem does NOT belong to ca-cert-alt-2.pem (nor to
    // any certificate of the samples): `openssl x509 -modulus` and `openssl rsa -modulus`
    // differ too. meshtrust must say so.
    let alt2 = PrivateKey::from_pem(&fixture("ca-key-alt-2.pem")).unwrap();
    assert_eq!(alt2.format(), KeyFormat::Pkcs8);
    assert!(!alt2.matches(&cert("ca-cert-alt-2.pem")));
}

#[test]
fn pkcs1_is_wrapped_into_pkcs8_that_reads_back() {
    let key = PrivateKey::from_pem(&fixture("ca-key.pem")).unwrap();
    let again = PrivateKey::from_pkcs8_der(&key.pkcs8_der()).unwrap();
    assert!(again.public == key.public);
    assert_eq!(again.algorithm(), key.algorithm());
    // ring accepts it.
    ring::signature::RsaKeyPair::from_pkcs8(&key.pkcs8_der()).unwrap();
}

#[test]
fn no_key_material_in_debug_display_or_errors() {
    let text = fixture("ca-key.pem");
    let key = PrivateKey::from_pem(&text).unwrap();
    let body: String = String::from_utf8(text)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    for shown in [format!("{key:?}"), format!("{key}")] {
        assert!(!shown.contains(&body[..20]), "{shown}");
        assert!(shown.to_lowercase().contains("rsa"), "{shown}");
    }
}

#[test]
fn errors() {
    assert_eq!(
        PrivateKey::from_pem(&fixture("ca-cert.pem")).unwrap_err(),
        KeyError::NoKey
    );
    let two = [fixture("ca-key.pem"), fixture("ca-key-alt.pem")].concat();
    assert_eq!(
        PrivateKey::from_pem(&two).unwrap_err(),
        KeyError::SeveralKeys { count: 2 }
    );
    let e = PrivateKey::from_der(KeyFormat::Pkcs1, &[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap_err();
    assert!(matches!(e, KeyError::Malformed { .. }), "{e:?}");
}

#[test]
fn ring_generated_ec_and_ed25519_keys() {
    let rng = ring::rand::SystemRandom::new();
    let doc = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &rng,
    )
    .unwrap();
    let k = PrivateKey::from_pkcs8_der(doc.as_ref()).unwrap();
    assert_eq!(k.algorithm(), KeyAlgorithm::EcP256);
    let doc = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let k = PrivateKey::from_pkcs8_der(doc.as_ref()).unwrap();
    assert_eq!(k.algorithm(), KeyAlgorithm::Ed25519);
}
