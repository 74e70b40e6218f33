//! [`SpiffeId`]: the workload identity Istio writes into a leaf's URI SAN.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

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
