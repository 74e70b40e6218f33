//! The mesh simulator: runs a rotation [`Plan`] on a simulated Istio mesh, event by event on a
//! simulated clock, and checks every mTLS connection at every event with the real chain
//! verifier on real certificates.
//!
//! # What is modelled (`../shared/ISTIO.md`)
//!
//! Every Istio rule the simulator applies is a call into the one model,
//! [`istio::behaviour`](crate::istio::behaviour), for the profile's istiod and ztunnel
//! versions and flags; this list says where each applies.
//!
//! - **istiod**, one per cluster, of the profile's version. It starts from phase `00` (the
//!   self-signed CA for an `istio-ca-secret`, else the plugged-in CA). A secret applied with
//!   `kubectl` reaches the mounted volume at the cluster's next kubelet sync (one tick every
//!   [`Timing::secret_sync`], at a seeded offset: two updates within one tick are seen as the
//!   last one only), then istiod's watcher handles it [`Timing::watch_debounce`] later, in
//!   plugged-in mode only (the self-signed CA never watches `/etc/cacerts`):
//!   - root-cert.pem bytes unchanged: the signer (ca-cert, ca-key, cert-chain) is reloaded;
//!   - changed: [`behaviour::root_change`](crate::istio::behaviour::root_change): ignored with
//!     ISTIO_MULTIROOT_MESH off ("Multi root is disabled"), signer included; with it on,
//!     accepted when one file's bytes contain the other's (1.22.0 to 1.29.x) or one set of
//!     CERTIFICATE blocks contains the other (1.30.0+), else refused;
//!   - a secret that fails istiod's load check
//!     ([`behaviour::load`](crate::istio::behaviour::load): completeness from 1.26.1, the key
//!     matches ca-cert, ca-cert is a CA and verifies against root-cert.pem with cert-chain.pem
//!     under Go's serverAuth rule, the CRL from 1.27.0) keeps the old CA.
//!
//!   An istiod restart (an action; it takes [`Timing::istiod_rollout`]) loads whatever the
//!   secret holds, without the containment rule, and enters plugged-in mode when a usable
//!   `cacerts` exists. A secret it cannot load: before 1.26.1, without `ca-key.pem`
//!   ([`behaviour::completeness`](crate::istio::behaviour::completeness) says
//!   `SelfSignedFallback`), the new istiod runs its self-signed CA (the root of the cluster's
//!   `istio-ca-secret`, else a new root,
//!   [`behaviour::self_signed_root_spec`](crate::istio::behaviour::self_signed_root_spec)),
//!   serves that root followed by the mounted root-cert.pem
//!   ([`behaviour::self_signed_root_file`](crate::istio::behaviour::self_signed_root_file))
//!   and signs new leaves with it; otherwise the rollout stalls and the old pod keeps
//!   serving. The trust set istiod serves is the deduplicated set of root-cert.pem's
//!   certificates; its raw bytes are what agents compare.
//! - **Sidecars and waypoints** (istio-agent + Envoy): a leaf from istiod's current signer,
//!   rotated when `grace_ratio` (± the jitter, whose sign is always + or -, from 1.24) of its
//!   lifetime remains ([`behaviour::renewal_at`](crate::istio::behaviour::renewal_at)); every
//!   CSR response also carries istiod's current roots, of which a proxy trusts those of
//!   [`behaviour::trusted_roots`](crate::istio::behaviour::trusted_roots) (only the last root
//!   from istiod 1.24.4 / 1.25.1 without the push). With ISTIO_MULTIROOT_MESH **and**
//!   PROXY_CONFIG_XDS_AGENT ([`behaviour::push_reaches_agent`](crate::istio::behaviour::push_reaches_agent)),
//!   istiod pushes its trust bundle to every agent of its cluster (each within [`Timing::push_spread`]); an agent
//!   that sees different bytes trusts the new set at once, drops its leaf and re-issues it
//!   [`Timing::csr_latency`] later, from istiod's signer at that moment (the old leaf serves
//!   meanwhile). Without it, roots arrive only with the next CSR response. A pod restart
//!   (rollout of [`Timing::proxy_rollout`], pods at seeded instants) gives a fresh leaf and
//!   roots.
//! - **ztunnel** (ambient): one certificate per workload, with the roots of its own CSR
//!   response (no push), of which ztunnel trusts the first root, the last root or all of them
//!   by [`behaviour::trusted_roots`](crate::istio::behaviour::trusted_roots) of the istiod and
//!   ztunnel versions; it renews at notBefore + lifetime / 2. A daemonset restart re-fetches
//!   every workload's certificate, node after node over [`Timing::ztunnel_rollout`], and
//!   re-reads the istio-ca-root-cert ConfigMap: before ztunnel 1.28.6, 1.29.2, 1.30.0 that is
//!   the only time it does
//!   ([`behaviour::ztunnel_watches_ca_root`](crate::istio::behaviour::ztunnel_watches_ca_root)),
//!   so after a signer switch to a root it did not read, its CSRs fail (istiod's serving
//!   certificate is re-signed by the new signer) and it stops renewing (ztunnel issue 1679).
//! - **Leaves** are istiod's: ECDSA P-256, SPIFFE ID `spiffe://cluster.local/ns/<ns>/sa/<sa>`,
//!   notBefore 2 min in the past, the profile's TTL, capped by the issuer chain only from
//!   1.28.7, 1.29.3, 1.30.0 ([`behaviour::leaf_validity`](crate::istio::behaviour::leaf_validity);
//!   before, leaves outlive the CA and istiod keeps signing with an expired one, counted in
//!   [`Stats::leaves_outliving_ca`]). They are issued with [`generate::leaf`] by the phase's
//!   real CA key.
//! - **What a proxy presents** with its leaf is
//!   [`behaviour::presented_chain`](crate::istio::behaviour::presented_chain) of its kind, the
//!   signer's cert-chain.pem and the root file of the CSR response the leaf came with:
//!   sidecars and waypoints cert-chain.pem then the whole root file, in that order; ztunnel the
//!   intermediates it parsed (only the first certificate of cert-chain.pem before ztunnel
//!   1.24.6, 1.25.3, 1.26.0 with an istiod that sends it as one element).
//! - **Plans**: phases in directory order; phase `00` is the starting state; each later
//!   phase's actions run in order ([`Timing::action_gap`] apart, each taking its rollout time)
//!   and the next phase starts when its gate's minimum wait has passed since this one started
//!   (since its last cluster's secret was applied, for a multi-cluster barrier) and its
//!   actions are done. A phase without actions or gate (a plan directory without
//!   plan.json) gets the steps and waits of [`default_steps`].
//! - **After the plan**, istiod restarts in every cluster (as at its next upgrade: a plan is
//!   safe only if the state it leaves survives a restart; [`SimConfig::restart_istiod_at_end`])
//!   and the mesh runs one more leaf lifetime.
//!
//! # Traffic
//!
//! At every event, every ordered pair of proxies (client, server) connects: the server
//! verifies the client's leaf and presented chain, in the order the client presents it,
//! against its roots (clientAuth), the client verifies the server's (serverAuth), both with
//! [`verify::verify`](crate::verify::verify) at the simulated instant (expiry included),
//! each with the RECEIVING proxy's own policy
//! ([`behaviour::verifier_policy`](crate::istio::behaviour::verifier_policy): Envoy's for
//! sidecars and waypoints, whose trust store is in the agent's ROOTCA order, ztunnel's for
//! ztunnel). A class of proxies is therefore also keyed by its kind. No pair is sampled. The
//! count is exact because a verification depends only on the leaf's signer, what its holder
//! presents after it (in order), the verifying side's trust set and policy, and whether the
//! leaf itself is valid at that instant (every leaf is issued by the same code from the same
//! spec; only its identity, key, serial and validity differ, and only validity plays a part):
//! proxies fall into a few classes, and each pair of classes is decided once. Verification
//! results are cached by (signer, presented chain, trust set, purpose, policy) with the span
//! of time during which no certificate involved changes validity; each is computed on a real
//! leaf of that chain issued by [`generate::leaf`] with the signer's real key. So 1,000
//! proxies through a four-phase rotation (10,561 events, 10.5 billion connections) cost 3
//! real leaves and 16 verifications. [`SimConfig::exact_leaves`] instead issues every leaf a
//! proxy holds and verifies each one itself, and [`SimConfig::brute_force`] verifies every
//! pair on its own at every event (the tests check all three give the same outcome). Every
//! recorded failure's reason comes from verifying the refused proxy's own leaf.
//!
//! # Verdict
//!
//! [`Outcome::ok`]: no connection ever failed. [`Outcome::ran_as_planned`]: that, and no
//! [deviation](Outcome::deviations) from the plan: a secret istiod ignored or refused, a wait
//! for istiod that timed out, or an end state other than the plan's last phase and new roots.
//!
//! [`generate::leaf`]: crate::generate::leaf
//!
//! # Layout
//!
//! [`Mesh`] (`engine.rs`) composes the parts and runs the event loop; each part owns its
//! state and the import graph between them has no cycle:
//!
//! - `world.rs`: clusters, proxies, leaves, signers, presented chains (`present.rs`) and
//!   trust sets, interned and labelled; `leaf.rs` issues a leaf's real certificate;
//! - `queue.rs`: the clock, the events, the queue and the schedule's seeded stream (`rng.rs`);
//! - `istiod.rs`: each cluster's istiod and its reactions (self-signed fallback in
//!   `fallback.rs`), every rule a call into [`istio::behaviour`](crate::istio::behaviour);
//! - `operator.rs`: the plan's phases (`steps.rs` for phases without steps), one function per
//!   action;
//! - `traffic.rs`: the classes, the verdict cache and the failures, given the world;
//! - `journal.rs`: the log, the deviations and the phase reports (`story.rs` tells them);
//! - `setup.rs`: a mesh from a plan and a configuration.
//!
//! # Determinism
//!
//! The schedule (initial leaf ages, jitter, push and restart instants) comes from a SplitMix64
//! stream seeded with [`SimConfig::seed`]; the start instant is [`SimConfig::start`]. Key
//! material and serial numbers come from ring's generator, and no result depends on them.
//!
//! ```
//! use meshtrust::{generate, istio, plan, sim};
//! let t = time::macros::datetime!(2026-01-01 0:00 UTC);
//! let ca = |cluster: &str| -> Result<istio::CaSecret, generate::GenerateError> {
//!     Ok(generate::istio_ca(cluster, generate::KeyType::EcP256, t)?.1.cacerts())
//! };
//! let profile = istio::IstioProfile { multiroot: true, xds_agent: true, ..Default::default() };
//! let now = t + time::Duration::days(1);
//! let p = plan::plan(&[plan::ClusterInput::single(ca("old")?, ca("new")?)], &profile,
//!     &plan::PlanOptions::default(), now)?;
//! let outcome = sim::simulate(&p, &sim::SimConfig::new(now, 7, 20))?;
//! assert!(outcome.ok(), "{}", outcome.story());
//! assert_eq!(outcome.phases.len(), p.phases.len() + 1); // + the restart after the plan
//! println!("{}", outcome.story());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod engine;
mod fallback;
mod istiod;
mod journal;
mod leaf;
mod operator;
mod present;
mod queue;
mod rng;
mod setup;
mod steps;
mod story;
mod traffic;
mod world;

