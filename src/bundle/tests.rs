use super::*;

fn fixture(name: &str) -> Bundle {
    let p = format!(
        "{}/tests/fixtures/istio-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    Bundle::parse_strict(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn combined_files_of_istio_integration_test() {
    let a = fixture("root-cert.pem");
    let b = fixture("root-cert-alt.pem");
    let ab = fixture("root-cert-combined.pem");
    let abb = fixture("root-cert-combined-2.pem");
    let fa = a.entries()[0].cert.fingerprint();
    let fb = b.entries()[0].cert.fingerprint();
    let order: Vec<_> = abb
        .dedup()
        .certificates()
        .map(Certificate::fingerprint)
        .collect();
    assert_eq!(order, [fa, fb]);
    assert_eq!(abb.dedup().bytes(), ab.bytes());
    let d = diff(&ab, &abb);
    assert!(d.bytes_changed && !d.trust_set_changed && !d.reordered);
    use crate::istio::behaviour::{RootChange, root_change};
    let (v129, v130) = (
        crate::istio::IstioVersion::new(1, 29, 0),
        crate::istio::IstioVersion::new(1, 30, 0),
    );
    assert_eq!(
        root_change(v129, true, ab.bytes(), abb.bytes()),
        RootChange::Accepted
    );
    assert_eq!(d.duplicates.len(), 1);
    assert_eq!(
        (
            d.duplicates[0].sha256,
            d.duplicates[0].count,
            d.duplicates[0].old_count
        ),
        (fb, 2, 1)
    );
    // Rebuilding A+B+B from A+B with the deliberate duplicate gives Istio's exact bytes.
    assert_eq!(ab.with_last_duplicated().unwrap().bytes(), abb.bytes());
    // Reordered B+A is refused by the containment rule, though the sets are equal.
    let ba = b.append(&a);
    let d = diff(&ab, &ba);
    assert!(d.reordered && !d.trust_set_changed);
    assert_ne!(
        root_change(v129, true, ab.bytes(), ba.bytes()),
        RootChange::Accepted
    );
    assert_eq!(
        root_change(v130, true, ab.bytes(), ba.bytes()),
        RootChange::Accepted
    );
    // Dropping A leaves B, which A+B+B contains.
    assert_eq!(
        root_change(v129, true, abb.bytes(), b.bytes()),
        RootChange::Accepted
    );
}

#[test]
fn append_keeps_prefix_and_adds_newline_only_when_needed() {
    let ab = fixture("root-cert-combined.pem");
    assert!(!ab.bytes().ends_with(b"\n"));
    let b = fixture("root-cert-alt.pem");
    let abb = ab.append(&b);
    assert!(abb.bytes().starts_with(ab.bytes()));
    assert_eq!(abb.bytes()[ab.bytes().len()], b'\n');
    assert_eq!(abb.len(), 3);
    // Spans and lines stay right: re-parsing gives the same entries.
    let reparsed = Bundle::parse(abb.bytes()).unwrap();
    for (x, y) in abb.entries().iter().zip(reparsed.entries()) {
        assert_eq!(
            (x.span.clone(), x.begin_line, x.end_line, x.block),
            (y.span.clone(), y.begin_line, y.end_line, y.block)
        );
    }
    let a = fixture("root-cert.pem");
    let aa = a.append(&a);
    assert_eq!(aa.bytes(), [a.bytes(), a.bytes()].concat());
}

#[test]
fn dedup_rebases_spans_and_keeps_other_blocks() {
    let a = fixture("root-cert.pem");
    let b = fixture("root-cert-alt.pem");
    let mut text = b"# roots\n".to_vec();
    text.extend_from_slice(a.bytes());
    text.extend_from_slice(b"-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n");
    text.extend_from_slice(a.bytes());
    text.extend_from_slice(b.bytes());
    let bundle = Bundle::parse(&text).unwrap();
    assert_eq!(bundle.other_blocks().len(), 1);
    let d = bundle.dedup();
    assert_eq!(d.len(), 2);
    let reparsed = Bundle::parse(d.bytes()).unwrap();
    for (x, y) in d.entries().iter().zip(reparsed.entries()) {
        assert_eq!(
            (x.span.clone(), x.begin_line, x.end_line, x.block),
            (y.span.clone(), y.begin_line, y.end_line, y.block)
        );
    }
    assert_eq!(d.other_blocks(), reparsed.other_blocks());
    assert_eq!(dedup_pem(&text).unwrap(), d.bytes());
}

#[test]
fn errors_carry_lines() {
    let mut text = fixture("root-cert.pem").bytes().to_vec();
    text.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n");
    let e = Bundle::parse(&text).unwrap_err();
    assert!(matches!(e, BundleError::Cert { block: 1, .. }), "{e:?}");
    assert_eq!(
        e.line(),
        Some(text.iter().filter(|&&c| c == b'\n').count() - 2)
    );
}
