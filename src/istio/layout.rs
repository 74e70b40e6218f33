//! Where generated CA material goes: Istio's file names and directory layouts for a root, a
//! cluster's `cacerts` directory, a workload and a cross-signed certificate. The generator
//! ([`crate::generate`]) makes certificates and keys; these say which files hold them, so that
//! Istio's file names live in one place ([`crate::istio`]).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::secret::{CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT};
use super::signer::ROOT_KEY;
use crate::fsio::OutFile;
use crate::generate::{CrossSigned, GenerateError, Generated, check_cluster_name};

/// A workload certificate alone (Makefile.selfsigned.mk's `workload-cert.pem`).
pub const WORKLOAD_CERT: &str = "workload-cert.pem";
/// A workload key (Makefile.selfsigned.mk's and istio-agent's `key.pem`).
pub const WORKLOAD_KEY: &str = "key.pem";
/// A cross-signed CA certificate (`meshtrust generate cross-sign`).
pub const CROSS_SIGNED_CERT: &str = "cross-signed-cert.pem";

/// The paths [`root_files`] writes, in its order: known before any key is generated, so a
/// caller can refuse existing files before an expensive RSA key generation.
///
/// ```
/// let [cert, key] = meshtrust::istio::root_paths(std::path::Path::new("rootA"));
/// assert_eq!((cert.to_str(), key.to_str()), (Some("rootA/root-cert.pem"), Some("rootA/root-key.pem")));
/// ```
pub fn root_paths(dir: &Path) -> [PathBuf; 2] {
    [ROOT_CERT, ROOT_KEY].map(|f| dir.join(f))
}

/// Istio's root files: `DIR/root-cert.pem` (0644) and `DIR/root-key.pem` (0600).
pub fn root_files(dir: &Path, root: &Generated) -> Vec<OutFile> {
    let [cert, key] = root_paths(dir);
    vec![
        OutFile::public(cert, root.cert_pem.clone().into_bytes()),
        OutFile::secret(key, pem_bytes(root.key_pem())),
    ]
}

/// Istio's `cacerts` directory for cluster `name`: `OUT/name/ca-cert.pem`, `ca-key.pem`,
/// `cert-chain.pem` (ca-cert then the chain above it: ca-cert + root for an intermediate
/// under a root, as the Makefile's `cat` makes it) and `root-cert.pem` (the issuer's trust
/// bundle, byte for byte).
pub fn intermediate_files(
    out: &Path,
    name: &str,
    ca: &Generated,
) -> Result<Vec<OutFile>, GenerateError> {
    if ca.trust_bundle.is_empty() {
        return Err(GenerateError::NoTrustBundle);
    }
    let [cert, key, chain, roots] = intermediate_paths(out, name)?;
    Ok(vec![
        OutFile::public(cert, ca.cert_pem.clone().into_bytes()),
        OutFile::secret(key, pem_bytes(ca.key_pem())),
        OutFile::public(chain, ca.cert_chain_pem().into_bytes()),
        OutFile::public(roots, ca.trust_bundle.clone()),
    ])
}

/// The paths [`intermediate_files`] writes, in its order (`OUT/name/ca-cert.pem`,
/// `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`), after checking `name` as a cluster name.
pub fn intermediate_paths(out: &Path, name: &str) -> Result<[PathBuf; 4], GenerateError> {
    check_cluster_name(name)?;
    let dir = out.join(name);
    Ok([CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT].map(|f| dir.join(f)))
}

/// A workload's files, in istio-agent's file-mounted layout plus the Makefile's single
/// certificate: `DIR/cert-chain.pem` (leaf, then the signing CA's chain: what istiod returns
/// before the roots), `key.pem` (0600), `root-cert.pem` (trust bundle) and `workload-cert.pem`
/// (the leaf alone).
pub fn leaf_files(dir: &Path, leaf: &Generated) -> Result<Vec<OutFile>, GenerateError> {
    if leaf.trust_bundle.is_empty() {
        return Err(GenerateError::NoTrustBundle);
    }
    let [chain, key, roots, cert] = leaf_paths(dir);
    Ok(vec![
        OutFile::public(chain, leaf.cert_chain_pem().into_bytes()),
        OutFile::secret(key, pem_bytes(leaf.key_pem())),
        OutFile::public(roots, leaf.trust_bundle.clone()),
        OutFile::public(cert, leaf.cert_pem.clone().into_bytes()),
    ])
}

/// The paths [`leaf_files`] writes, in its order (`DIR/cert-chain.pem`, `key.pem`,
/// `root-cert.pem`, `workload-cert.pem`).
pub fn leaf_paths(dir: &Path) -> [PathBuf; 4] {
    [CERT_CHAIN, WORKLOAD_KEY, ROOT_CERT, WORKLOAD_CERT].map(|f| dir.join(f))
}

/// The path [`cross_signed_files`] writes: `OUT/cross-signed-cert.pem`.
pub fn cross_signed_path(out: &Path) -> PathBuf {
    out.join(CROSS_SIGNED_CERT)
}

/// `OUT/cross-signed-cert.pem` (0644): the cross-signed certificate alone.
pub fn cross_signed_files(out: &Path, cross: &CrossSigned) -> Vec<OutFile> {
    vec![OutFile::public(
        cross_signed_path(out),
        cross.cert_pem.clone().into_bytes(),
    )]
}

fn pem_bytes(pem: Zeroizing<String>) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(pem.as_bytes().to_vec())
}
