//! The discrete-event engine: the mesh's state, the event queue, and what each event does.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use time::OffsetDateTime;

use super::present::{Presented, PresentedId};
use super::rng::SplitMix64;
use super::traffic::{ClassKey, ClassRec, Reasons, Subject, VerdictCache};
use super::{
    CensusRow, Failure, Label, LogEntry, Outcome, PhaseReport, ProxyKind, SimConfig, SimError,
    Stats, steps,
};
use crate::cert::{Certificate, Fingerprint, SpiffeId};
use crate::generate::Issuer;
use crate::istio::behaviour::{self as istiod, LoadedCa, RootChange};
use crate::istio::{CaSecret, DataPlane, IstioProfile, SecretKind};
use crate::plan::{Action, Plan};
use crate::verify::{self, CertPool, VerifyOptions};

pub(super) type ProxyId = usize;
pub(super) type LeafId = usize;
pub(super) type SignerId = usize;
pub(super) type RootSetId = usize;

/// The trust domain of every simulated workload.
pub(super) const TRUST_DOMAIN: &str = "cluster.local";

/// A signing CA istiod has loaded (one per distinct ca-cert + cert-chain.pem).
pub(super) struct SignerRec {
    pub fingerprint: Fingerprint,
    pub issuer: Issuer,
    /// cert-chain.pem's certificates: the intermediates a peer receives with the leaf.
    pub chain: Vec<Certificate>,
    pub chain_pool: CertPool,
    /// notAfter of the issuer chain's first-expiring certificate: leaves end by then.
    pub limit: i64,
    pub label: String,
}

/// A distinct trust set (the deduplicated roots a proxy trusts).
pub(super) struct RootSetRec {
    pub certs: Vec<Certificate>,
    pub pool: CertPool,
    pub labels: Vec<String>,
}

/// A leaf istiod issued: everything verification depends on, and the real certificate once
/// it is needed.
pub(super) struct LeafRec {
    pub signer: SignerId,
    pub owner: ProxyId,
    /// Issuance instant (Unix seconds).
    pub issued: i64,
    pub not_before: i64,
    pub not_after: i64,
    /// What its holder presents after it (the CSR response's chain and roots, by the model).
    pub presented: PresentedId,
    pub cert: Option<Certificate>,
}

pub(super) struct Proxy {
    pub name: String,
    pub cluster: usize,
    pub kind: ProxyKind,
    pub identity: SpiffeId,
    pub leaf: LeafId,
    pub roots: RootSetId,
    /// The trust bundle bytes (SHA-256) this proxy last received.
    pub bytes: Fingerprint,
    /// Bumped at each issuance: a scheduled rotation of an older leaf is stale.
    pub generation: u64,
    /// The leaf is within its validity at the current instant.
    pub valid: bool,
    pub class: Option<ClassKey>,
}

struct IstiodState {
    signer: SignerId,
    /// root-cert.pem as istiod holds it, and its SHA-256 (what agents compare).
    root_bytes: Vec<u8>,
    bytes: Fingerprint,
    roots_file: Vec<Certificate>,
    trust: RootSetId,
}

struct ClusterState {
    name: String,
    /// istiod runs its self-signed CA (no cacerts watcher).
    self_signed: bool,
    istiod: IstiodState,
    /// The latest `cacerts` applied with kubectl, and its version.
    applied: Option<CaSecret>,
    applied_version: u64,
    /// What istiod's volume holds (kubelet's last sync).
    mounted: Option<CaSecret>,
    mounted_version: u64,
    sync_pending: bool,
    /// Phase of this cluster's kubelet sync ticks.
    sync_offset: i64,
    /// Ambient nodes: the ztunnel workloads of each.
    nodes: Vec<Vec<ProxyId>>,
    /// Per node: the istio-ca-root-cert roots its ztunnel read at its last start (what an
    /// older ztunnel verifies istiod with, behaviour::ztunnel_ca_client_roots).
    node_ca_roots: Vec<RootSetId>,
    ztunnel_channel_logged: bool,
    signing_failure_logged: bool,
    /// A rollout restart of istiod is under way: the new pod loads the applied secret.
    restarting: bool,
    /// The phase being applied restarts istiod after its apply: a root change the running
    /// istiod ignores (ISTIO_MULTIROOT_MESH off) is expected, the restart loads it.
    restart_follows: bool,
}

struct PhaseSpec {
    name: String,
    title: String,
    /// Per cluster index.
    secrets: Vec<Option<CaSecret>>,
    actions: Vec<Action>,
    wait: i64,
    /// The wait holds for every cluster (multi-cluster barrier): it counts from the last
    /// cluster's apply instead of the phase's start.
    barrier: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Rotation,
    Push,
    Restart,
    Retry,
}

#[derive(Debug, Clone, Copy)]
enum Ev {
    StartPhase(usize),
    Action { phase: usize, index: usize },
    AfterPlan,
    EndRun,
    SecretSync(usize),
    Watch(usize),
    IstiodReady(usize),
    Push(ProxyId),
    Csr(ProxyId, Cause),
    Rotate(ProxyId, u64),
    PodRestart(ProxyId),
    NodeRestart(usize, usize),
    LeafExpiry(ProxyId, LeafId),
    AwaitTimeout { phase: usize, index: usize },
}

/// The operator waiting for istiod to serve a phase's root file ([`Action::AwaitIstiod`]).
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    phase: usize,
    index: usize,
    cluster: usize,
    bytes: Fingerprint,
}

struct Scheduled {
    time: i64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

/// The longest span the clock handles (a thousand years): sums and products of spans stay far
/// from `i64` overflow whatever a plan or a configuration says.
const MAX_SPAN_MS: i64 = 1_000 * 366 * 86_400 * 1_000;

fn ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).map_or(MAX_SPAN_MS, |v| v.min(MAX_SPAN_MS))
}

pub(super) fn letters(i: usize) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    match ABC.get(i) {
        Some(c) => char::from(*c).to_string(),
        None => format!("R{}", i + 1),
    }
}

