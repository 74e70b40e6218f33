//! One X.509 certificate: the original DER, its SHA-256 fingerprint and the fields a mesh CA
//! rotation needs, decoded once.
//!
//! Reading is two-level, so that a 10,000-root bundle is cheap to load:
//! - [`Certificate::from_der`] walks the whole DER structure strictly (definite minimal lengths,
//!   every TBS field in place, no duplicate extensions) and decodes at once everything path
//!   building and the rotation checks use: serial, issuer and subject bytes, validity, key
//!   algorithm and size, signature algorithms, basicConstraints, keyUsage, SKI, AKI, extended
//!   key usage and subjectAltName, plus the fingerprint.
//! - The RFC 4514 strings of the names and the complete typed certificate are produced by
//!   x509-cert on first use ([`Certificate::subject`], [`Certificate::x509`]).
//!   [`Certificate::check_strict`] runs x509-cert's full decoder; [`Certificate::from_der_strict`]
//!   does both at once and is what the Istio-secret checks use.
//!
//! ```
//! # let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem"))?;
//! use meshtrust::cert::{Certificate, Role};
//!
//! let block = &meshtrust::pem::parse(&pem)?[0];
//! let root = Certificate::from_der(&block.der)?;
//! assert_eq!(root.role(), Role::Root);
//! assert!(root.is_ca());
//! assert_eq!(root.subject_der(), root.issuer_der());
//! println!("{} {}", root.subject(), root.fingerprint());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::derwalk::{self, DerError, Tlv, Walker, tag};
use crate::signature::{self, KeyAlgorithm, SignatureAlgorithm, SignatureError};

/// The SHA-256 digest of a certificate's DER encoding.
///
/// Displays (and serializes) as 64 lowercase hex digits without colons.
///
/// ```
/// use meshtrust::cert::Fingerprint;
/// let fp = Fingerprint::of(b"hello");
/// assert_eq!(fp.to_string(), "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
/// assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
/// assert_eq!("2C:F2:4D:BA:5F:B0:A3:0E:26:E8:3B:2A:C5:B9:E2:9E:1B:16:1E:5C:1F:A7:42:5E:73:04:33:62:93:8B:98:24".parse::<Fingerprint>().unwrap(), fp);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Fingerprint {
        let d = ring::digest::digest(&ring::digest::SHA256, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        Fingerprint(out)
    }

    /// The first 8 bytes in hex: enough to tell certificates apart in a table.
    pub fn short(&self) -> String {
        self.to_string()[..16].to_owned()
    }

    /// OpenSSL's `-fingerprint -sha256` form: uppercase hex pairs joined by colons.
    pub fn to_colon_hex(&self) -> String {
        self.0
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A fingerprint string that is not 32 hex bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (64 hex digits, colons allowed): {0:?}")]
pub struct FingerprintParseError(pub String);

impl FromStr for Fingerprint {
    type Err = FingerprintParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: Vec<u8> = s.bytes().filter(|&c| c != b':').collect();
        let err = || FingerprintParseError(s.chars().take(100).collect());
        if hex.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16).ok_or_else(err)?;
            let lo = (pair[1] as char).to_digit(16).ok_or_else(err)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Ok(Fingerprint(out))
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

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

/// A SPIFFE ID, `spiffe://<trust-domain>/<path>`, validated as the SPIFFE specification says
/// (lowercase trust domain of `[a-z0-9.-_]`, path segments of `[A-Za-z0-9.-_]`, no empty, `.` or
/// `..` segment, no query, fragment, port or user info, at most 2048 bytes).
///
/// Istio's workload identities have the path `/ns/<namespace>/sa/<service-account>`.
///
/// ```
/// use meshtrust::cert::SpiffeId;
/// let id: SpiffeId = "spiffe://cluster.local/ns/default/sa/sleep".parse()?;
/// assert_eq!(id.trust_domain(), "cluster.local");
/// assert_eq!(id.namespace(), Some("default"));
/// assert_eq!(id.service_account(), Some("sleep"));
/// assert!("spiffe://Cluster.local/ns/a/sa/b".parse::<SpiffeId>().is_err());
/// assert!("spiffe://cluster.local/ns//sa/b".parse::<SpiffeId>().is_err());
/// # Ok::<(), meshtrust::cert::SpiffeIdError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    path: String,
}

