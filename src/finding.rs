//! Findings: the one result type of every check, shared by [`crate::istio::check`] (istiod's
//! load checks of a secret) and [`crate::plan`] (the planner's refusals and the plan checks).
//!
//! A [`Finding`] has a [`Severity`], a [`Code`] (stable kebab-case strings that scripts match
//! on: [`Code::as_str`]; the README lists every one), the phase and the cluster it concerns
//! when a plan's, and one line for a human.
//!
//! ```
//! use meshtrust::finding::{Code, Finding, Severity, has_errors};
//! let f = Finding::new(Code::CaExpiring, Severity::Warning, "ca-cert.pem: expires in 3 days");
//! assert_eq!(f.to_string(), "warning: ca-expiring: ca-cert.pem: expires in 3 days");
//! let g = Finding::new(Code::CrossMatrix, Severity::Error, "a leaf does not verify").in_phase("02-switch-signer");
//! assert_eq!(g.to_string(), "error: cross-matrix: 02-switch-signer: a leaf does not verify");
//! assert!(has_errors(&[f, g]));
//! assert_eq!("cross-matrix".parse::<Code>(), Ok(Code::CrossMatrix));
//! ```

use std::fmt;

use serde::{Serialize, Serializer, ser::SerializeStruct};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For information.
    Info,
    /// Works, but is wrong or risky.
    Warning,
    /// istiod refuses or misuses the secret, or a rotation with it breaks traffic.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $s:literal, )*) => {
        /// What a finding is about: one variant per stable code. [`Code::as_str`] is the
        /// kebab-case string scripts match on (a contract: it never changes); it is also what
        /// `Display`, `FromStr` and serde use.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order (istiod's load checks, the planner's
            /// refusals, the plan checks, the plan directory's).
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The stable kebab-case string.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Code::$variant => $s, )*
                }
            }
        }
    };
}