#[cfg(test)]
mod tests;

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::Fingerprint;
use crate::plan::Plan;

pub use engine::Mesh;
pub use steps::default_steps;

/// When the things an operator and Kubernetes do take effect. The defaults are typical of a
/// production cluster; every one is a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// kubelet's sync period for mounted secrets: an applied secret reaches istiod's volume at
    /// the cluster's next tick (default 60 s).
    pub secret_sync: Duration,
    /// istiod's debounce between the file event and handling it (100 ms, istio_ca.go).
    pub watch_debounce: Duration,
    /// A trust-bundle push reaches each agent within this span after istiod changes (5 s).
    pub push_spread: Duration,
    /// From an agent dropping its leaf to the new one being served (200 ms).
    pub csr_latency: Duration,
    /// Between an operator's consecutive actions (30 s).
    pub action_gap: Duration,
    /// `kubectl rollout restart deployment/istiod` until the new pod serves (60 s).
    pub istiod_rollout: Duration,
    /// Rollout restart of sidecar workloads or waypoints: pods restart over this span (5 min).
    pub proxy_rollout: Duration,
    /// Rollout restart of the ztunnel daemonset: nodes restart one after another over this
    /// span (2 min).
    pub ztunnel_rollout: Duration,
    /// The shortest delay before an agent retries (failed signing) or rotates again (60 s).
    pub retry: Duration,
    /// How often the operator polls while waiting for istiod
    /// ([`Action::AwaitIstiod`](crate::plan::Action::AwaitIstiod)) (5 s).
    pub await_poll: Duration,
    /// How long the operator waits for istiod before going on regardless (the runbook's
    /// `timeout 600`): 10 min.
    pub await_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            secret_sync: Duration::from_secs(60),
            watch_debounce: Duration::from_millis(100),
            push_spread: Duration::from_secs(5),
            csr_latency: Duration::from_millis(200),
            action_gap: Duration::from_secs(30),
            istiod_rollout: Duration::from_secs(60),
            proxy_rollout: Duration::from_secs(300),
            ztunnel_rollout: Duration::from_secs(120),
            retry: Duration::from_secs(60),
            await_poll: Duration::from_secs(5),
            await_timeout: Duration::from_secs(600),
        }
    }
}