/// Why a string is not a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid SPIFFE ID {id:?}: {reason}")]
pub struct SpiffeIdError {
    /// The offending text (at most 200 characters).
    pub id: String,
    /// What is wrong.
    pub reason: &'static str,
}

impl SpiffeId {
    /// Istio's workload identity `spiffe://<td>/ns/<ns>/sa/<sa>`.
    pub fn istio(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<SpiffeId, SpiffeIdError> {
        format!("spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}").parse()
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The path, starting with `/` (or empty for a trust-domain ID).
    pub fn path(&self) -> &str {
        &self.path
    }

    fn istio_parts(&self) -> Option<(&str, &str)> {
        let mut it = self.path.strip_prefix('/')?.split('/');
        match (it.next(), it.next(), it.next(), it.next(), it.next()) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Some((ns, sa)),
            _ => None,
        }
    }

    /// The namespace, when the path has Istio's `/ns/<ns>/sa/<sa>` form.
    pub fn namespace(&self) -> Option<&str> {
        self.istio_parts().map(|p| p.0)
    }

    /// The service account, when the path has Istio's `/ns/<ns>/sa/<sa>` form.
    pub fn service_account(&self) -> Option<&str> {
        self.istio_parts().map(|p| p.1)
    }
}

impl FromStr for SpiffeId {
    type Err = SpiffeIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| SpiffeIdError {
            id: s.chars().take(200).collect(),
            reason,
        };
        if s.len() > 2048 {
            return Err(err("longer than 2048 bytes"));
        }
        let rest = s
            .strip_prefix("spiffe://")
            .ok_or_else(|| err("scheme must be spiffe://"))?;
        let (td, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if td.is_empty() {
            return Err(err("empty trust domain"));
        }
        if td.len() > 255 {
            return Err(err("trust domain longer than 255 bytes"));
        }
        if !td.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'-' | b'_')
        }) {
            return Err(err(
                "trust domain may only hold lowercase letters, digits, '.', '-' and '_'",
            ));
        }
        if !path.is_empty() {
            for seg in path[1..].split('/') {
                if seg.is_empty() {
                    return Err(err("empty path segment"));
                }
                if seg == "." || seg == ".." {
                    return Err(err("'.' and '..' path segments are not allowed"));
                }
                if !seg
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
                {
                    return Err(err(
                        "path segments may only hold letters, digits, '.', '-' and '_'",
                    ));
                }
            }
        }
        Ok(SpiffeId {
            trust_domain: td.to_owned(),
            path: path.to_owned(),
        })
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}{}", self.trust_domain, self.path)
    }
}

impl Serialize for SpiffeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why DER bytes are not a certificate meshtrust can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The DER structure is malformed.
    #[error("malformed certificate: {0}")]
    Malformed(String),
    /// A version other than v1, v2 or v3.
    #[error("unsupported certificate version {0}")]
    Version(u32),
    /// The same extension appears twice (RFC 5280 forbids it; Go rejects it).
    #[error("extension {0} appears more than once")]
    DuplicateExtension(String),
    /// An extension meshtrust decodes is malformed.
    #[error("malformed {extension} extension: {detail}")]
    BadExtension {
        /// Extension name.
        extension: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// x509-cert's full decoder refused the certificate.
    #[error("x509-cert rejects the certificate: {0}")]
    Strict(String),
}

impl From<DerError> for CertError {
    fn from(e: DerError) -> Self {
        CertError::Malformed(e.to_string())
    }
}

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

mod ext_oid {
    pub(super) use crate::oid::{
        AKI, ANY_EKU, BASIC_CONSTRAINTS, CERT_POLICIES, CLIENT_AUTH, EKU, KEY_USAGE,
        NAME_CONSTRAINTS, SAN, SERVER_AUTH, SKI,
    };

    pub(super) fn name(oid: &[u8]) -> Option<&'static str> {
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
    pub(super) fn understood(oid: &[u8]) -> bool {
        matches!(oid, SKI | KEY_USAGE | SAN | BASIC_CONSTRAINTS | AKI | EKU)
    }

