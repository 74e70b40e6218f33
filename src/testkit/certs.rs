//! Certificates built to order, including deliberately broken ones.
//!
//! rcgen lays out the certificate (names, validity, extensions, key identifiers); the factory
//! then writes the requested signature AlgorithmIdentifier into tbsCertificate and signs the
//! exact TBS bytes itself with ring. That is how it covers what rcgen cannot produce:
//! RSASSA-PSS with standard parameters (rcgen's own PSS support is crate-private and uses
//! salt 20, which OpenSSL and rustls-webpki refuse), RSA PKCS#1 with SHA-384/512 from any RSA
//! key, an outer signatureAlgorithm that differs from the TBS one, and tampered signatures.

use time::OffsetDateTime;

use super::TestkitError;
use super::keys::{SigAlg, TestKey, default_signature};
use crate::cert::{Certificate, KeyUsage};
use crate::derwalk::{Walker, tag};
use crate::key::tlv;

/// Start of the default validity window: 2025-01-01T00:00:00Z.
pub const DEFAULT_NOT_BEFORE: i64 = 1_735_689_600;
/// End of the default validity window: 2045-01-01T00:00:00Z.
pub const DEFAULT_NOT_AFTER: i64 = 2_366_841_600;

/// The OID (1.3.6.1.4.1.57264.99.1, a private arc) of the extension
/// [`CertSpec::critical_unknown_extension`] adds.
pub const UNKNOWN_EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 57264, 99, 1];

/// A name attribute type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameAttr {
    /// countryName (C).
    Country,
    /// stateOrProvinceName (ST).
    State,
    /// localityName (L).
    Locality,
    /// organizationName (O).
    Organization,
    /// organizationalUnitName (OU).
    OrganizationalUnit,
    /// commonName (CN).
    CommonName,
}

impl NameAttr {
    fn rcgen(self) -> rcgen::DnType {
        match self {
            NameAttr::Country => rcgen::DnType::CountryName,
            NameAttr::State => rcgen::DnType::StateOrProvinceName,
            NameAttr::Locality => rcgen::DnType::LocalityName,
            NameAttr::Organization => rcgen::DnType::OrganizationName,
            NameAttr::OrganizationalUnit => rcgen::DnType::OrganizationalUnitName,
            NameAttr::CommonName => rcgen::DnType::CommonName,
        }
    }
}

/// The basicConstraints extension to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basic {
    /// No basicConstraints extension.
    Absent,
    /// basicConstraints with cA false (rcgen also writes a subjectKeyIdentifier then).
    NotCa,
    /// basicConstraints with cA true and an optional pathLenConstraint.
    Ca(Option<u8>),
}

/// The authorityKeyIdentifier to write.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Aki {
    /// None.
    Omit,
    /// The issuer's key identifier (what a well-behaved CA writes).
    FromIssuer,
    /// These bytes, whatever the issuer (a deliberately misleading hint).
    Explicit(Vec<u8>),
}

/// An extended key usage purpose to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eku {
    /// id-kp-serverAuth.
    ServerAuth,
    /// id-kp-clientAuth.
    ClientAuth,
    /// anyExtendedKeyUsage.
    Any,
    /// id-kp-codeSigning (a purpose a mesh never asks for).
    CodeSigning,
}

