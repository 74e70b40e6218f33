//! [`GenerateError`]: why nothing was generated.

use time::OffsetDateTime;

use super::Attribute;
use crate::key::{KeyError, KeyType};
use crate::text::rfc3339;

fn rfc3339_ref(t: &OffsetDateTime) -> String {
    rfc3339(*t)
}

fn path_len_rule(limit: &u32, depth: &u32) -> String {
    match (*limit, *depth) {
        (0, 0) => "it may not sign intermediate CAs".to_owned(),
        (l, d) if l <= d => format!(
            "it allows {l} intermediate CA(s) below it and the new one would be number {}",
            d + 1
        ),
        (l, d) => format!("the new intermediate needs a pathlen below {}", l - d),
    }
}

/// Why generation failed. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// An RSA key type in a build without the `rsa-keygen` feature.
    #[error(
        "generating {key_type} keys needs meshtrust's `rsa-keygen` feature (ring cannot \
         generate RSA keys); rebuild with it, or use ec-p256, ec-p384 or ed25519"
    )]
    RsaKeygenUnavailable {
        /// The requested type.
        key_type: KeyType,
    },
    /// The key generator failed.
    #[error("could not generate a {key_type} key: {reason}")]
    KeyGeneration {
        /// The requested type.
        key_type: KeyType,
        /// What failed.
        reason: String,
    },
    /// A key ring cannot sign with (e.g. RSA above 4096 bits, P-521).
    #[error("cannot sign with a {algorithm} key: {reason}")]
    UnsupportedSigningKey {
        /// The key's algorithm.
        algorithm: String,
        /// Why.
        reason: String,
    },
    /// A key problem (e.g. the CA key does not match the CA certificate).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The issuer certificate is not a CA.
    #[error("issuer {subject:?} is not a CA (basicConstraints cA is not set)")]
    NotCa {
        /// Issuer subject.
        subject: String,
    },
    /// The issuer's keyUsage lacks keyCertSign.
    #[error("issuer {subject:?} has a keyUsage without keyCertSign")]
    NoKeyCertSign {
        /// Issuer subject.
        subject: String,
    },
    /// The issuer's pathLenConstraint forbids the requested intermediate.
    #[error(
        "{subject:?} has pathLenConstraint {issuer_path_len}: {}",
        path_len_rule(.issuer_path_len, .depth)
    )]
    PathLen {
        /// Subject of the constraining CA.
        subject: String,
        /// Its constraint.
        issuer_path_len: u32,
        /// How far above the new CA it stands (0 = the issuer itself).
        depth: u32,
    },
    /// A certificate of the issuer chain has expired (or expires) at `now`.
    #[error("{subject:?} expired at {}; nothing valid can be signed under it", rfc3339_ref(.not_after))]
    IssuerExpired {
        /// Subject of the expired chain certificate.
        subject: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
    },
    /// The issuer's subject cannot be rebuilt byte for byte by rcgen.
    #[error("the issuer's subject name cannot be reproduced exactly: {reason}")]
    UnrepresentableIssuerName {
        /// What rcgen cannot express.
        reason: String,
    },
    /// After signing, the issuer field differs from the issuer's subject bytes.
    #[error(
        "the signed certificate's issuer name ({actual}) differs from the issuer's subject \
         ({expected}) at the byte level; refusing it"
    )]
    IssuerNameMismatch {
        /// The issuer's subject (hex DER).
        expected: String,
        /// What rcgen wrote (hex DER).
        actual: String,
    },
    /// A certificate of the supplied chain does not sign the one before it.
    #[error(
        "chain certificate {index} ({subject:?}) did not issue the certificate before it: {reason}"
    )]
    BrokenChain {
        /// Index in the chain (0 = the issuer's own issuer).
        index: usize,
        /// Its subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// A subject attribute is out of range or has invalid characters.
    #[error("invalid {attribute} in the subject: {reason}")]
    InvalidName {
        /// The attribute.
        attribute: Attribute,
        /// Why.
        reason: String,
    },
    /// Another spec field is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// rcgen refused to build the certificate.
    #[error("rcgen could not build the certificate: {0}")]
    Rcgen(String),
    /// The generated certificate failed meshtrust's own checks (a bug; nothing is written).
    #[error("the generated certificate fails its self-check: {0}")]
    SelfCheck(String),
    /// Files for an Istio CA directory need a root bundle, and none is known.
    #[error(
        "no trust bundle (root-cert.pem) is known for this issuer; give its chain up to the root"
    )]
    NoTrustBundle,
    /// A cluster name that cannot be a directory name.
    #[error("invalid cluster name {name:?}: {reason}")]
    InvalidClusterName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}
