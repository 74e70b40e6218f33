//! Subject names: the [`Name`] a spec asks for, and the faithful re-encoding of an existing
//! CA's subject for rcgen (which rebuilds the issuer field from a `DistinguishedName`).

use std::fmt;

use rcgen::{DistinguishedName, DnType, DnValue};

use crate::cert::name::{NameAttribute, rdns_of_der};
use crate::derwalk;
use crate::oid;

use super::GenerateError;

/// An attribute of a subject name that meshtrust writes.
///
/// String types are those OpenSSL picks with Istio's `utf8 = yes`: `countryName` is a
/// PrintableString and `emailAddress` an IA5String (their only allowed types), everything else
/// a UTF8String. Length limits are OpenSSL's (RFC 5280's upper bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// `C` (countryName, 2.5.4.6): exactly two letters, PrintableString.
    Country,
    /// `ST` (stateOrProvinceName, 2.5.4.8).
    StateOrProvince,
    /// `L` (localityName, 2.5.4.7): Istio puts the cluster name here.
    Locality,
    /// `O` (organizationName, 2.5.4.10).
    Organization,
    /// `OU` (organizationalUnitName, 2.5.4.11).
    OrganizationalUnit,
    /// `CN` (commonName, 2.5.4.3).
    CommonName,
    /// `emailAddress` (1.2.840.113549.1.9.1): IA5String.
    EmailAddress,
}

impl Attribute {
    /// The short name OpenSSL prints (`C`, `ST`, `L`, `O`, `OU`, `CN`, `emailAddress`).
    pub fn short_name(self) -> &'static str {
        match self {
            Attribute::Country => "C",
            Attribute::StateOrProvince => "ST",
            Attribute::Locality => "L",
            Attribute::Organization => "O",
            Attribute::OrganizationalUnit => "OU",
            Attribute::CommonName => "CN",
            Attribute::EmailAddress => "emailAddress",
        }
    }

    fn dn_type(self) -> DnType {
        match self {
            Attribute::Country => DnType::CountryName,
            Attribute::StateOrProvince => DnType::StateOrProvinceName,
            Attribute::Locality => DnType::LocalityName,
            Attribute::Organization => DnType::OrganizationName,
            Attribute::OrganizationalUnit => DnType::OrganizationalUnitName,
            Attribute::CommonName => DnType::CommonName,
            Attribute::EmailAddress => {
                DnType::CustomDnType(oid::arcs(oid::EMAIL_ADDRESS).unwrap_or_default())
            }
        }
    }

    /// OpenSSL's size limits in characters (`ASN1_STRING_TABLE`).
    fn length_range(self) -> (usize, usize) {
        match self {
            Attribute::Country => (2, 2),
            Attribute::StateOrProvince | Attribute::Locality | Attribute::EmailAddress => (1, 128),
            Attribute::Organization | Attribute::OrganizationalUnit | Attribute::CommonName => {
                (1, 64)
            }
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

/// A subject name as an ordered list of single-valued attributes, each type at most once,
/// written in the order given (Istio's recipe: `O`, `CN`, then `L` for intermediates).
///
/// ```
/// use meshtrust::generate::{Attribute, Name};
/// let mut n = Name::new()
///     .with(Attribute::Organization, "Istio")
///     .with(Attribute::CommonName, "Root CA");
/// n.set(Attribute::Organization, "Example"); // replaced in place, order kept
/// assert_eq!(n.to_string(), "O=Example, CN=Root CA");
/// n.set(Attribute::CommonName, ""); // an empty value removes the attribute
/// assert_eq!(n.to_string(), "O=Example");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Name {
    attrs: Vec<(Attribute, String)>,
}

impl Name {
    /// The empty name (Istio workload certificates have it).
    pub fn new() -> Name {
        Name::default()
    }

    /// Builder form of [`Name::set`].
    pub fn with(mut self, attribute: Attribute, value: impl Into<String>) -> Name {
        self.set(attribute, value);
        self
    }

    /// Sets an attribute: replaces its value where it stands, or appends it. An empty value
    /// removes it.
    pub fn set(&mut self, attribute: Attribute, value: impl Into<String>) {
        let value = value.into();
        if value.is_empty() {
            self.remove(attribute);
            return;
        }
        match self.attrs.iter_mut().find(|(a, _)| *a == attribute) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((attribute, value)),
        }
    }

    /// Removes an attribute.
    pub fn remove(&mut self, attribute: Attribute) {
        self.attrs.retain(|(a, _)| *a != attribute);
    }

    /// The value of an attribute.
    pub fn get(&self, attribute: Attribute) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(a, _)| *a == attribute)
            .map(|(_, v)| v.as_str())
    }

    /// The attributes in order.
    pub fn attributes(&self) -> impl ExactSizeIterator<Item = (Attribute, &str)> + '_ {
        self.attrs.iter().map(|(a, v)| (*a, v.as_str()))
    }

    /// True for the empty name.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Checks lengths and character sets, and builds rcgen's name.
    pub(super) fn to_rcgen(&self) -> Result<DistinguishedName, GenerateError> {
        let mut dn = DistinguishedName::new();
        for (attr, value) in &self.attrs {
            let bad = |reason: String| GenerateError::InvalidName {
                attribute: *attr,
                reason,
            };
            let chars = value.chars().count();
            let (min, max) = attr.length_range();
            if chars < min || chars > max {
                return Err(bad(format!("{chars} characters; must be {min} to {max}")));
            }
            if value.chars().any(char::is_control) {
                return Err(bad("contains control characters".to_owned()));
            }
            let v = match attr {
                Attribute::Country => {
                    if !value.bytes().all(|b| b.is_ascii_uppercase()) {
                        return Err(bad("must be two uppercase letters (ISO 3166)".to_owned()));
                    }
                    DnValue::PrintableString(
                        value
                            .as_str()
                            .try_into()
                            .map_err(|e: rcgen::Error| bad(e.to_string()))?,
                    )
                }
                Attribute::EmailAddress => DnValue::Ia5String(
                    value
                        .as_str()
                        .try_into()
                        .map_err(|_| bad("must be ASCII (IA5String)".to_owned()))?,
                ),
                _ => DnValue::Utf8String(value.clone()),
            };
            dn.push(attr.dn_type(), v);
        }
        Ok(dn)
    }
}