codes! {
    // istiod's load checks and rotation warnings ([`crate::istio::check`]).
    /// A file istiod needs is absent.
    MissingFile = "missing-file",
    /// No ca-key.pem: before 1.26.1 an istiod started with it silently runs its self-signed
    /// CA (1.22.0-1.26.0, warning).
    MissingCaKey = "missing-ca-key",
    /// A partial set: "incomplete signing CA bundle detected" (1.26.1+).
    IncompleteCaBundle = "incomplete-ca-bundle",
    /// A file does not parse (PEM, certificate or key), with the line.
    UnreadableFile = "unreadable-file",
    /// root-cert.pem holds no certificate.
    EmptyRootCert = "empty-root-cert",
    /// A private key inside root-cert.pem or cert-chain.pem (they are published).
    PrivateKeyInBundle = "private-key-in-bundle",
    /// ca-cert.pem holds more than one block: istiod uses only the first.
    CaCertExtraBlocks = "ca-cert-extra-blocks",
    /// ca-cert is not a CA ("certificate is not authorized to sign other certificates").
    CaCertNotCa = "ca-cert-not-ca",
    /// ca-key.pem does not belong to ca-cert.pem (also a planner refusal, for the current or
    /// the new CA).
    CaKeyMismatch = "ca-key-mismatch",
    /// ca-cert does not verify against root-cert.pem with cert-chain.pem.
    CaCertUnverified = "ca-cert-unverified",
    /// cert-chain.pem does not start with ca-cert: wrong CA expiry metric and leaf TTL cap.
    CertChainNotCaCertFirst = "cert-chain-not-ca-cert-first",
    /// The root is in cert-chain.pem too: sent twice to peers (istio issue 39001).
    CertChainRootRepeated = "cert-chain-root-repeated",
    /// Several roots while ISTIO_MULTIROOT_MESH is off: a root change is ignored.
    MultipleRootsWithoutMultiroot = "multiple-roots-without-multiroot",
    /// A CA certificate is expired or not yet valid.
    CaExpired = "ca-expired",
    /// A CA certificate has under 90 days left.
    CaExpiring = "ca-expiring",
    /// The signing CA expires before a full leaf TTL: istiod caps leaves from
    /// 1.28.7/1.29.3/1.30.0, before they outlive it.
    CaShorterThanLeafTtl = "ca-shorter-than-leaf-ttl",
    /// ca-cert's notAfter is after its root's (root-transition.sh `check-root`); info when by
    /// under a day.
    IntermediateOutlivesRoot = "intermediate-outlives-root",
    /// Ambient where ztunnel trusts only the first root (ztunnel before 1.24.6/1.25.3/1.26.0)
    /// or the last (istiod 1.24.4/1.25.1) of a multi-root bundle (also a planner refusal).
    ZtunnelMultirootUnsupported = "ztunnel-multiroot-unsupported",
    /// An intermediate without AKI under one of several same-named roots: Envoy (BoringSSL)
    /// selects issuers by AKI and may pick the wrong root.
    SameNameRootsWithoutAki = "same-name-roots-without-aki",
    /// istio-ca-secret whose ca-cert.pem is not its root-cert.pem.
    SelfSignedRootMismatch = "self-signed-root-mismatch",
    /// cacerts holding `istio-generated`: the self-signed CA's storage, not a plugged-in CA.
    IstioGenerated = "istio-generated",
    /// ca-crl.pem lacks a CRL signed by every cert of cert-chain.pem ("missing CRL signed by
    /// certificates", 1.27.0+).
    CaCrlUnsigned = "ca-crl-unsigned",
    /// tls.crt/tls.key/ca.crt layout (chain = tls.crt + ca.crt).
    KubernetesTlsLayout = "kubernetes-tls-layout",

    // The planner's refusals ([`crate::plan::plan`], phase `inputs`).
    /// istiod 1.24.4 / 1.25.1 send only the last root in CSR responses (istio issue 55793):
    /// move to 1.24.6 / 1.25.3 before any root change.
    IstiodRootsSplit = "istiod-roots-split",
    /// The new CA expires before the rotation plus one leaf lifetime is over.
    NewCaExpiresEarly = "new-ca-expires-early",
    /// The current secret's signing certificate, roots or key cannot be read.
    CurrentUnreadable = "current-unreadable",
    /// The new CA is not a cacerts-layout directory.
    NewNotCacerts = "new-not-cacerts",
    /// The new CA lacks one of ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem.
    NewIncomplete = "new-incomplete",
    /// A file of the new CA does not parse, or its root-cert.pem holds no certificate.
    NewUnreadable = "new-unreadable",
    /// The new ca-cert.pem does not chain to the new root-cert.pem.
    NewIntermediateUnchained = "new-intermediate-unchained",
    /// The new CA is the current one.
    NothingToRotate = "nothing-to-rotate",
    /// A root rotation whose new root is the current one.
    SameRoot = "same-root",
    /// A forced kind the inputs do not fit.
    KindMismatch = "kind-mismatch",
    /// Multi-cluster: the clusters' new roots differ.
    NewRootsDiffer = "new-roots-differ",
    /// A cross-signed rotation without B'.
    CrossSignedMissing = "cross-signed-missing",
    /// B' does not carry the new root's subject and key.
    CrossSignedMismatch = "cross-signed-mismatch",
    /// B' is not issued by a root the cluster trusts now.
    CrossSignedUnanchored = "cross-signed-unanchored",

    // The plan checks ([`crate::plan::check_plan`], [`crate::plan::check_rollback`]).
    /// Fewer than two phases.
    TooFewPhases = "too-few-phases",
    /// The root file changes but ISTIO_MULTIROOT_MESH is off: istiod ignores the change (a
    /// warning without plan.json, whose restarts are unknown; also a planner refusal).
    MultirootOff = "multiroot-off",
    /// istiod refuses the new root file: up to 1.29 neither file's bytes contain the other's;
    /// from 1.30 neither certificate set contains the other.
    RootContainment = "root-containment",
    /// A phase signs with a CA that the previous phase's bundles (of every cluster) do not
    /// trust.
    SignerNotTrusted = "signer-not-trusted",
    /// The signer moves to another root but the root bytes do not change, so leaves are not
    /// re-issued.
    MissingTrigger = "missing-trigger",
    /// The phase that switches the signer also changes the trust set.
    TriggerChangesTrust = "trigger-changes-trust",
    /// A leaf of one phase does not verify against the bundle of the same, the next or the
    /// previous phase (of any cluster).
    CrossMatrix = "cross-matrix",
    /// A root leaves the bundle while leaves chaining to it can still be valid.
    EarlyRootRemoval = "early-root-removal",
    /// (Info) no recorded waits: the minimum wait before the removal is stated instead.
    WaitsUnknown = "waits-unknown",
    /// The last phase trusts more (or other) than the root of its signer.
    FinalTrust = "final-trust",
    /// The last phase signs with the same CA as the first.
    NoRotation = "no-rotation",
    /// (Cross-signed plans) a leaf as a sidecar presents it is refused by an Envoy peer
    /// trusting the roots of the same, the previous or the next phase: B' must precede the
    /// self-signed B.
    PresentedOrder = "presented-order",
    /// (Ambient, istiod before 1.24.4/1.25.1/1.26.0 with ztunnel before 1.24.6/1.25.3/1.26.0)
    /// ztunnel presents only cert-chain.pem's first certificate, and a peer of the same, the
    /// previous or the next phase cannot verify its leaf without the rest.
    ZtunnelChainTruncated = "ztunnel-chain-truncated",
    /// (Ambient, ztunnel before 1.28.6, 1.29.2, 1.30.0) a phase signs with a CA the roots
    /// ztunnel read at its last restart do not anchor (istio/ztunnel issue 1679).
    ZtunnelCaChannel = "ztunnel-ca-channel",
    /// Going back from a phase to the previous one, as the runbook prints it, breaks one of
    /// the plan checks.
    RollbackUnsafe = "rollback-unsafe",

    // The plan directory ([`crate::plan::read_plan_dir`], [`crate::plan::check_dir`],
    // [`crate::plan::check_applied`], [`crate::plan::seal_plan_dir`]).
    /// A file's hash differs from plan.json's, or a phase is in one of plan.json and the
    /// directories but not the other.
    PlanJsonMismatch = "plan-json-mismatch",
    /// (Info) checking with a profile that differs from the one recorded in plan.json.
    ProfileOverride = "profile-override",
    /// No plan.json: nothing to seal.
    PlanJsonMissing = "plan-json-missing",
    /// (Warning) a root file mixing CRLF and LF line endings.
    MixedLineEndings = "mixed-line-endings",
    /// A phase's secret.yaml is absent.
    SecretYamlMissing = "secret-yaml-missing",
    /// A phase's secret.yaml does not parse.
    SecretYamlUnreadable = "secret-yaml-unreadable",
    /// A phase's secret.yaml differs from the phase's PEM files.
    SecretYamlMismatch = "secret-yaml-mismatch",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A string that is no [`Code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown finding code {0:?}")]
pub struct UnknownCode(pub String);

impl std::str::FromStr for Code {
    type Err = UnknownCode;
    fn from_str(s: &str) -> Result<Code, UnknownCode> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownCode(s.to_owned()))
    }
}

/// One result of a check.
///
/// Serialized as `{"code", "severity", "message"}` for a secret's finding; a plan's (one with
/// a phase) also has `"phase"` and `"cluster"` (null outside multi-cluster plans), between
/// severity and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Stable code; scripts match on [`Code::as_str`].
    pub code: Code,
    /// The plan phase it concerns (a directory name, `inputs` for the planner's refusals,
    /// `plan.json`); None for a secret's finding.
    pub phase: Option<String>,
    /// The cluster, in multi-cluster plans (and the planner's refusals).
    pub cluster: Option<String>,
    /// One line for a human.
    pub message: String,
}

impl Finding {
    /// A finding without phase or cluster.
    pub fn new(code: Code, severity: Severity, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            code,
            phase: None,
            cluster: None,
            message: message.into(),
        }
    }

    /// An error finding.
    pub fn error(code: Code, message: impl Into<String>) -> Finding {
        Finding::new(code, Severity::Error, message)
    }

    /// This finding, about `phase`.
    #[must_use]
    pub fn in_phase(mut self, phase: impl Into<String>) -> Finding {
        self.phase = Some(phase.into());
        self
    }

    /// This finding, about `cluster` (None: not cluster-specific).
    #[must_use]
    pub fn in_cluster(mut self, cluster: Option<String>) -> Finding {
        self.cluster = cluster;
        self
    }

    /// True for [`Severity::Error`].
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// `SEVERITY: CODE: MESSAGE`, or `SEVERITY: CODE: PHASE [CLUSTER]: MESSAGE` for a plan's.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.code)?;
        if let Some(p) = &self.phase {
            write!(f, ": {p}")?;
        }
        if let Some(c) = &self.cluster {
            write!(f, " [{c}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Serialize for Finding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let plan = self.phase.is_some();
        let mut st = s.serialize_struct("Finding", if plan { 5 } else { 3 })?;
        st.serialize_field("code", &self.code)?;
        st.serialize_field("severity", &self.severity)?;
        if plan {
            st.serialize_field("phase", &self.phase)?;
            st.serialize_field("cluster", &self.cluster)?;
        } else if self.cluster.is_some() {
            st.serialize_field("cluster", &self.cluster)?;
        }
        st.serialize_field("message", &self.message)?;
        st.end()
    }
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for &c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert_eq!(s.parse::<Code>(), Ok(c));
            assert_eq!(c.to_string(), s);
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(s));
            let kebab = !s.is_empty()
                && s.split('-').all(|w| {
                    !w.is_empty()
                        && w.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                });
            assert!(kebab, "{s} is not kebab-case");
        }
        assert!("no-such-code".parse::<Code>().is_err());
    }

    #[test]
    fn the_readme_lists_every_code() {
        let readme = include_str!("../README.md");
        for c in Code::ALL {
            assert!(
                readme.contains(&format!("`{c}`")),
                "README.md does not list `{c}`"
            );
        }
    }

    #[test]
    fn json_shapes() {
        let f = Finding::new(Code::MissingFile, Severity::Error, "m");
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"code":"missing-file","severity":"error","message":"m"}"#
        );
        let p = f.clone().in_phase("01-trust-both");
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"code":"missing-file","severity":"error","phase":"01-trust-both","cluster":null,"message":"m"}"#
        );
        let c = p.in_cluster(Some("east".into()));
        assert_eq!(
            c.to_string(),
            "error: missing-file: 01-trust-both [east]: m"
        );
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"code":"missing-file","severity":"error","phase":"01-trust-both","cluster":"east","message":"m"}"#
        );
    }
}
