//! New roots, intermediates and workload leaves shaped exactly like Istio's own tooling makes
//! them, without OpenSSL.
//!
//! Defaults are Istio's, field by field:
//! - [`RootSpec::istio`]: `tools/certs` `root-ca` (common.mk, Makefile.selfsigned.mk): subject
//!   `O=Istio, CN=Root CA` (UTF8String), 3650 days, RSA 4096, sha256WithRSAEncryption,
//!   extensions in OpenSSL's order: subjectKeyIdentifier (SHA-1 hash), basicConstraints
//!   critical `CA:true` without pathlen, keyUsage critical digitalSignature, nonRepudiation,
//!   keyEncipherment, keyCertSign. No authorityKeyIdentifier (OpenSSL writes none on a
//!   self-signed `x509 -req -signkey`).
//! - [`IntermediateSpec::istio`]: `<name>-cacerts`: subject `O=Istio, CN=Intermediate CA,
//!   L=<name>`, **730 days** (common.mk `INTERMEDIATE_DAYS ?= 730`, never beyond the issuer
//!   chain's notAfter: the result says when it was clamped), RSA 4096, the same extensions with
//!   `pathlen:0`, then subjectAltName `DNS:istiod.istio-system.svc` (non-critical) and
//!   authorityKeyIdentifier = the issuer's subjectKeyIdentifier.
//! - [`LeafSpec::istio`]: what istiod signs for a workload (security/pkg/pki/util
//!   generate_cert.go): empty subject, notBefore = now - 2 min, 24 h (capped by the issuer
//!   chain's notAfter), keyUsage critical digitalSignature+keyEncipherment, extKeyUsage
//!   serverAuth+clientAuth, basicConstraints critical `CA:FALSE`, authorityKeyIdentifier,
//!   critical subjectAltName `URI:spiffe://<td>/ns/<ns>/sa/<sa>`, RSA 2048 (or ECDSA P-256).
//!
//! Every field can be overridden. Serial numbers are 128 random bits (as Go's istiod does;
//! never rcgen's key-derived default). The instant is a parameter: nothing here reads the
//! clock. Signing uses ring through rcgen; RSA keys are generated with aws-lc-rs (feature
//! `rsa-keygen`, on by default) because ring cannot generate RSA keys. ECDSA and Ed25519 need
//! ring only; without the feature, RSA key types are a [`GenerateError::RsaKeygenUnavailable`].
//!
//! Existing CAs read from disk sign too ([`Issuer::new`]): the issuer name of what they sign is
//! rebuilt from their subject (attribute order and string types kept) and compared byte for
//! byte after signing; a name rcgen cannot reproduce is refused, never silently re-encoded.
//!
//! ```
//! use meshtrust::generate::{self, IntermediateSpec, KeyType, LeafSpec, RootSpec};
//! use meshtrust::SpiffeId;
//! let now = time::macros::datetime!(2026-01-01 0:00 UTC);
//!
//! let root = generate::root(&RootSpec { key_type: KeyType::EcP256, ..RootSpec::istio() }, now)?;
//! let ca = generate::intermediate(
//!     &IntermediateSpec { key_type: KeyType::EcP256, ..IntermediateSpec::istio("cluster1") },
//!     &root.issuer()?,
//!     now,
//! )?;
//! assert_eq!(ca.certificate.subject(), "L=cluster1,CN=Intermediate CA,O=Istio");
//! assert!(ca.clamped.is_none());
//!
//! let id = SpiffeId::istio("cluster.local", "default", "sleep")?;
//! let leaf = generate::leaf(
//!     &LeafSpec { key_type: KeyType::EcP256, ..LeafSpec::istio(id) },
//!     &ca.issuer()?,
//!     now,
//! )?;
//! leaf.certificate.verify_signed_by(&ca.certificate)?;
//! assert_eq!(leaf.chain.len(), 2); // intermediate, root
//! assert!(!format!("{leaf:?}").contains("PRIVATE KEY"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::text::rfc3339;
use std::fmt;
use std::path::{Component, Path};
use std::str::FromStr;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::cert::{Certificate, ExtendedKeyUsage, KeyUsage, SpiffeId};
use crate::key::{KeyError, PrivateKey};

mod cross;
mod ext;
mod name;
mod signer;

pub use cross::{CrossSigned, cross_sign};
pub use name::{Attribute, Name};

use ext::San;
use signer::Signer;

