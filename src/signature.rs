//! Signature and public-key algorithms of X.509 certificates, and signature checks with ring.
//!
//! Supported: RSA PKCS#1 v1.5 with SHA-256/384/512 (2048 to 8192-bit keys), RSA-PSS with
//! SHA-256/384/512 (MGF1 with the same hash, salt length = hash length, trailer field 1),
//! ECDSA P-256 and P-384 with SHA-256 or SHA-384, and Ed25519. Anything else (SHA-1, MD5,
//! RSA under 2048 bits, P-521, non-standard PSS parameters) is reported as unsupported.

use std::fmt;

use serde::Serialize;

use crate::derwalk::{self, Walker, tag};

use crate::oid;

/// A hash function used inside a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl Hash {
    fn from_oid(oid: &[u8]) -> Option<Hash> {
        match oid {
            oid::SHA256 => Some(Hash::Sha256),
            oid::SHA384 => Some(Hash::Sha384),
            oid::SHA512 => Some(Hash::Sha512),
            _ => None,
        }
    }

    fn len(self) -> u32 {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }
}

/// The signature algorithm of a certificate (its `signatureAlgorithm` field).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSA PKCS#1 v1.5 with the given hash.
    RsaPkcs1(Hash),
    /// RSASSA-PSS with the given hash for message, MGF1 and salt length.
    RsaPss(Hash),
    /// ECDSA with the given hash (the curve comes from the key).
    Ecdsa(Hash),
    /// Ed25519 (pure).
    Ed25519,
    /// Anything else: the dotted OID and, when recognised, a name (e.g. `sha1WithRSAEncryption`).
    Unsupported {
        /// The algorithm OID in dotted form.
        oid: String,
        /// Why it is not supported.
        reason: &'static str,
    },
}

impl SignatureAlgorithm {
    /// Parses an `AlgorithmIdentifier` TLV value.
    pub(crate) fn from_algorithm_identifier(value: &[u8]) -> Result<Self, derwalk::DerError> {
        let mut w = Walker::new(value);
        let alg = w.expect(tag::OID, "expected algorithm OID")?;
        let params = if w.is_empty() { None } else { Some(w.any()?) };
        w.finish("trailing data in AlgorithmIdentifier")?;
        let null_or_absent = params
            .as_ref()
            .is_none_or(|p| p.tag == tag::NULL && p.value.is_empty());
        let unsupported = |reason| SignatureAlgorithm::Unsupported {
            oid: oid::dotted(alg.value),
            reason,
        };
        Ok(match alg.value {
            oid::SHA256_WITH_RSA | oid::SHA384_WITH_RSA | oid::SHA512_WITH_RSA => {
                // RFC 4055: the parameters MUST be NULL; Go and OpenSSL tolerate their absence.
                if !null_or_absent {
                    return Ok(unsupported("RSA PKCS#1 parameters must be NULL"));
                }
                SignatureAlgorithm::RsaPkcs1(match alg.value {
                    oid::SHA256_WITH_RSA => Hash::Sha256,
                    oid::SHA384_WITH_RSA => Hash::Sha384,
                    _ => Hash::Sha512,
                })
            }
            oid::ECDSA_SHA256 | oid::ECDSA_SHA384 | oid::ECDSA_SHA512 => {
                if params.is_some() {
                    return Ok(unsupported("ECDSA signature parameters must be absent"));
                }
                SignatureAlgorithm::Ecdsa(match alg.value {
                    oid::ECDSA_SHA256 => Hash::Sha256,
                    oid::ECDSA_SHA384 => Hash::Sha384,
                    _ => Hash::Sha512,
                })
            }
            oid::ED25519 => {
                if params.is_some() {
                    return Ok(unsupported("Ed25519 parameters must be absent"));
                }
                SignatureAlgorithm::Ed25519
            }
            oid::RSA_PSS => match params {
                Some(p) if p.tag == tag::SEQUENCE => match pss_hash(p.value) {
                    Some(h) => SignatureAlgorithm::RsaPss(h),
                    None => unsupported(
                        "RSA-PSS parameters other than hash = MGF1 hash, salt = hash length",
                    ),
                },
                _ => unsupported("RSA-PSS without parameters"),
            },
            oid::SHA1_WITH_RSA => unsupported("sha1WithRSAEncryption (SHA-1 is not accepted)"),
            _ => unsupported("unknown signature algorithm"),
        })
    }

