//! What a certificate may do: its [`Role`] in a chain, basicConstraints, keyUsage and
//! extendedKeyUsage.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a certificate is in a PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A CA certificate that is self-issued (issuer = subject) and self-signed (its own key
    /// verifies its signature). Version 1 self-signed certificates count as roots too.
    Root,
    /// A CA certificate that is not self-signed (including a self-issued cross-signed or
    /// re-keyed CA whose signature comes from another key).
    Intermediate,
    /// Anything that is not a CA.
    Leaf,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Root => "root",
            Role::Intermediate => "intermediate",
            Role::Leaf => "leaf",
        })
    }
}

/// The basicConstraints extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BasicConstraints {
    /// The cA flag.
    pub ca: bool,
    /// pathLenConstraint, when present.
    pub path_len: Option<u32>,
}

/// The keyUsage bits.
///
/// ```
/// use meshtrust::cert::KeyUsage;
/// let ku = KeyUsage(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_CERT_SIGN);
/// assert!(ku.contains(KeyUsage::KEY_CERT_SIGN));
/// assert_eq!(ku.names(), vec!["digitalSignature", "keyCertSign"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    /// digitalSignature (bit 0).
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    /// nonRepudiation / contentCommitment (bit 1).
    pub const NON_REPUDIATION: u16 = 1 << 1;
    /// keyEncipherment (bit 2).
    pub const KEY_ENCIPHERMENT: u16 = 1 << 2;
    /// dataEncipherment (bit 3).
    pub const DATA_ENCIPHERMENT: u16 = 1 << 3;
    /// keyAgreement (bit 4).
    pub const KEY_AGREEMENT: u16 = 1 << 4;
    /// keyCertSign (bit 5).
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
    /// cRLSign (bit 6).
    pub const CRL_SIGN: u16 = 1 << 6;
    /// encipherOnly (bit 7).
    pub const ENCIPHER_ONLY: u16 = 1 << 7;
    /// decipherOnly (bit 8).
    pub const DECIPHER_ONLY: u16 = 1 << 8;

    const NAMES: [&'static str; 9] = [
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
        "decipherOnly",
    ];

    /// True when every bit of `bits` is set.
    pub fn contains(&self, bits: u16) -> bool {
        self.0 & bits == bits
    }

    /// The names of the bits that are set, in bit order.
    pub fn names(&self) -> Vec<&'static str> {
        (0..9)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| Self::NAMES[i])
            .collect()
    }
}

/// One extended key usage purpose.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExtendedKeyUsage {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
    /// anyExtendedKeyUsage.
    Any,
    /// Another purpose, by dotted OID.
    Other(String),
}
