//! Why a certificate does not verify: one typed reason per failed candidate path.

use std::fmt;

use crate::cert::{Certificate, SpiffeId};
use crate::signature::SignatureError;

use super::RequiredEku;

/// Names a certificate in messages: its subject (or, for Istio's empty-subject workload
/// leaves, its URI / DNS SANs) and the first 8 bytes of its SHA-256 fingerprint.
#[derive(Clone, Copy)]
pub struct Named<'a>(pub &'a Certificate);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        if !c.subject().is_empty() {
            write!(f, "\"{}\"", c.subject())?;
        } else if let Some(uri) = c.san_uris().first() {
            write!(f, "<{uri}>")?;
        } else if let Some(dns) = c.san_dns_names().first() {
            write!(f, "<DNS:{dns}>")?;
        } else {
            f.write_str("<empty subject>")?;
        }
        write!(f, " [sha256:{}]", c.fingerprint().short())
    }
}

pub(crate) use crate::text::rfc3339_unix as rfc3339;

fn validity(c: &Certificate) -> String {
    format!(
        "valid {} to {}",
        rfc3339(c.not_before_unix()),
        rfc3339(c.not_after_unix())
    )
}

/// Why one candidate path failed. Every variant names the certificate(s) concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// No certificate among the roots and intermediates has the issuer Name of `cert`.
    #[error("issuer {:?} of {} is in neither the roots nor the intermediates", .cert.issuer(), Named(.cert))]
    UnknownIssuer {
        /// The certificate whose issuer is missing.
        cert: Certificate,
    },
    /// `issuer` has the right name, but its key does not verify the signature of `cert`.
    #[error("signature of {} does not verify with the key of {}: {reason}", Named(.cert), Named(.issuer))]
    BadSignature {
        /// The signed certificate.
        cert: Certificate,
        /// The candidate issuer.
        issuer: Certificate,
        /// What ring reported (bad signature, or a key type that cannot have made it).
        reason: SignatureError,
    },
    /// The signature algorithm of `cert`, or the key of `issuer`, is not supported.
    #[error("{}: unsupported algorithm: {detail}", Named(.cert))]
    UnsupportedAlgorithm {
        /// The signed certificate.
        cert: Certificate,
        /// The candidate issuer, when the problem is its key.
        issuer: Option<Certificate>,
        /// What is unsupported.
        detail: String,
    },
    /// The outer signatureAlgorithm differs from the one inside tbsCertificate (RFC 5280
    /// 4.1.1.2).
    #[error("{}: outer signatureAlgorithm {} differs from the one inside tbsCertificate", Named(.cert), .cert.signature_algorithm())]
    SignatureAlgorithmMismatch {
        /// The certificate.
        cert: Certificate,
    },
    /// `cert` expired before the validation time.
    #[error("{} expired at {} ({}; checked at {})", Named(.cert), rfc3339(.cert.not_after_unix()), validity(.cert), rfc3339(*.at))]
    Expired {
        /// The certificate.
        cert: Certificate,
        /// The validation time, Unix seconds.
        at: i64,
    },
    /// `cert` is not valid yet at the validation time.
    #[error("{} is not valid before {} ({}; checked at {})", Named(.cert), rfc3339(.cert.not_before_unix()), validity(.cert), rfc3339(*.at))]
    NotYetValid {
        /// The certificate.
        cert: Certificate,
        /// The validation time, Unix seconds.
        at: i64,
    },
    /// The candidate issuer is not a CA (basicConstraints absent or cA false).
    #[error("{} is not a CA ({}) and cannot issue {}", Named(.issuer), if .issuer.basic_constraints().is_some() { "basicConstraints cA is false" } else { "no basicConstraints" }, Named(.cert))]
    IssuerNotCa {
        /// The candidate issuer.
        issuer: Certificate,
        /// The certificate it would have issued.
        cert: Certificate,
    },
    /// The candidate issuer's pathLenConstraint allows fewer intermediate CAs below it than
    /// the path has.
    #[error("{} allows at most {path_len} intermediate CA(s) below it (pathLenConstraint), this path has {intermediates}", Named(.issuer))]
    PathLenExceeded {
        /// The constraining CA.
        issuer: Certificate,
        /// Its pathLenConstraint.
        path_len: u32,
        /// Intermediate CAs between it and the target.
        intermediates: usize,
    },
    /// The candidate issuer has a keyUsage extension without keyCertSign.
    #[error("{} has keyUsage {} without keyCertSign and cannot issue certificates", Named(.issuer), .issuer.key_usage().map(|k| k.names().join(",")).unwrap_or_default())]
    MissingKeyCertSign {
        /// The candidate issuer.
        issuer: Certificate,
    },
    /// `cert` has critical extensions meshtrust does not process (RFC 5280 4.2).
    #[error("{} has critical extension(s) meshtrust does not process: {}", Named(.cert), .extensions.join(", "))]
    UnknownCriticalExtension {
        /// The certificate.
        cert: Certificate,
        /// Their names or dotted OIDs.
        extensions: Vec<String>,
    },
    /// The path reached the maximum length at `cert` without a trusted root.
    #[error("the path reached {max_depth} certificates at {} without a trusted root", Named(.cert))]
    TooDeep {
        /// The last certificate of the path.
        cert: Certificate,
        /// The limit ([`super::VerifyOptions::with_max_depth`]).
        max_depth: usize,
    },
    /// The candidate issuer, or a certificate with its name and key, is already on this path
    /// (a loop of cross-signatures or re-issued CAs).
    #[error("{} or a certificate with its name and key is already on this path (loop)", Named(.cert))]
    Loop {
        /// The repeated certificate.
        cert: Certificate,
    },
    /// `cert` has an extendedKeyUsage extension without the required purpose (nor
    /// anyExtendedKeyUsage).
    #[error("{} has extendedKeyUsage without {required}", Named(.cert))]
    EkuNotAllowed {
        /// The certificate (the target, or a CA on the path).
        cert: Certificate,
        /// The purpose required ([`super::VerifyOptions::with_eku`]).
        required: RequiredEku,
    },
    /// The target does not carry the required SPIFFE ID.
    #[error("{} does not carry SPIFFE ID {required} (its URI SANs: {})", Named(.cert), if .cert.san_uris().is_empty() { "none".to_owned() } else { .cert.san_uris().join(", ") })]
    SpiffeIdMismatch {
        /// The target.
        cert: Certificate,
        /// The required ID.
        required: SpiffeId,
    },
    /// [`Policy::Envoy`](super::Policy::Envoy): the chain built from the presented
    /// certificates ends at a self-signed certificate that is not in the trust store and no
    /// store certificate issues the one below it (BoringSSL
    /// `X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN`, "self signed certificate in certificate chain").
    #[error("{} is a self-signed certificate in the presented chain, not in the trust store (self signed certificate in certificate chain)", Named(.cert))]
    SelfSignedInChain {
        /// The presented self-signed certificate.
        cert: Certificate,
    },
    /// [`Policy::Envoy`](super::Policy::Envoy): the target is self-signed and not the trust
    /// store's first match for its name (BoringSSL `X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT`).
    #[error("{} is self-signed and not the trust store's first certificate of its name (self signed certificate)", Named(.cert))]
    SelfSignedNotTrusted {
        /// The target.
        cert: Certificate,
    },
    /// [`Policy::Ztunnel`](super::Policy::Ztunnel): the target is a CA (basicConstraints cA
    /// true); rustls-webpki verifies end entities only (`Error::CaUsedAsEndEntity`).
    #[error("{} is a CA and cannot be verified as an end entity", Named(.cert))]
    CaAsEndEntity {
        /// The target.
        cert: Certificate,
    },
    /// The search stopped: its signature-check or candidate budget ran out before a valid
    /// path was found (a huge or hostile bundle, e.g. thousands of roots with one name).
    #[error("{what} budget of {limit} exhausted before a valid path was found")]
    BudgetExhausted {
        /// `"signature-check"` or `"candidate"`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

impl PathError {
    /// The certificate the failure is about (the issuer candidate for issuer problems).
    pub fn certificate(&self) -> Option<&Certificate> {
        match self {
            PathError::UnknownIssuer { cert }
            | PathError::SignatureAlgorithmMismatch { cert }
            | PathError::Expired { cert, .. }
            | PathError::NotYetValid { cert, .. }
            | PathError::UnknownCriticalExtension { cert, .. }
            | PathError::TooDeep { cert, .. }
            | PathError::Loop { cert }
            | PathError::EkuNotAllowed { cert, .. }
            | PathError::SpiffeIdMismatch { cert, .. }
            | PathError::SelfSignedInChain { cert }
            | PathError::SelfSignedNotTrusted { cert }
            | PathError::CaAsEndEntity { cert } => Some(cert),
            PathError::BadSignature { issuer, .. } => Some(issuer),
            PathError::UnsupportedAlgorithm { cert, issuer, .. } => {
                Some(issuer.as_ref().unwrap_or(cert))
            }
            PathError::IssuerNotCa { issuer, .. }
            | PathError::PathLenExceeded { issuer, .. }
            | PathError::MissingKeyCertSign { issuer } => Some(issuer),
            PathError::BudgetExhausted { .. } => None,
        }
    }

    /// A short stable name of the variant, e.g. `expired`, `bad-signature` (for JSON output
    /// and tests).
    pub fn kind(&self) -> &'static str {
        match self {
            PathError::UnknownIssuer { .. } => "unknown-issuer",
            PathError::BadSignature { .. } => "bad-signature",
            PathError::UnsupportedAlgorithm { .. } => "unsupported-algorithm",
            PathError::SignatureAlgorithmMismatch { .. } => "signature-algorithm-mismatch",
            PathError::Expired { .. } => "expired",
            PathError::NotYetValid { .. } => "not-yet-valid",
            PathError::IssuerNotCa { .. } => "issuer-not-ca",
            PathError::PathLenExceeded { .. } => "path-length-exceeded",
            PathError::MissingKeyCertSign { .. } => "missing-key-cert-sign",
            PathError::UnknownCriticalExtension { .. } => "unknown-critical-extension",
            PathError::TooDeep { .. } => "too-deep",
            PathError::Loop { .. } => "loop",
            PathError::EkuNotAllowed { .. } => "eku-not-allowed",
            PathError::SpiffeIdMismatch { .. } => "spiffe-id-mismatch",
            PathError::BudgetExhausted { .. } => "budget-exhausted",
            PathError::SelfSignedInChain { .. } => "self-signed-in-chain",
            PathError::SelfSignedNotTrusted { .. } => "self-signed-not-trusted",
            PathError::CaAsEndEntity { .. } => "ca-as-end-entity",
        }
    }

    /// How informative the failure is for the one-line summary: a concrete defect beats
    /// "nothing matched".
    fn weight(&self) -> u8 {
        match self {
            PathError::BudgetExhausted { .. } => 3,
            PathError::UnknownIssuer { .. }
            | PathError::Loop { .. }
            | PathError::TooDeep { .. } => 1,
            _ => 2,
        }
    }
}

