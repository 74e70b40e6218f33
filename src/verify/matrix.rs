//! The cross matrix of chains against bundles that a phase transition must satisfy.

use std::fmt;

use super::error::{Named, VerifyError};
use super::{CertPool, Chain, VerifiedPath, VerifyOptions};

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
            .map(|c| {
                bundles
                    .iter()
                    .map(|b| super::verify(c.target(), c.intermediates(), b, options))
                    .collect()
            })
            .collect(),
    }
}
