use super::*;

use crate::fixtures::sample;

#[test]
fn kubectl_yaml_and_json() {
    let b64 = crate::b64::encode(&sample("root-cert.pem"));
    let yaml = format!(
        "apiVersion: v1\ndata:\n  ca-cert.pem: {}\n  root-cert.pem: {b64}\nkind: Secret\nmetadata:\n  name: cacerts\n  namespace: istio-system\ntype: Opaque\n",
        crate::b64::encode(&sample("ca-cert.pem"))
    );
    let s = parse_manifest(yaml.as_bytes()).unwrap();
    assert_eq!(s.file(ROOT_CERT), Some(&sample("root-cert.pem")[..]));
    assert_eq!(
        (s.kind, s.layout, s.form),
        (SecretKind::PluggedIn, Layout::Istio, SecretForm::Yaml)
    );
    let json = format!(
        r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"cacerts","namespace":"istio-system"}},"data":{{"root-cert.pem":"{b64}"}}}}"#
    );
    let s = parse_manifest(json.as_bytes()).unwrap();
    assert_eq!(s.form, SecretForm::Json);
    assert_eq!(s.root_bundle().unwrap().len(), 1);
}

#[test]
fn errors_name_the_line() {
    let e = parse_manifest(
        b"kind: Secret\nmetadata:\n  name: cacerts\ndata:\n  ca-cert.pem: not*base64\n",
    )
    .unwrap_err();
    assert!(matches!(e, ReadError::Base64 { line: 5, .. }), "{e:?}");
    let e = parse_manifest(b"kind: Secret\ndata: [\n").unwrap_err();
    assert!(matches!(e, ReadError::Syntax { .. }), "{e:?}");
    let e = parse_manifest(b"kind: ConfigMap\n").unwrap_err();
    assert!(matches!(e, ReadError::NotASecret { .. }), "{e:?}");
    let e = parse_manifest(b"{\"kind\": \"Secret\", \"data\": {\"x\": \"\"}}").unwrap_err();
    assert!(matches!(e, ReadError::NotASecret { .. }), "{e:?}");
    let deep = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse_manifest(deep.as_bytes()).is_err());
}

#[test]
fn self_signed_and_tls_layouts() {
    let s = CaSecret::from_files(
        "istio-ca-secret",
        "istio-system",
        SecretForm::Memory,
        [
            (CA_CERT, sample("root-cert.pem")),
            (CA_KEY, vec![]),
            (ROOT_CERT, sample("root-cert.pem")),
            (CERT_CHAIN, vec![]),
            (KEY, vec![]),
        ],
    );
    assert_eq!(s.kind, SecretKind::SelfSigned);
    let t = CaSecret::from_files(
        "cacerts",
        "istio-system",
        SecretForm::Memory,
        [
            (TLS_CRT, sample("ca-cert.pem")),
            (TLS_KEY, sample("ca-key.pem")),
            (CA_CRT, sample("root-cert.pem")),
        ],
    );
    assert_eq!(t.layout, Layout::KubernetesTls);
    assert_eq!(t.cert_chain().unwrap().len(), 2);
    assert!(t.ca_key().unwrap().matches(&t.ca_cert().unwrap()));
    assert!(!format!("{t:?}").contains("BEGIN"));
}