/// Istio's root validity, days (common.mk `ROOTCA_DAYS`).
pub const ISTIO_ROOT_DAYS: u32 = 3650;
/// Istio's intermediate validity, days (common.mk `INTERMEDIATE_DAYS`).
pub const ISTIO_INTERMEDIATE_DAYS: u32 = 730;
/// The DNS SAN Istio's recipe puts on intermediates (common.mk `INTERMEDIATE_SAN_DNS`).
pub const ISTIO_INTERMEDIATE_SAN_DNS: &str = "istiod.istio-system.svc";
/// keyUsage of Istio's root and intermediates: digitalSignature, nonRepudiation,
/// keyEncipherment, keyCertSign.
pub const ISTIO_CA_KEY_USAGE: u16 = KeyUsage::DIGITAL_SIGNATURE
    | KeyUsage::NON_REPUDIATION
    | KeyUsage::KEY_ENCIPHERMENT
    | KeyUsage::KEY_CERT_SIGN;
/// keyUsage of istiod's workload certificates: digitalSignature, keyEncipherment.
pub const ISTIO_LEAF_KEY_USAGE: u16 = KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT;
/// istiod's default workload certificate lifetime (24 h).
pub const ISTIO_LEAF_TTL: Duration = Duration::hours(24);
/// How far istiod back-dates notBefore (`ClockSkewGracePeriod`, 2 min).
pub const ISTIO_CLOCK_SKEW: Duration = Duration::minutes(2);
/// istiod's default maximum workload certificate lifetime (`MAX_WORKLOAD_CERT_TTL`, 90 days).
pub const ISTIO_MAX_LEAF_TTL: Duration = Duration::days(90);

/// The key algorithms meshtrust generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA 2048 (istiod's default workload key).
    Rsa2048,
    /// RSA 3072.
    Rsa3072,
    /// RSA 4096 (Istio's CA default).
    Rsa4096,
    /// ECDSA P-256 (workloads with `ECC_SIGNATURE_ALGORITHM=ECDSA`).
    EcP256,
    /// ECDSA P-384.
    EcP384,
    /// Ed25519. istiod reads PKCS#8 Ed25519 CA keys (Go's `ParsePKCS8PrivateKey`), but Istio
    /// neither documents nor tests Ed25519 CAs: treat it as unconfirmed for production meshes.
    Ed25519,
}

impl KeyType {
    /// Every key type, in a stable order.
    pub const ALL: [KeyType; 6] = [
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
        KeyType::EcP256,
        KeyType::EcP384,
        KeyType::Ed25519,
    ];

    /// The command-line name (`rsa4096`, `ec-p256`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::EcP256 => "ec-p256",
            KeyType::EcP384 => "ec-p384",
            KeyType::Ed25519 => "ed25519",
        }
    }

    /// True for the RSA types (which need the `rsa-keygen` feature to generate).
    pub fn is_rsa(self) -> bool {
        matches!(self, KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096)
    }

    /// True when this build can generate the type.
    pub fn available(self) -> bool {
        !self.is_rsa() || cfg!(feature = "rsa-keygen")
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key type name that is not one of [`KeyType::name`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key type {0:?}; expected rsa2048, rsa3072, rsa4096, ec-p256, ec-p384 or ed25519")]
pub struct ParseKeyTypeError(pub String);

impl FromStr for KeyType {
    type Err = ParseKeyTypeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KeyType::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ParseKeyTypeError(s.to_owned()))
    }
}

/// A self-signed root CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootSpec {
    /// Subject (= issuer). Must not be empty.
    pub subject: Name,
    /// Key algorithm.
    pub key_type: KeyType,
    /// Validity in days from `now`.
    pub days: u32,
    /// keyUsage (critical). Must include keyCertSign.
    pub key_usage: KeyUsage,
    /// pathLenConstraint (Istio: none).
    pub path_len: Option<u8>,
}

impl RootSpec {
    /// Istio's `root-ca`: `O=Istio, CN=Root CA`, RSA 4096, 3650 days.
    pub fn istio() -> RootSpec {
        RootSpec {
            subject: Name::new()
                .with(Attribute::Organization, "Istio")
                .with(Attribute::CommonName, "Root CA"),
            key_type: KeyType::Rsa4096,
            days: ISTIO_ROOT_DAYS,
            key_usage: KeyUsage(ISTIO_CA_KEY_USAGE),
            path_len: None,
        }
    }
}

impl Default for RootSpec {
    fn default() -> Self {
        RootSpec::istio()
    }
}