/// One candidate path that failed: the certificates from the target up to where it broke
/// (the rejected issuer candidate included), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFailure {
    /// Target first.
    pub path: Vec<Certificate>,
    /// Why this path failed.
    pub error: PathError,
}

impl fmt::Display for PathFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.path.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{}", Named(c))?;
        }
        write!(f, ": {}", self.error)
    }
}

/// The target does not verify: every candidate path failed (or the search ran out of
/// budget). [`VerifyError::failures`] lists each failed path with its reason; `Display`
/// gives the most informative one on one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    pub(crate) target: Certificate,
    pub(crate) failures: Vec<PathFailure>,
    pub(crate) omitted: usize,
    pub(crate) signature_checks: usize,
}

impl VerifyError {
    /// The certificate that failed to verify.
    pub fn target(&self) -> &Certificate {
        &self.target
    }

    /// Every failed candidate path, in the order the search tried them (at most
    /// [`super::MAX_RECORDED_FAILURES`]; see [`VerifyError::omitted`]).
    pub fn failures(&self) -> &[PathFailure] {
        &self.failures
    }

    /// Failed paths not recorded because the list was full.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// Signature checks spent.
    pub fn signature_checks(&self) -> usize {
        self.signature_checks
    }

    /// The most informative failure: a budget exhaustion first, then the path that got
    /// furthest, preferring a concrete defect over "no issuer found"; ties go to the path
    /// tried first (the one the AKI/SKI hint pointed to).
    pub fn primary(&self) -> Option<&PathFailure> {
        let mut best: Option<&PathFailure> = None;
        for f in &self.failures {
            let key = |x: &PathFailure| (x.error.weight() == 3, x.path.len(), x.error.weight());
            if best.is_none_or(|b| key(f) > key(b)) {
                best = Some(f);
            }
        }
        best
    }

    /// True when some failed path has an error matching `pred`.
    pub fn any(&self, pred: impl Fn(&PathError) -> bool) -> bool {
        self.failures.iter().any(|f| pred(&f.error))
    }

    /// A multi-line report: the summary, then one numbered line per failed path.
    pub fn report(&self) -> String {
        let mut out = format!(
            "{} does not verify: {} candidate path(s) failed, {} signature check(s)\n",
            Named(&self.target),
            self.failures.len() + self.omitted,
            self.signature_checks
        );
        for (i, f) in self.failures.iter().enumerate() {
            out.push_str(&format!("  {}. {f}\n", i + 1));
        }
        if self.omitted > 0 {
            out.push_str(&format!("  ... and {} more not recorded\n", self.omitted));
        }
        out
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: no valid path to a trusted root: ",
            Named(&self.target)
        )?;
        match self.primary() {
            Some(p) => write!(f, "{}", p.error)?,
            None => f.write_str("no candidate path")?,
        }
        let others = (self.failures.len() + self.omitted).saturating_sub(1);
        if others > 0 {
            write!(f, " (and {others} other failed candidate path(s))")?;
        }
        Ok(())
    }
}

impl std::error::Error for VerifyError {}