    /// [`understood`] by the short name [`name`] gives.
    pub(super) fn understood_name(name: &str) -> bool {
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

/// A byte span inside the certificate's DER, stored compactly (DER certificates are far
/// smaller than 4 GiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    fn r(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

impl From<Range<usize>> for Span {
    fn from(r: Range<usize>) -> Span {
        // from_der_vec refuses inputs of 4 GiB or more, so this never truncates.
        Span {
            start: r.start as u32,
            end: r.end as u32,
        }
    }
}

/// Subject alternative names meshtrust cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sans {
    uris: Vec<String>,
    dns: Vec<String>,
    emails: Vec<String>,
    ips: Vec<std::net::IpAddr>,
}

struct Inner {
    der: Vec<u8>,
    fingerprint: Fingerprint,
    version: u8,
    tbs: Span,
    serial: Span,
    tbs_signature_alg: Span,
    signature_alg_tlv: Span,
    signature_algorithm: SignatureAlgorithm,
    issuer: Span,
    subject: Span,
    not_before: i64,
    not_after: i64,
    spki: Span,
    key_algorithm: KeyAlgorithm,
    public_key: Span,
    signature: Span,
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    ski: Option<Span>,
    aki: Option<Span>,
    eku: Option<Vec<ExtendedKeyUsage>>,
    /// Boxed: most certificates of a bundle (roots) have none.
    sans: Option<Box<Sans>>,
    /// The Extension TLVs (content of the Extensions SEQUENCE), walked again on demand.
    extensions: Option<Span>,
    /// True when a critical extension the verifier does not process is present.
    unhandled_critical: bool,
    names: OnceLock<(String, String)>,
    role: OnceLock<Role>,
    strict: OnceLock<Result<(), CertError>>,
}

/// A parsed X.509 certificate. Cheap to clone (shared).
///
/// Equality and hashing are by DER bytes (fingerprint).
#[derive(Clone)]
pub struct Certificate(Arc<Inner>);

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.0.fingerprint == other.0.fingerprint && self.0.der == other.0.der
    }
}
impl Eq for Certificate {}
impl std::hash::Hash for Certificate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.fingerprint.hash(state);
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial_hex())
            .field("sha256", &self.fingerprint().to_string())
            .finish()
    }
}

fn ext_err(extension: &'static str) -> impl Fn(DerError) -> CertError {
    move |e| CertError::BadExtension {
        extension,
        detail: e.to_string(),
    }
}

impl Certificate {
    /// Parses DER, keeping a copy of the bytes. See the module docs for what is checked.
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertError> {
        Self::from_der_vec(der.to_vec())
    }

    /// Like [`Certificate::from_der`], then also runs x509-cert's full decoder
    /// ([`Certificate::check_strict`]).
    pub fn from_der_strict(der: &[u8]) -> Result<Certificate, CertError> {
        let c = Self::from_der(der)?;
        c.check_strict()?;
        Ok(c)
    }

