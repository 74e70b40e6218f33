//! Test support for embedders (feature `testkit`): proptest strategies, invariant checkers,
//! fuzz entry points, and test material to order. meshtrust's own property tests, fuzz
//! targets, differential tests and benches use exactly these.
//!
//! ```
//! use meshtrust::testkit::bundles;
//! use proptest::prelude::*;
//!
//! proptest!(ProptestConfig::with_cases(8), |(case in bundles::bundle_text(bundles::sample_certificates()))| {
//!     let parsed = meshtrust::Bundle::parse(&case.bytes).unwrap();
//!     prop_assert_eq!(parsed.bytes(), &case.bytes[..]);
//! });
//! ```
//!
//! # Keys, certificates and chains, including deliberately broken ones
//!
//! - [`TestKey`]: RSA 2048/3072/4096 from a small committed pool (ring cannot generate RSA
//!   keys; the pool was made with `openssl genpkey`), ECDSA P-256/P-384 and Ed25519 generated
//!   with ring. [`TestKey::pooled`] reuses keys so property tests stay fast.
//! - [`CertSpec`] + [`Issued`]: any certificate: roots, intermediates, leaves and Istio-style
//!   workload leaves, with chosen validity, serial, basicConstraints (absent, cA false, cA
//!   with or without pathLen), keyUsage (with or without keyCertSign, or absent), EKU, SANs,
//!   key identifiers (derived, omitted or misleading), an unknown critical extension, and the
//!   signature algorithm: RSA PKCS#1 v1.5 or RSA-PSS with SHA-256/384/512, ECDSA, Ed25519, a
//!   mismatched outer algorithm, or a tampered signature.
//! - [`TestChain`]: root -> intermediates -> leaf in one call.
//!
//! Nothing here reads the clock: validity windows are explicit (default 2025-01-01 to
//! 2045-01-01). Key generation and ECDSA/PSS signing use the operating system's randomness.
//!
//! ```
//! use meshtrust::testkit::{CertSpec, Issued, KeyType, TestKey, SigAlg};
//! use meshtrust::signature::Hash;
//!
//! let root_key = TestKey::pooled(KeyType::Rsa2048, 0);
//! let root = Issued::self_signed(&CertSpec::root("Acme", "Root A"), &root_key)?;
//! let leaf = root.issue(
//!     &CertSpec::workload("spiffe://cluster.local/ns/default/sa/default")
//!         .signature(SigAlg::RsaPss(Hash::Sha384)),
//!     &TestKey::pooled(KeyType::EcP256, 0),
//! )?;
//! leaf.cert().verify_signed_by(root.cert())?;
//! assert_eq!(leaf.cert().signature_algorithm().name(), "RSASSA-PSS-SHA384");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundles;
mod certs;
pub mod chains;
pub mod dumps;
pub mod fuzz;
pub mod generation;
pub mod invariants;
mod keys;
pub mod meshes;
pub mod plans;

/// The `arbitrary` crate the testkit's `Arbitrary` implementations use (for your own fuzz
/// targets, without a version mismatch).
pub use arbitrary;
/// The `proptest` crate the testkit's strategies are built with.
pub use proptest;

pub use certs::{
    Aki, Basic, CertSpec, DEFAULT_NOT_AFTER, DEFAULT_NOT_BEFORE, Eku, Issued, NameAttr, TestChain,
    UNKNOWN_EXTENSION_OID,
};
pub use keys::{KeyAllocator, KeyType, SigAlg, TestKey, default_signature, pool_size};

/// Why test material could not be built.
///
/// ```
/// use meshtrust::testkit::{KeyType, TestKey, TestkitError};
/// assert!(matches!(TestKey::generate(KeyType::Rsa2048), Err(TestkitError::Unsupported(_))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// rcgen refused the parameters.
    #[error("rcgen: {0}")]
    Rcgen(String),
    /// A key could not be loaded, generated or used.
    #[error("key: {0}")]
    Key(String),
    /// The built DER did not parse back.
    #[error("DER: {0}")]
    Der(String),
    /// The request cannot be met (e.g. generating an RSA key with ring).
    #[error("unsupported: {0}")]
    Unsupported(String),
}
