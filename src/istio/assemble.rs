//! CA material as external PKIs hand it out, ordered into Istio's `cacerts` layout.
//!
//! Vault's `pki/intermediate/...` answers with `certificate`, `private_key` and `ca_chain`
//! (issuer first), AWS Private CA's `GetCertificate` with `Certificate` and
//! `CertificateChain` (issuer first, root last), and other PKIs root-first, with or without the
//! root, or with the signing certificate inside the chain. [`assemble`] takes those pieces as
//! bytes, links every certificate to its issuer by name and signature, and writes
//! `ca-cert.pem` (the signing CA), `cert-chain.pem` (the signing CA, then each issuer up to the
//! root, as Istio's Makefile writes it), `root-cert.pem` and `ca-key.pem`, saying what it
//! reordered, completed or left out. A chain that does not link up is refused, naming the
//! certificate whose issuer is missing.
//!
//! Pure: bytes in, a [`CaSecret`] and notes out; nothing touches the file system.
//!
//! ```
//! use meshtrust::generate::{self, KeyType};
//! use meshtrust::istio::{self, PkiMaterial};
//! let now = time::OffsetDateTime::now_utc();
//! let (root, int) = generate::istio_ca("cluster1", KeyType::EcP256, now)?;
//! // Vault's shape: the certificate, its key, and a ca_chain holding the root.
//! let key = int.key_pem();
//! let a = istio::assemble(&PkiMaterial {
//!     cert: int.cert_pem.as_bytes(),
//!     key: key.as_bytes(),
//!     chain: Some(root.cert_pem.as_bytes()),
//!     root: None,
//! })?;
//! assert_eq!(a.secret.file("root-cert.pem"), Some(root.cert_pem.as_bytes()));
//! assert_eq!(a.secret.file("cert-chain.pem"), Some(int.cert_chain_pem().as_bytes()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use crate::bundle::{Bundle, BundleError};
use crate::cert::{Certificate, Role};
use crate::key::{KeyError, PrivateKey};

use super::CaSecret;

/// The pieces of a signing CA as a PKI hands them out.
#[derive(Clone, Copy)]
pub struct PkiMaterial<'a> {
    /// PEM whose first certificate is the signing CA (more certificates join the chain).
    pub cert: &'a [u8],
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: &'a [u8],
    /// The chain above it, in any order, with or without the root (and the CA itself).
    pub chain: Option<&'a [u8]>,
    /// The root, where the chain does not end in it; also pins the root when it does.
    pub root: Option<&'a [u8]>,
}

impl fmt::Debug for PkiMaterial<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkiMaterial")
            .field("cert_bytes", &self.cert.len())
            .field("chain_bytes", &self.chain.map(<[u8]>::len))
            .field("root_bytes", &self.root.map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

/// Which input an [`AssembleError`] concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// [`PkiMaterial::cert`].
    Cert,
    /// [`PkiMaterial::key`].
    Key,
    /// [`PkiMaterial::chain`].
    Chain,
    /// [`PkiMaterial::root`].
    Root,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Cert => "certificate",
            Part::Key => "key",
            Part::Chain => "chain",
            Part::Root => "root",
        })
    }
}

/// The ordered CA and what was done to get there.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The `cacerts` secret in Istio's layout.
    pub secret: CaSecret,
    /// The certificates of `cert-chain.pem`, signing CA first, root last.
    pub path: Vec<Certificate>,
    /// What was reordered, completed or left out, one line each.
    pub notes: Vec<String>,
}

