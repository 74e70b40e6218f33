//! Distinguished names: the crate's one DER Name decoder ([`rdns`]) and the RFC 4514
//! rendering of a name.
//!
//! The certificate parser checks every issuer and subject with [`walk`];
//! [`crate::generate`] rebuilds an existing CA's subject for rcgen from the same walk. Only
//! the text form comes from x509-cert, whose attribute-name table and escaping are RFC 4514's.

use super::CertError;
use crate::derwalk::{DerError, Tlv, Walker, tag};

/// One AttributeTypeAndValue of a Name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NameAttribute<'a> {
    /// The attribute type's OID (DER content bytes; see [`crate::oid`]).
    pub(crate) oid: &'a [u8],
    /// The value, with its string-type tag.
    pub(crate) value: Tlv<'a>,
}

/// Walks a DER Name strictly: SEQUENCE OF non-empty SET OF SEQUENCE { OID, ANY }, nothing
/// trailing. `name` is the Name's SEQUENCE; `visit` gets each attribute in order with the
/// index of its RelativeDistinguishedName. Allocates nothing (the certificate parser runs it
/// on every issuer and subject).
pub(crate) fn walk<'a>(
    name: &Tlv<'a>,
    mut visit: impl FnMut(usize, NameAttribute<'a>),
) -> Result<(), DerError> {
    let mut rdns = name.walker();
    let mut index = 0;
    while !rdns.is_empty() {
        let rdn = rdns.expect(tag::SET, "expected RelativeDistinguishedName SET")?;
        let mut atvs = rdn.walker();
        if atvs.is_empty() {
            return Err(DerError {
                offset: rdn.start,
                what: "empty RelativeDistinguishedName",
            });
        }
        while !atvs.is_empty() {
            let atv = atvs.expect(tag::SEQUENCE, "expected AttributeTypeAndValue")?;
            let mut a = atv.walker();
            let oid = a.expect(tag::OID, "expected attribute type OID")?.value;
            let value = a.any()?;
            a.finish("trailing data in AttributeTypeAndValue")?;
            visit(index, NameAttribute { oid, value });
        }
        index += 1;
    }
    Ok(())
}

/// The RelativeDistinguishedNames of a DER Name, in order, each with its attributes in order
/// ([`walk`], collected).
pub(crate) fn rdns<'a>(name: &Tlv<'a>) -> Result<Vec<Vec<NameAttribute<'a>>>, DerError> {
    let mut out: Vec<Vec<NameAttribute<'a>>> = Vec::new();
    walk(name, |index, attribute| {
        if out.len() <= index {
            out.push(Vec::with_capacity(1));
        }
        if let Some(rdn) = out.last_mut() {
            rdn.push(attribute);
        }
    })?;
    Ok(out)
}

/// [`rdns`] over a complete DER Name (tag and length included).
pub(crate) fn rdns_of_der(name_der: &[u8]) -> Result<Vec<Vec<NameAttribute<'_>>>, DerError> {
    let mut outer = Walker::new(name_der);
    let seq = outer.expect(tag::SEQUENCE, "expected Name SEQUENCE")?;
    outer.finish("trailing data after Name")?;
    rdns(&seq)
}

/// The structural check the certificate parser runs on its issuer and subject.
pub(super) fn check_name(name: &Tlv<'_>) -> Result<(), CertError> {
    walk(name, |_, _| {}).map_err(CertError::from)
}

/// RFC 4514 rendering through x509-cert; a name it cannot decode renders as `#<hex DER>`.
pub(super) fn name_string(der_bytes: &[u8]) -> String {
    use der::Decode;
    match x509_cert::name::Name::from_der(der_bytes) {
        Ok(n) => n.to_string(),
        Err(_) => format!("#{}", crate::text::hex(der_bytes)),
    }
}
