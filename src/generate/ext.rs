//! DER encoders for the X.509 extensions meshtrust writes.
//!
//! meshtrust hands rcgen complete extensions (as custom extensions, in its own order) instead
//! of rcgen's built-in ones, so that criticality, order, encoding and the key identifier method
//! are exactly those of Istio's recipes: OpenSSL's `subjectKeyIdentifier = hash` (SHA-1 of the
//! subjectPublicKey bits, RFC 5280 4.2.1.2 method 1) and the order OpenSSL and Go write.

use crate::cert::{ExtendedKeyUsage, KeyUsage};
use crate::key::tlv;

use super::GenerateError;

use crate::oid;

fn extension(oid: &[u8], critical: bool, value: Vec<u8>) -> rcgen::CustomExtension {
    // The table's OIDs are valid by construction (checked at compile time and by its test).
    let arcs = oid::arcs(oid).unwrap_or_default();
    let mut e = rcgen::CustomExtension::from_oid_content(&arcs, value);
    e.set_criticality(critical);
    e
}

/// subjectKeyIdentifier: SHA-1 over the subjectPublicKey bits (RFC 5280 4.2.1.2 method 1,
/// what OpenSSL's `subjectKeyIdentifier = hash` in Istio's recipe computes). Non-critical, as
/// RFC 5280 requires.
pub(super) fn subject_key_id(public_key_bits: &[u8]) -> Vec<u8> {
    let d = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, public_key_bits);
    d.as_ref().to_vec()
}

pub(super) fn ski(key_id: &[u8]) -> rcgen::CustomExtension {
    extension(oid::SKI, false, tlv(0x04, key_id))
}

/// authorityKeyIdentifier with only the keyIdentifier (what OpenSSL writes for Istio's
/// intermediates and Go for leaves).
pub(super) fn aki(key_id: &[u8]) -> rcgen::CustomExtension {
    extension(oid::AKI, false, tlv(0x30, &tlv(0x80, key_id)))
}

/// basicConstraints, always critical (OpenSSL's `critical, CA:true`, Go's leaf encoding).
/// `ca = false` gives the empty SEQUENCE (cA defaults to FALSE in DER).
pub(super) fn basic_constraints(ca: bool, path_len: Option<u8>) -> rcgen::CustomExtension {
    let mut body = Vec::new();
    if ca {
        body.extend_from_slice(&[0x01, 0x01, 0xff]);
        if let Some(n) = path_len {
            body.extend_from_slice(&integer_u8(n));
        }
    }
    extension(oid::BASIC_CONSTRAINTS, true, tlv(0x30, &body))
}

fn integer_u8(n: u8) -> Vec<u8> {
    if n < 0x80 {
        vec![0x02, 0x01, n]
    } else {
        vec![0x02, 0x02, 0x00, n]
    }
}

/// keyUsage as a DER named-bit BIT STRING (trailing zero bits removed).
pub(super) fn key_usage(ku: KeyUsage, critical: bool) -> rcgen::CustomExtension {
    extension(oid::KEY_USAGE, critical, key_usage_bits(ku.0))
}

pub(super) fn key_usage_bits(bits: u16) -> Vec<u8> {
    // Named bit i is bit (7 - i % 8) of byte i / 8.
    let used = 16 - bits.leading_zeros() as usize; // highest set bit + 1
    let mut bytes = vec![0u8; used.div_ceil(8)];
    for i in 0..used {
        if bits & (1 << i) != 0 {
            if let Some(b) = bytes.get_mut(i / 8) {
                *b |= 0x80 >> (i % 8);
            }
        }
    }
    let unused = (bytes.len() * 8 - used) as u8;
    let mut value = vec![unused];
    value.extend_from_slice(&bytes);
    tlv(0x03, &value)
}

/// extendedKeyUsage (non-critical, as Go writes it).
pub(super) fn extended_key_usage(
    purposes: &[ExtendedKeyUsage],
) -> Result<rcgen::CustomExtension, GenerateError> {
    let mut body = Vec::new();
    for p in purposes {
        let oid = match p {
            ExtendedKeyUsage::ServerAuth => vec![0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01],
            ExtendedKeyUsage::ClientAuth => vec![0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02],
            ExtendedKeyUsage::Any => vec![0x55, 0x1d, 0x25, 0x00],
            ExtendedKeyUsage::Other(dotted) => der::asn1::ObjectIdentifier::new(dotted)
                .map_err(|_| GenerateError::InvalidSpec {
                    field: "extended_key_usage",
                    reason: format!("{dotted:?} is not a dotted OID"),
                })?
                .as_bytes()
                .to_vec(),
        };
        body.extend_from_slice(&tlv(0x06, &oid));
    }
    Ok(extension(oid::EKU, false, tlv(0x30, &body)))
}

