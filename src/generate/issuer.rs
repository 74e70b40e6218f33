//! [`Issuer`]: a CA certificate with its key (and the chain above it), ready to sign.

use std::fmt;

use time::OffsetDateTime;

use super::signer::Signer;
use super::{GenerateError, Warning, name};
use crate::cert::{Certificate, KeyUsage};
use crate::key::PrivateKey;

/// A CA that can sign: its certificate, its key, the chain above it and the trust bundle its
/// CA directories hand out.
pub struct Issuer {
    pub(super) certificate: Certificate,
    pub(super) key: PrivateKey,
    pub(super) chain: Vec<Certificate>,
    pub(super) trust_bundle: Vec<u8>,
    pub(super) signer: Signer,
    pub(super) name: rcgen::DistinguishedName,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("subject", &self.certificate.subject())
            .field("sha256", &self.certificate.fingerprint().to_string())
            .field("key", &self.key)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// A CA from its certificate and key (e.g. read from `root-cert.pem` and `root-key.pem`).
    ///
    /// Checks that the key belongs to the certificate, that it is a CA allowed to sign
    /// certificates, that ring can sign with the key, and that its subject can be written
    /// back byte for byte as the issuer of what it signs. A self-signed certificate is its own
    /// trust bundle; for an intermediate, add [`Issuer::with_chain`].
    pub fn new(certificate: Certificate, key: PrivateKey) -> Result<Issuer, GenerateError> {
        key.check_matches(&certificate)?;
        if !certificate.is_ca() {
            return Err(GenerateError::NotCa {
                subject: certificate.subject().to_owned(),
            });
        }
        if certificate
            .key_usage()
            .is_some_and(|ku| !ku.contains(KeyUsage::KEY_CERT_SIGN))
        {
            return Err(GenerateError::NoKeyCertSign {
                subject: certificate.subject().to_owned(),
            });
        }
        let signer = Signer::new(&key)?;
        let name = name::rcgen_from_der(certificate.subject_der())?;
        let trust_bundle = if certificate.role() == crate::cert::Role::Root {
            certificate.to_pem().into_bytes()
        } else {
            Vec::new()
        };
        Ok(Issuer {
            certificate,
            key,
            chain: Vec::new(),
            trust_bundle,
            signer,
            name,
        })
    }

    /// Adds the certificates above this CA (its issuer first, up to the root). Each must have
    /// issued the one before it (name and signature are checked). When the chain ends in a
    /// root and no trust bundle was set, the root becomes the trust bundle.
    pub fn with_chain(mut self, chain: Vec<Certificate>) -> Result<Issuer, GenerateError> {
        let mut below = &self.certificate;
        for (index, c) in chain.iter().enumerate() {
            let broken = |reason: String| GenerateError::BrokenChain {
                index,
                subject: c.subject().to_owned(),
                reason,
            };
            if below.issuer_der() != c.subject_der() {
                return Err(broken(format!(
                    "its subject is not the issuer name of {:?}",
                    below.subject()
                )));
            }
            below
                .verify_signed_by(c)
                .map_err(|e| broken(format!("signature check failed: {e}")))?;
            below = c;
        }
        if self.trust_bundle.is_empty() {
            if let Some(last) = chain.last().filter(|c| c.role() == crate::cert::Role::Root) {
                self.trust_bundle = last.to_pem().into_bytes();
            }
        }
        self.chain = chain;
        Ok(self)
    }

    /// Sets the exact bytes of the trust bundle (`root-cert.pem`) that CA directories made
    /// under this issuer get; e.g. the original file, byte for byte, even with several roots.
    pub fn with_trust_bundle(mut self, bytes: Vec<u8>) -> Issuer {
        self.trust_bundle = bytes;
        self
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The certificates above it.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The trust bundle bytes (empty when unknown).
    pub fn trust_bundle(&self) -> &[u8] {
        &self.trust_bundle
    }

    /// The certificate of the issuer chain that expires first (the limit of what it signs).
    pub fn first_expiring(&self) -> &Certificate {
        let mut first = &self.certificate;
        for c in &self.chain {
            if c.not_after() < first.not_after() {
                first = c;
            }
        }
        first
    }

    /// Checks validity at `now` and returns the notAfter limit.
    pub(super) fn limit(
        &self,
        now: OffsetDateTime,
        warnings: &mut Vec<Warning>,
    ) -> Result<OffsetDateTime, GenerateError> {
        let first = self.first_expiring();
        if first.not_after() <= now {
            return Err(GenerateError::IssuerExpired {
                subject: first.subject().to_owned(),
                not_after: first.not_after(),
            });
        }
        if self.certificate.not_before() > now {
            warnings.push(Warning::IssuerNotYetValid {
                issuer: self.certificate.subject().to_owned(),
                not_before: self.certificate.not_before(),
            });
        }
        Ok(first.not_after())
    }

    pub(super) fn rcgen_issuer(&self) -> rcgen::Issuer<'_, &Signer> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = self.name.clone();
        rcgen::Issuer::new(params, &self.signer)
    }
}