impl fmt::Display for Name {
    /// `O=Istio, CN=Root CA` in written order (OpenSSL's `-nameopt oneline` order).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (a, v)) in self.attrs.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}={v}")?;
        }
        Ok(())
    }
}

const TAG_UTF8: u8 = 0x0c;
const TAG_PRINTABLE: u8 = 0x13;
const TAG_TELETEX: u8 = 0x14;
const TAG_IA5: u8 = 0x16;
const TAG_UNIVERSAL: u8 = 0x1c;
const TAG_BMP: u8 = 0x1e;

/// Rebuilds an existing Name (DER) as rcgen's `DistinguishedName`: same attributes, same
/// order, same string types. Refuses what rcgen cannot express (multi-valued RDNs, a type
/// repeated, string types other than UTF8/Printable/IA5/Teletex/BMP/Universal, values its
/// string types refuse). The caller still compares the bytes rcgen writes with the original.
pub(super) fn rcgen_from_der(name_der: &[u8]) -> Result<DistinguishedName, GenerateError> {
    let unrepresentable = |reason: String| GenerateError::UnrepresentableIssuerName { reason };
    let derr = |e: derwalk::DerError| unrepresentable(format!("malformed name: {e}"));
    let mut dn = DistinguishedName::new();
    let mut seen: Vec<DnType> = Vec::new();
    for rdn in rdns_of_der(name_der).map_err(derr)? {
        let [NameAttribute { oid, value }] = rdn[..] else {
            return Err(unrepresentable(
                "a multi-valued RDN (several attributes in one SET); rcgen writes one attribute per RDN"
                    .to_owned(),
            ));
        };
        let dotted = oid::dotted(oid);
        let arcs = oid::arcs(oid).ok_or_else(|| {
            unrepresentable(format!("attribute type {dotted} is not a valid OID"))
        })?;
        let ty = DnType::from_oid(&arcs);
        if seen.contains(&ty) {
            return Err(unrepresentable(format!(
                "attribute {dotted} appears twice; rcgen keeps one value per attribute type"
            )));
        }
        seen.push(ty.clone());
        let text = || {
            std::str::from_utf8(value.value)
                .map_err(|_| unrepresentable(format!("attribute {dotted} is not valid text")))
        };
        let string_err = |e: rcgen::Error| {
            unrepresentable(format!("attribute {dotted}: rcgen refuses its value ({e})"))
        };
        let v = match value.tag {
            TAG_UTF8 => DnValue::Utf8String(text()?.to_owned()),
            TAG_PRINTABLE => DnValue::PrintableString(text()?.try_into().map_err(string_err)?),
            TAG_IA5 => DnValue::Ia5String(text()?.try_into().map_err(string_err)?),
            TAG_TELETEX => DnValue::TeletexString(text()?.try_into().map_err(string_err)?),
            TAG_BMP => DnValue::BmpString(
                rcgen::string::BmpString::from_utf16be(value.value.to_vec()).map_err(string_err)?,
            ),
            TAG_UNIVERSAL => DnValue::UniversalString(
                rcgen::string::UniversalString::from_utf32be(value.value.to_vec())
                    .map_err(string_err)?,
            ),
            other => {
                return Err(unrepresentable(format!(
                    "attribute {dotted} has string type tag 0x{other:02x}, which rcgen cannot write"
                )));
            }
        };
        dn.push(ty, v);
    }
    Ok(dn)
}