/// One subjectAltName entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum San<'a> {
    Dns(&'a str),
    Uri(&'a str),
}

/// subjectAltName with DNS names and URIs in the given order.
pub(super) fn subject_alt_name(
    names: &[San<'_>],
    critical: bool,
) -> Result<rcgen::CustomExtension, GenerateError> {
    let mut body = Vec::new();
    for n in names {
        let (tag, text, field) = match n {
            San::Dns(s) => (0x82, *s, "dns_names"),
            San::Uri(s) => (0x86, *s, "spiffe_id"),
        };
        if text.is_empty() || !text.is_ascii() || text.bytes().any(|b| b.is_ascii_control()) {
            return Err(GenerateError::InvalidSpec {
                field,
                reason: format!("{text:?} is not a non-empty printable ASCII (IA5) name"),
            });
        }
        body.extend_from_slice(&tlv(tag, text.as_bytes()));
    }
    Ok(extension(oid::SAN, critical, tlv(0x30, &body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_usage_encodings_match_openssl_and_go() {
        let istio_ca = KeyUsage::DIGITAL_SIGNATURE
            | KeyUsage::NON_REPUDIATION
            | KeyUsage::KEY_ENCIPHERMENT
            | KeyUsage::KEY_CERT_SIGN;
        // OpenSSL: 03 02 02 e4 (bits 0,1,2,5; 2 unused bits).
        assert_eq!(key_usage_bits(istio_ca), [0x03, 0x02, 0x02, 0xe4]);
        // Go leaf: digitalSignature | keyEncipherment = 03 02 05 a0.
        assert_eq!(
            key_usage_bits(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT),
            [0x03, 0x02, 0x05, 0xa0]
        );
        assert_eq!(
            key_usage_bits(KeyUsage::KEY_CERT_SIGN),
            [0x03, 0x02, 0x02, 0x04]
        );
        assert_eq!(
            key_usage_bits(KeyUsage::DECIPHER_ONLY),
            [0x03, 0x03, 0x07, 0x00, 0x80]
        );
        assert_eq!(
            key_usage_bits(KeyUsage::CRL_SIGN | KeyUsage::ENCIPHER_ONLY),
            [0x03, 0x02, 0x00, 0x03]
        );
        // Round trip through the certificate parser's decoder for every combination.
        for bits in 1u16..(1 << 9) {
            let der = key_usage_bits(bits);
            let mut w = crate::derwalk::Walker::new(&der);
            let t = w.any().unwrap();
            assert_eq!(crate::derwalk::named_bits(&t).unwrap(), bits, "{bits:#x}");
        }
    }

    #[test]
    fn basic_constraints_encodings() {
        assert_eq!(
            basic_constraints(true, None).content(),
            [0x30, 0x03, 0x01, 0x01, 0xff]
        );
        assert_eq!(
            basic_constraints(true, Some(0)).content(),
            [0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]
        );
        assert_eq!(
            basic_constraints(true, Some(200)).content(),
            [0x30, 0x07, 0x01, 0x01, 0xff, 0x02, 0x02, 0x00, 200]
        );
        assert_eq!(basic_constraints(false, Some(3)).content(), [0x30, 0x00]);
        assert!(basic_constraints(false, None).criticality());
    }

    #[test]
    fn san_refuses_non_ia5() {
        assert!(subject_alt_name(&[San::Dns("bücher.example")], false).is_err());
        assert!(subject_alt_name(&[San::Dns("")], false).is_err());
        assert!(subject_alt_name(&[San::Uri("spiffe://a/b\n")], false).is_err());
        let e = subject_alt_name(&[San::Dns("a"), San::Uri("spiffe://td/x")], true).unwrap();
        assert_eq!(
            e.content(),
            [
                0x30, 0x12, 0x82, 0x01, b'a', 0x86, 0x0d, b's', b'p', b'i', b'f', b'f', b'e', b':',
                b'/', b'/', b't', b'd', b'/', b'x'
            ]
        );
    }

    #[test]
    fn eku_other_oids() {
        let e = extended_key_usage(&[ExtendedKeyUsage::Other("1.3.6.1.5.5.7.3.4".into())]).unwrap();
        assert_eq!(
            e.content(),
            [
                0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04
            ]
        );
        assert!(extended_key_usage(&[ExtendedKeyUsage::Other("nope".into())]).is_err());
    }
}
