//! Fuzz entry points: `fn(&[u8])` functions that must never panic, whatever the input. Our
//! own `fuzz/` targets call them; a downstream crate can wire the same functions into its own
//! fuzzer (`libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtrust::testkit::fuzz::pem(data));`).
//!
//! Each entry point also checks the invariants that must hold for the inputs it accepts
//! (a violated invariant panics, which is what a fuzzer reports).
//!
//! ```
//! meshtrust::testkit::fuzz::pem(b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n");
//! meshtrust::testkit::fuzz::bundle(b"\xff\xfe garbage");
//! ```

use crate::bundle::Bundle;
use crate::cert::Certificate;
use crate::pem;

/// Frames PEM; accepted blocks must have consistent spans, lines and text.
pub fn pem(data: &[u8]) {
    if let Ok(blocks) = pem::parse(data) {
        let mut last_end = 0;
        for b in &blocks {
            assert!(
                b.span.start >= last_end && b.span.end <= data.len(),
                "block spans overlap or overflow"
            );
            assert_eq!(&data[b.span.clone()], b.text, "text is not the span");
            assert!(b.begin_line < b.end_line, "END before BEGIN");
            assert!(!b.der.is_empty(), "empty DER accepted");
            last_end = b.span.end;
            // Re-encoding the DER canonically must frame back to the same DER.
            let again = pem::encode(&b.label, &b.der);
            let re = pem::parse(again.as_bytes()).expect("canonical PEM must parse");
            assert_eq!(re.len(), 1);
            assert_eq!(re[0].der, b.der);
        }
    }
}

/// Parses a DER certificate and exercises every accessor.
pub fn certificate(data: &[u8]) {
    if let Ok(c) = Certificate::from_der(data) {
        assert_eq!(c.der(), data);
        let _ = (
            c.role(),
            c.subject().len(),
            c.issuer().len(),
            c.serial_hex(),
            c.spiffe_ids(),
        );
        let _ = (
            c.key_usage(),
            c.extended_key_usage(),
            c.unhandled_critical_extensions(),
            c.check_strict(),
        );
        let _ = c.extensions().count();
        let _ = c.verify_signed_by(&c);
        let _ = (c.not_before(), c.not_after());
    }
}

/// Parses a bundle and checks the byte-exact invariants on what it accepts.
pub fn bundle(data: &[u8]) {
    if let Ok(b) = Bundle::parse(data) {
        assert_eq!(b.bytes(), data, "render is not byte-exact");
        let d = b.dedup();
        assert_eq!(d.dedup().bytes(), d.bytes(), "dedup not idempotent");
        assert_eq!(d.trust_set(), b.trust_set(), "dedup changed the trust set");
        assert_eq!(
            crate::bundle::dedup_pem(data).ok().as_deref(),
            Some(d.bytes()),
            "dedup_pem disagrees"
        );
        let doubled = b.append(&b);
        assert!(doubled.bytes().starts_with(data), "append lost the prefix");
        assert_eq!(doubled.trust_set(), b.trust_set());
        if let Ok(t) = b.with_last_duplicated() {
            assert_eq!(
                t.trust_set(),
                b.trust_set(),
                "the deliberate duplicate changed the trust set"
            );
            assert_ne!(
                t.bytes(),
                b.bytes(),
                "the deliberate duplicate did not change the bytes"
            );
            assert!(crate::bundle::istiod_byte_containment(b.bytes(), t.bytes()));
        }
    }
}
