//! Which roots anchor a chain: every valid path, not just the first found.

use crate::cert::Certificate;

use super::error::PathFailure;
use super::{CertPool, VerifiedPath, VerifyOptions};

/// Every valid path from a target to the roots of a pool, found by [`anchoring_roots`].
#[derive(Debug, Clone)]
pub struct Anchoring {
    roots: Vec<Certificate>,
    paths: Vec<VerifiedPath>,
    failures: Vec<PathFailure>,
    signature_checks: usize,
    complete: bool,
}

impl Anchoring {
    /// The distinct roots that anchor at least one valid path, in the pool's order (for a
    /// pool built from a bundle: file order).
    pub fn roots(&self) -> &[Certificate] {
        &self.roots
    }

    /// Every valid path found.
    pub fn paths(&self) -> &[VerifiedPath] {
        &self.paths
    }

    /// The candidate paths that failed, each with its reason (they explain why the other
    /// roots do not anchor the chain).
    pub fn failures(&self) -> &[PathFailure] {
        &self.failures
    }

    /// True when the search explored every candidate; false when a budget ran out, so
    /// [`Anchoring::roots`] may miss some.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Signature checks spent.
    pub fn signature_checks(&self) -> usize {
        self.signature_checks
    }
}

/// Which roots of `roots` anchor `target` (with these intermediates) at the validation time:
/// all of them, not just the first found. During a rotation a chain can reach both the old
/// root and a cross-signed or re-keyed new one; knowing every anchor tells whether a root can
/// be removed.
///
/// ```
/// use meshtrust::{Bundle, verify::{self, Chain, CertPool, VerifyOptions}};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let read = |f: &str| Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
/// let chain = Chain::from_bundle(&read("cert-chain-alt.pem"))?;   // intermediate + root B
/// let roots = CertPool::from(&read("root-cert-combined.pem"));    // roots A and B
/// let at = time::macros::datetime!(2025-06-01 0:00 UTC);
/// let found = verify::anchoring_roots(chain.target(), chain.intermediates(), &roots, &VerifyOptions::at(at));
/// assert!(found.is_complete());
/// assert_eq!(found.roots().len(), 1);                              // only B
/// assert_eq!(roots.position(&found.roots()[0].fingerprint()), Some(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn anchoring_roots(
    target: &Certificate,
    intermediates: &CertPool,
    roots: &CertPool,
    options: &VerifyOptions,
) -> Anchoring {
    let out = super::policy::run(target, intermediates, roots, options, true);
    let mut anchors: Vec<(usize, Certificate)> = Vec::new();
    for p in &out.paths {
        let a = p.anchor();
        let fp = a.fingerprint();
        if !anchors.iter().any(|(_, c)| c.fingerprint() == fp) {
            anchors.push((roots.position(&fp).unwrap_or(usize::MAX), a.clone()));
        }
    }
    anchors.sort_by_key(|(i, _)| *i);
    Anchoring {
        roots: anchors.into_iter().map(|(_, c)| c).collect(),
        paths: out.paths,
        failures: out.failures,
        signature_checks: out.signature_checks,
        complete: out.complete,
    }
}