/// An intermediate (signing) CA, as Istio's `<name>-cacerts` makes for cluster `<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntermediateSpec {
    /// Subject. Must not be empty.
    pub subject: Name,
    /// Key algorithm.
    pub key_type: KeyType,
    /// Validity in days from `now`, clamped to the issuer chain's notAfter.
    pub days: u32,
    /// keyUsage (critical). Must include keyCertSign.
    pub key_usage: KeyUsage,
    /// pathLenConstraint (Istio: 0).
    pub path_len: Option<u8>,
    /// DNS subjectAltNames (Istio: `istiod.istio-system.svc`); none omits the extension.
    pub dns_names: Vec<String>,
}

impl IntermediateSpec {
    /// Istio's `<cluster>-cacerts`: `O=Istio, CN=Intermediate CA, L=<cluster>`, RSA 4096,
    /// 730 days, pathlen 0, SAN `DNS:istiod.istio-system.svc`.
    pub fn istio(cluster: &str) -> IntermediateSpec {
        IntermediateSpec {
            subject: Name::new()
                .with(Attribute::Organization, "Istio")
                .with(Attribute::CommonName, "Intermediate CA")
                .with(Attribute::Locality, cluster),
            key_type: KeyType::Rsa4096,
            days: ISTIO_INTERMEDIATE_DAYS,
            key_usage: KeyUsage(ISTIO_CA_KEY_USAGE),
            path_len: Some(0),
            dns_names: vec![ISTIO_INTERMEDIATE_SAN_DNS.to_owned()],
        }
    }
}

/// A workload certificate as istiod signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// The SPIFFE ID (URI subjectAltName).
    pub spiffe_id: SpiffeId,
    /// Extra DNS subjectAltNames (istiod: none).
    pub dns_names: Vec<String>,
    /// Subject (istiod: empty).
    pub subject: Name,
    /// Marks subjectAltName critical (istiod: yes; RFC 5280 requires it with an empty subject).
    pub san_critical: bool,
    /// Key algorithm (istiod's sidecars: RSA 2048, or ECDSA P-256).
    pub key_type: KeyType,
    /// Lifetime from `now`, capped by the issuer chain's notAfter (istiod: 24 h).
    pub ttl: Duration,
    /// How far notBefore is set before `now` (istiod: 2 min).
    pub backdate: Duration,
    /// keyUsage (critical).
    pub key_usage: KeyUsage,
    /// extendedKeyUsage; empty omits the extension (istiod: serverAuth, clientAuth).
    pub extended_key_usage: Vec<ExtendedKeyUsage>,
}

impl LeafSpec {
    /// istiod's workload certificate for `spiffe_id`: RSA 2048, 24 h, empty subject.
    pub fn istio(spiffe_id: SpiffeId) -> LeafSpec {
        LeafSpec {
            spiffe_id,
            dns_names: Vec::new(),
            subject: Name::new(),
            san_critical: true,
            key_type: KeyType::Rsa2048,
            ttl: ISTIO_LEAF_TTL,
            backdate: ISTIO_CLOCK_SKEW,
            key_usage: KeyUsage(ISTIO_LEAF_KEY_USAGE),
            extended_key_usage: vec![ExtendedKeyUsage::ServerAuth, ExtendedKeyUsage::ClientAuth],
        }
    }
}

/// A notAfter shortened to stay within the issuer chain's validity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamp {
    /// What the spec asked for.
    pub requested_not_after: OffsetDateTime,
    /// What the certificate got.
    pub not_after: OffsetDateTime,
    /// Subject of the chain certificate whose notAfter limited it.
    pub limited_by: String,
}

impl fmt::Display for Clamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "notAfter clamped from {} to {} (notAfter of {:?})",
            rfc3339(self.requested_not_after),
            rfc3339(self.not_after),
            self.limited_by
        )
    }
}

/// Something worth telling the operator about a generated certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// The issuer has no subjectKeyIdentifier, so no authorityKeyIdentifier was written.
    IssuerWithoutKeyId {
        /// Issuer subject.
        issuer: String,
    },
    /// The issuer is not valid yet at `now` (clock skew?); the result is not usable before.
    IssuerNotYetValid {
        /// Issuer subject.
        issuer: String,
        /// Its notBefore.
        not_before: OffsetDateTime,
    },
    /// A leaf lifetime above istiod's default maximum (90 days).
    LeafTtlAboveIstioMaximum {
        /// The requested lifetime.
        ttl: Duration,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::IssuerWithoutKeyId { issuer } => write!(
                f,
                "issuer {issuer:?} has no subjectKeyIdentifier: no authorityKeyIdentifier written"
            ),
            Warning::IssuerNotYetValid { issuer, not_before } => write!(
                f,
                "issuer {issuer:?} is not valid before {}",
                rfc3339(*not_before)
            ),
            Warning::LeafTtlAboveIstioMaximum { ttl } => write!(
                f,
                "leaf lifetime {}h exceeds istiod's default maximum (MAX_WORKLOAD_CERT_TTL, 90 days)",
                ttl.whole_hours()
            ),
        }
    }
}

