//! The signer a CA secret or directory makes: one definition of which certificate signs, with
//! which key and which chain above it, for istiod's model ([`super::behaviour::load`]), the
//! generator's CA directories (`meshtrust generate --root DIR / --ca DIR`) and the plan
//! checker's throwaway leaves.
//!
//! ```
//! use meshtrust::istio::{self, ChainUse};
//! let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples"));
//! let s = istio::read_path(dir)?;
//! let issuer = s.issuer(ChainUse::Istiod)?;
//! assert_eq!(issuer.certificate(), &s.ca_cert()?);
//! // Istio's samples: cert-chain.pem stops below the root; the generator completes it.
//! let signing = istio::read_ca_dir(dir)?;
//! assert_eq!(signing.issuer.chain().len(), issuer.chain().len() + 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::secret::{CA_CERT, CA_KEY, CERT_CHAIN, CaSecret, FileError, ROOT_CERT, SecretForm};
use crate::bundle::{Bundle, BundleError};
use crate::cert::{Certificate, Role};
use crate::generate::{GenerateError, Issuer};
use crate::key::{KeyError, PrivateKey};

/// A root CA's private key, next to its `root-cert.pem` (Istio's tools/certs, `meshtrust
/// generate root`).
pub const ROOT_KEY: &str = "root-key.pem";

/// How the certificates above the signing CA are used when making an [`Issuer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChainUse {
    /// As istiod loads it ([`super::behaviour::load`], which cites istio/istio
    /// security/pkg/pki/util/keycertbundle.go): the certificates of cert-chain.pem above
    /// ca-cert go with every leaf; a cert-chain.pem that is not a clean chain (hand-edited)
    /// still loads, and then the issuer holds ca-cert alone. No trust bundle (istiod serves
    /// root-cert.pem itself). How long istiod makes a leaf valid, per version, is not this
    /// issuer's cap but [`super::behaviour::leaf_validity`] (security/pkg/pki/ca/ca.go `sign`).
    Istiod,
    /// As the generator signs under a CA directory: cert-chain.pem above ca-cert must be a
    /// clean chain, and is completed with the root from root-cert.pem when it stops below one
    /// (Istio's samples); root-cert.pem, byte for byte, is the trust bundle of what is made.
    Generator,
    /// The signing certificate and key alone: nothing caps a leaf's lifetime (the plan
    /// checker's throwaway leaves).
    SignerOnly,
}

/// Why a secret makes no signer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// A file is missing or does not parse.
    #[error(transparent)]
    File(#[from] FileError),
    /// The signing certificate and key make no signer (the key does not match, not a CA, a
    /// key ring cannot sign with).
    #[error("{file}: {source}")]
    Signer {
        /// The signing certificate's file.
        file: &'static str,
        /// Why.
        source: GenerateError,
    },
    /// cert-chain.pem above the signing certificate is not a chain ([`ChainUse::Generator`]).
    #[error("{file}: {source}")]
    Chain {
        /// cert-chain.pem.
        file: &'static str,
        /// Why.
        source: GenerateError,
    },
}

impl CaSecret {
    /// The signing certificate (the first of ca-cert.pem, as istiod reads it) and the
    /// certificates of cert-chain.pem above it (the leading copies of the signing certificate
    /// skipped; empty without a cert-chain.pem).
    pub fn signer_and_chain(&self) -> Result<(Certificate, Vec<Certificate>), FileError> {
        let ca = self.ca_cert()?;
        let above = if self.chain_bytes().is_some() {
            chain_above(&ca, self.cert_chain()?.certificates())
        } else {
            Vec::new()
        };
        Ok((ca, above))
    }

    /// The CA this secret signs with, its chain used as `how` says. Reads, in this order, the
    /// signing certificate, the key, cert-chain.pem (when present) and, for
    /// [`ChainUse::Generator`], the root file (when present).
    pub fn issuer(&self, how: ChainUse) -> Result<Issuer, SignerError> {
        let ca = self.ca_cert()?;
        let key = self.ca_key()?;
        let above = match how {
            ChainUse::SignerOnly => Vec::new(),
            _ if self.chain_bytes().is_some() => {
                chain_above(&ca, self.cert_chain()?.certificates())
            }
            _ => Vec::new(),
        };
        let roots = match how {
            ChainUse::Generator if self.file(self.root_file()).is_some() => {
                Some(self.root_bundle()?)
            }
            _ => None,
        };
        issuer_from(
            ca,
            key,
            above,
            roots.as_ref(),
            how,
            self.signing_cert_file(),
        )
    }
}

/// The certificates of `chain` above `ca`: the leading copies of `ca` skipped.
fn chain_above<'a>(
    ca: &Certificate,
    chain: impl Iterator<Item = &'a Certificate>,
) -> Vec<Certificate> {
    chain.skip_while(|c| *c == ca).cloned().collect()
}