    /// A short human name, e.g. `sha256WithRSAEncryption`, `ecdsa-with-SHA256`, `Ed25519`.
    pub fn name(&self) -> String {
        let h = |h: &Hash| match h {
            Hash::Sha256 => "256",
            Hash::Sha384 => "384",
            Hash::Sha512 => "512",
        };
        match self {
            SignatureAlgorithm::RsaPkcs1(x) => format!("sha{}WithRSAEncryption", h(x)),
            SignatureAlgorithm::RsaPss(x) => format!("RSASSA-PSS-SHA{}", h(x)),
            SignatureAlgorithm::Ecdsa(x) => format!("ecdsa-with-SHA{}", h(x)),
            SignatureAlgorithm::Ed25519 => "Ed25519".to_owned(),
            SignatureAlgorithm::Unsupported { oid, .. } => oid.clone(),
        }
    }
}

impl fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Parses RSASSA-PSS-params and returns the hash when the parameters are the standard ones.
fn pss_hash(params: &[u8]) -> Option<Hash> {
    let mut w = Walker::new(params);
    // hashAlgorithm [0] (DEFAULT sha1, which we refuse), maskGenAlgorithm [1], saltLength [2],
    // trailerField [3] (DEFAULT 1).
    let hash_alg = w.optional(tag::explicit(0)).ok()??;
    let hash = alg_hash(hash_alg.walker().expect(tag::SEQUENCE, "").ok()?.value)?;
    let mgf = w.optional(tag::explicit(1)).ok()??;
    let mut mw = mgf.walker();
    let mgf_seq = mw.expect(tag::SEQUENCE, "").ok()?;
    let mut m = mgf_seq.walker();
    if m.expect(tag::OID, "").ok()?.value != oid::MGF1 {
        return None;
    }
    let inner = m.expect(tag::SEQUENCE, "").ok()?;
    if alg_hash(inner.value)? != hash {
        return None;
    }
    let salt = w.optional(tag::explicit(2)).ok()??;
    let salt_len = derwalk::small_uint(&salt.walker().expect(tag::INTEGER, "").ok()?).ok()?;
    if salt_len != hash.len() {
        return None;
    }
    if let Some(trailer) = w.optional(tag::explicit(3)).ok()? {
        if derwalk::small_uint(&trailer.walker().expect(tag::INTEGER, "").ok()?).ok()? != 1 {
            return None;
        }
    }
    w.finish("").ok()?;
    Some(hash)
}

/// The hash named by the content of a hash `AlgorithmIdentifier` SEQUENCE.
fn alg_hash(content: &[u8]) -> Option<Hash> {
    let mut a = Walker::new(content);
    let h = Hash::from_oid(a.expect(tag::OID, "").ok()?.value)?;
    // Parameters: absent or NULL.
    if let Some(p) = a.optional(tag::NULL).ok()? {
        if !p.value.is_empty() {
            return None;
        }
    }
    a.finish("").ok()?;
    Some(h)
}

/// The algorithm and size of a certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KeyAlgorithm {
    /// RSA with this modulus size in bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
    /// ECDSA on NIST P-521 (parsed, but ring cannot verify with it).
    EcP521,
    /// Ed25519.
    Ed25519,
    /// Any other key type.
    Unknown,
}

impl KeyAlgorithm {
    /// Size in bits: the RSA modulus, or the curve size.
    pub fn bits(&self) -> u32 {
        match self {
            KeyAlgorithm::Rsa { bits } => *bits,
            KeyAlgorithm::EcP256 | KeyAlgorithm::Ed25519 => 256,
            KeyAlgorithm::EcP384 => 384,
            KeyAlgorithm::EcP521 => 521,
            KeyAlgorithm::Unknown => 0,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyAlgorithm::Rsa { bits } => write!(f, "RSA {bits}"),
            KeyAlgorithm::EcP256 => f.write_str("ECDSA P-256"),
            KeyAlgorithm::EcP384 => f.write_str("ECDSA P-384"),
            KeyAlgorithm::EcP521 => f.write_str("ECDSA P-521"),
            KeyAlgorithm::Ed25519 => f.write_str("Ed25519"),
            KeyAlgorithm::Unknown => f.write_str("unknown"),
        }
    }
}

