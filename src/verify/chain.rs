//! [`Chain`]: a certificate with the intermediates presented with it, read from a file.
//! Verify it with [`super::verify`] or [`super::anchoring_roots`] on its parts.

use crate::bundle::{Bundle, BundleError};
use crate::cert::Certificate;

use super::CertPool;

/// A certificate to verify with its candidate intermediates, like an Istio workload's
/// `cert-chain` or a `cacerts` directory's `ca-cert.pem` + `cert-chain.pem`.
///
/// ```
/// use meshtrust::{Bundle, verify::{self, Chain, CertPool, VerifyOptions}};
/// let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/");
/// let read = |f: &str| Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
/// let chain = Chain::from_bundle(&read("cert-chain-alt.pem"))?;
/// let roots = CertPool::from(&read("root-cert-alt.pem"));
/// let at = time::macros::datetime!(2025-06-01 0:00 UTC);
/// let path = verify::verify(chain.target(), chain.intermediates(), &roots, &VerifyOptions::at(at))?;
/// assert_eq!(path.anchor(), read("root-cert-alt.pem").certificates().next().unwrap());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
}
