//! Key generation, and the ring-backed signer meshtrust hands to rcgen.
//!
//! ring signs with RSA (2048 to 4096 bits), ECDSA P-256/P-384 and Ed25519 but cannot generate
//! RSA keys; RSA generation goes through aws-lc-rs behind the `rsa-keygen` feature. Signing
//! always uses ring, through this module's own [`Signer`] rather than rcgen's `KeyPair`, so
//! that the only copy of the PKCS#8 document meshtrust makes is the zeroizing one inside
//! [`PrivateKey`].

use ring::rand::SystemRandom;
use ring::signature::{self as rs, KeyPair as _};

use crate::key::PrivateKey;
use crate::signature::KeyAlgorithm;

use super::{GenerateError, KeyType};

/// Generates a fresh private key of the given type (PKCS#8 inside).
pub(super) fn generate(key_type: KeyType) -> Result<PrivateKey, GenerateError> {
    let rng = SystemRandom::new();
    let failed = |what: &str| GenerateError::KeyGeneration {
        key_type,
        reason: what.to_owned(),
    };
    let doc = match key_type {
        KeyType::EcP256 => {
            rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .map_err(|_| failed("ring could not generate the key"))?
        }
        KeyType::EcP384 => {
            rs::EcdsaKeyPair::generate_pkcs8(&rs::ECDSA_P384_SHA384_ASN1_SIGNING, &rng)
                .map_err(|_| failed("ring could not generate the key"))?
        }
        KeyType::Ed25519 => rs::Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| failed("ring could not generate the key"))?,
        KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => return generate_rsa(key_type),
    };
    PrivateKey::from_pkcs8_der(doc.as_ref()).map_err(GenerateError::Key)
}

#[cfg(feature = "rsa-keygen")]
fn generate_rsa(key_type: KeyType) -> Result<PrivateKey, GenerateError> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::encoding::Pkcs8V1Der;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    let size = match key_type {
        KeyType::Rsa2048 => KeySize::Rsa2048,
        KeyType::Rsa3072 => KeySize::Rsa3072,
        _ => KeySize::Rsa4096,
    };
    let failed = |what: &str| GenerateError::KeyGeneration {
        key_type,
        reason: what.to_owned(),
    };
    let pair = KeyPair::generate(size).map_err(|_| failed("aws-lc-rs could not generate it"))?;
    // aws-lc-rs zeroizes this buffer when it is dropped.
    let der: Pkcs8V1Der<'static> = pair
        .as_der()
        .map_err(|_| failed("aws-lc-rs could not export it as PKCS#8"))?;
    PrivateKey::from_pkcs8_der(der.as_ref()).map_err(GenerateError::Key)
}

#[cfg(not(feature = "rsa-keygen"))]
fn generate_rsa(key_type: KeyType) -> Result<PrivateKey, GenerateError> {
    Err(GenerateError::RsaKeygenUnavailable { key_type })
}

enum Kind {
    Rsa(rs::RsaKeyPair),
    Ec(rs::EcdsaKeyPair),
    Ed(rs::Ed25519KeyPair),
}

/// A private key loaded into ring, usable by rcgen as subject key and as issuer key.
pub(super) struct Signer {
    kind: Kind,
    alg: &'static rcgen::SignatureAlgorithm,
    rng: SystemRandom,
}

impl Signer {
    /// Loads a key. The signature algorithm follows the key: RSA signs with SHA-256 (Istio's
    /// `default_md = sha256`, Go's choice), P-256 with SHA-256, P-384 with SHA-384 (ring has
    /// no P-384/SHA-256 signer; Go makes the same choice), Ed25519 pure.
    pub(super) fn new(key: &PrivateKey) -> Result<Signer, GenerateError> {
        let rng = SystemRandom::new();
        let pkcs8 = key.pkcs8_der();
        let rejected = |e: ring::error::KeyRejected| GenerateError::UnsupportedSigningKey {
            algorithm: key.algorithm().to_string(),
            reason: format!("ring rejects it: {e}"),
        };
        let (kind, alg) = match key.algorithm() {
            KeyAlgorithm::Rsa { .. } => (
                Kind::Rsa(rs::RsaKeyPair::from_pkcs8(&pkcs8).map_err(rejected)?),
                &rcgen::PKCS_RSA_SHA256,
            ),
            KeyAlgorithm::EcP256 => (
                Kind::Ec(
                    rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8, &rng)
                        .map_err(rejected)?,
                ),
                &rcgen::PKCS_ECDSA_P256_SHA256,
            ),
            KeyAlgorithm::EcP384 => (
                Kind::Ec(
                    rs::EcdsaKeyPair::from_pkcs8(&rs::ECDSA_P384_SHA384_ASN1_SIGNING, &pkcs8, &rng)
                        .map_err(rejected)?,
                ),
                &rcgen::PKCS_ECDSA_P384_SHA384,
            ),
            KeyAlgorithm::Ed25519 => (
                Kind::Ed(rs::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(rejected)?),
                &rcgen::PKCS_ED25519,
            ),
            other => {
                return Err(GenerateError::UnsupportedSigningKey {
                    algorithm: other.to_string(),
                    reason: "meshtrust signs with RSA, ECDSA P-256/P-384 and Ed25519 keys only"
                        .to_owned(),
                });
            }
        };
        Ok(Signer { kind, alg, rng })
    }

    /// The subjectPublicKey bits as they appear in a certificate.
    pub(super) fn public_key_bits(&self) -> &[u8] {
        match &self.kind {
            Kind::Rsa(k) => k.public_key().as_ref(),
            Kind::Ec(k) => k.public_key().as_ref(),
            Kind::Ed(k) => k.public_key().as_ref(),
        }
    }
}

impl rcgen::PublicKeyData for Signer {
    fn der_bytes(&self) -> &[u8] {
        self.public_key_bits()
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

impl rcgen::SigningKey for Signer {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match &self.kind {
            Kind::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&rs::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                    .map_err(|_| rcgen::Error::RingUnspecified)?;
                Ok(sig)
            }
            Kind::Ec(k) => k
                .sign(&self.rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| rcgen::Error::RingUnspecified),
            Kind::Ed(k) => Ok(k.sign(msg).as_ref().to_vec()),
        }
    }
}

/// The public key of an existing certificate, as rcgen's subject key: what a cross-signed
/// certificate certifies without meshtrust ever holding the subject's private key.
pub(super) struct ForeignKey {
    bits: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl ForeignKey {
    /// The subjectPublicKey of `cert`, for the key types meshtrust signs with. The caller
    /// compares the written subjectPublicKeyInfo with `cert`'s byte for byte.
    pub(super) fn of(cert: &crate::cert::Certificate) -> Result<ForeignKey, GenerateError> {
        let alg = match cert.key_algorithm() {
            KeyAlgorithm::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
            KeyAlgorithm::EcP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
            other => {
                return Err(GenerateError::UnsupportedSigningKey {
                    algorithm: other.to_string(),
                    reason: "meshtrust certifies RSA, ECDSA P-256/P-384 and Ed25519 keys only"
                        .to_owned(),
                });
            }
        };
        Ok(ForeignKey {
            bits: cert.public_key().to_vec(),
            alg,
        })
    }
}

impl rcgen::PublicKeyData for ForeignKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}