fn rfc3339_ref(t: &OffsetDateTime) -> String {
    rfc3339(*t)
}

fn path_len_rule(limit: &u32, depth: &u32) -> String {
    match (*limit, *depth) {
        (0, 0) => "it may not sign intermediate CAs".to_owned(),
        (l, d) if l <= d => format!(
            "it allows {l} intermediate CA(s) below it and the new one would be number {}",
            d + 1
        ),
        (l, d) => format!("the new intermediate needs a pathlen below {}", l - d),
    }
}

/// Why generation failed. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// An RSA key type in a build without the `rsa-keygen` feature.
    #[error(
        "generating {key_type} keys needs meshtrust's `rsa-keygen` feature (ring cannot \
         generate RSA keys); rebuild with it, or use ec-p256, ec-p384 or ed25519"
    )]
    RsaKeygenUnavailable {
        /// The requested type.
        key_type: KeyType,
    },
    /// The key generator failed.
    #[error("could not generate a {key_type} key: {reason}")]
    KeyGeneration {
        /// The requested type.
        key_type: KeyType,
        /// What failed.
        reason: String,
    },
    /// A key ring cannot sign with (e.g. RSA above 4096 bits, P-521).
    #[error("cannot sign with a {algorithm} key: {reason}")]
    UnsupportedSigningKey {
        /// The key's algorithm.
        algorithm: String,
        /// Why.
        reason: String,
    },
    /// A key problem (e.g. the CA key does not match the CA certificate).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The issuer certificate is not a CA.
    #[error("issuer {subject:?} is not a CA (basicConstraints cA is not set)")]
    NotCa {
        /// Issuer subject.
        subject: String,
    },
    /// The issuer's keyUsage lacks keyCertSign.
    #[error("issuer {subject:?} has a keyUsage without keyCertSign")]
    NoKeyCertSign {
        /// Issuer subject.
        subject: String,
    },
    /// The issuer's pathLenConstraint forbids the requested intermediate.
    #[error(
        "{subject:?} has pathLenConstraint {issuer_path_len}: {}",
        path_len_rule(.issuer_path_len, .depth)
    )]
    PathLen {
        /// Subject of the constraining CA.
        subject: String,
        /// Its constraint.
        issuer_path_len: u32,
        /// How far above the new CA it stands (0 = the issuer itself).
        depth: u32,
    },
    /// A certificate of the issuer chain has expired (or expires) at `now`.
    #[error("{subject:?} expired at {}; nothing valid can be signed under it", rfc3339_ref(.not_after))]
    IssuerExpired {
        /// Subject of the expired chain certificate.
        subject: String,
        /// Its notAfter.
        not_after: OffsetDateTime,
    },
    /// The issuer's subject cannot be rebuilt byte for byte by rcgen.
    #[error("the issuer's subject name cannot be reproduced exactly: {reason}")]
    UnrepresentableIssuerName {
        /// What rcgen cannot express.
        reason: String,
    },
    /// After signing, the issuer field differs from the issuer's subject bytes.
    #[error(
        "the signed certificate's issuer name ({actual}) differs from the issuer's subject \
         ({expected}) at the byte level; refusing it"
    )]
    IssuerNameMismatch {
        /// The issuer's subject (hex DER).
        expected: String,
        /// What rcgen wrote (hex DER).
        actual: String,
    },
    /// A certificate of the supplied chain does not sign the one before it.
    #[error(
        "chain certificate {index} ({subject:?}) did not issue the certificate before it: {reason}"
    )]
    BrokenChain {
        /// Index in the chain (0 = the issuer's own issuer).
        index: usize,
        /// Its subject.
        subject: String,
        /// What is wrong.
        reason: String,
    },
    /// A subject attribute is out of range or has invalid characters.
    #[error("invalid {attribute} in the subject: {reason}")]
    InvalidName {
        /// The attribute.
        attribute: Attribute,
        /// Why.
        reason: String,
    },
    /// Another spec field is invalid.
    #[error("invalid {field}: {reason}")]
    InvalidSpec {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// rcgen refused to build the certificate.
    #[error("rcgen could not build the certificate: {0}")]
    Rcgen(String),
    /// The generated certificate failed meshtrust's own checks (a bug; nothing is written).
    #[error("the generated certificate fails its self-check: {0}")]
    SelfCheck(String),
    /// Files for an Istio CA directory need a root bundle, and none is known.
    #[error(
        "no trust bundle (root-cert.pem) is known for this issuer; give its chain up to the root"
    )]
    NoTrustBundle,
    /// A cluster name that cannot be a directory name.
    #[error("invalid cluster name {name:?}: {reason}")]
    InvalidClusterName {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
}