/// Everything about a certificate to build, except the keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertSpec {
    /// Subject attributes in order (empty for an Istio-style workload leaf).
    pub subject: Vec<(NameAttr, String)>,
    /// Serial number bytes (big-endian, positive); `None` derives one from the spec and key.
    pub serial: Option<Vec<u8>>,
    /// notBefore, Unix seconds.
    pub not_before: i64,
    /// notAfter, Unix seconds.
    pub not_after: i64,
    /// basicConstraints.
    pub basic: Basic,
    /// keyUsage bits ([`KeyUsage`] constants); `None` writes no keyUsage extension.
    pub key_usage: Option<u16>,
    /// extendedKeyUsage purposes; empty writes no extension.
    pub eku: Vec<Eku>,
    /// URI subject alternative names (SPIFFE IDs).
    pub uris: Vec<String>,
    /// DNS subject alternative names.
    pub dns: Vec<String>,
    /// authorityKeyIdentifier.
    pub aki: Aki,
    /// subjectKeyIdentifier override (rcgen writes one for CA and explicit non-CA
    /// certificates, derived from the key, unless this is set).
    pub ski: Option<Vec<u8>>,
    /// Adds a critical extension no verifier understands.
    pub critical_unknown_extension: bool,
    /// Signature algorithm; `None` uses the issuer key's default ([`super::default_signature`]).
    pub signature: Option<SigAlg>,
    /// When set, the outer signatureAlgorithm differs from the one in tbsCertificate: the
    /// signature is made (validly) with this one, the TBS names [`CertSpec::signature`].
    pub outer_signature: Option<SigAlg>,
    /// Flips one bit in the middle of the signature value.
    pub tamper_signature: bool,
}

const CA_USAGE: u16 = KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN | KeyUsage::DIGITAL_SIGNATURE;
const LEAF_USAGE: u16 = KeyUsage::DIGITAL_SIGNATURE | KeyUsage::KEY_ENCIPHERMENT;

impl CertSpec {
    fn base(subject: Vec<(NameAttr, String)>) -> CertSpec {
        CertSpec {
            subject,
            serial: None,
            not_before: DEFAULT_NOT_BEFORE,
            not_after: DEFAULT_NOT_AFTER,
            basic: Basic::Absent,
            key_usage: None,
            eku: Vec::new(),
            uris: Vec::new(),
            dns: Vec::new(),
            aki: Aki::FromIssuer,
            ski: None,
            critical_unknown_extension: false,
            signature: None,
            outer_signature: None,
            tamper_signature: false,
        }
    }

    /// A root CA `O=<org>, CN=<cn>`: basicConstraints cA (no pathLen), keyUsage keyCertSign,
    /// cRLSign and digitalSignature, a subjectKeyIdentifier and no authorityKeyIdentifier.
    pub fn root(org: &str, cn: &str) -> CertSpec {
        CertSpec {
            basic: Basic::Ca(None),
            key_usage: Some(CA_USAGE),
            aki: Aki::Omit,
            ..CertSpec::base(vec![
                (NameAttr::Organization, org.to_owned()),
                (NameAttr::CommonName, cn.to_owned()),
            ])
        }
    }

    /// An intermediate CA `O=<org>, CN=<cn>`: like [`CertSpec::root`] plus an
    /// authorityKeyIdentifier naming its issuer's key.
    pub fn intermediate(org: &str, cn: &str) -> CertSpec {
        CertSpec {
            aki: Aki::FromIssuer,
            ..CertSpec::root(org, cn)
        }
    }

    /// A server/client leaf `CN=<cn>` with a DNS SAN of the same name: no basicConstraints,
    /// keyUsage digitalSignature + keyEncipherment, EKU serverAuth + clientAuth.
    pub fn leaf(cn: &str) -> CertSpec {
        CertSpec {
            key_usage: Some(LEAF_USAGE),
            eku: vec![Eku::ServerAuth, Eku::ClientAuth],
            dns: vec![cn.to_owned()],
            ..CertSpec::base(vec![(NameAttr::CommonName, cn.to_owned())])
        }
    }

    /// An Istio workload leaf: empty subject, one critical URI SAN (the SPIFFE ID), keyUsage
    /// digitalSignature + keyEncipherment, EKU serverAuth + clientAuth, no basicConstraints.
    pub fn workload(spiffe_id: &str) -> CertSpec {
        CertSpec {
            key_usage: Some(LEAF_USAGE),
            eku: vec![Eku::ServerAuth, Eku::ClientAuth],
            uris: vec![spiffe_id.to_owned()],
            ..CertSpec::base(Vec::new())
        }
    }