/// Parses a SubjectPublicKeyInfo TLV value: the algorithm and the key bytes' span (relative to
/// `base`, the offset of `value` in the certificate).
pub(crate) fn parse_spki(
    value: &[u8],
    base: usize,
) -> Result<(KeyAlgorithm, std::ops::Range<usize>), derwalk::DerError> {
    let spki = derwalk::Tlv {
        tag: tag::SEQUENCE,
        start: base,
        value_start: base,
        value,
    };
    let mut w = spki.walker();
    let alg = w.expect(tag::SEQUENCE, "expected SPKI AlgorithmIdentifier")?;
    let key = w.expect(tag::BIT_STRING, "expected SPKI subjectPublicKey BIT STRING")?;
    w.finish("trailing data in SubjectPublicKeyInfo")?;
    let key_bytes = derwalk::bit_string_octets(&key)?;
    let span = derwalk::bit_string_span(&key);
    let mut a = alg.walker();
    let oid = a.expect(tag::OID, "expected key algorithm OID")?;
    let params = if a.is_empty() { None } else { Some(a.any()?) };
    a.finish("trailing data in key AlgorithmIdentifier")?;
    let algorithm = match oid.value {
        oid::RSA_ENCRYPTION => KeyAlgorithm::Rsa {
            bits: rsa_modulus_bits(key_bytes)?,
        },
        oid::EC_PUBLIC_KEY => match params.map(|p| (p.tag, p.value)) {
            Some((tag::OID, oid::P256)) => KeyAlgorithm::EcP256,
            Some((tag::OID, oid::P384)) => KeyAlgorithm::EcP384,
            Some((tag::OID, oid::P521)) => KeyAlgorithm::EcP521,
            _ => KeyAlgorithm::Unknown,
        },
        oid::ED25519 => KeyAlgorithm::Ed25519,
        _ => KeyAlgorithm::Unknown,
    };
    Ok((algorithm, span))
}

/// Size in bits of the modulus of a PKCS#1 RSAPublicKey.
pub(crate) fn rsa_modulus_bits(rsa_public_key: &[u8]) -> Result<u32, derwalk::DerError> {
    let (n, _) = rsa_public_components(rsa_public_key)?;
    let n = strip_leading_zeros(n);
    Ok(match n.first() {
        None => 0,
        Some(&top) => (n.len() as u32 - 1) * 8 + (8 - top.leading_zeros()),
    })
}

/// The modulus and public exponent of a PKCS#1 RSAPublicKey.
pub(crate) fn rsa_public_components(
    rsa_public_key: &[u8],
) -> Result<(&[u8], &[u8]), derwalk::DerError> {
    let mut w = Walker::new(rsa_public_key);
    let seq = w.expect(tag::SEQUENCE, "expected RSAPublicKey SEQUENCE")?;
    w.finish("trailing data after RSAPublicKey")?;
    let mut s = seq.walker();
    let n = s.expect(tag::INTEGER, "expected RSA modulus")?;
    let e = s.expect(tag::INTEGER, "expected RSA exponent")?;
    s.finish("trailing data in RSAPublicKey")?;
    Ok((derwalk::integer(&n)?, derwalk::integer(&e)?))
}

pub(crate) fn strip_leading_zeros(mut s: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = s {
        s = rest;
    }
    s
}

/// Why a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The algorithm, key type or key size is not supported.
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
    /// The signature algorithm does not fit the issuer's key (e.g. ECDSA with an RSA key).
    #[error("signature algorithm {signature} does not match the issuer key type {key}")]
    KeyMismatch {
        /// The signature algorithm.
        signature: String,
        /// The issuer's key.
        key: String,
    },
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

