//! The rotation planner: from the CA material a cluster has now and the new material, the
//! exact `cacerts` contents of every phase, in order, with what to do and what to wait for
//! between phases; and a checker that proves a plan (also a hand-edited one) safe.
//!
//! Four kinds of rotation (inferred from the inputs, or forced):
//!
//! 1. [`RotationKind::RootRotation`], plugged-in root A -> B (Istio's own integration test):
//!    `00-current` -> `01-trust-both` (intermediate A signs; roots = current bytes + B) ->
//!    `02-switch-signer` (intermediate B signs; roots = A+B+B, the deliberate duplicate that
//!    makes every proxy re-issue from B at once) -> `03-drop-old-root` (roots = B).
//! 2. [`RotationKind::SelfSignedToPluggedIn`]: istiod's self-signed root S keeps signing while
//!    roots = S+B (a new `cacerts`; istiod restarts to enter plugged-in mode), then B's
//!    intermediate signs with S+B+B, then B only.
//! 3. [`RotationKind::IntermediateRotation`], same root: the root bytes stay, istiod reloads
//!    the signer, leaves move over at their normal rotation; with
//!    [`PlanOptions::reissue_now`] the roots read A+A (re-issue at once) and a clean-up phase
//!    restores A.
//! 4. [`RotationKind::MultiCluster`]: several clusters sharing root A, each with its own
//!    intermediate, move to a shared root B with new per-cluster intermediates. Barriers: no
//!    cluster switches signer before every cluster trusts B; no cluster drops A before every
//!    cluster has switched and a leaf lifetime has passed.
//! 5. [`RotationKind::CrossSigned`]: root A -> B without ISTIO_MULTIROOT_MESH or
//!    PROXY_CONFIG_XDS_AGENT, through B' (B's key issued by A, [`PlanOptions::cross_signed`]):
//!    B's intermediate signs with chain IB + B' under root file A, then the root file becomes
//!    B (istiod restarts), then B' leaves the chain; one root at a time, no workload restarts,
//!    two leaf lifetimes.
//!
//! Every phase's root file is built from the previous one's bytes ([`Bundle::append`]), so
//! istiod's byte-containment rule (to 1.29) accepts every step, and the final B is byte-identical
//! text to B in the earlier phases.
//!
//! ```no_run
//! use meshtrust::{istio, plan};
//! let current = istio::read_path("cluster/cacerts".as_ref())?;
//! let new = istio::read_path("rootB/intermediateB".as_ref())?;
//! let profile = istio::IstioProfile { multiroot: true, xds_agent: true, ..Default::default() };
//! let p = plan::plan(&[plan::ClusterInput::single(current, new)], &profile, &plan::PlanOptions::default(), time::OffsetDateTime::now_utc())?;
//! for phase in &p.phases {
//!     println!("{} {}", phase.name, phase.title);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod applied;
mod build;
mod ca_channel;
mod checks;
mod cross_signed;
mod gates;
mod io;
mod json;
mod presented;
mod rollback;
mod runbook;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::bundle::Bundle;
use crate::cert::Fingerprint;
use crate::finding::Severity;
use crate::istio::{CaSecret, IstioProfile};

pub use crate::finding::{Code, Finding, has_errors};
pub use applied::{
    SECRET_YAML, SealReport, applied_differences, check_applied, mixed_line_endings, seal_plan_dir,
};
pub use build::{plan, profile_refusals};
pub use checks::{CheckOptions, Invariant, check_invariants, check_plan};
pub use io::{
    PlanDir, PlanDirError, RunbookOptions, check_dir, read_plan_dir, write_plan_dir,
    write_plan_dir_with,
};
pub use json::{render_plan_json, render_plan_json_with};
pub use rollback::{check_rollback, rollback_actions, rollback_root_change_accepted};
pub use runbook::{render_runbook, render_runbook_with};

/// The name a single-cluster plan uses for its one cluster.
pub const DEFAULT_CLUSTER: &str = "default";

/// What kind of rotation a plan performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RotationKind {
    /// Plugged-in root A -> plugged-in root B.
    RootRotation,
    /// istiod's self-signed CA -> a plugged-in CA.
    SelfSignedToPluggedIn,
    /// A new intermediate under the same root.
    IntermediateRotation,
    /// Several clusters sharing a root move to a new shared root.
    MultiCluster,
    /// Root A -> B through a cross-signed B' (B's key issued by A): no second root in any
    /// bundle, neither ISTIO_MULTIROOT_MESH nor PROXY_CONFIG_XDS_AGENT needed.
    CrossSigned,
}