/// The one definition of a signer from parsed material: `ca` and `key`, the certificates
/// `above` it, and (for [`ChainUse::Generator`]) the root file `roots`. `cert_file` names the
/// signing certificate in errors.
pub(crate) fn issuer_from(
    ca: Certificate,
    key: PrivateKey,
    mut above: Vec<Certificate>,
    roots: Option<&Bundle>,
    how: ChainUse,
    cert_file: &'static str,
) -> Result<Issuer, SignerError> {
    let signer = |ca: Certificate, key: PrivateKey| {
        Issuer::new(ca, key).map_err(|source| SignerError::Signer {
            file: cert_file,
            source,
        })
    };
    match how {
        ChainUse::SignerOnly => signer(ca, key),
        ChainUse::Istiod => {
            let plain = signer(ca.clone(), key.clone())?;
            match plain.with_chain(above) {
                Ok(i) => Ok(i),
                Err(_) => signer(ca, key),
            }
        }
        ChainUse::Generator => {
            // A cert-chain.pem without the root (Istio's samples): complete it from the roots.
            if let Some(roots) = roots {
                let top = above.last().unwrap_or(&ca).clone();
                if top.role() != Role::Root {
                    if let Some(r) = roots.certificates().find(|r| {
                        r.subject_der() == top.issuer_der() && top.verify_signed_by(r).is_ok()
                    }) {
                        above.push(r.clone());
                    }
                }
            }
            let mut issuer =
                signer(ca, key)?
                    .with_chain(above)
                    .map_err(|source| SignerError::Chain {
                        file: CERT_CHAIN,
                        source,
                    })?;
            if let Some(roots) = roots {
                issuer = issuer.with_trust_bundle(roots.bytes().to_vec());
            }
            Ok(issuer)
        }
    }
}

/// What a CA directory signs with ([`read_ca_dir`], [`read_root_dir`]).
#[derive(Debug)]
#[non_exhaustive]
pub struct SigningDir {
    /// The signer.
    pub issuer: Issuer,
    /// What an operator should know (a root file of several certificates, a root directory
    /// given where a cacerts directory was expected), one line each.
    pub notes: Vec<String>,
}

/// Why a CA directory makes no signer; every message names the file, and the line where
/// there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaDirError {
    /// A file cannot be read.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A certificate file does not parse (the error says which line).
    #[error("{}: {source}", .path.display())]
    Bundle {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: BundleError,
    },
    /// A key file does not parse.
    #[error("{}: {source}", .path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong (never key material).
        source: KeyError,
    },
    /// The signing certificate file holds no certificate.
    #[error("{}: holds no certificate", .path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// root-key.pem belongs to none of the certificates of root-cert.pem.
    #[error("{}: does not belong to any of the {count} certificate(s) in {}", .key.display(), .certs.display())]
    KeyNotInBundle {
        /// root-key.pem.
        key: PathBuf,
        /// root-cert.pem.
        certs: PathBuf,
        /// How many certificates root-cert.pem holds.
        count: usize,
    },
    /// The certificate root-key.pem belongs to is not a self-signed root.
    #[error("{}: line {line}: the certificate matching {} is not a self-signed root CA", .certs.display(), .key.display())]
    NotRoot {
        /// root-cert.pem.
        certs: PathBuf,
        /// root-key.pem.
        key: PathBuf,
        /// The line its block begins on.
        line: usize,
    },
    /// The certificate and key make no signer, or the chain is not one.
    #[error("{}: {source}", .path.display())]
    Signer {
        /// The certificate file (cert-chain.pem for a broken chain).
        path: PathBuf,
        /// Why.
        source: GenerateError,
    },
}

/// The root of a root directory (`--root DIR`, `--issuer DIR`): the certificate of
/// `DIR/root-cert.pem` that `DIR/root-key.pem` belongs to. The whole root-cert.pem is the trust
/// bundle of what it signs, byte for byte.
pub fn read_root_dir(dir: &Path) -> Result<SigningDir, CaDirError> {
    let cert_path = dir.join(ROOT_CERT);
    let key_path = dir.join(ROOT_KEY);
    let bundle = read_bundle(&cert_path)?;
    let key = read_key(&key_path)?;
    let entry = bundle
        .entries()
        .iter()
        .find(|e| key.matches(&e.cert))
        .ok_or_else(|| CaDirError::KeyNotInBundle {
            key: key_path.clone(),
            certs: cert_path.clone(),
            count: bundle.len(),
        })?;
    if entry.cert.role() != Role::Root {
        return Err(CaDirError::NotRoot {
            certs: cert_path,
            key: key_path,
            line: entry.begin_line,
        });
    }
    let mut notes = Vec::new();
    if bundle.len() > 1 {
        notes.push(format!(
            "{} holds {} certificates: signing with the one at line {} ({}); the file is \
             copied byte for byte as the new root-cert.pem",
            cert_path.display(),
            bundle.len(),
            entry.begin_line,
            entry.cert.subject()
        ));
    }
    let issuer = Issuer::new(entry.cert.clone(), key)
        .map_err(|source| CaDirError::Signer {
            path: cert_path,
            source,
        })?
        .with_trust_bundle(bundle.bytes().to_vec());
    Ok(SigningDir { issuer, notes })
}

