//! Extensions: the walk over a certificate's Extensions SEQUENCE, the decoding of those the
//! rotation checks and the verifier use, and [`Extension`] for listing them all.

use super::{BasicConstraints, CertError, ExtendedKeyUsage, Inner, KeyUsage, Sans};
use crate::derwalk::{self, DerError, Tlv, tag};

/// One extension as it appears in the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension<'a> {
    /// Dotted OID.
    pub oid: String,
    /// A short name for the extensions meshtrust knows (`basicConstraints`, ...).
    pub name: Option<&'static str>,
    /// The critical flag.
    pub critical: bool,
    /// The extnValue contents (DER of the extension).
    pub value: &'a [u8],
}

pub(super) mod ext_oid {
    pub(super) use crate::oid::{
        AKI, ANY_EKU, BASIC_CONSTRAINTS, CERT_POLICIES, CLIENT_AUTH, EKU, KEY_USAGE,
        NAME_CONSTRAINTS, SAN, SERVER_AUTH, SKI,
    };

    pub(in crate::cert) fn name(oid: &[u8]) -> Option<&'static str> {
        Some(match oid {
            SKI => "subjectKeyIdentifier",
            KEY_USAGE => "keyUsage",
            SAN => "subjectAltName",
            BASIC_CONSTRAINTS => "basicConstraints",
            NAME_CONSTRAINTS => "nameConstraints",
            CERT_POLICIES => "certificatePolicies",
            AKI => "authorityKeyIdentifier",
            EKU => "extendedKeyUsage",
            _ => return None,
        })
    }

    /// Critical extensions meshtrust's verifier processes.
    pub(in crate::cert) fn understood(oid: &[u8]) -> bool {
        matches!(oid, SKI | KEY_USAGE | SAN | BASIC_CONSTRAINTS | AKI | EKU)
    }

    /// [`understood`] by the short name [`name`] gives.
    pub(in crate::cert) fn understood_name(name: &str) -> bool {
        matches!(
            name,
            "subjectKeyIdentifier"
                | "keyUsage"
                | "subjectAltName"
                | "basicConstraints"
                | "authorityKeyIdentifier"
                | "extendedKeyUsage"
        )
    }
}

pub(super) fn ext_err(extension: &'static str) -> impl Fn(DerError) -> CertError {
    move |e| CertError::BadExtension {
        extension,
        detail: e.to_string(),
    }
}

pub(super) fn parse_extensions(exts: &Tlv<'_>, inner: &mut Inner) -> Result<(), CertError> {
    let mut outer = exts.walker();
    let seq = outer.expect(tag::SEQUENCE, "expected Extensions SEQUENCE")?;
    outer.finish("trailing data after Extensions")?;
    let mut w = seq.walker();
    if w.is_empty() {
        return Err(CertError::Malformed(DerError {
            offset: seq.start,
            what: "empty Extensions SEQUENCE",
        }));
    }
    // Duplicate detection without an allocation for the usual handful of extensions.
    let mut seen_small: [&[u8]; 16] = [&[]; 16];
    let mut seen_more: Vec<&[u8]> = Vec::new();
    let mut count = 0usize;
    let mut unhandled = false;
    while !w.is_empty() {
        let ext = w.expect(tag::SEQUENCE, "expected Extension SEQUENCE")?;
        let mut e = ext.walker();
        let oid = e.expect(tag::OID, "expected extnID OID")?;
        let critical = match e.optional(tag::BOOLEAN)? {
            Some(b) => derwalk::boolean(&b)?,
            None => false,
        };
        let value = e.expect(tag::OCTET_STRING, "expected extnValue OCTET STRING")?;
        e.finish("trailing data in Extension")?;
        let seen = &seen_small[..count.min(16)];
        if seen.contains(&oid.value) || seen_more.contains(&oid.value) {
            return Err(CertError::DuplicateExtension(
                ext_oid::name(oid.value)
                    .map(str::to_owned)
                    .unwrap_or_else(|| crate::oid::dotted(oid.value)),
            ));
        }
        if count < 16 {
            seen_small[count] = oid.value;
        } else {
            seen_more.push(oid.value);
        }
        count += 1;
        unhandled |= critical && !ext_oid::understood(oid.value);
        let body = Tlv {
            tag: tag::OCTET_STRING,
            ..value
        };
        decode_known_extension(oid.value, &body, inner)?;
    }
    inner.extensions = Some(seq.value_span().into());
    inner.unhandled_critical = unhandled;
    Ok(())
}

