//! Strategies for bundle files as operators really write them: any order, duplicates,
//! explanatory text before, between and after blocks, LF or CRLF, trailing whitespace, with or
//! without a final newline.

use proptest::prelude::*;

use crate::cert::{Certificate, Fingerprint};

/// Real certificates to draw from: the roots, intermediates and leaves of Istio's
/// `samples/certs` (Apache-2.0), embedded in the library when the `testkit` feature is on.
///
/// ```
/// let pool = meshtrust::testkit::bundles::sample_certificates();
/// assert!(pool.len() >= 6);
/// assert!(pool.iter().any(|c| c.role() == meshtrust::Role::Root));
/// ```
pub fn sample_certificates() -> Vec<Certificate> {
    const FILES: [&str; 6] = [
        include_str!("../../tests/fixtures/istio-samples/root-cert.pem"),
        include_str!("../../tests/fixtures/istio-samples/root-cert-alt.pem"),
        include_str!("../../tests/fixtures/istio-samples/ca-cert.pem"),
        include_str!("../../tests/fixtures/istio-samples/ca-cert-alt.pem"),
        include_str!("../../tests/fixtures/istio-samples/ca-cert-alt-2.pem"),
        include_str!("../../tests/fixtures/istio-samples/workload-foo-cert.pem"),
    ];
    let mut out = Vec::new();
    for f in FILES {
        if let Ok(b) = crate::Bundle::parse(f.as_bytes()) {
            out.extend(b.certificates().cloned());
        }
    }
    out
}

/// A generated bundle file and what it must parse to ([`bundle_text`] has an example).
#[derive(Debug, Clone)]
pub struct BundleCase {
    /// The file bytes.
    pub bytes: Vec<u8>,
    /// Fingerprints of its certificates, in file order (duplicates included).
    pub expected: Vec<Fingerprint>,
    /// True when the file uses CRLF line ends.
    pub crlf: bool,
}

/// One line of explanatory text: printable ASCII that cannot be mistaken for a boundary.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let line = meshtrust::testkit::bundles::explanatory_line().new_tree(&mut runner).unwrap().current();
/// assert!(!line.starts_with('-') && !line.contains('\n'));
/// ```
pub fn explanatory_line() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 #:.,()/_=+]{0,40}".prop_map(|s| {
        if s.starts_with('-') {
            format!("#{s}")
        } else {
            s
        }
    })
}

/// Files of up to `max` certificates drawn (with repetition) from `pool`.
///
/// ```
/// use meshtrust::testkit::bundles;
/// use proptest::prelude::*;
/// proptest!(ProptestConfig::with_cases(8), |(case in bundles::bundle_text_up_to(bundles::sample_certificates(), 2))| {
///     prop_assert!(case.expected.len() <= 2);
///     let text = String::from_utf8(case.bytes).unwrap();
///     prop_assert!(!case.crlf || !text.replace("\r\n", "").contains('\n'));
/// });
/// ```
///
/// # Panics
/// When `pool` is empty (a test-setup mistake).
pub fn bundle_text_up_to(pool: Vec<Certificate>, max: usize) -> impl Strategy<Value = BundleCase> {
    assert!(
        !pool.is_empty(),
        "bundle_text needs a non-empty certificate pool"
    );
    let n = pool.len();
    (
        proptest::collection::vec(
            (
                0..n,
                proptest::collection::vec(explanatory_line(), 0..3),
                "[ \t]{0,2}",
            ),
            0..=max,
        ),
        proptest::collection::vec(explanatory_line(), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(move |(items, trailer, crlf, final_newline)| {
            let nl = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            let mut expected = Vec::new();
            for (i, before, trailing_ws) in items {
                for line in before {
                    text.push_str(&line);
                    text.push_str(nl);
                }
                let pem = pool[i].to_pem();
                for line in pem.lines() {
                    text.push_str(line);
                    if line.starts_with("-----") {
                        text.push_str(&trailing_ws);
                    }
                    text.push_str(nl);
                }
                expected.push(pool[i].fingerprint());
            }
            for line in trailer {
                text.push_str(&line);
                text.push_str(nl);
            }
            if !final_newline {
                while text.ends_with('\n') || text.ends_with('\r') {
                    text.pop();
                }
            }
            BundleCase {
                bytes: text.into_bytes(),
                expected,
                crlf,
            }
        })
}

/// [`bundle_text_up_to`] with at most 6 certificates.
///
/// ```
/// use meshtrust::testkit::bundles;
/// use proptest::prelude::*;
/// proptest!(ProptestConfig::with_cases(8), |(case in bundles::bundle_text(bundles::sample_certificates()))| {
///     let b = meshtrust::Bundle::parse(&case.bytes).unwrap();
///     let fps: Vec<_> = b.certificates().map(|c| c.fingerprint()).collect();
///     prop_assert_eq!(fps, case.expected);
/// });
/// ```
pub fn bundle_text(pool: Vec<Certificate>) -> impl Strategy<Value = BundleCase> {
    bundle_text_up_to(pool, 6)
}
