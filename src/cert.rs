//! One X.509 certificate: the original DER, its SHA-256 fingerprint and the fields a mesh CA
//! rotation needs, decoded once.
//!
//! Reading is two-level, so that a 10,000-root bundle is cheap to load:
//! - [`Certificate::from_der`] walks the whole DER structure strictly (definite minimal lengths,
//!   every TBS field in place, no duplicate extensions) and decodes at once everything path
//!   building and the rotation checks use: serial, issuer and subject bytes, validity, key
//!   algorithm and size, signature algorithms, basicConstraints, keyUsage, SKI, AKI, extended
//!   key usage and subjectAltName, plus the fingerprint.
//! - The RFC 4514 strings of the names are produced by x509-cert on first use
//!   ([`Certificate::subject`]). [`Certificate::check_strict`] runs x509-cert's full decoder;
//!   [`Certificate::from_der_strict`] does both at once and is what the Istio-secret checks use.
//!   x509-cert's own types are not part of meshtrust's API: whoever needs them decodes
//!   [`Certificate::der`] with x509-cert directly.
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
use std::sync::{Arc, OnceLock};

use time::OffsetDateTime;

use crate::derwalk::{self, Walker, tag};
use crate::signature::{self, KeyAlgorithm, SignatureAlgorithm, SignatureError};

mod ext;
mod fingerprint;
pub(crate) mod name;
mod spiffe;
#[cfg(test)]
mod tests;
mod usage;

pub use crate::derwalk::DerError;
use ext::{ext_oid, parse_extensions};
use name::{check_name, name_string};

pub use ext::Extension;
pub use fingerprint::{Fingerprint, FingerprintParseError};
pub use spiffe::{SpiffeId, SpiffeIdError};
pub use usage::{BasicConstraints, ExtendedKeyUsage, KeyUsage, Role};

/// Why DER bytes are not a certificate meshtrust can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The DER structure is malformed: what, and at which byte.
    #[error("malformed certificate: {0}")]
    Malformed(DerError),
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
    /// x509-cert's full decoder refused the certificate. Its words, as text: x509-cert's
    /// error type stays out of meshtrust's API (see [`Certificate::check_strict`]).
    #[error("x509-cert rejects the certificate: {0}")]
    Strict(String),
}

impl From<DerError> for CertError {
    fn from(e: DerError) -> Self {
        CertError::Malformed(e)
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
            return Err(CertError::Malformed(DerError {
                offset: u32::MAX as usize,
                what: "larger than 4 GiB",
            }));
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
            return Err(CertError::Malformed(DerError {
                offset: exts.as_ref().map_or(0, |e| e.start),
                what: "extensions in a certificate that is not v3",
            }));
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

    /// x509-cert's complete decoding, for [`Certificate::check_strict`] only: x509-cert's types
    /// stay out of meshtrust's API (a caller who wants them decodes [`Certificate::der`]).
    fn x509(&self) -> Result<x509_cert::Certificate, CertError> {
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
            crate::text::hex(s)
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
