//! Setting a mesh up for a plan: the configuration checked, the clusters (the plan's order,
//! then any other cluster a phase names), the phases as the operator runs them, every
//! cluster's istiod started from phase `00`, the proxies spread over the clusters with their
//! first leaves (of seeded ages), and the first event.

use time::OffsetDateTime;

use super::istiod::{Cluster, Istiod, Istiods};
use super::journal::{Env, Journal};
use super::operator::{Operator, PhaseSpec};
use super::queue::{Ev, Queue, ms};
use super::traffic::Traffic;
use super::world::{ClusterId, Proxy, TRUST_DOMAIN, World};
use super::{ProxyKind, SimConfig, SimError, steps};
use crate::cert::{Fingerprint, SpiffeId};
use crate::istio::behaviour;
use crate::istio::{DataPlane, SecretKind};
use crate::plan::Plan;

/// A mesh ready to run, in parts.
pub(super) struct Ready {
    pub world: World,
    pub queue: Queue,
    pub traffic: Traffic,
    pub istiods: Istiods,
    pub operator: Operator,
    pub journal: Journal,
    /// istiod's signer in each cluster at the start (fingerprint).
    pub initial_signers: Vec<Fingerprint>,
}

/// Prepares the simulation of `plan` (with `plan.profile`) under `cfg`.
pub(super) fn prepare(plan: &Plan, cfg: &SimConfig) -> Result<Ready, SimError> {
    check(cfg)?;
    let profile = plan.profile.clone();
    profile.validate().map_err(SimError::Profile)?;
    if plan.phases.is_empty() {
        return Err(SimError::NoPhases);
    }
    let start = OffsetDateTime::from_unix_timestamp(cfg.start.unix_timestamp())
        .map_err(|e| SimError::Config(format!("start instant: {e}")))?;
    let names = cluster_names(plan);
    let phases = phase_specs(plan, &names, cfg);
    let observe = ms(cfg.observe_after.unwrap_or(profile.leaf_ttl));
    let operator = Operator::new(
        phases,
        cfg.timing.clone(),
        cfg.restart_istiod_at_end,
        observe,
    );
    // The model applies it from 1.24 only (behaviour::renewal_at).
    let jitter = cfg.jitter.unwrap_or(behaviour::DEFAULT_RATIO_JITTER);
    let ttl_secs = ms(profile.leaf_ttl) / 1000;
    let mut ready = Ready {
        world: World::new(profile, ttl_secs, names, plan, start),
        queue: Queue::new(start.unix_timestamp(), cfg.seed),
        traffic: Traffic::new(cfg.exact_leaves, cfg.brute_force, cfg.max_failures),
        istiods: Istiods::new(cfg.timing.clone(), jitter, cfg.exact_leaves),
        operator,
        journal: Journal::default(),
        initial_signers: Vec::new(),
    };
    start_istiods(&mut ready, plan, cfg, start)?;
    add_proxies(&mut ready, cfg)?;
    first_leaves(&mut ready)?;
    ready.queue.schedule(0, Ev::StartPhase(0));
    Ok(ready)
}

/// The settings [`SimConfig`] allows.
fn check(cfg: &SimConfig) -> Result<(), SimError> {
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
    Ok(())
}

/// Clusters: the plan's order, then any other cluster a phase names.
fn cluster_names(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = plan.clusters.clone();
    for p in &plan.phases {
        for c in &p.clusters {
            if !names.contains(&c.cluster) {
                names.push(c.cluster.clone());
            }
        }
    }
    names
}

