//! The steps every generated certificate shares: validity, serial, rcgen parameters, the
//! extensions in Istio's order, signing, and the self-check of what was signed.

use time::{Duration, OffsetDateTime};

use super::signer::Signer;
use super::{Clamp, GenerateError, Generated, Issuer, Name, Warning, ext};
use crate::cert::{Certificate, KeyUsage};
use crate::key::PrivateKey;
use crate::text::hex;

pub(super) fn push_aki(
    extensions: &mut Vec<rcgen::CustomExtension>,
    issuer: &Issuer,
    warnings: &mut Vec<Warning>,
) {
    match issuer.certificate.subject_key_id() {
        Some(id) => extensions.push(ext::aki(id)),
        None => warnings.push(Warning::IssuerWithoutKeyId {
            issuer: issuer.certificate.subject().to_owned(),
        }),
    }
}

pub(super) fn issue(
    params: rcgen::CertificateParams,
    key: PrivateKey,
    signer: &Signer,
    issuer: &Issuer,
    clamped: Option<Clamp>,
    warnings: Vec<Warning>,
) -> Result<Generated, GenerateError> {
    let der = params
        .signed_by(signer, &issuer.rcgen_issuer())
        .map_err(|e| GenerateError::Rcgen(e.to_string()))?
        .der()
        .to_vec();
    let certificate = self_check(der, &key, Some(issuer))?;
    let mut chain = Vec::with_capacity(issuer.chain.len() + 1);
    chain.push(issuer.certificate.clone());
    chain.extend(issuer.chain.iter().cloned());
    Ok(Generated {
        cert_pem: certificate.to_pem(),
        certificate,
        key,
        chain,
        trust_bundle: issuer.trust_bundle.clone(),
        clamped,
        warnings,
    })
}

/// RFC 5280 4.2.1.9 over the whole chain: a CA at `depth` above the new one (0 = its issuer)
/// with pathLenConstraint p allows p intermediates after it, and the new one is the
/// (depth+1)-th; the new CA's own constraint must then be below p - depth.
pub(super) fn check_path_len(
    new_path_len: Option<u8>,
    issuer: &Issuer,
) -> Result<(), GenerateError> {
    let above = std::iter::once(&issuer.certificate).chain(issuer.chain.iter());
    for (depth, c) in above.enumerate() {
        let Some(limit) = c.basic_constraints().and_then(|b| b.path_len) else {
            continue;
        };
        let depth = u32::try_from(depth).unwrap_or(u32::MAX);
        let room = limit.saturating_sub(depth);
        if limit <= depth || new_path_len.is_none_or(|p| u32::from(p) >= room) {
            return Err(GenerateError::PathLen {
                subject: c.subject().to_owned(),
                issuer_path_len: limit,
                depth,
            });
        }
    }
    Ok(())
}

pub(super) fn check_ca_spec(
    subject: &Name,
    days: u32,
    key_usage: KeyUsage,
) -> Result<(), GenerateError> {
    if subject.is_empty() {
        return Err(GenerateError::InvalidSpec {
            field: "subject",
            reason: "a CA certificate needs a non-empty subject (RFC 5280 4.1.2.6)".to_owned(),
        });
    }
    if days == 0 {
        return Err(GenerateError::InvalidSpec {
            field: "days",
            reason: "must be at least 1".to_owned(),
        });
    }
    if !key_usage.contains(KeyUsage::KEY_CERT_SIGN) {
        return Err(GenerateError::InvalidSpec {
            field: "key_usage",
            reason: "a CA certificate needs keyCertSign".to_owned(),
        });
    }
    Ok(())
}

pub(super) fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    // Certificates carry whole seconds in UTC; results report exactly what was written.
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap_or(t)
}

pub(super) fn add_days(now: OffsetDateTime, days: u32) -> Result<OffsetDateTime, GenerateError> {
    now.checked_add(Duration::days(i64::from(days)))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| GenerateError::InvalidSpec {
            field: "days",
            reason: format!("{days} days from now is past the year 9999"),
        })
}

pub(super) fn clamp(
    requested: OffsetDateTime,
    limit: OffsetDateTime,
    issuer: &Issuer,
) -> (OffsetDateTime, Option<Clamp>) {
    if requested <= limit {
        (requested, None)
    } else {
        (
            limit,
            Some(Clamp {
                requested_not_after: requested,
                not_after: limit,
                limited_by: issuer.first_expiring().subject().to_owned(),
            }),
        )
    }
}

pub(super) fn random_serial() -> Result<rcgen::SerialNumber, GenerateError> {
    use ring::rand::SecureRandom;
    let rng = ring::rand::SystemRandom::new();
    let mut bytes = [0u8; 16];
    loop {
        rng.fill(&mut bytes)
            .map_err(|_| GenerateError::Rcgen("the system random generator failed".to_owned()))?;
        // Zero is not a valid serial (RFC 5280 4.1.2.2: positive); 2^-128 odds, but be exact.
        if bytes != [0u8; 16] {
            return Ok(rcgen::SerialNumber::from_slice(&bytes));
        }
    }
}

pub(super) fn params(
    dn: rcgen::DistinguishedName,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    extensions: Vec<rcgen::CustomExtension>,
) -> Result<rcgen::CertificateParams, GenerateError> {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = dn;
    p.not_before = not_before;
    p.not_after = not_after;
    p.serial_number = Some(random_serial()?);
    // Everything else comes as complete extensions, in Istio's order and encodings.
    p.is_ca = rcgen::IsCa::NoCa;
    p.key_usages = Vec::new();
    p.extended_key_usages = Vec::new();
    p.subject_alt_names = Vec::new();
    p.use_authority_key_identifier_extension = false;
    p.custom_extensions = extensions;
    Ok(p)
}

/// Parses what rcgen produced and checks it: strict decoding, the issuer name bytes, the
/// signature, and that the key is the certificate's.
pub(super) fn self_check(
    der: Vec<u8>,
    key: &PrivateKey,
    issuer: Option<&Issuer>,
) -> Result<Certificate, GenerateError> {
    let cert =
        Certificate::from_der_strict(&der).map_err(|e| GenerateError::SelfCheck(e.to_string()))?;
    let signer_cert = match issuer {
        Some(i) => {
            if cert.issuer_der() != i.certificate.subject_der() {
                return Err(GenerateError::IssuerNameMismatch {
                    expected: hex(i.certificate.subject_der()),
                    actual: hex(cert.issuer_der()),
                });
            }
            &i.certificate
        }
        None => {
            if !cert.is_self_issued() {
                return Err(GenerateError::SelfCheck(
                    "root is not self-issued".to_owned(),
                ));
            }
            &cert
        }
    };
    cert.verify_signed_by(signer_cert)
        .map_err(|e| GenerateError::SelfCheck(format!("signature does not verify: {e}")))?;
    key.check_matches(&cert)
        .map_err(|e| GenerateError::SelfCheck(e.to_string()))?;
    Ok(cert)
}