/// A CA that can sign: its certificate, its key, the chain above it and the trust bundle its
/// CA directories hand out.
pub struct Issuer {
    certificate: Certificate,
    key: PrivateKey,
    chain: Vec<Certificate>,
    trust_bundle: Vec<u8>,
    signer: Signer,
    name: rcgen::DistinguishedName,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("subject", &self.certificate.subject())
            .field("sha256", &self.certificate.fingerprint().to_string())
            .field("key", &self.key)
            .field("chain", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// A CA from its certificate and key (e.g. read from `root-cert.pem` and `root-key.pem`).
    ///
    /// Checks that the key belongs to the certificate, that it is a CA allowed to sign
    /// certificates, that ring can sign with the key, and that its subject can be written
    /// back byte for byte as the issuer of what it signs. A self-signed certificate is its own
    /// trust bundle; for an intermediate, add [`Issuer::with_chain`].
    pub fn new(certificate: Certificate, key: PrivateKey) -> Result<Issuer, GenerateError> {
        key.check_matches(&certificate)?;
        if !certificate.is_ca() {
            return Err(GenerateError::NotCa {
                subject: certificate.subject().to_owned(),
            });
        }
        if certificate
            .key_usage()
            .is_some_and(|ku| !ku.contains(KeyUsage::KEY_CERT_SIGN))
        {
            return Err(GenerateError::NoKeyCertSign {
                subject: certificate.subject().to_owned(),
            });
        }
        let signer = Signer::new(&key)?;
        let name = name::rcgen_from_der(certificate.subject_der())?;
        let trust_bundle = if certificate.role() == crate::cert::Role::Root {
            certificate.to_pem().into_bytes()
        } else {
            Vec::new()
        };
        Ok(Issuer {
            certificate,
            key,
            chain: Vec::new(),
            trust_bundle,
            signer,
            name,
        })
    }

    /// Adds the certificates above this CA (its issuer first, up to the root). Each must have
    /// issued the one before it (name and signature are checked). When the chain ends in a
    /// root and no trust bundle was set, the root becomes the trust bundle.
    pub fn with_chain(mut self, chain: Vec<Certificate>) -> Result<Issuer, GenerateError> {
        let mut below = &self.certificate;
        for (index, c) in chain.iter().enumerate() {
            let broken = |reason: String| GenerateError::BrokenChain {
                index,
                subject: c.subject().to_owned(),
                reason,
            };
            if below.issuer_der() != c.subject_der() {
                return Err(broken(format!(
                    "its subject is not the issuer name of {:?}",
                    below.subject()
                )));
            }
            below
                .verify_signed_by(c)
                .map_err(|e| broken(format!("signature check failed: {e}")))?;
            below = c;
        }
        if self.trust_bundle.is_empty() {
            if let Some(last) = chain.last().filter(|c| c.role() == crate::cert::Role::Root) {
                self.trust_bundle = last.to_pem().into_bytes();
            }
        }
        self.chain = chain;
        Ok(self)
    }

    /// Sets the exact bytes of the trust bundle (`root-cert.pem`) that CA directories made
    /// under this issuer get; e.g. the original file, byte for byte, even with several roots.
    pub fn with_trust_bundle(mut self, bytes: Vec<u8>) -> Issuer {
        self.trust_bundle = bytes;
        self
    }

    /// The CA certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The certificates above it.
    pub fn chain(&self) -> &[Certificate] {
        &self.chain
    }

    /// The trust bundle bytes (empty when unknown).
    pub fn trust_bundle(&self) -> &[u8] {
        &self.trust_bundle
    }

    /// The certificate of the issuer chain that expires first (the limit of what it signs).
    pub fn first_expiring(&self) -> &Certificate {
        let mut first = &self.certificate;
        for c in &self.chain {
            if c.not_after() < first.not_after() {
                first = c;
            }
        }
        first
    }

    /// Checks validity at `now` and returns the notAfter limit.
    fn limit(
        &self,
        now: OffsetDateTime,
        warnings: &mut Vec<Warning>,
    ) -> Result<OffsetDateTime, GenerateError> {
        let first = self.first_expiring();
        if first.not_after() <= now {
            return Err(GenerateError::IssuerExpired {
                subject: first.subject().to_owned(),
                not_after: first.not_after(),
            });
        }
        if self.certificate.not_before() > now {
            warnings.push(Warning::IssuerNotYetValid {
                issuer: self.certificate.subject().to_owned(),
                not_before: self.certificate.not_before(),
            });
        }
        Ok(first.not_after())
    }

    fn rcgen_issuer(&self) -> rcgen::Issuer<'_, &Signer> {
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = self.name.clone();
        rcgen::Issuer::new(params, &self.signer)
    }
}