impl fmt::Display for RotationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RotationKind::RootRotation => "root-rotation",
            RotationKind::SelfSignedToPluggedIn => "self-signed-to-plugged-in",
            RotationKind::IntermediateRotation => "intermediate-rotation",
            RotationKind::MultiCluster => "multi-cluster",
            RotationKind::CrossSigned => "cross-signed",
        })
    }
}

impl std::str::FromStr for RotationKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "root-rotation" | "root" => RotationKind::RootRotation,
            "self-signed-to-plugged-in" | "self-signed" => RotationKind::SelfSignedToPluggedIn,
            "intermediate-rotation" | "intermediate" => RotationKind::IntermediateRotation,
            "multi-cluster" => RotationKind::MultiCluster,
            "cross-signed" => RotationKind::CrossSigned,
            _ => {
                return Err(format!(
                    "unknown rotation kind {s:?}: root-rotation, self-signed-to-plugged-in, intermediate-rotation, multi-cluster or cross-signed"
                ));
            }
        })
    }
}

/// One cluster's inputs: the CA secret it has now, and the new CA (a cacerts-layout
/// directory of the new intermediate, whose root-cert.pem is the new root).
#[derive(Debug, Clone)]
pub struct ClusterInput {
    /// Cluster name (a directory name in multi-cluster plans).
    pub name: String,
    /// The secret istiod uses now (`cacerts` or `istio-ca-secret`).
    pub current: CaSecret,
    /// The new CA material.
    pub new: CaSecret,
}

impl ClusterInput {
    /// The one cluster of a single-cluster plan.
    pub fn single(current: CaSecret, new: CaSecret) -> ClusterInput {
        ClusterInput {
            name: DEFAULT_CLUSTER.to_owned(),
            current,
            new,
        }
    }
}

/// Knobs of the planner.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanOptions {
    /// Force the kind instead of inferring it.
    pub kind: Option<RotationKind>,
    /// Intermediate rotation: re-issue every leaf at once (A -> A+A, then a clean-up phase).
    pub reissue_now: bool,
    /// Time allowed for istiod's push, the agents and any rollout restarts to take effect.
    pub propagation: Duration,
    /// Safety margin added to leaf lifetimes (clock skew, slow rollouts).
    pub margin: Duration,
    /// [`RotationKind::CrossSigned`]: B', the new root's subject and key issued by the old
    /// root (`meshtrust generate cross-sign`, [`crate::generate::cross_sign`]).
    pub cross_signed: Option<crate::Certificate>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            kind: None,
            reissue_now: false,
            propagation: Duration::from_secs(5 * 60),
            margin: Duration::from_secs(10 * 60),
            cross_signed: None,
        }
    }
}

/// A step an operator performs to enter a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Action {
    /// Apply the phase's secret (`kubectl apply`, replacing it in place).
    ApplySecret {
        /// Cluster.
        cluster: String,
        /// Secret name.
        secret: String,
    },
    /// `kubectl rollout restart deployment/istiod`.
    RestartIstiod {
        /// Cluster.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// `kubectl rollout restart daemonset/ztunnel`: ztunnel learns roots only from CSR
    /// responses, so a restart makes it fetch roots and a leaf now.
    RestartZtunnel {
        /// Cluster.
        cluster: String,
    },
    /// Restart the workloads' sidecars (and gateways): without PROXY_CONFIG_XDS_AGENT they
    /// learn new roots only at their next certificate rotation.
    RestartSidecars {
        /// Cluster.
        cluster: String,
    },
    /// Restart waypoints and gateways (Envoy proxies of ambient mode).
    RestartWaypoints {
        /// Cluster.
        cluster: String,
    },
    /// Wait until istiod serves this phase's root-cert.pem (its `istio-ca-root-cert`
    /// ConfigMap holds the file's exact bytes) before restarting proxies: kubelet updates the
    /// mounted secret up to a sync period (about a minute) after `kubectl apply`, and a proxy
    /// restarted before istiod has loaded it gets the old roots.
    AwaitIstiod {
        /// Cluster.
        cluster: String,
    },
}

impl Action {
    /// The cluster it applies to.
    pub fn cluster(&self) -> &str {
        match self {
            Action::ApplySecret { cluster, .. }
            | Action::RestartIstiod { cluster, .. }
            | Action::RestartZtunnel { cluster }
            | Action::RestartSidecars { cluster }
            | Action::RestartWaypoints { cluster }
            | Action::AwaitIstiod { cluster } => cluster,
        }
    }

    /// The command to run (for a multi-cluster plan, with `--context CLUSTER`).
    pub fn command(&self, multi_cluster: bool) -> String {
        self.command_in(multi_cluster.then(|| self.cluster()))
    }