/// Why the pieces do not make a CA. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    /// An input is not PEM holding certificates (or a key).
    #[error("{part}: {reason}")]
    Unreadable {
        /// The input.
        part: Part,
        /// What is wrong, with line numbers.
        reason: Unreadable,
    },
    /// The first certificate is not a CA.
    #[error("certificate: {subject:?} is not a CA (basicConstraints cA is not set)")]
    NotCa {
        /// Its subject.
        subject: String,
    },
    /// The key is not the certificate's.
    #[error("key: does not belong to {subject:?}: {reason}")]
    KeyMismatch {
        /// The certificate's subject.
        subject: String,
        /// Why.
        reason: KeyError,
    },
    /// A certificate's issuer is in none of the inputs.
    #[error(
        "the chain does not link up: no certificate in the inputs issued {subject:?} \
         (its issuer {issuer:?} is missing{}); give it with the chain or the root",
        if *.same_name_found { ", a certificate of that name is present but did not sign it" } else { "" }
    )]
    MissingLink {
        /// The certificate whose issuer is missing.
        subject: String,
        /// The issuer name it names.
        issuer: String,
        /// True when a certificate with that name is present but its key did not sign it.
        same_name_found: bool,
    },
    /// The given root is not the root the chain leads to.
    #[error(
        "root: the chain leads to {chain_root:?} [{chain_sha}], which the root input does not hold"
    )]
    RootMismatch {
        /// Subject of the root the chain leads to.
        chain_root: String,
        /// Its short fingerprint.
        chain_sha: String,
    },
}

/// Why an input of [`assemble`] is unreadable ([`AssembleError::Unreadable`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unreadable {
    /// Not PEM holding certificates (with the line).
    #[error(transparent)]
    Bundle(#[from] BundleError),
    /// The key does not parse.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The certificate input holds no certificate.
    #[error("holds no certificate")]
    NoCertificate,
}

/// Orders `m` into Istio's layout (see the module docs).
pub fn assemble(m: &PkiMaterial<'_>) -> Result<Assembled, AssembleError> {
    let bundle = |part: Part, bytes: &[u8]| {
        Bundle::parse(bytes).map_err(|e| AssembleError::Unreadable {
            part,
            reason: e.into(),
        })
    };
    let cert_bundle = bundle(Part::Cert, m.cert)?;
    let mut certs = cert_bundle.certificates();
    let ca = certs.next().cloned().ok_or(AssembleError::Unreadable {
        part: Part::Cert,
        reason: Unreadable::NoCertificate,
    })?;
    if !ca.is_ca() {
        return Err(AssembleError::NotCa {
            subject: ca.subject().to_owned(),
        });
    }
    let key = PrivateKey::from_pem(m.key).map_err(|e| AssembleError::Unreadable {
        part: Part::Key,
        reason: e.into(),
    })?;
    key.check_matches(&ca)
        .map_err(|reason| AssembleError::KeyMismatch {
            subject: ca.subject().to_owned(),
            reason,
        })?;
    let mut notes = Vec::new();
    let mut pool: Vec<(Part, Certificate)> = certs.map(|c| (Part::Cert, c.clone())).collect();
    if !pool.is_empty() {
        notes.push(format!(
            "the certificate input holds {} more certificate(s) after the signing CA: used as chain",
            pool.len()
        ));
    }
    let chain_input: Vec<Certificate> = match m.chain {
        Some(b) => bundle(Part::Chain, b)?.certificates().cloned().collect(),
        None => Vec::new(),
    };
    pool.extend(chain_input.iter().map(|c| (Part::Chain, c.clone())));
    let root_bundle = m.root.map(|b| bundle(Part::Root, b)).transpose()?;
    if let Some(r) = &root_bundle {
        pool.extend(r.certificates().map(|c| (Part::Root, c.clone())));
    }
    let (path, from_root) = link(&ca, &pool)?;
    let top = path.last().unwrap_or(&ca).clone();
    let root_bytes = match &root_bundle {
        Some(r) if r.certificates().any(|c| *c == top) => r.bytes().to_vec(),
        Some(_) => {
            return Err(AssembleError::RootMismatch {
                chain_root: top.subject().to_owned(),
                chain_sha: top.fingerprint().short(),
            });
        }
        None => {
            notes.push(format!(
                "root-cert.pem is the chain's last certificate, {} [{}]",
                top.subject(),
                top.fingerprint().short()
            ));
            top.to_pem().into_bytes()
        }
    };
    describe_changes(&path, &chain_input, from_root, &mut notes);
    let chain_pem: String = path.iter().map(Certificate::to_pem).collect();
    let secret = CaSecret::cacerts(
        ca.to_pem().as_bytes(),
        m.key,
        chain_pem.as_bytes(),
        &root_bytes,
    );
    Ok(Assembled {
        secret,
        path,
        notes,
    })
}