/// How to run a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The simulated instant the plan starts at (phase `00`).
    pub start: OffsetDateTime,
    /// Seed of the schedule.
    pub seed: u64,
    /// Number of proxies (at least 2), spread over the plan's clusters in turn. In ambient
    /// meshes one in twenty per cluster (at least one, from two proxies on) is a waypoint, the
    /// rest are workloads served by ztunnel; a mesh with both data planes has waypoints from
    /// three proxies per cluster on and alternates ambient workloads and sidecars.
    pub workloads: usize,
    /// Ambient workloads per node (one ztunnel each).
    pub workloads_per_node: usize,
    /// SECRET_GRACE_PERIOD_RATIO_JITTER; `None`: Istio's default for the version (0.01 from
    /// 1.24, none before).
    pub jitter: Option<f64>,
    /// Delays and rollout durations.
    pub timing: Timing,
    /// The wait used after a phase without a gate: the time for pushes and restarts to take
    /// effect (the planner's default, 5 min).
    pub propagation: Duration,
    /// Added to the leaf lifetime in waits without a gate (the planner's default, 10 min).
    pub margin: Duration,
    /// Restart istiod in every cluster after the last phase (see the module docs).
    pub restart_istiod_at_end: bool,
    /// How long to run after the last phase and the restart; `None`: one leaf lifetime.
    pub observe_after: Option<Duration>,
    /// Issue every leaf a proxy holds and verify each leaf itself, instead of one real leaf
    /// per (chain, trust set) class. Same outcome; far slower (for tests and audits).
    pub exact_leaves: bool,
    /// Verify every ordered pair on its own at every event, with each proxy's own leaf, no
    /// class and no cache: O(proxies²) verifications per event, for tests of the class model.
    pub brute_force: bool,
    /// Most failures recorded in [`Outcome::failures`] (all are counted).
    pub max_failures: usize,
    /// Stop with [`SimError::TooManyEvents`] beyond this many events.
    pub max_events: u64,
}