    /// The command to run, every kubectl line with `--context CONTEXT` when given.
    ///
    /// The secret is applied server-side (`apply --server-side`), so the CA key is never
    /// copied into a `last-applied-configuration` annotation; restarts cover every Deployment,
    /// StatefulSet and DaemonSet of the namespaces labelled `istio-injection=enabled` or
    /// `istio.io/rev`, and the gateways, each followed by `rollout status`, `BATCH` (default
    /// 5) at a time.
    pub fn command_in(&self, context: Option<&str>) -> String {
        let cmd = match self {
            Action::ApplySecret { .. } => {
                "kubectl apply --server-side --force-conflicts --field-manager=meshtrust -f secret.yaml".to_owned()
            }
            Action::RestartIstiod { .. } => "kubectl rollout restart deployment -n istio-system -l app=istiod && kubectl rollout status deployment -n istio-system -l app=istiod --timeout=10m".to_owned(),
            Action::RestartZtunnel { .. } => "kubectl rollout restart daemonset/ztunnel -n istio-system && kubectl rollout status daemonset/ztunnel -n istio-system --timeout=10m".to_owned(),
            Action::RestartSidecars { .. } => format!(
                "{{ for ns in $(kubectl get ns -l istio-injection=enabled -o name; kubectl get ns -l istio.io/rev -o name); do kubectl get deployment,statefulset,daemonset -n \"${{ns#namespace/}}\" -o name | sed \"s|^|${{ns#namespace/}} |\"; done; {GATEWAYS}; }} | sort -u | xargs -n 2 -P \"${{BATCH:-5}}\" sh -c 'kubectl rollout restart \"$1\" -n \"$0\" && kubectl rollout status \"$1\" -n \"$0\" --timeout=10m'"
            ),
            Action::RestartWaypoints { .. } => format!(
                "{{ kubectl get deployment -A -l gateway.istio.io/managed=istio.io-mesh-controller -o jsonpath='{{range .items[*]}}{{.metadata.namespace}}{{\" deployment/\"}}{{.metadata.name}}{{\"\\n\"}}{{end}}'; {GATEWAYS}; }} | sort -u | xargs -n 2 -P \"${{BATCH:-5}}\" sh -c 'kubectl rollout restart \"$1\" -n \"$0\" && kubectl rollout status \"$1\" -n \"$0\" --timeout=10m'"
            ),
            Action::AwaitIstiod { .. } => "timeout 600 sh -c 'until kubectl get configmap istio-ca-root-cert -n istio-system -o jsonpath=\"{.data.root-cert\\.pem}\" | cmp -s - root-cert.pem; do sleep 5; done'".to_owned(),
        };
        match context {
            Some(c) => with_context(&cmd, c),
            None => cmd,
        }
    }

    /// One line for a human.
    pub fn describe(&self) -> String {
        match self {
            Action::ApplySecret { cluster, secret } => {
                format!("apply the `{secret}` secret of this phase in cluster {cluster}")
            }
            Action::RestartIstiod { cluster, reason } => {
                format!("restart istiod in cluster {cluster}: {reason}")
            }
            Action::RestartZtunnel { cluster } => format!(
                "restart the ztunnel daemonset in cluster {cluster}: ztunnel learns roots only from CSR responses"
            ),
            Action::RestartSidecars { cluster } => format!(
                "restart the sidecar workloads and gateways in cluster {cluster}: without PROXY_CONFIG_XDS_AGENT they see new roots only at their next rotation"
            ),
            Action::RestartWaypoints { cluster } => {
                format!("restart waypoints in cluster {cluster}")
            }
            Action::AwaitIstiod { cluster } => format!(
                "wait until istiod in cluster {cluster} serves this phase's root-cert.pem (kubelet updates the mounted secret up to a minute after the apply; proxies restarted before that get the old roots); if it times out, istiod refused the secret: stop and read its log"
            ),
        }
    }
}

/// Gateways (ingress, egress, east-west and Gateway API ones), one `NAMESPACE deployment/NAME`
/// line each.
const GATEWAYS: &str = "kubectl get deployment -A -l 'istio in (ingressgateway,egressgateway,eastwestgateway)' -o jsonpath='{range .items[*]}{.metadata.namespace}{\" deployment/\"}{.metadata.name}{\"\\n\"}{end}'; kubectl get deployment -A -l gateway.istio.io/managed=istio.io-gateway-controller -o jsonpath='{range .items[*]}{.metadata.namespace}{\" deployment/\"}{.metadata.name}{\"\\n\"}{end}'";