/// Checks `signature` over `message` with a public key of type `key` (the BIT STRING content
/// of the issuer's SubjectPublicKeyInfo).
pub(crate) fn verify(
    alg: &SignatureAlgorithm,
    key: KeyAlgorithm,
    key_bytes: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    use ring::signature as rs;
    let mismatch = || SignatureError::KeyMismatch {
        signature: alg.name(),
        key: key.to_string(),
    };
    let ring_alg: &dyn rs::VerificationAlgorithm = match (alg, key) {
        (SignatureAlgorithm::Unsupported { oid, reason }, _) => {
            return Err(SignatureError::Unsupported(format!("{oid}: {reason}")));
        }
        (
            SignatureAlgorithm::RsaPkcs1(_) | SignatureAlgorithm::RsaPss(_),
            KeyAlgorithm::Rsa { bits },
        ) => {
            if !(2048..=8192).contains(&bits) {
                return Err(SignatureError::Unsupported(format!(
                    "RSA key of {bits} bits (2048 to 8192 supported)"
                )));
            }
            match alg {
                SignatureAlgorithm::RsaPkcs1(Hash::Sha256) => &rs::RSA_PKCS1_2048_8192_SHA256,
                SignatureAlgorithm::RsaPkcs1(Hash::Sha384) => &rs::RSA_PKCS1_2048_8192_SHA384,
                SignatureAlgorithm::RsaPkcs1(Hash::Sha512) => &rs::RSA_PKCS1_2048_8192_SHA512,
                SignatureAlgorithm::RsaPss(Hash::Sha256) => &rs::RSA_PSS_2048_8192_SHA256,
                SignatureAlgorithm::RsaPss(Hash::Sha384) => &rs::RSA_PSS_2048_8192_SHA384,
                _ => &rs::RSA_PSS_2048_8192_SHA512,
            }
        }
        (SignatureAlgorithm::Ecdsa(h), KeyAlgorithm::EcP256 | KeyAlgorithm::EcP384) => {
            match (key, h) {
                (KeyAlgorithm::EcP256, Hash::Sha256) => &rs::ECDSA_P256_SHA256_ASN1,
                (KeyAlgorithm::EcP256, Hash::Sha384) => &rs::ECDSA_P256_SHA384_ASN1,
                (KeyAlgorithm::EcP384, Hash::Sha256) => &rs::ECDSA_P384_SHA256_ASN1,
                (KeyAlgorithm::EcP384, Hash::Sha384) => &rs::ECDSA_P384_SHA384_ASN1,
                _ => {
                    return Err(SignatureError::Unsupported(format!(
                        "{} with {key}",
                        alg.name()
                    )));
                }
            }
        }
        (SignatureAlgorithm::Ecdsa(_), KeyAlgorithm::EcP521) => {
            return Err(SignatureError::Unsupported("ECDSA P-521".to_owned()));
        }
        (SignatureAlgorithm::Ed25519, KeyAlgorithm::Ed25519) => &rs::ED25519,
        (_, KeyAlgorithm::Unknown) => {
            return Err(SignatureError::Unsupported(
                "unknown public key algorithm".to_owned(),
            ));
        }
        _ => return Err(mismatch()),
    };
    rs::UnparsedPublicKey::new(ring_alg, key_bytes)
        .verify(message, signature)
        .map_err(|_| SignatureError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_algorithm_identifiers() {
        // sha256WithRSAEncryption, NULL
        let a = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
        ];
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier(&a).unwrap(),
            SignatureAlgorithm::RsaPkcs1(Hash::Sha256)
        );
        // ecdsa-with-SHA384, no params
        let a = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier(&a).unwrap(),
            SignatureAlgorithm::Ecdsa(Hash::Sha384)
        );
        // sha1WithRSAEncryption
        let a = [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
        ];
        assert!(matches!(
            SignatureAlgorithm::from_algorithm_identifier(&a).unwrap(),
            SignatureAlgorithm::Unsupported { .. }
        ));
    }

    #[test]
    fn parses_standard_pss_parameters() {
        // RSASSA-PSS, SHA-256, MGF1-SHA-256, salt 32 (as OpenSSL writes with -sigopt rsa_padding_mode:pss).
        let params = [
            0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
            0x04, 0x02, 0x01, 0x05, 0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48,
            0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
            0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
        ];
        let mut a = vec![
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a,
        ];
        a.extend_from_slice(&params);
        assert_eq!(
            SignatureAlgorithm::from_algorithm_identifier(&a).unwrap(),
            SignatureAlgorithm::RsaPss(Hash::Sha256)
        );
        // Salt 20 is refused.
        let mut bad = a.clone();
        let n = bad.len();
        bad[n - 1] = 20;
        assert!(matches!(
            SignatureAlgorithm::from_algorithm_identifier(&bad).unwrap(),
            SignatureAlgorithm::Unsupported { .. }
        ));
    }
}