    /// Sets the validity window (Unix seconds).
    pub fn validity(mut self, not_before: i64, not_after: i64) -> CertSpec {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Sets an explicit serial number.
    pub fn serial(mut self, serial: &[u8]) -> CertSpec {
        self.serial = Some(serial.to_vec());
        self
    }

    /// Sets basicConstraints.
    pub fn basic(mut self, basic: Basic) -> CertSpec {
        self.basic = basic;
        self
    }

    /// Sets (or with `None` removes) the keyUsage extension.
    pub fn key_usage(mut self, bits: Option<u16>) -> CertSpec {
        self.key_usage = bits;
        self
    }

    /// Sets the extendedKeyUsage purposes.
    pub fn eku(mut self, eku: &[Eku]) -> CertSpec {
        self.eku = eku.to_vec();
        self
    }

    /// Sets the authorityKeyIdentifier.
    pub fn aki(mut self, aki: Aki) -> CertSpec {
        self.aki = aki;
        self
    }

    /// Overrides the subjectKeyIdentifier.
    pub fn ski(mut self, ski: &[u8]) -> CertSpec {
        self.ski = Some(ski.to_vec());
        self
    }

    /// Adds a critical extension no verifier understands.
    pub fn critical_unknown_extension(mut self) -> CertSpec {
        self.critical_unknown_extension = true;
        self
    }

    /// Sets the signature algorithm.
    pub fn signature(mut self, alg: SigAlg) -> CertSpec {
        self.signature = Some(alg);
        self
    }

    /// Makes the outer signatureAlgorithm differ from the TBS one (see the field's docs).
    pub fn outer_signature(mut self, alg: SigAlg) -> CertSpec {
        self.outer_signature = Some(alg);
        self
    }

    /// Flips a bit of the signature.
    pub fn tampered(mut self) -> CertSpec {
        self.tamper_signature = true;
        self
    }

    fn params(&self, subject_key: &TestKey) -> Result<rcgen::CertificateParams, TestkitError> {
        let mut p = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        for (attr, value) in &self.subject {
            dn.push(attr.rcgen(), value.as_str());
        }
        p.distinguished_name = dn;
        p.not_before = datetime(self.not_before)?;
        p.not_after = datetime(self.not_after)?;
        let serial = match &self.serial {
            Some(s) => s.clone(),
            None => {
                let seed = format!("{self:?}");
                let fp = crate::cert::Fingerprint::of(
                    &[seed.as_bytes(), subject_key.public_key()].concat(),
                );
                let mut s = fp.0[..16].to_vec();
                s[0] &= 0x7f;
                s[0] |= 0x40;
                s
            }
        };
        p.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
        p.is_ca = match self.basic {
            Basic::Absent => rcgen::IsCa::NoCa,
            Basic::NotCa => rcgen::IsCa::ExplicitNoCa,
            Basic::Ca(None) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained),
            Basic::Ca(Some(n)) => rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(n)),
        };
        if let Some(bits) = self.key_usage {
            p.key_usages = (0..9)
                .filter(|i| bits & (1 << i) != 0)
                .filter_map(|i| KEY_USAGES.get(i).copied())
                .collect();
        }
        p.extended_key_usages = self
            .eku
            .iter()
            .map(|e| match e {
                Eku::ServerAuth => rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                Eku::ClientAuth => rcgen::ExtendedKeyUsagePurpose::ClientAuth,
                Eku::Any => rcgen::ExtendedKeyUsagePurpose::Any,
                Eku::CodeSigning => rcgen::ExtendedKeyUsagePurpose::CodeSigning,
            })
            .collect();
        let ia5 = |s: &String| {
            rcgen::string::Ia5String::try_from(s.as_str())
                .map_err(|e| TestkitError::Rcgen(format!("SAN {s:?}: {e}")))
        };
        for uri in &self.uris {
            p.subject_alt_names.push(rcgen::SanType::URI(ia5(uri)?));
        }
        for dns in &self.dns {
            p.subject_alt_names.push(rcgen::SanType::DnsName(ia5(dns)?));
        }
        p.use_authority_key_identifier_extension = self.aki != Aki::Omit;
        if let Some(ski) = &self.ski {
            p.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(ski.clone());
        }
        if self.critical_unknown_extension {
            let mut ext =
                rcgen::CustomExtension::from_oid_content(UNKNOWN_EXTENSION_OID, vec![0x05, 0x00]);
            ext.set_criticality(true);
            p.custom_extensions.push(ext);
        }
        Ok(p)
    }
}