/// A simulated mesh running a plan. Build it with [`Mesh::new`], run it with [`Mesh::run`]
/// (or call [`super::simulate`]).
pub struct Mesh {
    pub(super) cfg: SimConfig,
    pub(super) profile: IstioProfile,
    start_unix: i64,
    phases: Vec<PhaseSpec>,
    phase_start: Vec<i64>,
    clusters: Vec<ClusterState>,
    pub(super) proxies: Vec<Proxy>,
    pub(super) leaves: Vec<LeafRec>,
    pub(super) signers: Vec<SignerRec>,
    pub(super) presented: Presented,
    signer_index: HashMap<(Fingerprint, Vec<Fingerprint>), SignerId>,
    pub(super) root_sets: Vec<RootSetRec>,
    root_set_index: HashMap<Vec<Fingerprint>, RootSetId>,
    /// The trust store each proxy kind builds from a root file (the model's answer, cached).
    trust_cache: HashMap<(ProxyKind, Vec<Fingerprint>), RootSetId>,
    /// Whether a ztunnel CA client with a trust set verifies istiod's serving certificate.
    reach_cache: HashMap<(SignerId, RootSetId), bool>,
    pub(super) root_labels: HashMap<Fingerprint, String>,
    pub(super) signer_labels: HashMap<Fingerprint, String>,
    /// Per cluster: istiod's self-signed `istio-ca-secret`, when the cluster has one.
    pub(super) istio_ca_secrets: HashMap<usize, CaSecret>,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    rng: SplitMix64,
    pub(super) now: i64,
    jitter: f64,
    pub(super) ttl_secs: i64,
    pub(super) classes: BTreeMap<ClassKey, ClassRec>,
    pub(super) class_version: u64,
    pub(super) verdicts: VerdictCache,
    pub(super) enumerated: HashSet<(ClassKey, u64, ClassKey, u64)>,
    pub(super) recorded: HashSet<(ProxyId, ProxyId, super::Direction, LeafId, RootSetId)>,
    pub(super) reasons: Reasons,
    // Results.
    events: u64,
    pub(super) connections: u64,
    pub(super) failed_connections: u64,
    pub(super) failures: Vec<Failure>,
    pub(super) failures_truncated: bool,
    reports: Vec<PhaseReport>,
    log: Vec<LogEntry>,
    pub(super) roots_legend: Vec<Label>,
    pub(super) signers_legend: Vec<Label>,
    pub(super) stats: Stats,
    finished: bool,
    awaiting: Option<Awaiting>,
    /// When the operator last applied a secret.
    last_apply: i64,
    deviations: Vec<LogEntry>,
    /// Plan facts for the end-state check.
    new_roots: Vec<Fingerprint>,
    initial_signers: Vec<Fingerprint>,
}

impl Mesh {
    /// Prepares the simulation of `plan` (with `plan.profile`): loads phase `00` into every
    /// cluster's istiod, creates the proxies and issues their first leaves (of seeded ages).
    pub fn new(plan: &Plan, config: &SimConfig) -> Result<Mesh, SimError> {
        let cfg = config.clone();
        if cfg.workloads < 2 {
            return Err(SimError::Config(format!(
                "workloads must be at least 2 (got {})",
                cfg.workloads
            )));
        }
        if cfg.workloads > 1_000_000 {
            return Err(SimError::Config(format!(
                "workloads must be at most 1,000,000 (got {})",
                cfg.workloads
            )));
        }
        if cfg.workloads_per_node == 0 {
            return Err(SimError::Config(
                "workloads per node must be at least 1".to_owned(),
            ));
        }
        if cfg.timing.retry < std::time::Duration::from_secs(1) {
            return Err(SimError::Config(
                "the retry delay must be at least 1 s".to_owned(),
            ));
        }
        if let Some(j) = cfg.jitter {
            if !(0.0..1.0).contains(&j) {
                return Err(SimError::Config(format!("jitter {j} must be in [0, 1)")));
            }
        }
        let profile = plan.profile.clone();
        profile.validate().map_err(SimError::Profile)?;
        if plan.phases.is_empty() {
            return Err(SimError::NoPhases);
        }
        let start = OffsetDateTime::from_unix_timestamp(cfg.start.unix_timestamp())
            .map_err(|e| SimError::Config(format!("start instant: {e}")))?;
        let start_unix = start.unix_timestamp();

        // Clusters: the plan's order, then any other cluster a phase names.
        let mut names: Vec<String> = plan.clusters.clone();
        for p in &plan.phases {
            for c in &p.clusters {
                if !names.contains(&c.cluster) {
                    names.push(c.cluster.clone());
                }
            }
        }
        let mut phases = Vec::new();
        for (k, p) in plan.phases.iter().enumerate() {
            let (default_actions, default_wait) =
                steps::default_steps(plan, k, &profile, cfg.propagation, cfg.margin);
            let actions = if k == 0 {
                Vec::new()
            } else if p.actions.is_empty() {
                default_actions
            } else {
                p.actions.clone()
            };
            let wait = p.gate.as_ref().map_or(default_wait, |g| g.min_wait);
            let barrier = p.gate.as_ref().map_or(names.len() > 1, |g| g.barrier);
            phases.push(PhaseSpec {
                name: p.name.clone(),
                title: p.title.clone(),
                secrets: names.iter().map(|n| p.secret(n).cloned()).collect(),
                actions,
                wait: ms(wait),
                barrier,
            });
        }

        // The model applies it from 1.24 only (behaviour::renewal_at).
        let jitter = cfg.jitter.unwrap_or(istiod::DEFAULT_RATIO_JITTER);
        let ttl_secs = ms(profile.leaf_ttl) / 1000;
        let mut mesh = Mesh {
            rng: SplitMix64::new(cfg.seed),
            cfg,
            profile,
            start_unix,
            phase_start: vec![0; phases.len()],
            phases,
            clusters: Vec::new(),
            proxies: Vec::new(),
            leaves: Vec::new(),
            signers: Vec::new(),
            presented: Presented::default(),
            signer_index: HashMap::new(),
            root_sets: Vec::new(),
            root_set_index: HashMap::new(),
            trust_cache: HashMap::new(),
            reach_cache: HashMap::new(),
            root_labels: HashMap::new(),
            signer_labels: HashMap::new(),
            istio_ca_secrets: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            jitter,
            ttl_secs,
            classes: BTreeMap::new(),
            class_version: 0,
            verdicts: VerdictCache::default(),
            enumerated: HashSet::new(),
            recorded: HashSet::new(),
            reasons: HashMap::new(),
            events: 0,
            connections: 0,
            failed_connections: 0,
            failures: Vec::new(),
            failures_truncated: false,
            reports: Vec::new(),
            log: Vec::new(),
            roots_legend: Vec::new(),
            signers_legend: Vec::new(),
            stats: Stats::default(),
            finished: false,
            awaiting: None,
            last_apply: 0,
            deviations: Vec::new(),
            new_roots: plan.new_roots.clone(),
            initial_signers: Vec::new(),
        };
        mesh.label_plan(plan, start);

        // Every cluster's istiod starts from phase 00.
        let first = plan
            .phases
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        for (ci, name) in names.iter().enumerate() {
            let secret = mesh
                .phases
                .first()
                .and_then(|p| p.secrets.get(ci).cloned().flatten())
                .ok_or_else(|| SimError::InitialState {
                    phase: first.clone(),
                    cluster: name.clone(),
                    reason: "the first phase has no secret for this cluster".to_owned(),
                })?;
            let loaded =
                istiod::load(&secret, mesh.profile.istio_version, start).map_err(|reason| {
                    SimError::InitialState {
                        phase: first.clone(),
                        cluster: name.clone(),
                        reason,
                    }
                })?;
            let self_signed = secret.kind == SecretKind::SelfSigned;
            let istiod = mesh.adopt(loaded);
            let sync_offset = mesh.rng.ms_below(ms(mesh.cfg.timing.secret_sync));
            let cacerts = if self_signed {
                mesh.istio_ca_secrets.insert(ci, secret);
                None
            } else {
                Some(secret)
            };
            mesh.clusters.push(ClusterState {
                name: name.clone(),
                self_signed,
                istiod,
                mounted: cacerts.clone(),
                applied: cacerts,
                applied_version: 0,
                mounted_version: 0,
                sync_pending: false,
                sync_offset,
                nodes: Vec::new(),
                node_ca_roots: Vec::new(),
                ztunnel_channel_logged: false,
                signing_failure_logged: false,
                restarting: false,
                restart_follows: false,
            });
        }
        mesh.initial_signers = mesh
            .clusters
            .iter()
            .map(|c| {
                mesh.signers
                    .get(c.istiod.signer)
                    .map_or(Fingerprint([0; 32]), |s| s.fingerprint)
            })
            .collect();
        mesh.populate()?;
        mesh.schedule(0, Ev::StartPhase(0));
        Ok(mesh)
    }

