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

use std::fmt;
use std::path::{Component, Path};

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use crate::cert::{Certificate, KeyUsage};
use crate::key::PrivateKey;
pub use crate::key::{KeyType, ParseKeyTypeError};

mod build;
mod cross;
mod error;
mod ext;
mod issuer;
mod name;
mod signer;
mod spec;

pub use cross::{CrossSigned, cross_sign};
pub use error::GenerateError;
pub use issuer::Issuer;
pub use name::{Attribute, Name};
pub use spec::{Clamp, IntermediateSpec, LeafSpec, RootSpec, Warning};

use build::{
    add_days, check_ca_spec, check_path_len, clamp, issue, params, push_aki, self_check,
    whole_seconds,
};

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