const KEY_USAGES: [rcgen::KeyUsagePurpose; 9] = [
    rcgen::KeyUsagePurpose::DigitalSignature,
    rcgen::KeyUsagePurpose::ContentCommitment,
    rcgen::KeyUsagePurpose::KeyEncipherment,
    rcgen::KeyUsagePurpose::DataEncipherment,
    rcgen::KeyUsagePurpose::KeyAgreement,
    rcgen::KeyUsagePurpose::KeyCertSign,
    rcgen::KeyUsagePurpose::CrlSign,
    rcgen::KeyUsagePurpose::EncipherOnly,
    rcgen::KeyUsagePurpose::DecipherOnly,
];

fn datetime(unix: i64) -> Result<OffsetDateTime, TestkitError> {
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| TestkitError::Rcgen(format!("time {unix}: {e}")))
}

/// A certificate the factory built, with its key and the spec it was built from.
#[derive(Debug, Clone)]
pub struct Issued {
    cert: Certificate,
    key: TestKey,
    spec: CertSpec,
}

impl Issued {
    /// A self-signed certificate (a root, or with a broken spec anything else).
    pub fn self_signed(spec: &CertSpec, key: &TestKey) -> Result<Issued, TestkitError> {
        let cert = build(spec, key, None)?;
        Ok(Issued {
            cert,
            key: key.clone(),
            spec: spec.clone(),
        })
    }

    /// A certificate for `subject_key` issued (signed) by `self`, whatever `self` is: the
    /// factory checks nothing, so a leaf can "issue" a certificate.
    pub fn issue(&self, spec: &CertSpec, subject_key: &TestKey) -> Result<Issued, TestkitError> {
        let cert = build(spec, subject_key, Some(self))?;
        Ok(Issued {
            cert,
            key: subject_key.clone(),
            spec: spec.clone(),
        })
    }

    /// The certificate.
    pub fn cert(&self) -> &Certificate {
        &self.cert
    }

    /// Its key.
    pub fn key(&self) -> &TestKey {
        &self.key
    }

    /// The spec it was built from.
    pub fn spec(&self) -> &CertSpec {
        &self.spec
    }

    /// The certificate as canonical PEM.
    pub fn pem(&self) -> String {
        self.cert.to_pem()
    }
}

fn build(
    spec: &CertSpec,
    subject_key: &TestKey,
    issuer: Option<&Issued>,
) -> Result<Certificate, TestkitError> {
    let rc = |e: rcgen::Error| TestkitError::Rcgen(e.to_string());
    let params = spec.params(subject_key)?;
    let (issuer_key, mut issuer_params) = match issuer {
        Some(i) => (&i.key, i.spec.params(&i.key)?),
        None => (subject_key, params.clone()),
    };
    if let Aki::Explicit(id) = &spec.aki {
        issuer_params.key_identifier_method = rcgen::KeyIdMethod::PreSpecified(id.clone());
    }
    let signer = issuer_key.rcgen();
    let rc_issuer = rcgen::Issuer::from_params(&issuer_params, &signer);
    let draft = params
        .signed_by(&subject_key.rcgen(), &rc_issuer)
        .map_err(rc)?;
    let tbs_alg = spec
        .signature
        .unwrap_or_else(|| default_signature(issuer_key.kind()));
    let outer_alg = spec.outer_signature.unwrap_or(tbs_alg);
    let der = resign(
        draft.der(),
        tbs_alg,
        outer_alg,
        issuer_key,
        spec.tamper_signature,
    )?;
    Certificate::from_der_vec(der).map_err(|e| TestkitError::Der(e.to_string()))
}