impl SimConfig {
    /// The defaults for a mesh of `workloads` proxies, starting at `start`, with `seed`.
    pub fn new(start: OffsetDateTime, seed: u64, workloads: usize) -> SimConfig {
        SimConfig {
            start,
            seed,
            workloads,
            workloads_per_node: 8,
            jitter: None,
            timing: Timing::default(),
            propagation: Duration::from_secs(5 * 60),
            margin: Duration::from_secs(10 * 60),
            restart_istiod_at_end: true,
            observe_after: None,
            exact_leaves: false,
            brute_force: false,
            max_failures: 1_000,
            max_events: 50_000_000,
        }
    }
}

/// Runs `plan` (with `plan.profile`) on a simulated mesh.
pub fn simulate(plan: &Plan, config: &SimConfig) -> Result<Outcome, SimError> {
    Mesh::new(plan, config)?.run()
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The plan has no phase.
    #[error("the plan has no phase")]
    NoPhases,
    /// A setting is out of range.
    #[error("invalid simulation setting: {0}")]
    Config(String),
    /// The profile is invalid.
    #[error("invalid profile: {0}")]
    Profile(#[source] crate::istio::ProfileError),
    /// Phase `00` does not give a cluster a CA istiod can start with.
    #[error("{phase} [{cluster}]: istiod cannot start from this secret: {reason}")]
    InitialState {
        /// The phase (the first one).
        phase: String,
        /// The cluster.
        cluster: String,
        /// Why.
        reason: String,
    },
    /// The event budget ran out ([`SimConfig::max_events`]).
    #[error("more than {0} events: the simulation was stopped")]
    TooManyEvents(u64),
    /// Issuing a certificate failed where the model said it could not.
    #[error("{0}")]
    Internal(String),
}

/// What kind of proxy holds a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyKind {
    /// An Envoy sidecar with istio-agent.
    Sidecar,
    /// An ambient workload's certificate, held by the ztunnel of its node (displayed as
    /// `ztunnel workload`).
    Ztunnel,
    /// A waypoint (Envoy with istio-agent, ambient mode).
    Waypoint,
}