/// From `ca` up to a self-signed root through `pool`, each step checked by name and signature.
/// Returns the path (ca first) and whether the root came from the root input only.
fn link(
    ca: &Certificate,
    pool: &[(Part, Certificate)],
) -> Result<(Vec<Certificate>, bool), AssembleError> {
    let mut path = vec![ca.clone()];
    let mut from_root = false;
    while path.len() <= pool.len() + 1 {
        let cur = path.last().unwrap_or(ca);
        if cur.role() == Role::Root {
            return Ok((path, from_root));
        }
        let named: Vec<&(Part, Certificate)> = pool
            .iter()
            .filter(|(_, c)| c.subject_der() == cur.issuer_der() && !path.contains(c))
            .collect();
        let Some((part, issuer)) = named.iter().find(|(_, c)| cur.verify_signed_by(c).is_ok())
        else {
            return Err(AssembleError::MissingLink {
                subject: cur.subject().to_owned(),
                issuer: cur.issuer().to_owned(),
                same_name_found: !named.is_empty(),
            });
        };
        from_root = *part == Part::Root && issuer.role() == Role::Root;
        let issuer = issuer.clone();
        path.push(issuer);
    }
    let cur = path.last().unwrap_or(ca);
    Err(AssembleError::MissingLink {
        subject: cur.subject().to_owned(),
        issuer: cur.issuer().to_owned(),
        same_name_found: false,
    })
}