/// Rewrites the signature AlgorithmIdentifier inside tbsCertificate to `tbs_alg`, signs the
/// new TBS bytes with `outer_alg` and `key`, and assembles the certificate.
fn resign(
    draft: &[u8],
    tbs_alg: SigAlg,
    outer_alg: SigAlg,
    key: &TestKey,
    tamper: bool,
) -> Result<Vec<u8>, TestkitError> {
    let der = |e: crate::derwalk::DerError| TestkitError::Der(e.to_string());
    let mut outer = Walker::new(draft);
    let cert = outer.expect(tag::SEQUENCE, "certificate").map_err(der)?;
    let mut c = cert.walker();
    let tbs = c.expect(tag::SEQUENCE, "tbsCertificate").map_err(der)?;
    let mut t = tbs.walker();
    let version = t.expect(tag::explicit(0), "version").map_err(der)?;
    let serial = t.expect(tag::INTEGER, "serial").map_err(der)?;
    let alg = t.expect(tag::SEQUENCE, "signature").map_err(der)?;
    let slice = |r: std::ops::Range<usize>| {
        draft
            .get(r)
            .ok_or_else(|| TestkitError::Der("span outside the draft".to_owned()))
    };
    let rest = slice(alg.span().end..tbs.span().end)?;
    let tbs_der = tlv(
        tag::SEQUENCE,
        &[
            slice(version.span())?,
            slice(serial.span())?,
            &tbs_alg.algorithm_identifier(),
            rest,
        ]
        .concat(),
    );
    let mut sig = key.sign(outer_alg, &tbs_der)?;
    if tamper {
        let mid = sig.len() / 2;
        if let Some(b) = sig.get_mut(mid) {
            *b ^= 0x10;
        }
    }
    let mut bits = Vec::with_capacity(sig.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&sig);
    Ok(tlv(
        tag::SEQUENCE,
        &[
            tbs_der,
            outer_alg.algorithm_identifier(),
            tlv(tag::BIT_STRING, &bits),
        ]
        .concat(),
    ))
}

/// A root, zero or more intermediates and a leaf, built in one go.
#[derive(Debug, Clone)]
pub struct TestChain {
    /// The self-signed root.
    pub root: Issued,
    /// Intermediates, top down: `intermediates[0]` is issued by the root.
    pub intermediates: Vec<Issued>,
    /// The leaf, issued by the last intermediate (or the root).
    pub leaf: Issued,
}

impl TestChain {
    /// Builds `root -> intermediates... -> leaf` with the given keys (first the root's, last
    /// the leaf's; at least two). Names are `O=<org>, CN=<org> Root`, `CN=<org> Intermediate
    /// <i>` and a leaf `CN=<org> leaf`; the validity is the default window.
    pub fn build(org: &str, keys: &[TestKey]) -> Result<TestChain, TestkitError> {
        let (root_key, rest) = keys
            .split_first()
            .ok_or_else(|| TestkitError::Unsupported("a chain needs keys".to_owned()))?;
        let (leaf_key, middle) = rest.split_last().ok_or_else(|| {
            TestkitError::Unsupported("a chain needs at least two keys".to_owned())
        })?;
        let root = Issued::self_signed(&CertSpec::root(org, &format!("{org} Root")), root_key)?;
        let mut intermediates: Vec<Issued> = Vec::with_capacity(middle.len());
        for (i, key) in middle.iter().enumerate() {
            let spec = CertSpec::intermediate(org, &format!("{org} Intermediate {}", i + 1));
            let next = intermediates.last().unwrap_or(&root).issue(&spec, key)?;
            intermediates.push(next);
        }
        let leaf = intermediates
            .last()
            .unwrap_or(&root)
            .issue(&CertSpec::leaf(&format!("{org} leaf")), leaf_key)?;
        Ok(TestChain {
            root,
            intermediates,
            leaf,
        })
    }

    /// The intermediates bottom up (leaf side first), as a leaf's chain file lists them.
    pub fn chain(&self) -> Vec<Certificate> {
        self.intermediates
            .iter()
            .rev()
            .map(|i| i.cert().clone())
            .collect()
    }
}
