//! What to generate: the specs of a root, an intermediate and a leaf, with Istio's defaults,
//! and what generation adjusted or warns about.

use std::fmt;

use time::{Duration, OffsetDateTime};

use super::{
    Attribute, ISTIO_CA_KEY_USAGE, ISTIO_CLOCK_SKEW, ISTIO_INTERMEDIATE_DAYS,
    ISTIO_INTERMEDIATE_SAN_DNS, ISTIO_LEAF_KEY_USAGE, ISTIO_LEAF_TTL, ISTIO_ROOT_DAYS, Name,
};
use crate::cert::{ExtendedKeyUsage, KeyUsage, SpiffeId};
use crate::key::KeyType;
use crate::text::rfc3339;

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