/// The phases as the operator runs them: the plan's actions and gate, else
/// [`steps::default_steps`]; phase `00` has no action.
fn phase_specs(plan: &Plan, names: &[String], cfg: &SimConfig) -> Vec<PhaseSpec> {
    let mut phases = Vec::new();
    for (k, p) in plan.phases.iter().enumerate() {
        let (default_actions, default_wait) =
            steps::default_steps(plan, k, &plan.profile, cfg.propagation, cfg.margin);
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
    phases
}

/// Every cluster's istiod starts from phase `00`.
fn start_istiods(
    ready: &mut Ready,
    plan: &Plan,
    cfg: &SimConfig,
    start: OffsetDateTime,
) -> Result<(), SimError> {
    let first = plan
        .phases
        .first()
        .map(|p| p.name.clone())
        .unwrap_or_default();
    let version = ready.world.profile.istio_version;
    for (ci, name) in ready.world.clusters.clone().iter().enumerate() {
        let secret =
            ready
                .operator
                .secret(0, ci)
                .cloned()
                .ok_or_else(|| SimError::InitialState {
                    phase: first.clone(),
                    cluster: name.clone(),
                    reason: "the first phase has no secret for this cluster".to_owned(),
                })?;
        let loaded =
            behaviour::load(&secret, version, start).map_err(|reason| SimError::InitialState {
                phase: first.clone(),
                cluster: name.clone(),
                reason,
            })?;
        let self_signed = secret.kind == SecretKind::SelfSigned;
        let istiod = Istiod::adopt(&mut ready.world, loaded);
        let sync_offset = ready.queue.delay_below(ms(cfg.timing.secret_sync));
        let signer = ready
            .world
            .signers
            .get(istiod.signer)
            .map_or(Fingerprint([0; 32]), |s| s.fingerprint);
        ready.initial_signers.push(signer);
        let cluster = Cluster::new(secret, self_signed, istiod, sync_offset);
        ready.istiods.clusters.push(cluster);
    }
    Ok(())
}

/// The kind of proxy `j` of a cluster of `count` proxies: every kind the data plane has, as
/// soon as the cluster has room for it (ztunnel workloads first, then a waypoint, then
/// sidecars in a mixed mesh).
fn kind_of(plane: DataPlane, count: usize, j: usize) -> ProxyKind {
    let waypoints = match plane {
        DataPlane::Sidecar => 0,
        DataPlane::Ambient if count >= 2 => (count / 20).max(1),
        DataPlane::Both if count >= 3 => (count / 20).max(1),
        DataPlane::Ambient | DataPlane::Both => 0,
    };
    if j < waypoints {
        return ProxyKind::Waypoint;
    }
    match plane {
        DataPlane::Sidecar => ProxyKind::Sidecar,
        DataPlane::Ambient => ProxyKind::Ztunnel,
        DataPlane::Both if (j - waypoints) % 2 == 0 => ProxyKind::Ztunnel,
        DataPlane::Both => ProxyKind::Sidecar,
    }
}

/// Creates the proxies, spread over the clusters in turn, and the ambient nodes.
fn add_proxies(ready: &mut Ready, cfg: &SimConfig) -> Result<(), SimError> {
    let n_clusters = ready.world.clusters.len().max(1);
    let mut per_cluster: Vec<usize> = vec![0; n_clusters];
    for i in 0..cfg.workloads {
        if let Some(n) = per_cluster.get_mut(i % n_clusters) {
            *n += 1;
        }
    }
    let multi = ready.world.clusters.len() > 1;
    let plane = ready.world.profile.data_plane;
    for (ci, &count) in per_cluster.iter().enumerate() {
        let mut node_fill = 0usize;
        for j in 0..count {
            let kind = kind_of(plane, count, j);
            let id = add_proxy(&mut ready.world, ci, kind, j, multi)?;
            if kind == ProxyKind::Ztunnel {
                if let Some(c) = ready.istiods.clusters.get_mut(ci) {
                    if node_fill == 0 || c.nodes.is_empty() {
                        c.nodes.push(Vec::new());
                        c.node_ca_roots.push(c.istiod.trust);
                    }
                    if let Some(node) = c.nodes.last_mut() {
                        node.push(id);
                    }
                }
                node_fill = (node_fill + 1) % cfg.workloads_per_node;
            }
        }
    }
    Ok(())
}

/// Adds proxy `j` of cluster `ci`, of `kind`, without a leaf yet.
fn add_proxy(
    world: &mut World,
    ci: ClusterId,
    kind: ProxyKind,
    j: usize,
    multi: bool,
) -> Result<usize, SimError> {
    let prefix = match kind {
        ProxyKind::Sidecar => "app",
        ProxyKind::Ztunnel => "amb",
        ProxyKind::Waypoint => "waypoint",
    };
    let name = if multi {
        format!("{}/{prefix}-{j:03}", world.cluster_name(Some(ci)))
    } else {
        format!("{prefix}-{j:03}")
    };
    let identity = SpiffeId::istio(TRUST_DOMAIN, "default", &format!("{prefix}-{ci}-{j}"))
        .map_err(|e| SimError::Internal(e.to_string()))?;
    world.proxies.push(Proxy {
        name,
        cluster: ci,
        kind,
        identity,
        leaf: 0,
        roots: 0,
        bytes: Fingerprint([0; 32]),
        generation: 0,
        valid: false,
    });
    Ok(world.proxies.len() - 1)
}

/// First leaves: issued at a seeded age so that rotations are spread over the period.
fn first_leaves(ready: &mut Ready) -> Result<(), SimError> {
    let period = ms(ready.world.profile.rotation_after()).max(1);
    let mut env = Env {
        world: &mut ready.world,
        queue: &mut ready.queue,
        journal: &mut ready.journal,
    };
    for p in 0..env.world.proxies.len() {
        let age = env.queue.delay_below(period);
        ready.istiods.issue(p, -age, None, &mut env)?;
        ready.traffic.reclass(env.world, p);
    }
    Ok(())
}
