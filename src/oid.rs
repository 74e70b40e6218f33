//! Every object identifier meshtrust reads or writes, in one table built on `const-oid`.
//!
//! Each constant is the OID's DER content bytes (what follows the `06 len` header), computed
//! at compile time from its dotted form by [`const_oid::ObjectIdentifier::new_unwrap`], so the
//! table reads as the RFCs print it and a typo fails the build instead of a match. The DER
//! walkers compare these bytes (they are usable as `match` patterns); rcgen, which takes arcs,
//! gets them from [`arcs`]; messages print [`dotted`].

use der::oid::{ObjectIdentifier, ObjectIdentifierRef};

macro_rules! oids {
    ($($(#[$doc:meta])* $name:ident = $dotted:literal;)*) => {
        $(
            $(#[$doc])*
            pub(crate) const $name: &[u8] = {
                const OID: ObjectIdentifier = ObjectIdentifier::new_unwrap($dotted);
                OID.as_bytes()
            };
        )*
        /// Every constant of the table with its dotted form (for the table's own test).
        #[cfg(test)]
        const ALL: &[(&[u8], &str)] = &[$(($name, $dotted)),*];
    };
}

oids! {
    // Public-key algorithms (RFC 3279, RFC 5480, RFC 8410).
    /// rsaEncryption.
    RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
    /// id-ecPublicKey.
    EC_PUBLIC_KEY = "1.2.840.10045.2.1";
    /// prime256v1 (secp256r1).
    P256 = "1.2.840.10045.3.1.7";
    /// secp384r1.
    P384 = "1.3.132.0.34";
    /// secp521r1.
    P521 = "1.3.132.0.35";
    /// id-Ed25519.
    ED25519 = "1.3.101.112";

    // Signature algorithms (RFC 4055, RFC 5758).
    /// sha1WithRSAEncryption (recognised to be refused by name).
    SHA1_WITH_RSA = "1.2.840.113549.1.1.5";
    /// mgf1, inside RSASSA-PSS parameters.
    MGF1 = "1.2.840.113549.1.1.8";
    /// RSASSA-PSS.
    RSA_PSS = "1.2.840.113549.1.1.10";
    /// sha256WithRSAEncryption.
    SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
    /// sha384WithRSAEncryption.
    SHA384_WITH_RSA = "1.2.840.113549.1.1.12";
    /// sha512WithRSAEncryption.
    SHA512_WITH_RSA = "1.2.840.113549.1.1.13";
    /// ecdsa-with-SHA256.
    ECDSA_SHA256 = "1.2.840.10045.4.3.2";
    /// ecdsa-with-SHA384.
    ECDSA_SHA384 = "1.2.840.10045.4.3.3";
    /// ecdsa-with-SHA512.
    ECDSA_SHA512 = "1.2.840.10045.4.3.4";

    // Hash functions (RFC 5754).
    /// id-sha256.
    SHA256 = "2.16.840.1.101.3.4.2.1";
    /// id-sha384.
    SHA384 = "2.16.840.1.101.3.4.2.2";
    /// id-sha512.
    SHA512 = "2.16.840.1.101.3.4.2.3";

    // Certificate extensions (RFC 5280 4.2.1).
    /// subjectKeyIdentifier.
    SKI = "2.5.29.14";
    /// keyUsage.
    KEY_USAGE = "2.5.29.15";
    /// subjectAltName.
    SAN = "2.5.29.17";
    /// basicConstraints.
    BASIC_CONSTRAINTS = "2.5.29.19";
    /// nameConstraints.
    NAME_CONSTRAINTS = "2.5.29.30";
    /// certificatePolicies.
    CERT_POLICIES = "2.5.29.32";
    /// authorityKeyIdentifier.
    AKI = "2.5.29.35";
    /// extendedKeyUsage.
    EKU = "2.5.29.37";

    // Extended key usages (RFC 5280 4.2.1.12).
    /// anyExtendedKeyUsage.
    ANY_EKU = "2.5.29.37.0";
    /// id-kp-serverAuth.
    SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
    /// id-kp-clientAuth.
    CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";

    // Name attributes (RFC 5280 appendix A, PKCS #9).
    /// emailAddress (PKCS #9), which OpenSSL writes into subjects.
    EMAIL_ADDRESS = "1.2.840.113549.1.9.1";
}

/// The arcs of an OID given as DER content bytes, for rcgen (which takes `&[u64]`). `None`
/// when the bytes are not a valid OID.
pub(crate) fn arcs(oid: &[u8]) -> Option<Vec<u64>> {
    let oid = ObjectIdentifierRef::from_bytes(oid).ok()?;
    Some(oid.arcs().map(u64::from).collect())
}

/// The dotted form of an OID given as DER content bytes (`2.5.29.19`). Bytes that are not a
/// valid OID (they come from untrusted certificates) are still rendered, arc by arc as
/// base-128 groups, so a message can always name what it saw.
pub(crate) fn dotted(oid: &[u8]) -> String {
    if let Ok(o) = ObjectIdentifierRef::from_bytes(oid) {
        return o.to_string();
    }
    let mut parts: Vec<u128> = Vec::new();
    let mut acc: u128 = 0;
    for &b in oid {
        acc = (acc << 7) | u128::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (acc / 40).min(2);
                parts.extend([first, acc - first * 40]);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
    }
    parts
        .iter()
        .map(u128::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constant_round_trips_through_its_dotted_form() {
        for (bytes, text) in ALL {
            assert_eq!(dotted(bytes), *text);
            let arcs = arcs(bytes).unwrap();
            let joined: Vec<String> = arcs.iter().map(u64::to_string).collect();
            assert_eq!(joined.join("."), *text);
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(BASIC_CONSTRAINTS, &[0x55, 0x1d, 0x13]);
        assert_eq!(P384, &[0x2b, 0x81, 0x04, 0x00, 0x22]);
        assert_eq!(
            SHA256_WITH_RSA,
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]
        );
    }

    #[test]
    fn invalid_bytes_still_render() {
        // A trailing continuation byte is not a valid OID; the groups read so far still print.
        assert_eq!(dotted(&[0x55, 0x1d, 0x13, 0x80]), "2.5.29.19");
        assert_eq!(dotted(&[]), "");
        assert_eq!(dotted(&[0xff; 40]), "");
    }
}