/// Notes on how the chain input differed from the written `cert-chain.pem`.
fn describe_changes(
    path: &[Certificate],
    chain_input: &[Certificate],
    from_root: bool,
    notes: &mut Vec<String>,
) {
    let above: Vec<&Certificate> = path.iter().skip(1).collect();
    let given: Vec<&Certificate> = chain_input.iter().filter(|c| above.contains(c)).collect();
    let in_order: Vec<&Certificate> = above
        .iter()
        .copied()
        .filter(|c| given.contains(c))
        .collect();
    if given.len() > 1 && given != in_order {
        let reversed: Vec<&Certificate> = in_order.iter().rev().copied().collect();
        notes.push(if given == reversed {
            "the chain was root-first: reordered issuer-by-issuer from the signing CA up".to_owned()
        } else {
            "the chain was out of order: reordered issuer-by-issuer from the signing CA up"
                .to_owned()
        });
    }
    if from_root {
        notes.push("cert-chain.pem completed with the root from the root input".to_owned());
    }
    let unused = chain_input
        .iter()
        .filter(|c| !path.contains(c))
        .map(|c| crate::verify::Named(c).to_string())
        .collect::<Vec<_>>();
    if !unused.is_empty() {
        notes.push(format!(
            "left out of cert-chain.pem, not on the path to the root: {}",
            unused.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{self, IntermediateSpec, KeyType};

    fn three_levels() -> (
        generate::Generated,
        generate::Generated,
        generate::Generated,
    ) {
        let now = time::macros::datetime!(2026-01-01 0:00 UTC);
        let (root, _) = generate::istio_ca("x", KeyType::EcP256, now).unwrap();
        let org = generate::intermediate(
            &IntermediateSpec {
                key_type: KeyType::EcP256,
                path_len: Some(1),
                ..IntermediateSpec::istio("org")
            },
            &root.issuer().unwrap(),
            now,
        )
        .unwrap();
        let cluster = generate::intermediate(
            &IntermediateSpec {
                key_type: KeyType::EcP256,
                ..IntermediateSpec::istio("cluster1")
            },
            &org.issuer().unwrap(),
            now,
        )
        .unwrap();
        (root, org, cluster)
    }

    fn pem(cs: &[&generate::Generated]) -> Vec<u8> {
        cs.iter()
            .map(|g| g.cert_pem.clone())
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn every_order_gives_the_same_secret() {
        let (root, org, cl) = three_levels();
        let key = cl.key_pem();
        type Input = (Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);
        let inputs: Vec<Input> = vec![
            (pem(&[&cl]), Some(pem(&[&org, &root])), None), // AWS PCA: issuer first, root last
            (pem(&[&cl]), Some(pem(&[&root, &org])), None), // root-first
            (pem(&[&cl]), Some(pem(&[&org])), Some(pem(&[&root]))), // Vault without the root
            (pem(&[&cl, &org]), None, Some(pem(&[&root]))), // cert file holds the chain
            (pem(&[&cl]), Some(pem(&[&root, &cl, &org])), None), // chain holds the CA too
        ];
        let mut secrets = Vec::new();
        for (cert, chain, root_in) in &inputs {
            let a = assemble(&PkiMaterial {
                cert,
                key: key.as_bytes(),
                chain: chain.as_deref(),
                root: root_in.as_deref(),
            })
            .unwrap();
            assert_eq!(a.path.len(), 3);
            secrets.push(a.secret);
        }
        for s in &secrets {
            for f in [
                "ca-cert.pem",
                "ca-key.pem",
                "cert-chain.pem",
                "root-cert.pem",
            ] {
                assert_eq!(s.file(f), secrets[0].file(f), "{f}");
            }
        }
        assert_eq!(
            secrets[0].file("cert-chain.pem"),
            Some(cl.cert_chain_pem().as_bytes())
        );
    }

    #[test]
    fn notes_say_what_changed() {
        let (root, org, cl) = three_levels();
        let key = cl.key_pem();
        let rootfirst = pem(&[&root, &org]);
        let a = assemble(&PkiMaterial {
            cert: cl.cert_pem.as_bytes(),
            key: key.as_bytes(),
            chain: Some(&rootfirst),
            root: None,
        })
        .unwrap();
        assert!(
            a.notes.iter().any(|n| n.contains("root-first")),
            "{:?}",
            a.notes
        );
        let orgonly = pem(&[&org]);
        let rootonly = pem(&[&root]);
        let a = assemble(&PkiMaterial {
            cert: cl.cert_pem.as_bytes(),
            key: key.as_bytes(),
            chain: Some(&orgonly),
            root: Some(&rootonly),
        })
        .unwrap();
        assert!(
            a.notes.iter().any(|n| n.contains("completed")),
            "{:?}",
            a.notes
        );
        assert_eq!(a.secret.file("root-cert.pem"), Some(&rootonly[..]));
    }

    #[test]
    fn a_broken_chain_is_refused_by_name() {
        let (root, org, cl) = three_levels();
        let key = cl.key_pem();
        let rootonly = pem(&[&root]);
        let e = assemble(&PkiMaterial {
            cert: cl.cert_pem.as_bytes(),
            key: key.as_bytes(),
            chain: Some(&rootonly),
            root: None,
        })
        .unwrap_err();
        assert!(
            matches!(&e, AssembleError::MissingLink { subject, .. } if subject == cl.certificate.subject()),
            "{e}"
        );
        assert!(e.to_string().contains("L=org"), "{e}");
        // Without the root anywhere, the organisation CA's issuer is the missing link.
        let orgonly = pem(&[&org]);
        let e = assemble(&PkiMaterial {
            cert: cl.cert_pem.as_bytes(),
            key: key.as_bytes(),
            chain: Some(&orgonly),
            root: None,
        })
        .unwrap_err();
        assert!(
            matches!(&e, AssembleError::MissingLink { subject, .. } if subject == org.certificate.subject()),
            "{e}"
        );
        // Another root than the chain's.
        let (other, _) = generate::istio_ca(
            "y",
            KeyType::EcP256,
            time::macros::datetime!(2026-01-01 0:00 UTC),
        )
        .unwrap();
        let full = pem(&[&org, &root]);
        let e = assemble(&PkiMaterial {
            cert: cl.cert_pem.as_bytes(),
            key: key.as_bytes(),
            chain: Some(&full),
            root: Some(other.cert_pem.as_bytes()),
        })
        .unwrap_err();
        assert!(matches!(e, AssembleError::RootMismatch { .. }), "{e}");
        // A key of another CA.
        let okey = org.key_pem();
        let e = assemble(&PkiMaterial {
            cert: cl.cert_pem.as_bytes(),
            key: okey.as_bytes(),
            chain: Some(&full),
            root: None,
        })
        .unwrap_err();
        assert!(matches!(e, AssembleError::KeyMismatch { .. }), "{e}");
        assert!(!e.to_string().contains("PRIVATE"));
    }
}