/// `cmd` with `--context CONTEXT` after every `kubectl` and `istioctl` word, so that each
/// line of a runbook addresses its cluster explicitly.
///
/// ```
/// let c = meshtrust::plan::with_context("kubectl get ns | istioctl x", "prod-east");
/// assert_eq!(c, "kubectl --context prod-east get ns | istioctl --context prod-east x");
/// ```
pub fn with_context(cmd: &str, context: &str) -> String {
    let ctx = crate::istio::shell_word(context);
    let mut out = String::with_capacity(cmd.len() + 32);
    let mut rest = cmd;
    while let Some(i) = rest.find(['k', 'i']) {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let word = ["kubectl ", "istioctl "]
            .into_iter()
            .find(|w| tail.starts_with(w));
        let boundary = out
            .chars()
            .last()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '/'));
        match word {
            Some(w) if boundary => {
                out.push_str(w);
                out.push_str(&format!("--context {ctx} "));
                rest = &tail[w.len()..];
            }
            _ => {
                out.push_str(&tail[..1]);
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Something to verify before moving on, with the command and what it must show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateCheck {
    /// What is verified.
    pub description: String,
    /// The command (istioctl / kubectl).
    pub command: String,
    /// The SHA-256 fingerprints the output must show.
    pub expect: Vec<Fingerprint>,
}

/// What must hold, and how long to wait, after a phase before the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gate {
    /// The minimum time between applying this phase and applying the next.
    #[serde(rename = "min_wait_seconds", with = "secs")]
    pub min_wait: Duration,
    /// Why that long.
    pub reason: String,
    /// Multi-cluster: the wait and checks hold for every cluster before any moves on.
    pub barrier: bool,
    /// What to verify.
    pub checks: Vec<GateCheck>,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

/// One cluster's secret in a phase.
#[derive(Debug, Clone)]
pub struct ClusterPhase {
    /// Cluster name.
    pub cluster: String,
    /// The exact secret of this phase.
    pub secret: CaSecret,
}

impl ClusterPhase {
    /// The root file of this phase as a bundle.
    pub fn roots(&self) -> Option<Bundle> {
        self.secret.root_bundle().ok()
    }
}

/// One phase of a plan.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Directory name: `NN-slug` (`00-current`, `01-trust-both`, ...).
    pub name: String,
    /// One line saying what the phase does.
    pub title: String,
    /// The secrets, one per cluster, in cluster order.
    pub clusters: Vec<ClusterPhase>,
    /// True when this phase changes the root bytes on purpose to make every proxy re-issue
    /// its leaf at once while the trust set stays (the deliberate duplicate).
    pub trigger: bool,
    /// What to do to enter this phase, in order.
    pub actions: Vec<Action>,
    /// What to wait for and verify before the next phase.
    pub gate: Option<Gate>,
}

impl Phase {
    /// The secret of `cluster`.
    pub fn secret(&self, cluster: &str) -> Option<&CaSecret> {
        self.clusters
            .iter()
            .find(|c| c.cluster == cluster)
            .map(|c| &c.secret)
    }
}

/// A rotation plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Its kind.
    pub kind: RotationKind,
    /// The mesh it was made for.
    pub profile: IstioProfile,
    /// Cluster names, in order (one, [`DEFAULT_CLUSTER`], for single-cluster plans).
    pub clusters: Vec<String>,
    /// The phases, `00-current` first.
    pub phases: Vec<Phase>,
    /// The old root(s) being retired (empty for an intermediate rotation).
    pub old_roots: Vec<Fingerprint>,
    /// The root(s) trusted at the end.
    pub new_roots: Vec<Fingerprint>,
}

impl Plan {
    /// What the plan's kind needs, against the other kinds, when that decides the choice
    /// (today the cross-signed kind: the old key once, one istiod restart, two leaf lifetimes).
    pub fn costs(&self) -> Option<String> {
        cross_signed::costs(self)
    }

    /// True for a plan with per-cluster subdirectories.
    pub fn is_multi_cluster(&self) -> bool {
        self.kind == RotationKind::MultiCluster || self.clusters.len() > 1
    }

    /// Total minimum duration: the sum of every gate's wait (saturating: a hand-edited
    /// plan.json may record any wait).
    pub fn min_duration(&self) -> Duration {
        self.phases
            .iter()
            .filter_map(|p| p.gate.as_ref())
            .map(|g| g.min_wait)
            .fold(Duration::ZERO, Duration::saturating_add)
    }
}

/// Why no plan was made.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The inputs cannot be rotated safely; each finding says why.
    #[error("refusing to plan: {}", .0.iter().filter(|f| f.severity == Severity::Error).map(|f| format!("[{}] {}", f.code, f.message)).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Finding>),
    /// No cluster was given.
    #[error("no cluster given")]
    NoCluster,
    /// A cluster name that is empty, starts with `.`, holds a path separator, or is given
    /// twice (names are directory names in multi-cluster plans).
    #[error("invalid or duplicate cluster name {0:?}")]
    ClusterName(String),
    /// The profile itself is invalid.
    #[error(transparent)]
    Profile(#[from] crate::istio::ProfileError),
}