    /// Labels every root and signer of the plan: roots `A`, `B`, ... in order of first
    /// appearance; signers by the root they chain to.
    fn label_plan(&mut self, plan: &Plan, at: OffsetDateTime) {
        for p in &plan.phases {
            for c in &p.clusters {
                let Ok(roots) = c.secret.root_bundle() else {
                    continue;
                };
                for cert in roots.certificates() {
                    let fp = cert.fingerprint();
                    if !self.root_labels.contains_key(&fp) {
                        let label = letters(self.root_labels.len());
                        self.root_labels.insert(fp, label.clone());
                        self.roots_legend.push(Label {
                            label,
                            subject: cert.subject().to_owned(),
                            fingerprint: fp,
                        });
                    }
                }
            }
        }
        let mut per_root: HashMap<String, usize> = HashMap::new();
        for p in &plan.phases {
            for c in &p.clusters {
                let Ok(signer) = c.secret.ca_cert() else {
                    continue;
                };
                let fp = signer.fingerprint();
                if self.signer_labels.contains_key(&fp) {
                    continue;
                }
                let label = if let Some(root) = self.root_labels.get(&fp) {
                    root.clone()
                } else {
                    let chain: Vec<Certificate> = c
                        .secret
                        .cert_chain()
                        .map(|b| b.certificates().cloned().collect())
                        .unwrap_or_default();
                    let roots: Vec<Certificate> = c
                        .secret
                        .root_bundle()
                        .map(|b| b.certificates().cloned().collect())
                        .unwrap_or_default();
                    let anchor = verify::verify(
                        &signer,
                        &CertPool::from_certificates(chain.iter()),
                        &CertPool::from_certificates(roots.iter()),
                        &VerifyOptions::at(at),
                    )
                    .ok()
                    .and_then(|path| self.root_labels.get(&path.anchor().fingerprint()).cloned())
                    .unwrap_or_else(|| "?".to_owned());
                    let n = per_root.entry(anchor.clone()).or_insert(0);
                    *n += 1;
                    format!("{anchor}{n}")
                };
                self.signer_labels.insert(fp, label.clone());
                self.signers_legend.push(Label {
                    label,
                    subject: signer.subject().to_owned(),
                    fingerprint: fp,
                });
            }
        }
    }

    /// Interns what istiod loaded and returns its state.
    fn adopt(&mut self, loaded: LoadedCa) -> IstiodState {
        let key = (
            loaded.ca_cert.fingerprint(),
            loaded
                .chain
                .iter()
                .map(Certificate::fingerprint)
                .collect::<Vec<_>>(),
        );
        let signer = match self.signer_index.get(&key) {
            Some(&id) => id,
            None => {
                let fp = loaded.ca_cert.fingerprint();
                let label = self
                    .signer_labels
                    .get(&fp)
                    .cloned()
                    .unwrap_or_else(|| format!("?{}", fp.short()));
                let limit = loaded.issuer.first_expiring().not_after_unix();
                self.signers.push(SignerRec {
                    chain_pool: CertPool::from_certificates(loaded.chain.iter()),
                    fingerprint: fp,
                    issuer: loaded.issuer,
                    chain: loaded.chain,
                    limit,
                    label,
                });
                let id = self.signers.len() - 1;
                self.signer_index.insert(key, id);
                id
            }
        };
        let trust = self.intern_roots(&loaded.roots);
        IstiodState {
            signer,
            bytes: Fingerprint::of(&loaded.root_bytes),
            root_bytes: loaded.root_bytes,
            roots_file: loaded.roots,
            trust,
        }
    }

    fn intern_roots(&mut self, certs: &[Certificate]) -> RootSetId {
        let mut distinct: Vec<Certificate> = Vec::new();
        for c in certs {
            if !distinct.contains(c) {
                distinct.push(c.clone());
            }
        }
        // The order is the trust store's (Envoy picks the first matching issuer in it).
        let key: Vec<Fingerprint> = distinct.iter().map(Certificate::fingerprint).collect();
        if let Some(&id) = self.root_set_index.get(&key) {
            return id;
        }
        let mut labels: Vec<String> = key
            .iter()
            .map(|fp| {
                self.root_labels
                    .get(fp)
                    .cloned()
                    .unwrap_or_else(|| fp.short())
            })
            .collect();
        labels.sort();
        self.root_sets.push(RootSetRec {
            pool: CertPool::from_certificates(distinct.iter()),
            certs: distinct,
            labels,
        });
        let id = self.root_sets.len() - 1;
        self.root_set_index.insert(key, id);
        id
    }

    /// Creates the proxies, spread over the clusters, and issues their first leaves.
    fn populate(&mut self) -> Result<(), SimError> {
        let n_clusters = self.clusters.len().max(1);
        let mut per_cluster: Vec<usize> = vec![0; n_clusters];
        for i in 0..self.cfg.workloads {
            if let Some(n) = per_cluster.get_mut(i % n_clusters) {
                *n += 1;
            }
        }
        let multi = self.clusters.len() > 1;
        let plane = self.profile.data_plane;
        for (ci, &count) in per_cluster.iter().enumerate() {
            // Every kind the data plane has, as soon as the cluster has room for it: ztunnel
            // workloads first, then a waypoint, then sidecars in a mixed mesh.
            let waypoints = match plane {
                DataPlane::Sidecar => 0,
                DataPlane::Ambient if count >= 2 => (count / 20).max(1),
                DataPlane::Both if count >= 3 => (count / 20).max(1),
                DataPlane::Ambient | DataPlane::Both => 0,
            };
            let mut node_fill = 0usize;
            for j in 0..count {
                let kind = if j < waypoints {
                    ProxyKind::Waypoint
                } else {
                    match plane {
                        DataPlane::Sidecar => ProxyKind::Sidecar,
                        DataPlane::Ambient => ProxyKind::Ztunnel,
                        DataPlane::Both if (j - waypoints) % 2 == 0 => ProxyKind::Ztunnel,
                        DataPlane::Both => ProxyKind::Sidecar,
                    }
                };
                let prefix = match kind {
                    ProxyKind::Sidecar => "app",
                    ProxyKind::Ztunnel => "amb",
                    ProxyKind::Waypoint => "waypoint",
                };
                let cname = self
                    .clusters
                    .get(ci)
                    .map(|c| c.name.clone())
                    .unwrap_or_default();
                let name = if multi {
                    format!("{cname}/{prefix}-{j:03}")
                } else {
                    format!("{prefix}-{j:03}")
                };
                let identity =
                    SpiffeId::istio(TRUST_DOMAIN, "default", &format!("{prefix}-{ci}-{j}"))
                        .map_err(|e| SimError::Internal(e.to_string()))?;
                let id = self.proxies.len();
                self.proxies.push(Proxy {
                    name,
                    cluster: ci,
                    kind,
                    identity,
                    leaf: 0,
                    roots: 0,
                    bytes: Fingerprint([0; 32]),
                    generation: 0,
                    valid: false,
                    class: None,
                });
                if kind == ProxyKind::Ztunnel {
                    if let Some(c) = self.clusters.get_mut(ci) {
                        if node_fill == 0 || c.nodes.is_empty() {
                            c.nodes.push(Vec::new());
                            c.node_ca_roots.push(c.istiod.trust);
                        }
                        if let Some(node) = c.nodes.last_mut() {
                            node.push(id);
                        }
                    }
                    node_fill = (node_fill + 1) % self.cfg.workloads_per_node;
                }
            }
        }
        // First leaves: issued at a seeded age so that rotations are spread over the period.
        let period = ms(self.profile.rotation_after()).max(1);
        for p in 0..self.proxies.len() {
            let age = self.rng.ms_below(period);
            self.issue(p, -age, None)?;
        }
        Ok(())
    }