impl ProxyKind {
    /// The proxy of the Istio model ([`crate::istio::behaviour`]) this kind is.
    pub fn model(self) -> crate::istio::behaviour::Proxy {
        use crate::istio::behaviour::Proxy;
        match self {
            ProxyKind::Sidecar => Proxy::Sidecar,
            ProxyKind::Ztunnel => Proxy::Ztunnel,
            ProxyKind::Waypoint => Proxy::Waypoint,
        }
    }
}

impl fmt::Display for ProxyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProxyKind::Sidecar => "sidecar",
            ProxyKind::Ztunnel => "ztunnel workload",
            ProxyKind::Waypoint => "waypoint",
        })
    }
}

/// Which side refused the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// The server (`to`) refused the client's (`from`) certificate.
    ClientRejected,
    /// The client (`from`) refused the server's (`to`) certificate.
    ServerRejected,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::ClientRejected => "the server refused the client's certificate",
            Direction::ServerRejected => "the client refused the server's certificate",
        })
    }
}

/// One failed connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// When (the first event at which it failed with this certificate and trust set).
    #[serde(with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The phase in effect.
    pub phase: String,
    /// The client.
    pub from: String,
    /// The server.
    pub to: String,
    /// Which side refused.
    pub direction: Direction,
    /// The verifier's one-line reason.
    pub reason: String,
    /// The verifier's kind of failure (`unknown-issuer`, `expired`, ...).
    pub reason_kind: &'static str,
    /// The signer of the refused leaf (label, see [`Outcome::signers`]).
    pub signer: String,
    /// The roots the refusing side trusts (labels, see [`Outcome::roots`]).
    pub trusts: Vec<String>,
    /// The refusing side's chain verifier
    /// ([`behaviour::verifier_policy`](crate::istio::behaviour::verifier_policy)): Envoy's for
    /// sidecars and waypoints, ztunnel's for ztunnel workloads.
    pub verifier: crate::verify::Policy,
}

/// How many proxies of one kind in one cluster trust one set of roots and hold a leaf from
/// one signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CensusRow {
    /// Cluster.
    pub cluster: String,
    /// Kind of proxy.
    pub kind: ProxyKind,
    /// The roots trusted (labels, see [`Outcome::roots`]).
    pub trusts: Vec<String>,
    /// The signer of the leaf held (label, see [`Outcome::signers`]).
    pub signer: String,
    /// How many.
    pub proxies: usize,
}

/// Something istiod or the operator did, as a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// When.
    #[serde(with = "rfc3339")]
    pub time: OffsetDateTime,
    /// The phase in effect.
    pub phase: String,
    /// The cluster.
    pub cluster: String,
    /// What happened.
    pub message: String,
}