/// The signing CA of a CA directory (`--ca DIR`): a cacerts directory (ca-cert.pem's first
/// certificate, ca-key.pem, cert-chain.pem and root-cert.pem when present, as
/// [`ChainUse::Generator`]), or else, without ca-cert.pem but with root-key.pem, a root
/// directory ([`read_root_dir`]).
pub fn read_ca_dir(dir: &Path) -> Result<SigningDir, CaDirError> {
    if !dir.join(CA_CERT).exists() && dir.join(ROOT_KEY).exists() {
        let mut signing = read_root_dir(dir)?;
        signing.notes.push(format!(
            "{} has no {}: signing with the root itself",
            dir.display(),
            CA_CERT
        ));
        return Ok(signing);
    }
    let mut files = Vec::new();
    let mut unread: HashMap<&'static str, std::io::Error> = HashMap::new();
    for (f, required) in [
        (CA_CERT, true),
        (CA_KEY, true),
        (CERT_CHAIN, false),
        (ROOT_CERT, false),
    ] {
        let path = dir.join(f);
        if !required && !path.exists() {
            continue;
        }
        match std::fs::read(&path) {
            Ok(b) => files.push((f, b)),
            // Reported when the file is needed, in reading order.
            Err(e) if required => {
                unread.insert(f, e);
            }
            Err(source) => return Err(CaDirError::Io { path, source }),
        }
    }
    let secret = CaSecret::from_files("cacerts", "istio-system", SecretForm::Directory, files);
    let in_dir = |f: &str| dir.join(f);
    let issuer = secret.issuer(ChainUse::Generator).map_err(|e| match e {
        SignerError::File(FileError::Missing { file }) => CaDirError::Io {
            path: in_dir(&file),
            source: unread
                .remove(file.as_str())
                .unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
        },
        SignerError::File(FileError::NoCertificate { file }) => CaDirError::NoCertificate {
            path: in_dir(&file),
        },
        SignerError::File(FileError::Bundle { file, source }) => CaDirError::Bundle {
            path: in_dir(&file),
            source,
        },
        SignerError::File(FileError::Key { file, source }) => CaDirError::Key {
            path: in_dir(&file),
            source,
        },
        SignerError::Signer { file, source } | SignerError::Chain { file, source } => {
            CaDirError::Signer {
                path: in_dir(file),
                source,
            }
        }
    })?;
    Ok(SigningDir {
        issuer,
        notes: Vec::new(),
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>, CaDirError> {
    std::fs::read(path).map_err(|source| CaDirError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_bundle(path: &Path) -> Result<Bundle, CaDirError> {
    Bundle::parse_strict(&read_file(path)?).map_err(|source| CaDirError::Bundle {
        path: path.to_owned(),
        source,
    })
}

fn read_key(path: &Path) -> Result<PrivateKey, CaDirError> {
    PrivateKey::from_pem(&read_file(path)?).map_err(|source| CaDirError::Key {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/istio-samples")
    }

    fn copy(to: &Path, files: &[&str]) {
        for f in files {
            std::fs::copy(samples().join(f), to.join(f)).unwrap();
        }
    }

    #[test]
    fn the_three_uses_of_a_chain() {
        let s = super::super::read_path(&samples()).unwrap();
        let istiod = s.issuer(ChainUse::Istiod).unwrap();
        let alone = s.issuer(ChainUse::SignerOnly).unwrap();
        let generator = s.issuer(ChainUse::Generator).unwrap();
        assert!(alone.chain().is_empty());
        // Istio's samples: cert-chain.pem is ca-cert alone; the root comes from root-cert.pem.
        assert_eq!(generator.chain().len(), istiod.chain().len() + 1);
        assert_eq!(generator.trust_bundle(), s.file(ROOT_CERT).unwrap());
    }

    #[test]
    fn errors_name_the_file_and_the_line() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        copy(d, &[CA_CERT, CERT_CHAIN, ROOT_CERT]);
        let e = read_ca_dir(d).unwrap_err();
        assert!(
            matches!(e, CaDirError::Io { ref path, .. } if path == &d.join(CA_KEY)),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", d.join(CA_KEY).display())),
            "{e}"
        );
        std::fs::write(d.join(CA_KEY), b"-----BEGIN PRIVATE KEY-----\n").unwrap();
        std::fs::write(d.join(CA_CERT), b"\n-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let e = read_ca_dir(d).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: line 2", d.join(CA_CERT).display())),
            "{e}"
        );
        // A root directory whose key belongs to no certificate of root-cert.pem.
        let r = t.path().join("root");
        std::fs::create_dir(&r).unwrap();
        copy(&r, &[ROOT_CERT]);
        std::fs::copy(samples().join(CA_KEY), r.join(ROOT_KEY)).unwrap();
        let e = read_root_dir(&r).unwrap_err();
        assert!(
            matches!(e, CaDirError::KeyNotInBundle { count: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("does not belong"), "{e}");
    }
}