    pub(super) fn unix(&self, t: i64) -> i64 {
        self.start_unix + t.div_euclid(1000)
    }

    pub(super) fn instant(&self, t: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.start_unix)
            .ok()
            .and_then(|s| s.checked_add(time::Duration::milliseconds(t)))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub(super) fn instant_unix(&self, unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    fn schedule(&mut self, at: i64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            time: at.max(self.now),
            seq: self.seq,
            ev,
        }));
    }

    pub(super) fn log(&mut self, cluster: Option<usize>, message: String) {
        let phase = self.phase_name();
        let cluster = cluster
            .and_then(|c| self.clusters.get(c))
            .map(|c| c.name.clone())
            .unwrap_or_default();
        self.log.push(LogEntry {
            time: self.instant(self.now),
            phase,
            cluster,
            message,
        });
    }

    /// Something that did not go as the plan says: logged, and listed in the outcome.
    pub(super) fn deviate(&mut self, cluster: Option<usize>, message: String) {
        self.log(cluster, message);
        if let Some(entry) = self.log.last() {
            self.deviations.push(entry.clone());
        }
    }

    pub(super) fn phase_name(&self) -> String {
        self.reports
            .last()
            .map(|r| r.name.clone())
            .unwrap_or_default()
    }

    fn report(&mut self) -> Option<&mut PhaseReport> {
        self.reports.last_mut()
    }

    fn cluster_index(&self, name: &str) -> Option<usize> {
        self.clusters.iter().position(|c| c.name == name)
    }

    /// Runs the simulation to its end.
    pub fn run(mut self) -> Result<Outcome, SimError> {
        while let Some(Reverse(next)) = self.queue.pop() {
            self.now = next.time;
            let effective = self.handle(next.ev)?;
            if effective {
                self.events += 1;
                if self.events > self.cfg.max_events {
                    return Err(SimError::TooManyEvents(self.cfg.max_events));
                }
                let (conns, failed) = self.evaluate()?;
                if let Some(r) = self.report() {
                    r.events += 1;
                    r.connections += conns;
                    r.failed_connections += failed;
                }
            }
            if self.finished {
                break;
            }
        }
        self.end_state();
        self.close_report();
        Ok(Outcome {
            seed: self.cfg.seed,
            proxies: self.proxies.len(),
            start: self.instant(0),
            end: self.instant(self.now),
            events: self.events,
            connections: self.connections,
            failed_connections: self.failed_connections,
            failures: self.failures,
            failures_truncated: self.failures_truncated,
            phases: self.reports,
            log: self.log,
            roots: self.roots_legend,
            signers: self.signers_legend,
            stats: self.stats,
            deviations: self.deviations,
        })
    }

    /// Deviations of the end state from the plan's last phase: istiod's signer and root
    /// file, the proxies' roots and leaves, the plan's new roots, and that a rotation took
    /// place at all.
    fn end_state(&mut self) {
        let Some(last) = self.phases.last() else {
            return;
        };
        let secrets = last.secrets.clone();
        let last_name = last.name.clone();
        for (c, secret) in secrets.iter().enumerate() {
            let Some(secret) = secret else {
                continue;
            };
            let Some(cl) = self.clusters.get(c) else {
                continue;
            };
            let (signer, trust, bytes) = (cl.istiod.signer, cl.istiod.trust, cl.istiod.bytes);
            let signer_fp = self.signers.get(signer).map(|s| s.fingerprint);
            let expected = secret.ca_cert().ok().map(|x| x.fingerprint());
            if expected.is_some() && signer_fp != expected {
                let want = expected
                    .and_then(|fp| self.signer_labels.get(&fp).cloned())
                    .unwrap_or_else(|| "?".to_owned());
                let got = self.signer_label(signer);
                self.deviate(
                    Some(c),
                    format!("at the end istiod signs with {got}, not with {want} of {last_name}"),
                );
            }
            if bytes != Fingerprint::of(secret.file(secret.root_file()).unwrap_or_default()) {
                let tl = self.trust_label(trust);
                self.deviate(
                    Some(c),
                    format!("at the end istiod does not serve the root-cert.pem of {last_name} (it trusts {tl})"),
                );
            }
            if self.initial_signers.get(c).copied() == signer_fp {
                self.deviate(
                    Some(c),
                    "the signer never changed: no rotation took place".to_owned(),
                );
            }
            let roots_file = self
                .clusters
                .get(c)
                .map(|cl| cl.istiod.roots_file.clone())
                .unwrap_or_default();
            let want: Vec<(ProxyKind, RootSetId)> =
                [ProxyKind::Sidecar, ProxyKind::Waypoint, ProxyKind::Ztunnel]
                    .into_iter()
                    .map(|k| (k, self.roots_for(k, &roots_file)))
                    .collect();
            let stale = self
                .proxies
                .iter()
                .filter(|p| p.cluster == c)
                .filter(|p| {
                    let want = want.iter().find(|(k, _)| *k == p.kind).map(|(_, r)| *r);
                    Some(p.roots) != want
                        || self.leaves.get(p.leaf).map(|l| l.signer) != Some(signer)
                })
                .count();
            if stale > 0 {
                self.deviate(
                    Some(c),
                    format!("at the end {stale} proxies do not trust what istiod serves or hold leaves from another signer"),
                );
            }
            if !self.new_roots.is_empty() {
                let mut want = self.new_roots.clone();
                want.sort();
                want.dedup();
                let mut have: Vec<Fingerprint> = self
                    .root_sets
                    .get(trust)
                    .map(|r| r.certs.iter().map(Certificate::fingerprint).collect())
                    .unwrap_or_default();
                have.sort();
                if have != want {
                    let tl = self.trust_label(trust);
                    let names: Vec<String> = want
                        .iter()
                        .map(|fp| {
                            self.root_labels
                                .get(fp)
                                .cloned()
                                .unwrap_or_else(|| fp.short())
                        })
                        .collect();
                    self.deviate(
                        Some(c),
                        format!(
                            "at the end the mesh trusts {tl}; the plan's new roots are {{{}}}",
                            names.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// The trust store a proxy of `kind` builds from istiod's root file `file` (certificates in
    /// file order), in its order: [`behaviour::trusted_roots`](crate::istio::behaviour::trusted_roots).
    pub(super) fn roots_for(&mut self, kind: ProxyKind, file: &[Certificate]) -> RootSetId {
        let key = (
            kind,
            file.iter()
                .map(Certificate::fingerprint)
                .collect::<Vec<_>>(),
        );
        if let Some(&id) = self.trust_cache.get(&key) {
            return id;
        }
        let p = &self.profile;
        let pushed = istiod::push_reaches_agent(p.multiroot, p.xds_agent);
        let roots = istiod::trusted_roots(p.istio_version, p.ztunnel(), kind.model(), pushed, file);
        let id = self.intern_roots(&roots);
        self.trust_cache.insert(key, id);
        id
    }

    fn handle(&mut self, ev: Ev) -> Result<bool, SimError> {
        match ev {
            Ev::StartPhase(k) => self.start_phase(k),
            Ev::Action { phase, index } => self.action(phase, index),
            Ev::AfterPlan => self.after_plan(),
            Ev::EndRun => {
                self.finished = true;
            }
            Ev::SecretSync(c) => self.secret_sync(c),
            Ev::Watch(c) => self.watch(c),
            Ev::IstiodReady(c) => self.istiod_ready(c),
            Ev::Push(p) => self.push(p),
            Ev::Csr(p, cause) => self.issue(p, self.now, Some(cause))?,
            Ev::Rotate(p, generation) => {
                if self
                    .proxies
                    .get(p)
                    .is_none_or(|x| x.generation != generation)
                {
                    return Ok(false);
                }
                self.issue(p, self.now, Some(Cause::Rotation))?;
            }
            Ev::PodRestart(p) => self.issue(p, self.now, Some(Cause::Restart))?,
            Ev::NodeRestart(c, n) => {
                // A restarted ztunnel reads the istio-ca-root-cert ConfigMap istiod serves now.
                if let Some(cl) = self.clusters.get_mut(c) {
                    let trust = cl.istiod.trust;
                    if let Some(r) = cl.node_ca_roots.get_mut(n) {
                        *r = trust;
                    }
                }
                let members = self
                    .clusters
                    .get(c)
                    .and_then(|c| c.nodes.get(n))
                    .cloned()
                    .unwrap_or_default();
                for p in members {
                    self.issue(p, self.now, Some(Cause::Restart))?;
                }
            }
            Ev::AwaitTimeout { phase, index } => {
                let Some(a) = self.awaiting else {
                    return Ok(false);
                };
                if (a.phase, a.index) != (phase, index) {
                    return Ok(false);
                }
                self.awaiting = None;
                let wait = crate::istio::format_duration(self.cfg.timing.await_timeout);
                self.deviate(
                    Some(a.cluster),
                    format!("istiod does not serve this phase's root-cert.pem after {wait}: the operator goes on"),
                );
                self.finish_action(phase, index, self.now);
            }
            Ev::LeafExpiry(p, leaf) => {
                let Some(x) = self.proxies.get_mut(p) else {
                    return Ok(false);
                };
                if x.leaf != leaf {
                    return Ok(false);
                }
                x.valid = false;
                self.reclass(p);
            }
        }
        Ok(true)
    }

    fn close_report(&mut self) {
        let census = self.census();
        let end = self.instant(self.now);
        if let Some(r) = self.report() {
            r.ended = end;
            r.census = census;
        }
    }

    fn open_report(&mut self, name: String, title: String) {
        if !self.reports.is_empty() {
            self.close_report();
        }
        let t = self.instant(self.now);
        self.reports.push(PhaseReport {
            name,
            title,
            started: t,
            ended: t,
            events: 0,
            connections: 0,
            failed_connections: 0,
            rotations: 0,
            reissued_on_push: 0,
            restarts: 0,
            pushes: 0,
            census: Vec::new(),
        });
    }

    fn start_phase(&mut self, k: usize) {
        let Some(spec) = self.phases.get(k) else {
            return;
        };
        let (name, title, wait, n_actions) = (
            spec.name.clone(),
            spec.title.clone(),
            spec.wait,
            spec.actions.len(),
        );
        self.open_report(name, title);
        if let Some(s) = self.phase_start.get_mut(k) {
            *s = self.now;
        }
        if k == 0 || n_actions == 0 {
            self.next_phase(k, self.now + wait);
        } else {
            self.schedule(self.now, Ev::Action { phase: k, index: 0 });
        }
    }

    fn next_phase(&mut self, k: usize, at: i64) {
        if k + 1 < self.phases.len() {
            self.schedule(at, Ev::StartPhase(k + 1));
        } else {
            self.schedule(at, Ev::AfterPlan);
        }
    }

    fn action(&mut self, k: usize, i: usize) {
        let Some(spec) = self.phases.get(k) else {
            return;
        };
        let Some(action) = spec.actions.get(i).cloned() else {
            return;
        };
        if let Some(done) = self.perform(k, i, &action) {
            self.finish_action(k, i, done);
        }
    }

    /// Action `i` of phase `k` completed at `done`: the next one follows, or the next phase.
    fn finish_action(&mut self, k: usize, i: usize, done: i64) {
        let Some(spec) = self.phases.get(k) else {
            return;
        };
        let (len, wait, barrier) = (spec.actions.len(), spec.wait, spec.barrier);
        let gap = ms(self.cfg.timing.action_gap);
        if i + 1 < len {
            self.schedule(
                done + gap,
                Ev::Action {
                    phase: k,
                    index: i + 1,
                },
            );
        } else {
            let started = self.phase_start.get(k).copied().unwrap_or(self.now);
            let from = if barrier {
                self.last_apply.max(started)
            } else {
                started
            };
            self.next_phase(k, (from + wait).max(done + gap));
        }
    }

    /// The operator's wait for istiod ends when istiod of that cluster serves the awaited
    /// root file (seen at the next poll).
    fn check_await(&mut self, c: usize) {
        let Some(a) = self.awaiting else {
            return;
        };
        let serves = self
            .clusters
            .get(c)
            .is_some_and(|cl| cl.istiod.bytes == a.bytes);
        if a.cluster == c && serves {
            self.awaiting = None;
            let done = self.now + ms(self.cfg.timing.await_poll);
            self.finish_action(a.phase, a.index, done);
        }
    }

    /// Performs action `i` of phase `k`; returns when it completes, or None when it completes
    /// later (a wait for istiod).
    fn perform(&mut self, k: usize, i: usize, action: &Action) -> Option<i64> {
        let now = self.now;
        let Some(c) = self.cluster_index(action.cluster()) else {
            self.log(
                None,
                format!("skipped \"{}\": no such cluster", action.describe()),
            );
            return Some(now);
        };
        let t = self.cfg.timing.clone();
        match action {
            Action::ApplySecret { .. } => {
                let secret = self
                    .phases
                    .get(k)
                    .and_then(|p| p.secrets.get(c).cloned().flatten());
                let Some(secret) = secret else {
                    self.log(
                        Some(c),
                        "the phase has no secret for this cluster: nothing applied".to_owned(),
                    );
                    return Some(now);
                };
                if secret.kind == SecretKind::SelfSigned {
                    self.log(
                        Some(c),
                        format!(
                            "applied {} (the self-signed CA reads it only when istiod starts)",
                            secret.name
                        ),
                    );
                    return Some(now);
                }
                let period = ms(t.secret_sync).max(1);
                let Some(cl) = self.clusters.get_mut(c) else {
                    return Some(now);
                };
                cl.applied = Some(secret);
                cl.applied_version += 1;
                cl.restart_follows = self.phases.get(k).is_some_and(|p| {
                    p.actions.iter().skip(i + 1).any(|a| {
                        matches!(a, Action::RestartIstiod { .. }) && a.cluster() == action.cluster()
                    })
                });
                self.last_apply = now;
                let schedule_sync = !cl.sync_pending;
                cl.sync_pending = true;
                let offset = cl.sync_offset;
                self.log(Some(c), "kubectl apply: cacerts updated".to_owned());
                if schedule_sync {
                    // kubelet's next sync tick of the mounted volume.
                    let ticks = (now - offset).div_euclid(period) + 1;
                    self.schedule(offset + ticks * period, Ev::SecretSync(c));
                }
                Some(now)
            }
            Action::RestartIstiod { .. } => {
                let d = ms(t.istiod_rollout);
                if let Some(cl) = self.clusters.get_mut(c) {
                    cl.restarting = true;
                }
                self.log(Some(c), "rollout restart of istiod".to_owned());
                self.schedule(now + d, Ev::IstiodReady(c));
                Some(now + d)
            }
            Action::RestartZtunnel { .. } => {
                let nodes = self.clusters.get(c).map_or(0, |cl| cl.nodes.len());
                if nodes == 0 {
                    self.log(
                        Some(c),
                        "rollout restart of ztunnel: this mesh has no ztunnel".to_owned(),
                    );
                    return Some(now);
                }
                let d = ms(t.ztunnel_rollout);
                self.log(
                    Some(c),
                    format!(
                        "rollout restart of the ztunnel daemonset ({nodes} node{})",
                        if nodes == 1 { "" } else { "s" }
                    ),
                );
                let n = i64::try_from(nodes).unwrap_or(1);
                for i in 0..nodes {
                    let step = i64::try_from(i + 1).unwrap_or(n);
                    self.schedule(now + d * step / n, Ev::NodeRestart(c, i));
                }
                Some(now + d)
            }
            Action::RestartSidecars { .. } | Action::RestartWaypoints { .. } => {
                let kind = if matches!(action, Action::RestartSidecars { .. }) {
                    ProxyKind::Sidecar
                } else {
                    ProxyKind::Waypoint
                };
                let members: Vec<ProxyId> = self
                    .proxies
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.cluster == c && p.kind == kind)
                    .map(|(i, _)| i)
                    .collect();
                let d = ms(t.proxy_rollout);
                self.log(
                    Some(c),
                    format!(
                        "rollout restart of {} {kind}{}",
                        members.len(),
                        if members.len() == 1 { "" } else { "s" }
                    ),
                );
                for p in members {
                    let at = now + self.rng.ms_below(d);
                    self.schedule(at, Ev::PodRestart(p));
                }
                Some(now + d)
            }
            Action::AwaitIstiod { .. } => {
                let target = self
                    .phases
                    .get(k)
                    .and_then(|p| p.secrets.get(c).cloned().flatten())
                    .map(|s| Fingerprint::of(s.file(s.root_file()).unwrap_or_default()));
                let Some(bytes) = target else {
                    return Some(now);
                };
                if self
                    .clusters
                    .get(c)
                    .is_some_and(|cl| cl.istiod.bytes == bytes)
                {
                    return Some(now);
                }
                self.log(
                    Some(c),
                    "waiting for istiod to serve this phase's root-cert.pem".to_owned(),
                );
                self.awaiting = Some(Awaiting {
                    phase: k,
                    index: i,
                    cluster: c,
                    bytes,
                });
                self.schedule(
                    now + ms(t.await_timeout),
                    Ev::AwaitTimeout { phase: k, index: i },
                );
                None
            }
        }
    }

    fn after_plan(&mut self) {
        self.open_report(
            "after-plan".to_owned(),
            if self.cfg.restart_istiod_at_end {
                "istiod restarts in every cluster (as at its next upgrade) and the mesh runs on"
                    .to_owned()
            } else {
                "the mesh runs on".to_owned()
            },
        );
        let observe = ms(self.cfg.observe_after.unwrap_or(self.profile.leaf_ttl));
        let mut end = self.now + observe;
        if self.cfg.restart_istiod_at_end {
            let d = ms(self.cfg.timing.istiod_rollout);
            for c in 0..self.clusters.len() {
                self.log(
                    Some(c),
                    "rollout restart of istiod (after the plan)".to_owned(),
                );
                self.schedule(self.now + d, Ev::IstiodReady(c));
            }
            end += d;
        }
        self.schedule(end, Ev::EndRun);
    }

    fn secret_sync(&mut self, c: usize) {
        let debounce = ms(self.cfg.timing.watch_debounce);
        let Some(cl) = self.clusters.get_mut(c) else {
            return;
        };
        cl.sync_pending = false;
        if cl.mounted_version != cl.applied_version {
            cl.mounted = cl.applied.clone();
            cl.mounted_version = cl.applied_version;
            if !cl.self_signed {
                self.schedule(self.now + debounce, Ev::Watch(c));
            }
        }
    }

    /// istiod's cacerts watcher (plugged-in mode): handleEvent on the mounted secret.
    fn watch(&mut self, c: usize) {
        let Some(cl) = self.clusters.get(c) else {
            return;
        };
        if cl.self_signed {
            return;
        }
        let Some(new) = cl.mounted.clone() else {
            return;
        };
        let version = self.profile.istio_version;
        let at = self.instant(self.now);
        let new_bytes = new.file(new.root_file()).unwrap_or_default().to_vec();
        let old_bytes = cl.istiod.root_bytes.clone();
        if new_bytes == old_bytes {
            match istiod::load(&new, version, at) {
                Ok(l) => {
                    let before = self.clusters.get(c).map(|c| c.istiod.signer);
                    let state = self.adopt(l);
                    let signer = state.signer;
                    if let Some(cl) = self.clusters.get_mut(c) {
                        cl.istiod = state;
                    }
                    self.check_await(c);
                    if before != Some(signer) {
                        let label = self.signer_label(signer);
                        self.log(
                            Some(c),
                            format!("istiod reloaded its signing CA (root-cert.pem unchanged): now signs with {label}; no push, leaves move at their next rotation"),
                        );
                    }
                }
                Err(e) => self.deviate(
                    Some(c),
                    format!("istiod refused the new cacerts and keeps the old one: {e}"),
                ),
            }
            return;
        }
        match istiod::root_change(version, self.profile.multiroot, &old_bytes, &new_bytes) {
            RootChange::Accepted | RootChange::Unchanged => {}
            RootChange::IgnoredMultirootOff if cl.restarting || cl.restart_follows => {
                self.log(
                    Some(c),
                    "the old istiod ignores the new root-cert.pem (ISTIO_MULTIROOT_MESH is off); the istiod restart of this phase loads it".to_owned(),
                );
                return;
            }
            RootChange::IgnoredMultirootOff => {
                self.deviate(
                    Some(c),
                    "istiod ignored the new cacerts: root-cert.pem changed and ISTIO_MULTIROOT_MESH is off (\"Multi root is disabled\", \"updating new ROOT-CA not supported\"); signer and roots unchanged".to_owned(),
                );
                return;
            }
            RootChange::Refused { rule } => {
                self.deviate(
                    Some(c),
                    format!(
                        "istiod {version} refused the new root-cert.pem ({}) and keeps the old CA",
                        rule.refusal()
                    ),
                );
                return;
            }
        }
        match istiod::load(&new, version, at) {
            Ok(l) => {
                let state = self.adopt(l);
                let (signer, trust) = (state.signer, state.trust);
                if let Some(cl) = self.clusters.get_mut(c) {
                    cl.istiod = state;
                }
                let (sl, tl) = (self.signer_label(signer), self.trust_label(trust));
                self.log(
                    Some(c),
                    format!("istiod accepted the new root-cert.pem: trusts {tl}, signs with {sl}"),
                );
                self.push_all(c);
                self.check_await(c);
            }
            Err(e) => self.deviate(
                Some(c),
                format!("istiod refused the new cacerts and keeps the old one: {e}"),
            ),
        }
    }

    /// A restarted istiod loads whatever the secret holds; when it cannot, it runs its
    /// self-signed CA or the rollout stalls ([`Mesh::without_cacerts`]).
    fn istiod_ready(&mut self, c: usize) {
        let version = self.profile.istio_version;
        let Some(cl) = self.clusters.get_mut(c) else {
            return;
        };
        cl.restarting = false;
        let Some(secret) = cl.applied.clone() else {
            self.log(
                Some(c),
                "istiod restarted: no cacerts, it keeps its self-signed CA".to_owned(),
            );
            self.push_all(c);
            return;
        };
        let (loaded, fallback) = match istiod::load(&secret, version, self.instant(self.now)) {
            Ok(l) => (l, None),
            Err(e) => match self.without_cacerts(c, &secret, &e) {
                Some((l, why)) => (l, Some(why)),
                None => return,
            },
        };
        let state = self.adopt(loaded);
        let (signer, trust) = (state.signer, state.trust);
        let was_self_signed = self.clusters.get(c).is_some_and(|c| c.self_signed);
        if let Some(cl) = self.clusters.get_mut(c) {
            cl.istiod = state;
            cl.self_signed = fallback.is_some();
            // The new pod mounts the current secret.
            cl.mounted = cl.applied.clone();
            cl.mounted_version = cl.applied_version;
        }
        let (sl, tl) = (self.signer_label(signer), self.trust_label(trust));
        match fallback {
            None => self.log(
                Some(c),
                format!(
                    "istiod restarted{}: loaded cacerts, trusts {tl}, signs with {sl}",
                    if was_self_signed { " in plugged-in mode" } else { "" }
                ),
            ),
            Some(why) => self.deviate(
                Some(c),
                format!("{why}: signs new leaves with {sl} and publishes {tl} in the istio-ca-root-cert ConfigMap, a different root: its leaves fail at peers that do not trust {sl}"),
            ),
        }
        self.push_all(c);
        self.check_await(c);
    }

    /// istiod pushes its trust bundle to every agent of its cluster (PROXY_CONFIG_XDS_AGENT).
    fn push_all(&mut self, c: usize) {
        if !istiod::push_reaches_agent(self.profile.multiroot, self.profile.xds_agent) {
            return;
        }
        let spread = ms(self.cfg.timing.push_spread);
        let targets: Vec<ProxyId> = self
            .proxies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.cluster == c && p.kind != ProxyKind::Ztunnel)
            .map(|(i, _)| i)
            .collect();
        for p in targets {
            let at = self.now + self.rng.ms_below(spread);
            self.schedule(at, Ev::Push(p));
        }
    }

    fn push(&mut self, p: ProxyId) {
        let latency = ms(self.cfg.timing.csr_latency);
        let Some(x) = self.proxies.get(p) else {
            return;
        };
        let Some(cl) = self.clusters.get(x.cluster) else {
            return;
        };
        let (bytes, kind) = (cl.istiod.bytes, x.kind);
        let file = cl.istiod.roots_file.clone();
        let changed = x.bytes != bytes;
        if let Some(r) = self.report() {
            r.pushes += 1;
        }
        if changed {
            let trust = self.roots_for(kind, &file);
            if let Some(x) = self.proxies.get_mut(p) {
                x.bytes = bytes;
                x.roots = trust;
            }
            self.reclass(p);
            self.schedule(self.now + latency, Ev::Csr(p, Cause::Push));
        }
    }

    /// A CSR answered by istiod at `at`: a new leaf from its current signer, and its roots.
    /// `cause` is None for the leaves the proxies hold when the simulation starts.
    fn issue(&mut self, p: ProxyId, at: i64, cause: Option<Cause>) -> Result<(), SimError> {
        let Some(x) = self.proxies.get(p) else {
            return Ok(());
        };
        let (c, kind) = (x.cluster, x.kind);
        let Some(cl) = self.clusters.get(c) else {
            return Ok(());
        };
        let (sid, bytes) = (cl.istiod.signer, cl.istiod.bytes);
        let roots_file = cl.istiod.roots_file.clone();
        if kind == ProxyKind::Ztunnel && !self.ztunnel_reaches_istiod(p, c, sid, at) {
            let retry = ms(self.cfg.timing.retry);
            self.schedule(at + retry, Ev::Csr(p, Cause::Retry));
            return Ok(());
        }
        let Some(signer) = self.signers.get(sid) else {
            return Ok(());
        };
        let t = self.unix(at);
        let version = self.profile.istio_version;
        let clamps = istiod::clamps_leaf_to_signer(version);
        let (limit, label) = (signer.limit, signer.label.clone());
        let logged = self
            .clusters
            .get(c)
            .is_some_and(|c| c.signing_failure_logged);
        if limit <= t && clamps {
            // From 1.28.7, 1.29.3, 1.30.0 istiod cannot sign with an expired CA chain.
            if !logged {
                if let Some(cl) = self.clusters.get_mut(c) {
                    cl.signing_failure_logged = true;
                }
                self.log(
                    Some(c),
                    format!("istiod cannot sign: its CA chain ({label}) has expired; agents retry"),
                );
            }
            let retry = ms(self.cfg.timing.retry);
            self.schedule(at + retry, Ev::Csr(p, Cause::Retry));
            return Ok(());
        }
        let (not_before, not_after) = istiod::leaf_validity(version, t, self.ttl_secs, limit);
        let presented = self.presented_for(kind, sid, bytes, &roots_file)?;
        if not_after > limit {
            self.stats.leaves_outliving_ca += 1;
            if !logged {
                if let Some(cl) = self.clusters.get_mut(c) {
                    cl.signing_failure_logged = true;
                }
                let what = if limit <= t {
                    "keeps signing with its expired CA chain"
                } else {
                    "issues leaves that outlive their CA chain"
                };
                self.log(
                    Some(c),
                    format!(
                        "istiod {version} {what} ({label}, notAfter {}): leaves are clamped to the signer only from {}; they fail once it has expired",
                        self.instant_unix(limit),
                        istiod::clamp_fixed_in()
                    ),
                );
            }
        }
        self.leaves.push(LeafRec {
            signer: sid,
            owner: p,
            issued: t,
            not_before,
            not_after,
            presented,
            cert: None,
        });
        let lid = self.leaves.len() - 1;
        self.stats.leaves += 1;
        if self.cfg.exact_leaves {
            self.materialize(lid)?;
        }
        let roots = self.roots_for(kind, &roots_file);
        let generation = {
            let Some(x) = self.proxies.get_mut(p) else {
                return Ok(());
            };
            x.leaf = lid;
            x.roots = roots;
            x.bytes = bytes;
            x.generation += 1;
            x.valid = t <= not_after;
            x.generation
        };
        self.reclass(p);
        // Rotation when grace_ratio (± jitter) of the lifetime remains (secretcache rotateTime).
        let expire = (not_after + 1 - self.start_unix).saturating_mul(1000);
        let born = (not_before - self.start_unix).saturating_mul(1000);
        let draw = istiod::Jitter {
            fraction: self.rng.unit(),
            positive: self.rng.below(2) == 1,
        };
        let rotate = istiod::renewal_at(
            kind.model(),
            self.profile.istio_version,
            at,
            born,
            expire,
            self.profile.grace_ratio,
            self.jitter,
            draw,
        )
        .max(at + 1000);
        self.schedule(rotate, Ev::Rotate(p, generation));
        self.schedule(expire, Ev::LeafExpiry(p, lid));
        if let Some(cause) = cause {
            if let Some(r) = self.report() {
                match cause {
                    Cause::Rotation | Cause::Retry => r.rotations += 1,
                    Cause::Push => r.reissued_on_push += 1,
                    Cause::Restart => r.restarts += 1,
                }
            }
        }
        Ok(())
    }

    /// Whether the ztunnel holding `p` can reach istiod of cluster `c` for a CSR: its CA client
    /// verifies istiod's serving certificate, which istiod re-signs with its current signer
    /// `sid`, against the roots of [`behaviour::ztunnel_ca_client_roots`](crate::istio::behaviour::ztunnel_ca_client_roots)
    /// (those read at its start before ztunnel 1.28.6, 1.29.2, 1.30.0; istio/ztunnel issue 1679).
    fn ztunnel_reaches_istiod(&mut self, p: ProxyId, c: usize, sid: SignerId, at: i64) -> bool {
        let Some(cl) = self.clusters.get(c) else {
            return true;
        };
        let node = cl.nodes.iter().position(|n| n.contains(&p));
        let at_start = node.and_then(|n| cl.node_ca_roots.get(n).copied());
        let Some(at_start) = at_start else {
            return true;
        };
        let z = self.profile.ztunnel();
        let roots = *istiod::ztunnel_ca_client_roots(z, &at_start, &cl.istiod.trust);
        let key = (sid, roots);
        let ok = match self.reach_cache.get(&key) {
            Some(&ok) => ok,
            None => {
                let ok = match (self.signers.get(sid), self.root_sets.get(roots)) {
                    (Some(s), Some(r)) => verify::verify(
                        s.issuer.certificate(),
                        &s.chain_pool,
                        &r.pool,
                        &VerifyOptions::at(self.instant(at)),
                    )
                    .is_ok(),
                    _ => true,
                };
                self.reach_cache.insert(key, ok);
                ok
            }
        };
        if !ok
            && !self
                .clusters
                .get(c)
                .is_some_and(|c| c.ztunnel_channel_logged)
        {
            if let Some(cl) = self.clusters.get_mut(c) {
                cl.ztunnel_channel_logged = true;
            }
            let (sl, tl) = (self.signer_label(sid), self.trust_label(roots));
            self.log(
                Some(c),
                format!(
                    "ztunnel {z} cannot reach istiod: istiod's serving certificate is signed by {sl} and ztunnel (before {}) still verifies istiod with the roots it read at start ({tl}); it stops renewing (istio/ztunnel issue 1679): restart ztunnel after the new roots reach the istio-ca-root-cert ConfigMap, before the signer switch",
                    istiod::ztunnel_watch_fixed_in()
                ),
            );
        }
        ok
    }

    pub(super) fn signer_label(&self, s: SignerId) -> String {
        self.signers
            .get(s)
            .map(|s| s.label.clone())
            .unwrap_or_else(|| "?".to_owned())
    }

    pub(super) fn trust_label(&self, r: RootSetId) -> String {
        self.root_sets
            .get(r)
            .map(|r| format!("{{{}}}", r.labels.join(", ")))
            .unwrap_or_else(|| "{}".to_owned())
    }

    /// The proxies grouped by cluster, kind, trust set and signer.
    fn census(&self) -> Vec<CensusRow> {
        let mut rows: BTreeMap<(usize, ProxyKind, Vec<String>, String), usize> = BTreeMap::new();
        for p in &self.proxies {
            let trusts = self
                .root_sets
                .get(p.roots)
                .map(|r| r.labels.clone())
                .unwrap_or_default();
            let signer = self
                .leaves
                .get(p.leaf)
                .map(|l| self.signer_label(l.signer))
                .unwrap_or_default();
            *rows.entry((p.cluster, p.kind, trusts, signer)).or_insert(0) += 1;
        }
        rows.into_iter()
            .map(|((c, kind, trusts, signer), proxies)| CensusRow {
                cluster: self
                    .clusters
                    .get(c)
                    .map(|c| c.name.clone())
                    .unwrap_or_default(),
                kind,
                trusts,
                signer,
                proxies,
            })
            .collect()
    }

    /// The members of each class, for the traffic check.
    pub(super) fn class_key(&self, p: ProxyId) -> Option<ClassKey> {
        let x = self.proxies.get(p)?;
        let leaf = self.leaves.get(x.leaf)?;
        Some(ClassKey {
            subject: if self.cfg.exact_leaves {
                Subject::Leaf(x.leaf)
            } else {
                Subject::Chain(leaf.signer)
            },
            presented: leaf.presented,
            roots: x.roots,
            valid: x.valid,
            kind: x.kind,
        })
    }

    pub(super) fn reclass(&mut self, p: ProxyId) {
        let new = self.class_key(p);
        let old = self.proxies.get(p).and_then(|x| x.class);
        if new == old {
            return;
        }
        self.class_version += 1;
        let v = self.class_version;
        if let Some(old) = old {
            let empty = match self.classes.get_mut(&old) {
                Some(rec) => {
                    rec.members.remove(&p);
                    rec.version = v;
                    rec.members.is_empty()
                }
                None => false,
            };
            if empty {
                self.classes.remove(&old);
            }
        }
        if let Some(new) = new {
            let rec = self.classes.entry(new).or_insert_with(|| ClassRec {
                members: BTreeSet::new(),
                version: v,
            });
            rec.members.insert(p);
            rec.version = v;
        }
        if let Some(x) = self.proxies.get_mut(p) {
            x.class = new;
        }
    }
}