/// A generated certificate with its new key.
///
/// `Debug` shows the certificate and the key's type and public-key fingerprint only; the key
/// is zeroized when dropped.
#[derive(Clone)]
pub struct Generated {
    /// The certificate.
    pub certificate: Certificate,
    /// Its private key (PKCS#8 inside).
    pub key: PrivateKey,
    /// The certificate as PEM (64 columns, LF).
    pub cert_pem: String,
    /// The certificates above it (issuer first, up to the root); empty for a root.
    pub chain: Vec<Certificate>,
    /// The trust bundle (`root-cert.pem` bytes) that goes with it.
    pub trust_bundle: Vec<u8>,
    /// Set when notAfter was shortened to the issuer chain's.
    pub clamped: Option<Clamp>,
    /// Other things to report.
    pub warnings: Vec<Warning>,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generated")
            .field("certificate", &self.certificate)
            .field("key", &self.key)
            .field("chain", &self.chain)
            .field("trust_bundle_bytes", &self.trust_bundle.len())
            .field("clamped", &self.clamped)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl Generated {
    /// The key as a PKCS#8 `PRIVATE KEY` PEM block (what `openssl genrsa` writes in
    /// OpenSSL 3), zeroized when dropped.
    pub fn key_pem(&self) -> Zeroizing<String> {
        self.key.to_pkcs8_pem()
    }

    /// The certificate followed by its chain, as PEM: Istio's `cert-chain.pem`.
    pub fn cert_chain_pem(&self) -> String {
        let mut s = self.cert_pem.clone();
        for c in &self.chain {
            s.push_str(&c.to_pem());
        }
        s
    }

    /// This CA as Istio's plugged-in `cacerts` secret, in memory: ca-cert.pem (this
    /// certificate), ca-key.pem, cert-chain.pem ([`Generated::cert_chain_pem`]) and
    /// root-cert.pem (the trust bundle, byte for byte): the same bytes
    /// [`crate::istio::intermediate_files`] writes.
    ///
    /// ```
    /// use meshtrust::generate::{self, IntermediateSpec, KeyType, RootSpec};
    /// let now = time::OffsetDateTime::now_utc();
    /// let root = generate::root(&RootSpec { key_type: KeyType::EcP256, ..RootSpec::istio() }, now)?;
    /// let spec = IntermediateSpec { key_type: KeyType::EcP256, ..IntermediateSpec::istio("cluster1") };
    /// let int = generate::intermediate(&spec, &root.issuer()?, now)?;
    /// let secret = int.cacerts();
    /// assert_eq!(secret.file("root-cert.pem"), Some(&root.trust_bundle[..]));
    /// let findings = meshtrust::istio::check(&secret, &Default::default(), now);
    /// assert!(!meshtrust::istio::has_errors(&findings), "{findings:?}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cacerts(&self) -> crate::istio::CaSecret {
        crate::istio::CaSecret::cacerts(
            self.cert_pem.as_bytes(),
            self.key_pem().as_bytes(),
            self.cert_chain_pem().as_bytes(),
            &self.trust_bundle,
        )
    }

    /// This root as istiod's self-signed `istio-ca-secret`
    /// ([`crate::istio::CaSecret::istio_ca_secret`]): what a cluster that never plugged in a
    /// CA runs on, the starting point of a self-signed -> plugged-in rotation.
    pub fn istio_ca_secret(&self) -> crate::istio::CaSecret {
        crate::istio::CaSecret::istio_ca_secret(self.cert_pem.as_bytes(), self.key_pem().as_bytes())
    }