    /// Parses DER, taking ownership of the buffer.
    pub fn from_der_vec(der: Vec<u8>) -> Result<Certificate, CertError> {
        if u32::try_from(der.len()).is_err() {
            return Err(CertError::Malformed("larger than 4 GiB".to_owned()));
        }
        let mut outer = Walker::new(&der);
        let cert = outer.expect(tag::SEQUENCE, "expected Certificate SEQUENCE")?;
        outer.finish("trailing data after the certificate")?;
        let mut c = cert.walker();
        let tbs = c.expect(tag::SEQUENCE, "expected tbsCertificate SEQUENCE")?;
        let sig_alg = c.expect(tag::SEQUENCE, "expected signatureAlgorithm SEQUENCE")?;
        let sig = c.expect(tag::BIT_STRING, "expected signatureValue BIT STRING")?;
        c.finish("trailing data in Certificate")?;
        derwalk::bit_string_octets(&sig)?;

        let mut t = tbs.walker();
        let version = match t.optional(tag::explicit(0))? {
            None => 0,
            Some(v) => {
                let mut vw = v.walker();
                let n = derwalk::small_uint(&vw.expect(tag::INTEGER, "expected version INTEGER")?)?;
                vw.finish("trailing data in version")?;
                if n > 2 {
                    return Err(CertError::Version(n + 1));
                }
                n as u8
            }
        };
        let serial = t.expect(tag::INTEGER, "expected serialNumber INTEGER")?;
        derwalk::integer(&serial)?;
        let tbs_sig_alg = t.expect(tag::SEQUENCE, "expected signature AlgorithmIdentifier")?;
        let issuer = t.expect(tag::SEQUENCE, "expected issuer Name")?;
        check_name(&issuer)?;
        let validity = t.expect(tag::SEQUENCE, "expected validity SEQUENCE")?;
        let (not_before, not_after) = {
            let mut v = validity.walker();
            let nb = v.any()?;
            let na = v.any()?;
            v.finish("trailing data in validity")?;
            (derwalk::time(&nb)?, derwalk::time(&na)?)
        };
        let subject = t.expect(tag::SEQUENCE, "expected subject Name")?;
        check_name(&subject)?;
        let spki = t.expect(tag::SEQUENCE, "expected subjectPublicKeyInfo")?;
        let (key_algorithm, public_key) = signature::parse_spki(spki.value, spki.value_start)?;
        t.optional(tag::implicit(1))?;
        t.optional(tag::explicit(1))?;
        t.optional(tag::implicit(2))?;
        t.optional(tag::explicit(2))?;
        let exts = t.optional(tag::explicit(3))?;
        t.finish("unexpected field at the end of tbsCertificate")?;
        if exts.is_some() && version != 2 {
            return Err(CertError::Malformed(
                "extensions in a certificate that is not v3".to_owned(),
            ));
        }

        let signature_algorithm = SignatureAlgorithm::from_algorithm_identifier(sig_alg.value)?;
        let mut inner = Inner {
            fingerprint: Fingerprint::of(&der),
            version,
            tbs: tbs.span().into(),
            serial: serial.value_span().into(),
            tbs_signature_alg: tbs_sig_alg.span().into(),
            signature_alg_tlv: sig_alg.span().into(),
            signature_algorithm,
            issuer: issuer.span().into(),
            subject: subject.span().into(),
            not_before,
            not_after,
            spki: spki.span().into(),
            key_algorithm,
            public_key: public_key.into(),
            signature: derwalk::bit_string_span(&sig).into(),
            basic_constraints: None,
            key_usage: None,
            ski: None,
            aki: None,
            eku: None,
            sans: None,
            extensions: None,
            unhandled_critical: false,
            names: OnceLock::new(),
            role: OnceLock::new(),
            strict: OnceLock::new(),
            der: Vec::new(),
        };
        if let Some(exts) = exts {
            parse_extensions(&exts, &mut inner)?;
        }
        inner.der = der;
        Ok(Certificate(Arc::new(inner)))
    }

    /// Runs x509-cert's complete decoder over the DER once (cached) and reports what it
    /// refuses. Catches malformed content in fields meshtrust does not otherwise read.
    pub fn check_strict(&self) -> Result<(), CertError> {
        self.0
            .strict
            .get_or_init(|| self.x509().map(|_| ()))
            .clone()
    }

    /// The complete certificate decoded by x509-cert (decoded on each call; use sparingly).
    pub fn x509(&self) -> Result<x509_cert::Certificate, CertError> {
        use der::Decode;
        x509_cert::Certificate::from_der(&self.0.der).map_err(|e| CertError::Strict(e.to_string()))
    }

