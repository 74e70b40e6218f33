//! Helpers for root rotations: which roots anchor a chain, and the cross matrix of chains
//! against bundles that a phase transition must satisfy.

use std::fmt;

use crate::bundle::{Bundle, BundleError};
use crate::cert::Certificate;

use super::error::{Named, PathFailure, VerifyError};
use super::{CertPool, VerifiedPath, VerifyOptions};

/// A certificate to verify with its candidate intermediates, like an Istio workload's
/// `cert-chain` or a `cacerts` directory's `ca-cert.pem` + `cert-chain.pem`.
#[derive(Debug, Clone)]
pub struct Chain {
    target: Certificate,
    intermediates: CertPool,
}

impl Chain {
    /// `target` with these candidate intermediates (any order; duplicates and the target
    /// itself are harmless).
    pub fn new(target: Certificate, intermediates: impl IntoIterator<Item = Certificate>) -> Chain {
        Chain {
            target,
            intermediates: intermediates.into_iter().collect(),
        }
    }

    /// The chain a PEM file holds: its first certificate is the target, the others are
    /// intermediates (Istio's `cert-chain.pem` served with a leaf, `workload-*-cert.pem`).
    pub fn from_bundle(bundle: &Bundle) -> Result<Chain, BundleError> {
        let mut certs = bundle.certificates();
        let target = certs.next().ok_or(BundleError::Empty)?.clone();
        Ok(Chain::new(target, certs.cloned()))
    }

    /// Adds candidate intermediates.
    pub fn with_intermediates<'a>(
        mut self,
        more: impl IntoIterator<Item = &'a Certificate>,
    ) -> Chain {
        self.intermediates.extend(more.into_iter().cloned());
        self
    }

    /// The certificate to verify.
    pub fn target(&self) -> &Certificate {
        &self.target
    }

    /// The candidate intermediates.
    pub fn intermediates(&self) -> &CertPool {
        &self.intermediates
    }

    /// [`super::verify`] of this chain.
    pub fn verify(
        &self,
        roots: &CertPool,
        options: &VerifyOptions,
    ) -> Result<VerifiedPath, VerifyError> {
        super::verify(&self.target, &self.intermediates, roots, options)
    }

    /// [`anchoring_roots`] of this chain.
    pub fn anchoring_roots(&self, roots: &CertPool, options: &VerifyOptions) -> Anchoring {
        anchoring_roots(&self.target, &self.intermediates, roots, options)
    }
}

/// Every valid path from a target to the roots of a pool, found by [`anchoring_roots`].
#[derive(Debug, Clone)]
pub struct Anchoring {
    target: Certificate,
    roots: Vec<Certificate>,
    paths: Vec<VerifiedPath>,
    failures: Vec<PathFailure>,
    omitted: usize,
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

    /// The first valid path, or why there is none.
    pub fn into_result(self) -> Result<VerifiedPath, VerifyError> {
        match self.paths.into_iter().next() {
            Some(p) => Ok(p),
            None => Err(VerifyError {
                target: self.target,
                failures: self.failures,
                omitted: self.omitted,
                signature_checks: self.signature_checks,
            }),
        }
    }
}

/// Which roots of `roots` anchor `target` (with these intermediates) at the validation time:
/// all of them, not just the first found. During a rotation a chain can reach both the old
/// root and a cross-signed or re-keyed new one; knowing every anchor tells whether a root can
/// be removed.
///
/// ```
/// use meshtrust::{Bundle, verify::{Chain, CertPool, VerifyOptions}};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let read = |f: &str| Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
/// let chain = Chain::from_bundle(&read("cert-chain-alt.pem"))?;   // intermediate + root B
/// let roots = CertPool::from(&read("root-cert-combined.pem"));    // roots A and B
/// let at = time::macros::datetime!(2025-06-01 0:00 UTC);
/// let found = chain.anchoring_roots(&roots, &VerifyOptions::at(at));
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
        target: target.clone(),
        roots: anchors.into_iter().map(|(_, c)| c).collect(),
        paths: out.paths,
        failures: out.failures,
        omitted: out.omitted,
        signature_checks: out.signature_checks,
        complete: out.complete,
    }
}

/// Every chain of a set verified against every bundle of a set: what a phase transition
/// needs ("every leaf that can exist during phase k verifies against the bundles of phase k
/// and k+1").
#[derive(Debug, Clone)]
pub struct CrossMatrix {
    cells: Vec<Vec<Result<VerifiedPath, VerifyError>>>,
}

impl CrossMatrix {
    /// The result for chain `chain` against bundle `bundle`.
    pub fn get(&self, chain: usize, bundle: usize) -> Option<&Result<VerifiedPath, VerifyError>> {
        self.cells.get(chain).and_then(|row| row.get(bundle))
    }

    /// One row per chain, one column per bundle.
    pub fn rows(&self) -> &[Vec<Result<VerifiedPath, VerifyError>>] {
        &self.cells
    }

    /// True when every chain verifies against every bundle.
    pub fn all_valid(&self) -> bool {
        self.cells.iter().flatten().all(Result::is_ok)
    }

    /// The failing cells as (chain index, bundle index, error).
    pub fn failures(&self) -> impl Iterator<Item = (usize, usize, &VerifyError)> + '_ {
        self.cells.iter().enumerate().flat_map(|(i, row)| {
            row.iter()
                .enumerate()
                .filter_map(move |(j, r)| r.as_ref().err().map(|e| (i, j, e)))
        })
    }
}

impl fmt::Display for CrossMatrix {
    /// One line per cell: `chain i x bundle j: ok (path)` or the error.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, row) in self.cells.iter().enumerate() {
            for (j, r) in row.iter().enumerate() {
                match r {
                    Ok(p) => writeln!(f, "chain {i} x bundle {j}: ok via {}", Named(p.anchor()))?,
                    Err(e) => writeln!(f, "chain {i} x bundle {j}: FAIL {e}")?,
                }
            }
        }
        Ok(())
    }
}

/// Verifies every chain against every bundle (rows: chains, columns: bundles).
///
/// ```
/// use meshtrust::{Bundle, verify::{cross_matrix, Chain, CertPool, VerifyOptions}};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let read = |f: &str| Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
/// let old = Chain::from_bundle(&read("cert-chain.pem"))?;       // signed under root A
/// let new = Chain::from_bundle(&read("cert-chain-alt.pem"))?;   // signed under root B
/// let phases = [CertPool::from(&read("root-cert.pem")), CertPool::from(&read("root-cert-combined.pem"))];
/// let m = cross_matrix(&[old, new], &phases, &VerifyOptions::at(time::macros::datetime!(2025-06-01 0:00 UTC)));
/// assert!(m.get(0, 0).unwrap().is_ok() && m.get(0, 1).unwrap().is_ok());
/// assert!(m.get(1, 0).unwrap().is_err());     // B's chain is not trusted by A alone
/// assert_eq!(m.failures().count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cross_matrix(
    chains: &[Chain],
    bundles: &[CertPool],
    options: &VerifyOptions,
) -> CrossMatrix {
    CrossMatrix {
        cells: chains
            .iter()
            .map(|c| bundles.iter().map(|b| c.verify(b, options)).collect())
            .collect(),
    }
}