    /// This certificate and key as an [`Issuer`] (for a root or an intermediate).
    pub fn issuer(&self) -> Result<Issuer, GenerateError> {
        Ok(Issuer::new(self.certificate.clone(), self.key.clone())?
            .with_chain(self.chain.clone())?
            .with_trust_bundle(self.trust_bundle.clone()))
    }
}

/// Generates a private key of the given type.
pub fn generate_key(key_type: KeyType) -> Result<PrivateKey, GenerateError> {
    signer::generate(key_type)
}

/// Generates a self-signed root CA valid from `now` for `spec.days` days.
pub fn root(spec: &RootSpec, now: OffsetDateTime) -> Result<Generated, GenerateError> {
    let now = whole_seconds(now);
    check_ca_spec(&spec.subject, spec.days, spec.key_usage)?;
    let not_after = add_days(now, spec.days)?;
    let dn = spec.subject.to_rcgen()?;
    let key = generate_key(spec.key_type)?;
    root_with_key(spec, key, dn, now, not_after)
}

fn root_with_key(
    spec: &RootSpec,
    key: PrivateKey,
    dn: rcgen::DistinguishedName,
    now: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Generated, GenerateError> {
    let signer = Signer::new(&key)?;
    let ski = ext::subject_key_id(signer.public_key_bits());
    let extensions = vec![
        ext::ski(&ski),
        ext::basic_constraints(true, spec.path_len),
        ext::key_usage(spec.key_usage, true),
    ];
    let params = params(dn, now, not_after, extensions)?;
    let der = params
        .self_signed(&signer)
        .map_err(|e| GenerateError::Rcgen(e.to_string()))?
        .der()
        .to_vec();
    let certificate = self_check(der, &key, None)?;
    let cert_pem = certificate.to_pem();
    Ok(Generated {
        trust_bundle: cert_pem.clone().into_bytes(),
        certificate,
        key,
        cert_pem,
        chain: Vec::new(),
        clamped: None,
        warnings: Vec::new(),
    })
}

/// Generates an intermediate CA signed by `issuer`, valid from `now` for `spec.days` days or
/// until the issuer chain's first notAfter, whichever comes first (see [`Generated::clamped`]).
pub fn intermediate(
    spec: &IntermediateSpec,
    issuer: &Issuer,
    now: OffsetDateTime,
) -> Result<Generated, GenerateError> {
    let now = whole_seconds(now);
    check_ca_spec(&spec.subject, spec.days, spec.key_usage)?;
    check_path_len(spec.path_len, issuer)?;
    let dns: Vec<San<'_>> = spec.dns_names.iter().map(|d| San::Dns(d)).collect();
    let mut warnings = Vec::new();
    let limit = issuer.limit(now, &mut warnings)?;
    let (not_after, clamped) = clamp(add_days(now, spec.days)?, limit, issuer);
    let dn = spec.subject.to_rcgen()?;
    let key = generate_key(spec.key_type)?;
    let signer = Signer::new(&key)?;
    let mut extensions = vec![
        ext::ski(&ext::subject_key_id(signer.public_key_bits())),
        ext::basic_constraints(true, spec.path_len),
        ext::key_usage(spec.key_usage, true),
    ];
    if !dns.is_empty() {
        extensions.push(ext::subject_alt_name(&dns, false)?);
    }
    push_aki(&mut extensions, issuer, &mut warnings);
    let params = params(dn, now, not_after, extensions)?;
    issue(params, key, &signer, issuer, clamped, warnings)
}

/// A new Istio-shaped root and its intermediate for `cluster`, both with keys of `key_type`:
/// what `make -f Makefile.selfsigned.mk root-ca <cluster>-cacerts` makes (with
/// `key_type = KeyType::Rsa4096`). Returns `(root, intermediate)`;
/// `intermediate.cacerts()` is the cluster's `cacerts` secret.
///
/// ```
/// use meshtrust::generate::{self, KeyType};
/// let now = time::OffsetDateTime::now_utc();
/// let (root, int) = generate::istio_ca("cluster1", KeyType::EcP256, now)?;
/// assert_eq!(int.certificate.issuer_der(), root.certificate.subject_der());
/// assert_eq!(int.cacerts().file("root-cert.pem"), Some(&root.trust_bundle[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn istio_ca(
    cluster: &str,
    key_type: KeyType,
    now: OffsetDateTime,
) -> Result<(Generated, Generated), GenerateError> {
    let root = root(
        &RootSpec {
            key_type,
            ..RootSpec::istio()
        },
        now,
    )?;
    let int = intermediate(
        &IntermediateSpec {
            key_type,
            ..IntermediateSpec::istio(cluster)
        },
        &root.issuer()?,
        now,
    )?;
    Ok((root, int))
}