    /// The original DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.0.der
    }

    /// The certificate as a canonical PEM block (64 columns, LF).
    pub fn to_pem(&self) -> String {
        crate::pem::encode(&crate::pem::Label::Certificate, &self.0.der)
    }

    /// SHA-256 of the DER.
    pub fn fingerprint(&self) -> Fingerprint {
        self.0.fingerprint
    }

    /// X.509 version number (1, 2 or 3).
    pub fn version(&self) -> u8 {
        self.0.version + 1
    }

    /// The serial number's content bytes (big-endian two's complement, as encoded).
    pub fn serial(&self) -> &[u8] {
        &self.0.der[self.0.serial.r()]
    }

    /// The serial number as lowercase hex without leading zero bytes (OpenSSL's form, lowercased).
    pub fn serial_hex(&self) -> String {
        let s = signature::strip_leading_zeros(self.serial());
        if s.is_empty() {
            "00".to_owned()
        } else {
            s.iter().map(|b| format!("{b:02x}")).collect()
        }
    }

    /// The raw DER of the subject Name (a SEQUENCE TLV): what path building compares.
    pub fn subject_der(&self) -> &[u8] {
        &self.0.der[self.0.subject.r()]
    }

    /// The raw DER of the issuer Name.
    pub fn issuer_der(&self) -> &[u8] {
        &self.0.der[self.0.issuer.r()]
    }

    fn names(&self) -> &(String, String) {
        self.0.names.get_or_init(|| {
            (
                name_string(self.subject_der()),
                name_string(self.issuer_der()),
            )
        })
    }

    /// The subject as an RFC 4514 string (most specific attribute first, e.g.
    /// `CN=Intermediate CA,O=Istio`); empty for the empty subject of Istio workload leaves.
    pub fn subject(&self) -> &str {
        &self.names().0
    }

    /// The issuer as an RFC 4514 string.
    pub fn issuer(&self) -> &str {
        &self.names().1
    }

    /// True when issuer and subject are the same bytes (self-issued).
    pub fn is_self_issued(&self) -> bool {
        self.subject_der() == self.issuer_der()
    }

    /// Start of the validity period.
    pub fn not_before(&self) -> OffsetDateTime {
        unix(self.0.not_before)
    }

    /// End of the validity period.
    pub fn not_after(&self) -> OffsetDateTime {
        unix(self.0.not_after)
    }

    /// Start of the validity period in Unix seconds.
    pub fn not_before_unix(&self) -> i64 {
        self.0.not_before
    }

    /// End of the validity period in Unix seconds.
    pub fn not_after_unix(&self) -> i64 {
        self.0.not_after
    }

    /// True when `at` lies within [notBefore, notAfter] (both inclusive, as RFC 5280 says).
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        let t = at.unix_timestamp();
        self.0.not_before <= t && t <= self.0.not_after
    }

    /// The DER of the SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> &[u8] {
        &self.0.der[self.0.spki.r()]
    }

    /// The subjectPublicKey bits (for RSA the PKCS#1 RSAPublicKey, for EC the point).
    pub fn public_key(&self) -> &[u8] {
        &self.0.der[self.0.public_key.r()]
    }

    /// The public key's algorithm and size.
    pub fn key_algorithm(&self) -> KeyAlgorithm {
        self.0.key_algorithm
    }

    /// The outer signatureAlgorithm.
    pub fn signature_algorithm(&self) -> &SignatureAlgorithm {
        &self.0.signature_algorithm
    }

    /// True when the outer signatureAlgorithm and the one inside tbsCertificate are the same
    /// bytes (RFC 5280 4.1.1.2); verification refuses certificates where they differ.
    pub fn signature_algorithms_match(&self) -> bool {
        self.0.der[self.0.tbs_signature_alg.r()] == self.0.der[self.0.signature_alg_tlv.r()]
    }

    /// The tbsCertificate bytes exactly as encoded (what the signature covers).
    pub fn tbs_der(&self) -> &[u8] {
        &self.0.der[self.0.tbs.r()]
    }

    /// The signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.0.der[self.0.signature.r()]
    }

    /// basicConstraints, when present.
    pub fn basic_constraints(&self) -> Option<BasicConstraints> {
        self.0.basic_constraints
    }

    /// True when basicConstraints says cA.
    pub fn is_ca(&self) -> bool {
        self.0.basic_constraints.is_some_and(|b| b.ca)
    }

    /// keyUsage, when present.
    pub fn key_usage(&self) -> Option<KeyUsage> {
        self.0.key_usage
    }

    /// extendedKeyUsage purposes, when the extension is present.
    pub fn extended_key_usage(&self) -> Option<&[ExtendedKeyUsage]> {
        self.0.eku.as_deref()
    }

    /// The subjectKeyIdentifier, when present.
    pub fn subject_key_id(&self) -> Option<&[u8]> {
        self.0.ski.map(|r| &self.0.der[r.r()])
    }

    /// The keyIdentifier of authorityKeyIdentifier, when present.
    pub fn authority_key_id(&self) -> Option<&[u8]> {
        self.0.aki.map(|r| &self.0.der[r.r()])
    }

    /// URI subject alternative names.
    pub fn san_uris(&self) -> &[String] {
        self.0.sans.as_deref().map_or(&[], |s| &s.uris)
    }

    /// DNS subject alternative names.
    pub fn san_dns_names(&self) -> &[String] {
        self.0.sans.as_deref().map_or(&[], |s| &s.dns)
    }

    /// Email (rfc822Name) subject alternative names.
    pub fn san_emails(&self) -> &[String] {
        self.0.sans.as_deref().map_or(&[], |s| &s.emails)
    }

    /// IP address subject alternative names.
    pub fn san_ips(&self) -> &[std::net::IpAddr] {
        self.0.sans.as_deref().map_or(&[], |s| &s.ips)
    }

    /// The URI SANs that are valid SPIFFE IDs.
    pub fn spiffe_ids(&self) -> Vec<SpiffeId> {
        self.san_uris()
            .iter()
            .filter_map(|u| u.parse().ok())
            .collect()
    }

    /// Every extension, in certificate order.
    pub fn extensions(&self) -> impl Iterator<Item = Extension<'_>> + '_ {
        let body = self.0.extensions.map_or(&[][..], |s| &self.0.der[s.r()]);
        let mut w = Walker::new(body);
        // The structure was validated when the certificate was parsed.
        std::iter::from_fn(move || {
            let ext = w.expect(tag::SEQUENCE, "").ok()?;
            let mut e = ext.walker();
            let oid = e.expect(tag::OID, "").ok()?.value;
            let critical = match e.optional(tag::BOOLEAN).ok()? {
                Some(b) => derwalk::boolean(&b).ok()?,
                None => false,
            };
            let value = e.expect(tag::OCTET_STRING, "").ok()?.value;
            Some(Extension {
                oid: crate::oid::dotted(oid),
                name: ext_oid::name(oid),
                critical,
                value,
            })
        })
    }

    /// Critical extensions that meshtrust's verifier does not process (a verifier must reject
    /// the certificate: RFC 5280 4.2). Name constraints and policies are among them.
    pub fn unhandled_critical_extensions(&self) -> Vec<String> {
        if !self.0.unhandled_critical {
            return Vec::new();
        }
        self.extensions()
            .filter(|e| e.critical && e.name.is_none_or(|n| !ext_oid::understood_name(n)))
            .map(|e| e.name.map(str::to_owned).unwrap_or(e.oid))
            .collect()
    }

    /// Checks that `issuer`'s public key verifies this certificate's signature over the
    /// original tbsCertificate bytes.
    ///
    /// ```
    /// # let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem"))?;
    /// # let root = meshtrust::cert::Certificate::from_der(&meshtrust::pem::parse(&pem)?[0].der)?;
    /// root.verify_signed_by(&root)?; // a root signs itself
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), SignatureError> {
        signature::verify(
            &self.0.signature_algorithm,
            issuer.0.key_algorithm,
            issuer.public_key(),
            self.tbs_der(),
            self.signature(),
        )
    }

    /// The role of the certificate; computing it checks the self-signature once (cached).
    pub fn role(&self) -> Role {
        *self.0.role.get_or_init(|| {
            let self_signed = || self.is_self_issued() && self.verify_signed_by(self).is_ok();
            if self.is_ca() {
                if self_signed() {
                    Role::Root
                } else {
                    Role::Intermediate
                }
            } else if self.0.basic_constraints.is_none() && self.0.version == 0 && self_signed() {
                Role::Root
            } else {
                Role::Leaf
            }
        })
    }
}

