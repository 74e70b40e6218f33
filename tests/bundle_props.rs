//! Property tests of the byte-exact bundle invariants (DESIGN.md invariants 1-3), on files
//! shaped the way operators write them (the testkit's strategies).
#![cfg(feature = "testkit")]

use meshtrust::bundle::{self, Bundle};
use meshtrust::istio::IstioVersion;
use meshtrust::istio::behaviour::{RootChange, root_change};

const V1_29: IstioVersion = IstioVersion::new(1, 29, 0);
const V1_30: IstioVersion = IstioVersion::new(1, 30, 0);

/// istiod's verdict (ISTIO_MULTIROOT_MESH on), from the one model.
fn accepts(v: IstioVersion, old: &[u8], new: &[u8]) -> bool {
    matches!(
        root_change(v, true, old, new),
        RootChange::Accepted | RootChange::Unchanged
    )
}
use meshtrust::testkit::{bundles, fuzz};
use meshtrust::{Certificate, Fingerprint};
use proptest::prelude::*;

fn fps(b: &Bundle) -> Vec<Fingerprint> {
    b.certificates().map(Certificate::fingerprint).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Invariant 1: parse then render gives the original bytes, and the certificates in order.
    #[test]
    fn parse_render_round_trip(case in bundles::bundle_text(bundles::sample_certificates())) {
        let b = Bundle::parse(&case.bytes).unwrap();
        prop_assert_eq!(b.bytes(), &case.bytes[..]);
        prop_assert_eq!(fps(&b), case.expected.clone());
        // Every entry's span is its own block text.
        for (i, e) in b.entries().iter().enumerate() {
            let again = Bundle::parse(b.entry_text(i).unwrap()).unwrap();
            prop_assert_eq!(fps(&again), vec![e.cert.fingerprint()]);
        }
    }

    /// Dedup keeps first occurrences in order, is idempotent and keeps the trust set.
    #[test]
    fn dedup_is_idempotent_and_order_preserving(case in bundles::bundle_text(bundles::sample_certificates())) {
        let b = Bundle::parse(&case.bytes).unwrap();
        let d = b.dedup();
        let mut want = Vec::new();
        for fp in &case.expected {
            if !want.contains(fp) {
                want.push(*fp);
            }
        }
        prop_assert_eq!(fps(&d), want);
        prop_assert_eq!(d.dedup().bytes().to_vec(), d.bytes().to_vec());
        prop_assert_eq!(d.trust_set(), b.trust_set());
        prop_assert_eq!(Bundle::parse(d.bytes()).unwrap().bytes().to_vec(), d.bytes().to_vec());
        prop_assert_eq!(bundle::dedup_pem(&case.bytes).unwrap(), d.bytes().to_vec());
        if b.duplicates().is_empty() {
            prop_assert_eq!(d.bytes(), b.bytes());
        }
    }

    /// Invariant 3: appending keeps the old file as a prefix, so istiod's byte containment
    /// accepts the change; the result parses to the concatenated certificate lists.
    #[test]
    fn append_keeps_prefix(
        a in bundles::bundle_text(bundles::sample_certificates()),
        b in bundles::bundle_text(bundles::sample_certificates()),
    ) {
        let (ba, bb) = (Bundle::parse(&a.bytes).unwrap(), Bundle::parse(&b.bytes).unwrap());
        let ab = ba.append(&bb);
        prop_assert!(ab.bytes().starts_with(&a.bytes));
        prop_assert!(accepts(V1_29, &a.bytes, ab.bytes()));
        let reparsed = Bundle::parse(ab.bytes()).unwrap();
        prop_assert_eq!(fps(&reparsed), [a.expected.clone(), b.expected.clone()].concat());
        for (x, y) in ab.entries().iter().zip(reparsed.entries()) {
            prop_assert_eq!((&x.span, x.begin_line, x.end_line, x.block), (&y.span, y.begin_line, y.end_line, y.block));
        }
    }

    /// Invariant 2: the deliberate duplicate keeps the trust set and changes the bytes, and
    /// istiod's containment rule accepts it; dedup undoes it.
    #[test]
    fn deliberate_duplicate(case in bundles::bundle_text(bundles::sample_certificates())) {
        let b = Bundle::parse(&case.bytes).unwrap();
        prop_assume!(!b.is_empty());
        let t = b.with_last_duplicated().unwrap();
        prop_assert_eq!(t.trust_set(), b.trust_set());
        prop_assert_ne!(t.bytes(), b.bytes());
        prop_assert!(t.bytes().starts_with(b.bytes()));
        let d = bundle::diff(&b, &t);
        prop_assert!(accepts(V1_29, b.bytes(), t.bytes()) && accepts(V1_30, b.bytes(), t.bytes()));
        prop_assert!(d.bytes_changed && !d.trust_set_changed && d.added.is_empty() && d.removed.is_empty());
        prop_assert!(t.entries().last().unwrap().deliberate_duplicate);
        // Dedup undoes the trigger (byte for byte when the trigger needed no separator newline).
        prop_assert_eq!(fps(&t.dedup()), fps(&b.dedup()));
        if b.bytes().ends_with(b"\n") || b.entries().last().unwrap().span.end == b.bytes().len() {
            prop_assert_eq!(t.dedup().bytes().to_vec(), b.dedup().bytes().to_vec());
        }
    }

    /// Reordering two distinct certificates is refused by the containment rule (though the
    /// trust sets are equal), and the diff says "reordered".
    #[test]
    fn reorder_is_refused(i in 0usize..6, j in 0usize..6) {
        let pool = bundles::sample_certificates();
        prop_assume!(pool[i] != pool[j]);
        let ab = Bundle::from_certificates([&pool[i], &pool[j]]);
        let ba = Bundle::from_certificates([&pool[j], &pool[i]]);
        let d = bundle::diff(&ab, &ba);
        prop_assert!(!accepts(V1_29, ab.bytes(), ba.bytes()) && accepts(V1_30, ab.bytes(), ba.bytes()));
        prop_assert!(d.reordered && !d.trust_set_changed);
    }

    /// No panic on arbitrary bytes, nor on mutations of valid files.
    #[test]
    fn no_panic_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        fuzz::pem(&data);
        fuzz::bundle(&data);
        fuzz::certificate(&data);
    }

    #[test]
    fn no_panic_on_mutated_files(
        case in bundles::bundle_text(bundles::sample_certificates()),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut data = case.bytes.clone();
        prop_assume!(!data.is_empty());
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        fuzz::pem(&data);
        fuzz::bundle(&data);
    }
}