/// Decodes the extensions the checks use. `value` spans the extnValue contents.
fn decode_known_extension(oid: &[u8], value: &Tlv<'_>, inner: &mut Inner) -> Result<(), CertError> {
    match oid {
        ext_oid::BASIC_CONSTRAINTS => {
            inner.basic_constraints = Some(basic_constraints(value)?);
        }
        ext_oid::KEY_USAGE => {
            let name = "keyUsage";
            let bits = single(value, name, tag::BIT_STRING, "a BIT STRING")?;
            inner.key_usage = Some(KeyUsage(derwalk::named_bits(&bits).map_err(ext_err(name))?));
        }
        ext_oid::SKI => {
            let id = single(
                value,
                "subjectKeyIdentifier",
                tag::OCTET_STRING,
                "an OCTET STRING",
            )?;
            inner.ski = Some(id.value_span().into());
        }
        ext_oid::AKI => {
            let name = "authorityKeyIdentifier";
            let seq = single(value, name, tag::SEQUENCE, "a SEQUENCE")?;
            let mut s = seq.walker();
            if let Some(id) = s.optional(tag::implicit(0)).map_err(ext_err(name))? {
                inner.aki = Some(id.value_span().into());
            }
            s.optional(tag::explicit(1)).map_err(ext_err(name))?;
            s.optional(tag::implicit(2)).map_err(ext_err(name))?;
            s.finish("unexpected field").map_err(ext_err(name))?;
        }
        ext_oid::EKU => inner.eku = Some(extended_key_usage(value)?),
        ext_oid::SAN => subject_alt_names(value, inner.sans.get_or_insert_with(Box::default))?,
        _ => {}
    }
    Ok(())
}

/// The extension value must be exactly one TLV of the expected type.
fn single<'a>(
    value: &Tlv<'a>,
    name: &'static str,
    want: u8,
    what: &str,
) -> Result<Tlv<'a>, CertError> {
    let mut w = value.walker();
    let t = w.any().map_err(ext_err(name))?;
    w.finish("trailing data").map_err(ext_err(name))?;
    if t.tag != want {
        return Err(CertError::BadExtension {
            extension: name,
            detail: format!("not {what}"),
        });
    }
    Ok(t)
}

fn basic_constraints(value: &Tlv<'_>) -> Result<BasicConstraints, CertError> {
    let name = "basicConstraints";
    let seq = single(value, name, tag::SEQUENCE, "a SEQUENCE")?;
    let mut s = seq.walker();
    let ca = match s.optional(tag::BOOLEAN).map_err(ext_err(name))? {
        Some(b) => derwalk::boolean(&b).map_err(ext_err(name))?,
        None => false,
    };
    let path_len = match s.optional(tag::INTEGER).map_err(ext_err(name))? {
        Some(i) => Some(derwalk::small_uint(&i).map_err(ext_err(name))?),
        None => None,
    };
    s.finish("trailing data").map_err(ext_err(name))?;
    Ok(BasicConstraints { ca, path_len })
}

fn extended_key_usage(value: &Tlv<'_>) -> Result<Vec<ExtendedKeyUsage>, CertError> {
    let name = "extendedKeyUsage";
    let seq = single(value, name, tag::SEQUENCE, "a SEQUENCE")?;
    let mut s = seq.walker();
    let mut out = Vec::new();
    while !s.is_empty() {
        let o = s
            .expect(tag::OID, "expected KeyPurposeId OID")
            .map_err(ext_err(name))?;
        out.push(match o.value {
            ext_oid::SERVER_AUTH => ExtendedKeyUsage::ServerAuth,
            ext_oid::CLIENT_AUTH => ExtendedKeyUsage::ClientAuth,
            ext_oid::ANY_EKU => ExtendedKeyUsage::Any,
            other => ExtendedKeyUsage::Other(crate::oid::dotted(other)),
        });
    }
    if out.is_empty() {
        return Err(CertError::BadExtension {
            extension: name,
            detail: "empty".to_owned(),
        });
    }
    Ok(out)
}

/// The email, DNS, URI and IP names of a subjectAltName (other kinds are skipped).
fn subject_alt_names(value: &Tlv<'_>, sans: &mut Sans) -> Result<(), CertError> {
    let name = "subjectAltName";
    let seq = single(value, name, tag::SEQUENCE, "a SEQUENCE")?;
    let mut s = seq.walker();
    let bad = |detail: &str| CertError::BadExtension {
        extension: name,
        detail: detail.to_owned(),
    };
    let ia5 = |t: &Tlv<'_>| -> Result<String, CertError> {
        if !t.value.is_ascii() {
            return Err(bad("non-ASCII IA5String"));
        }
        Ok(String::from_utf8_lossy(t.value).into_owned())
    };
    while !s.is_empty() {
        let gn = s.any().map_err(ext_err(name))?;
        match gn.tag {
            0x81 => sans.emails.push(ia5(&gn)?),
            0x82 => sans.dns.push(ia5(&gn)?),
            0x86 => sans.uris.push(ia5(&gn)?),
            0x87 => sans.ips.push(match gn.value.len() {
                4 => std::net::IpAddr::from(<[u8; 4]>::try_from(gn.value).unwrap_or_default()),
                16 => std::net::IpAddr::from(<[u8; 16]>::try_from(gn.value).unwrap_or_default()),
                _ => return Err(bad("IP address of neither 4 nor 16 bytes")),
            }),
            _ => {}
        }
    }
    Ok(())
}