fn unix(t: i64) -> OffsetDateTime {
    // derwalk::time only yields years 0..=9999, which OffsetDateTime always represents.
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// RFC 4514 rendering through x509-cert; a name it cannot decode renders as `#<hex DER>`.
fn name_string(der_bytes: &[u8]) -> String {
    use der::Decode;
    match x509_cert::name::Name::from_der(der_bytes) {
        Ok(n) => n.to_string(),
        Err(_) => format!(
            "#{}",
            der_bytes
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    }
}

/// Structural check of a Name: SEQUENCE OF SET OF SEQUENCE { OID, value }.
fn check_name(name: &Tlv<'_>) -> Result<(), CertError> {
    let mut rdns = name.walker();
    while !rdns.is_empty() {
        let rdn = rdns.expect(tag::SET, "expected RelativeDistinguishedName SET")?;
        let mut atvs = rdn.walker();
        if atvs.is_empty() {
            return Err(CertError::Malformed(
                "empty RelativeDistinguishedName".to_owned(),
            ));
        }
        while !atvs.is_empty() {
            let atv = atvs.expect(tag::SEQUENCE, "expected AttributeTypeAndValue")?;
            let mut a = atv.walker();
            a.expect(tag::OID, "expected attribute type OID")?;
            a.any()?;
            a.finish("trailing data in AttributeTypeAndValue")?;
        }
    }
    Ok(())
}

fn parse_extensions(exts: &Tlv<'_>, inner: &mut Inner) -> Result<(), CertError> {
    let mut outer = exts.walker();
    let seq = outer.expect(tag::SEQUENCE, "expected Extensions SEQUENCE")?;
    outer.finish("trailing data after Extensions")?;
    let mut w = seq.walker();
    if w.is_empty() {
        return Err(CertError::Malformed("empty Extensions SEQUENCE".to_owned()));
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
    // The extension value must be exactly one TLV of the expected type.
    let single = |name: &'static str, want: u8, what: &str| -> Result<Tlv<'_>, CertError> {
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
    };
    match oid {
        ext_oid::BASIC_CONSTRAINTS => {
            let name = "basicConstraints";
            let seq = single(name, tag::SEQUENCE, "a SEQUENCE")?;
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
            inner.basic_constraints = Some(BasicConstraints { ca, path_len });
        }
        ext_oid::KEY_USAGE => {
            let name = "keyUsage";
            let bits = single(name, tag::BIT_STRING, "a BIT STRING")?;
            inner.key_usage = Some(KeyUsage(derwalk::named_bits(&bits).map_err(ext_err(name))?));
        }
        ext_oid::SKI => {
            let name = "subjectKeyIdentifier";
            let id = single(name, tag::OCTET_STRING, "an OCTET STRING")?;
            inner.ski = Some(id.value_span().into());
        }
        ext_oid::AKI => {
            let name = "authorityKeyIdentifier";
            let seq = single(name, tag::SEQUENCE, "a SEQUENCE")?;
            let mut s = seq.walker();
            if let Some(id) = s.optional(tag::implicit(0)).map_err(ext_err(name))? {
                inner.aki = Some(id.value_span().into());
            }
            s.optional(tag::explicit(1)).map_err(ext_err(name))?;
            s.optional(tag::implicit(2)).map_err(ext_err(name))?;
            s.finish("unexpected field").map_err(ext_err(name))?;
        }
        ext_oid::EKU => {
            let name = "extendedKeyUsage";
            let seq = single(name, tag::SEQUENCE, "a SEQUENCE")?;
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
            inner.eku = Some(out);
        }
        ext_oid::SAN => {
            let name = "subjectAltName";
            let seq = single(name, tag::SEQUENCE, "a SEQUENCE")?;
            let mut s = seq.walker();
            let ia5 = |t: &Tlv<'_>| -> Result<String, CertError> {
                if !t.value.is_ascii() {
                    return Err(CertError::BadExtension {
                        extension: name,
                        detail: "non-ASCII IA5String".to_owned(),
                    });
                }
                Ok(String::from_utf8_lossy(t.value).into_owned())
            };
            while !s.is_empty() {
                let gn = s.any().map_err(ext_err(name))?;
                match gn.tag {
                    0x81 => inner
                        .sans
                        .get_or_insert_with(Box::default)
                        .emails
                        .push(ia5(&gn)?),
                    0x82 => inner
                        .sans
                        .get_or_insert_with(Box::default)
                        .dns
                        .push(ia5(&gn)?),
                    0x86 => inner
                        .sans
                        .get_or_insert_with(Box::default)
                        .uris
                        .push(ia5(&gn)?),
                    0x87 => match gn.value.len() {
                        4 => inner.sans.get_or_insert_with(Box::default).ips.push(
                            std::net::IpAddr::from(
                                <[u8; 4]>::try_from(gn.value).unwrap_or_default(),
                            ),
                        ),
                        16 => inner.sans.get_or_insert_with(Box::default).ips.push(
                            std::net::IpAddr::from(
                                <[u8; 16]>::try_from(gn.value).unwrap_or_default(),
                            ),
                        ),
                        _ => {
                            return Err(CertError::BadExtension {
                                extension: name,
                                detail: "IP address of neither 4 nor 16 bytes".to_owned(),
                            });
                        }
                    },
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::sample_cert as first_cert;

    #[test]
    fn istio_sample_root() {
        let root = first_cert("root-cert.pem");
        assert_eq!(root.role(), Role::Root);
        assert!(root.is_ca());
        assert!(matches!(root.key_algorithm(), KeyAlgorithm::Rsa { .. }));
        assert!(root.subject().contains("O=Istio"), "{}", root.subject());
        assert_eq!(root.subject(), root.issuer());
        assert!(root.not_before() < root.not_after());
    }

    #[test]
    fn istio_sample_intermediate_and_leaf() {
        let root = first_cert("root-cert.pem");
        let ca = first_cert("ca-cert.pem");
        assert_eq!(ca.role(), Role::Intermediate);
        ca.verify_signed_by(&root).unwrap();
        assert_eq!(ca.issuer_der(), root.subject_der());
        let alt_root = first_cert("root-cert-alt.pem");
        assert_eq!(
            ca.verify_signed_by(&alt_root),
            Err(SignatureError::BadSignature)
        );

        let leaf = first_cert("leaf-workload-foo-cert.pem");
        assert_eq!(leaf.role(), Role::Leaf);
        assert_eq!(leaf.subject(), "");
        let ids = leaf.spiffe_ids();
        assert_eq!(ids.len(), 1, "{:?}", leaf.san_uris());
        assert_eq!(ids[0].trust_domain(), "trust-domain-foo");
    }

    #[test]
    fn intermediate_cluster1_extensions() {
        let ca = first_cert("ca-cert-alt.pem");
        assert_eq!(
            ca.basic_constraints(),
            Some(BasicConstraints {
                ca: true,
                path_len: Some(0)
            })
        );
        assert!(ca.key_usage().unwrap().contains(KeyUsage::KEY_CERT_SIGN));
        assert!(ca.subject().contains("L=cluster1"), "{}", ca.subject());
        assert_eq!(ca.san_dns_names(), ["istiod.istio-system.svc"]);
        let root = first_cert("root-cert-alt.pem");
        assert_eq!(ca.authority_key_id(), root.subject_key_id());
        assert!(ca.subject_key_id().is_some());
        assert!(ca.unhandled_critical_extensions().is_empty());
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let der = first_cert("root-cert.pem").der().to_vec();
        for cut in [0, 1, 2, 10, 100, der.len() - 1] {
            assert!(Certificate::from_der(&der[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = der.clone();
        extra.push(0);
        assert!(Certificate::from_der(&extra).is_err());
        // Flip every byte in turn: never a panic.
        for i in 0..der.len() {
            let mut m = der.clone();
            m[i] ^= 0xff;
            let _ = Certificate::from_der(&m).map(|c| (c.role(), c.subject().len()));
        }
    }

    #[test]
    fn spiffe_ids() {
        for bad in [
            "http://x/ns/a/sa/b",
            "spiffe://",
            "spiffe:///ns/a",
            "spiffe://td/ns/a/",
            "spiffe://td/./a",
            "spiffe://td:8080/a",
            "spiffe://user@td/a",
            "spiffe://td/a?q",
            "spiffe://td/a#f",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
        }
        let id = SpiffeId::istio("td", "ns1", "sa1").unwrap();
        assert_eq!(id.to_string(), "spiffe://td/ns/ns1/sa/sa1");
        let other: SpiffeId = "spiffe://td/workload".parse().unwrap();
        assert_eq!(other.namespace(), None);
    }
}
