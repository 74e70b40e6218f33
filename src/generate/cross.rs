//! Cross-signing: a certificate for an existing CA's subject and public key, issued by
//! another CA, so that what the existing CA signs also chains to the other CA's root.
//!
//! A cross-signed root rotation introduces root B through B' (B's subject and key, issued by
//! the old root A): a proxy that trusts only A verifies `leaf -> IB -> B' -> A`, one that
//! trusts B verifies `leaf -> IB -> B`, and no trust bundle ever holds two roots.

use time::OffsetDateTime;

use super::signer::ForeignKey;
use super::{
    Clamp, GenerateError, ISTIO_CA_KEY_USAGE, Issuer, Warning, check_path_len, clamp, ext, name,
    params, push_aki, whole_seconds,
};
use crate::cert::{Certificate, KeyUsage};

/// A cross-signed CA certificate (no key: the subject's key stays with its owner).
#[derive(Debug, Clone)]
pub struct CrossSigned {
    /// The certificate: the subject's name and key, the issuer's name and signature.
    pub certificate: Certificate,
    /// The certificate as PEM.
    pub cert_pem: String,
    /// Set when notAfter was shortened to the issuer chain's.
    pub clamped: Option<Clamp>,
    /// Other things to report.
    pub warnings: Vec<Warning>,
}

/// Issues B' for `subject` (a CA certificate, typically the new root B) under `issuer`
/// (typically the old root A): the subject name and subjectPublicKeyInfo byte for byte, a
/// subjectKeyIdentifier equal to the subject's (so B's intermediates' AKI matches B' as well as
/// B), basicConstraints critical `CA:true` with the subject's pathLenConstraint, the subject's
/// keyUsage (critical), an authorityKeyIdentifier of the issuer's key, and the subject's
/// validity clamped to the issuer chain's notAfter.
///
/// Refuses a subject that is not a CA, one that carries the issuer's own key, one already
/// expired at `now`, and a pathLenConstraint of the issuer chain that forbids another CA.
///
/// ```
/// use meshtrust::generate::{self, KeyType};
/// let now = time::OffsetDateTime::now_utc();
/// let (a, _) = generate::istio_ca("cluster1", KeyType::EcP256, now)?;
/// let (b, ib) = generate::istio_ca("cluster1", KeyType::EcP256, now)?;
/// let b_prime = generate::cross_sign(&b.certificate, &a.issuer()?, now)?;
/// assert_eq!(b_prime.certificate.subject_der(), b.certificate.subject_der());
/// assert_eq!(b_prime.certificate.spki_der(), b.certificate.spki_der());
/// b_prime.certificate.verify_signed_by(&a.certificate)?;
/// ib.certificate.verify_signed_by(&b_prime.certificate)?; // same key as B
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cross_sign(
    subject: &Certificate,
    issuer: &Issuer,
    now: OffsetDateTime,
) -> Result<CrossSigned, GenerateError> {
    let now = whole_seconds(now);
    let bc = subject.basic_constraints().filter(|b| b.ca);
    let Some(bc) = bc else {
        return Err(GenerateError::NotCa {
            subject: subject.subject().to_owned(),
        });
    };
    if subject.spki_der() == issuer.certificate().spki_der() {
        return Err(GenerateError::InvalidSpec {
            field: "subject",
            reason: "it carries the issuer's own key: a cross-signature needs two different CAs"
                .to_owned(),
        });
    }
    if subject.not_after() <= now {
        return Err(GenerateError::IssuerExpired {
            subject: subject.subject().to_owned(),
            not_after: subject.not_after(),
        });
    }
    let path_len = match bc.path_len {
        None => None,
        Some(p) => Some(u8::try_from(p).map_err(|_| GenerateError::InvalidSpec {
            field: "path_len",
            reason: format!("the subject's pathLenConstraint {p} is above 255"),
        })?),
    };
    check_path_len(path_len, issuer)?;
    let key_usage = subject.key_usage().unwrap_or(KeyUsage(ISTIO_CA_KEY_USAGE));
    if !key_usage.contains(KeyUsage::KEY_CERT_SIGN) {
        return Err(GenerateError::NoKeyCertSign {
            subject: subject.subject().to_owned(),
        });
    }
    let mut warnings = Vec::new();
    let limit = issuer.limit(now, &mut warnings)?;
    let (not_after, clamped) = clamp(subject.not_after(), limit, issuer);
    let public = ForeignKey::of(subject)?;
    let ski = subject
        .subject_key_id()
        .map_or_else(|| ext::subject_key_id(subject.public_key()), <[u8]>::to_vec);
    let mut extensions = vec![
        ext::ski(&ski),
        ext::basic_constraints(true, path_len),
        ext::key_usage(key_usage, true),
    ];
    push_aki(&mut extensions, issuer, &mut warnings);
    let dn = name::rcgen_from_der(subject.subject_der())?;
    let p = params(
        dn,
        whole_seconds(subject.not_before()),
        not_after,
        extensions,
    )?;
    let der = p
        .signed_by(&public, &issuer.rcgen_issuer())
        .map_err(|e| GenerateError::Rcgen(e.to_string()))?
        .der()
        .to_vec();
    let certificate = check(der, subject, issuer)?;
    Ok(CrossSigned {
        cert_pem: certificate.to_pem(),
        certificate,
        clamped,
        warnings,
    })
}

/// Strict decoding, then the subject name and key and the issuer name byte for byte, and the
/// issuer's signature.
fn check(
    der: Vec<u8>,
    subject: &Certificate,
    issuer: &Issuer,
) -> Result<Certificate, GenerateError> {
    let cert =
        Certificate::from_der_strict(&der).map_err(|e| GenerateError::SelfCheck(e.to_string()))?;
    let differs = |what: &str| {
        GenerateError::SelfCheck(format!(
            "the cross-signed {what} differs from the subject's"
        ))
    };
    if cert.subject_der() != subject.subject_der() {
        return Err(differs("subject name"));
    }
    if cert.spki_der() != subject.spki_der() {
        return Err(differs("subjectPublicKeyInfo"));
    }
    if cert.issuer_der() != issuer.certificate().subject_der() {
        return Err(GenerateError::IssuerNameMismatch {
            expected: crate::text::hex(issuer.certificate().subject_der()),
            actual: crate::text::hex(cert.issuer_der()),
        });
    }
    cert.verify_signed_by(issuer.certificate())
        .map_err(|e| GenerateError::SelfCheck(format!("signature does not verify: {e}")))?;
    Ok(cert)
}