/// Issues a workload certificate for `spec.spiffe_id`, as istiod does: valid from
/// `now - spec.backdate` to `now + spec.ttl`, capped by the issuer chain's first notAfter.
pub fn leaf(
    spec: &LeafSpec,
    issuer: &Issuer,
    now: OffsetDateTime,
) -> Result<Generated, GenerateError> {
    let now = whole_seconds(now);
    if spec.ttl <= Duration::ZERO {
        return Err(GenerateError::InvalidSpec {
            field: "ttl",
            reason: "must be positive".to_owned(),
        });
    }
    if spec.backdate < Duration::ZERO {
        return Err(GenerateError::InvalidSpec {
            field: "backdate",
            reason: "must not be negative".to_owned(),
        });
    }
    if spec.key_usage.0 == 0 {
        return Err(GenerateError::InvalidSpec {
            field: "key_usage",
            reason: "must not be empty".to_owned(),
        });
    }
    if spec.subject.is_empty() && !spec.san_critical {
        return Err(GenerateError::InvalidSpec {
            field: "san_critical",
            reason: "subjectAltName must be critical when the subject is empty (RFC 5280 4.2.1.6)"
                .to_owned(),
        });
    }
    let mut warnings = Vec::new();
    if spec.ttl > ISTIO_MAX_LEAF_TTL {
        warnings.push(Warning::LeafTtlAboveIstioMaximum { ttl: spec.ttl });
    }
    let limit = issuer.limit(now, &mut warnings)?;
    let not_before = now
        .checked_sub(spec.backdate)
        .ok_or_else(|| GenerateError::InvalidSpec {
            field: "backdate",
            reason: "out of range".to_owned(),
        })?;
    let requested = now
        .checked_add(spec.ttl)
        .ok_or_else(|| GenerateError::InvalidSpec {
            field: "ttl",
            reason: "out of range".to_owned(),
        })?;
    let (not_after, clamped) = clamp(requested, limit, issuer);
    let dn = spec.subject.to_rcgen()?;
    let uri = spec.spiffe_id.to_string();
    let mut sans = vec![San::Uri(&uri)];
    sans.extend(spec.dns_names.iter().map(|d| San::Dns(d)));
    let key = generate_key(spec.key_type)?;
    let signer = Signer::new(&key)?;
    // Go's order (crypto/x509 buildCertExtensions, then istiod's SAN as an extra extension).
    let mut extensions = vec![ext::key_usage(spec.key_usage, true)];
    if !spec.extended_key_usage.is_empty() {
        extensions.push(ext::extended_key_usage(&spec.extended_key_usage)?);
    }
    extensions.push(ext::basic_constraints(false, None));
    push_aki(&mut extensions, issuer, &mut warnings);
    extensions.push(ext::subject_alt_name(&sans, spec.san_critical)?);
    let params = params(dn, not_before, not_after, extensions)?;
    issue(params, key, &signer, issuer, clamped, warnings)
}

fn push_aki(
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

fn issue(
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
fn check_path_len(new_path_len: Option<u8>, issuer: &Issuer) -> Result<(), GenerateError> {
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

fn check_ca_spec(subject: &Name, days: u32, key_usage: KeyUsage) -> Result<(), GenerateError> {
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

fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    // Certificates carry whole seconds in UTC; results report exactly what was written.
    OffsetDateTime::from_unix_timestamp(t.unix_timestamp()).unwrap_or(t)
}

fn add_days(now: OffsetDateTime, days: u32) -> Result<OffsetDateTime, GenerateError> {
    now.checked_add(Duration::days(i64::from(days)))
        .filter(|t| t.year() <= 9999)
        .ok_or_else(|| GenerateError::InvalidSpec {
            field: "days",
            reason: format!("{days} days from now is past the year 9999"),
        })
}

fn clamp(
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

fn random_serial() -> Result<rcgen::SerialNumber, GenerateError> {
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

fn params(
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
fn self_check(
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

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Checks that a cluster name is one plain directory name (Istio uses it as `L=` too).
pub fn check_cluster_name(name: &str) -> Result<(), GenerateError> {
    let bad = |reason| GenerateError::InvalidClusterName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(bad("contains control characters"));
    }
    let mut comps = Path::new(name).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(n)), None) if n == name => Ok(()),
        _ => Err(bad("must be a single directory name (no '/', '.' or '..')")),
    }
}

#[cfg(test)]
mod tests;