/// One phase of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseReport {
    /// Directory name (`after-plan` for the run after the last phase).
    pub name: String,
    /// What the phase does.
    pub title: String,
    /// When it started.
    #[serde(with = "rfc3339")]
    pub started: OffsetDateTime,
    /// When the next one started (or the run ended).
    #[serde(with = "rfc3339")]
    pub ended: OffsetDateTime,
    /// Events processed during the phase.
    pub events: u64,
    /// Connections checked.
    pub connections: u64,
    /// Connections that failed.
    pub failed_connections: u64,
    /// Leaves issued at a scheduled rotation.
    pub rotations: u64,
    /// Leaves re-issued because the trust bundle's bytes changed (PROXY_CONFIG_XDS_AGENT).
    pub reissued_on_push: u64,
    /// Leaves issued to restarted pods and ztunnels.
    pub restarts: u64,
    /// Trust-bundle pushes delivered.
    pub pushes: u64,
    /// The proxies at the end of the phase.
    pub census: Vec<CensusRow>,
}

/// A root or signer seen in the plan, with the short label used in censuses and stories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Label {
    /// `A`, `B`, ... for roots; `A1`, `B1`, `B2`, ... for signers (the root's letter alone
    /// when a root signs itself).
    pub label: String,
    /// Subject.
    pub subject: String,
    /// SHA-256 fingerprint.
    pub fingerprint: Fingerprint,
}

/// Work done by the simulation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Leaves issued by istiod in the model (one per CSR).
    pub leaves: u64,
    /// Real certificates issued with [`crate::generate::leaf`].
    pub certificates_issued: u64,
    /// Calls of the chain verifier.
    pub verifications: u64,
    /// Class pairs decided from the cache.
    pub cache_hits: u64,
    /// Leaves istiod issued with a notAfter past its CA chain's (before 1.28.7, 1.29.3,
    /// 1.30.0: [`behaviour::clamps_leaf_to_signer`](crate::istio::behaviour::clamps_leaf_to_signer)).
    pub leaves_outliving_ca: u64,
}

/// The result of a simulation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Seed used.
    pub seed: u64,
    /// Number of proxies.
    pub proxies: usize,
    /// When the run started (phase `00`).
    #[serde(with = "rfc3339")]
    pub start: OffsetDateTime,
    /// When it ended.
    #[serde(with = "rfc3339")]
    pub end: OffsetDateTime,
    /// Events processed.
    pub events: u64,
    /// Connections checked (every ordered pair at every event).
    pub connections: u64,
    /// Connections that failed.
    pub failed_connections: u64,
    /// The first distinct failures, in time order (at most [`SimConfig::max_failures`]; a
    /// (client, server, side, certificate, trust set) combination is recorded once).
    pub failures: Vec<Failure>,
    /// True when more distinct failures happened than were recorded.
    pub failures_truncated: bool,
    /// One report per phase, then `after-plan`.
    pub phases: Vec<PhaseReport>,
    /// What istiod and the operator did.
    pub log: Vec<LogEntry>,
    /// The roots of the plan, labelled.
    pub roots: Vec<Label>,
    /// The signers of the plan, labelled.
    pub signers: Vec<Label>,
    /// Work done.
    pub stats: Stats,
    /// What did not go as the plan says: a secret istiod ignored or refused, a wait for
    /// istiod that timed out, and at the end any difference from the last phase (istiod's
    /// signer or root file, proxies' roots or leaves), from the plan's new roots, or a signer
    /// that never changed.
    pub deviations: Vec<LogEntry>,
}

impl Outcome {
    /// True when no connection ever failed.
    pub fn ok(&self) -> bool {
        self.failed_connections == 0
    }

    /// True when no connection failed and the plan ran as written (no deviation): the
    /// simulation's verdict on a plan.
    pub fn ran_as_planned(&self) -> bool {
        self.ok() && self.deviations.is_empty()
    }

    /// A short human account of each phase and the result.
    pub fn story(&self) -> String {
        story::render(self)
    }
}

mod rfc3339 {
    use serde::Serializer;
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&super::story::rfc3339(*t))
    }
}
