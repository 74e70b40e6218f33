//! istiod, one per cluster, and what it does: the state it serves (signer and root file), the
//! `cacerts` secret as applied and as mounted, the ambient nodes, and its reactions, each a
//! call into the one Istio model ([`crate::istio::behaviour`]): the kubelet sync of the
//! mounted secret, the cacerts watcher, a restart (with the self-signed fallback of
//! [`super::fallback`]), trust-bundle pushes, and answering a proxy's CSR with a leaf.

use std::collections::HashMap;

use super::fallback;
use super::journal::Env;
use super::queue::{Cause, Ev, instant_unix, ms};
use super::world::{ClusterId, LeafId, LeafRec, ProxyId, RootSetId, SignerId, World};
use super::{ProxyKind, SimError, Timing};
use crate::cert::{Certificate, Fingerprint};
use crate::istio::CaSecret;
use crate::istio::behaviour::{self, LoadedCa, RootChange};
use crate::verify::{self, VerifyOptions};

/// What istiod serves: its signer and its root file.
pub(super) struct Istiod {
    pub signer: SignerId,
    /// root-cert.pem as istiod holds it, and its SHA-256 (what agents compare).
    pub root_bytes: Vec<u8>,
    pub bytes: Fingerprint,
    pub roots_file: Vec<Certificate>,
    pub trust: RootSetId,
}

impl Istiod {
    /// The state of an istiod that loaded `loaded`, its signer and trust set interned in
    /// `world`.
    pub(super) fn adopt(world: &mut World, loaded: LoadedCa) -> Istiod {
        let LoadedCa {
            ca_cert,
            issuer,
            chain,
            root_bytes,
            roots,
        } = loaded;
        let signer = world.intern_signer(&ca_cert, issuer, chain);
        let trust = world.intern_roots(&roots);
        Istiod {
            signer,
            bytes: Fingerprint::of(&root_bytes),
            root_bytes,
            roots_file: roots,
            trust,
        }
    }
}

/// One cluster's istiod, its `cacerts` secret and its ambient nodes.
pub(super) struct Cluster {
    /// istiod runs its self-signed CA (no cacerts watcher).
    pub self_signed: bool,
    pub istiod: Istiod,
    /// istiod's self-signed `istio-ca-secret`, when the cluster has one.
    pub istio_ca_secret: Option<CaSecret>,
    /// The latest `cacerts` applied with kubectl, and its version.
    pub applied: Option<CaSecret>,
    pub applied_version: u64,
    /// What istiod's volume holds (kubelet's last sync).
    pub mounted: Option<CaSecret>,
    pub mounted_version: u64,
    pub sync_pending: bool,
    /// Phase of this cluster's kubelet sync ticks.
    pub sync_offset: i64,
    /// Ambient nodes: the ztunnel workloads of each.
    pub nodes: Vec<Vec<ProxyId>>,
    /// Per node: the istio-ca-root-cert roots its ztunnel read at its last start (what an
    /// older ztunnel verifies istiod with, behaviour::ztunnel_ca_client_roots).
    pub node_ca_roots: Vec<RootSetId>,
    pub ztunnel_channel_logged: bool,
    pub signing_failure_logged: bool,
    /// A rollout restart of istiod is under way: the new pod loads the applied secret.
    pub restarting: bool,
    /// The phase being applied restarts istiod after its apply: a root change the running
    /// istiod ignores (ISTIO_MULTIROOT_MESH off) is expected, the restart loads it.
    pub restart_follows: bool,
}

impl Cluster {
    /// A cluster whose istiod started from `secret` (its `cacerts`, or its `istio-ca-secret`
    /// when `self_signed`) and serves `istiod`.
    pub(super) fn new(
        secret: CaSecret,
        self_signed: bool,
        istiod: Istiod,
        sync_offset: i64,
    ) -> Cluster {
        let (cacerts, own) = if self_signed {
            (None, Some(secret))
        } else {
            (Some(secret), None)
        };
        Cluster {
            self_signed,
            istiod,
            istio_ca_secret: own,
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
        }
    }

    /// Whether istiod serves the root file of SHA-256 `bytes`.
    pub(super) fn serves(&self, bytes: Fingerprint) -> bool {
        self.istiod.bytes == bytes
    }
}

/// Every cluster's istiod, and what their reactions need.
pub(super) struct Istiods {
    pub clusters: Vec<Cluster>,
    timing: Timing,
    /// SECRET_GRACE_PERIOD_RATIO_JITTER.
    jitter: f64,
    /// Issue every leaf for real ([`super::SimConfig::exact_leaves`]).
    exact_leaves: bool,
    /// Whether a ztunnel CA client with a trust set verifies istiod's serving certificate.
    reach_cache: HashMap<(SignerId, RootSetId), bool>,
    /// Leaves issued (one per CSR answered).
    pub leaves: u64,
    /// Leaves issued with a notAfter past their CA chain's.
    pub leaves_outliving_ca: u64,
}

impl Istiods {
    /// No cluster yet.
    pub(super) fn new(timing: Timing, jitter: f64, exact_leaves: bool) -> Istiods {
        Istiods {
            clusters: Vec::new(),
            timing,
            jitter,
            exact_leaves,
            reach_cache: HashMap::new(),
            leaves: 0,
            leaves_outliving_ca: 0,
        }
    }

    /// kubelet's sync tick: the applied secret reaches the volume, and istiod's watcher sees
    /// it after its debounce.
    pub(super) fn secret_sync(&mut self, c: ClusterId, env: &mut Env<'_>) {
        let debounce = ms(self.timing.watch_debounce);
        let Some(cl) = self.clusters.get_mut(c) else {
            return;
        };
        cl.sync_pending = false;
        if cl.mounted_version != cl.applied_version {
            cl.mounted = cl.applied.clone();
            cl.mounted_version = cl.applied_version;
            if !cl.self_signed {
                env.queue.schedule(env.now() + debounce, Ev::Watch(c));
            }
        }
    }

    /// istiod's cacerts watcher (plugged-in mode): handleEvent on the mounted secret. Returns
    /// whether istiod now serves something new (the operator may be waiting for it).
    pub(super) fn watch(&mut self, c: ClusterId, env: &mut Env<'_>) -> bool {
        let Some(cl) = self.clusters.get(c) else {
            return false;
        };
        if cl.self_signed {
            return false;
        }
        let Some(new) = cl.mounted.clone() else {
            return false;
        };
        let new_bytes = new.file(new.root_file()).unwrap_or_default().to_vec();
        if new_bytes == cl.istiod.root_bytes {
            return self.reload_signer(c, &new, env);
        }
        let version = env.world.profile.istio_version;
        let change = behaviour::root_change(
            version,
            env.world.profile.multiroot,
            &cl.istiod.root_bytes,
            &new_bytes,
        );
        match change {
            RootChange::Accepted | RootChange::Unchanged => {}
            RootChange::IgnoredMultirootOff if cl.restarting || cl.restart_follows => {
                env.log(
                    Some(c),
                    "the old istiod ignores the new root-cert.pem (ISTIO_MULTIROOT_MESH is off); the istiod restart of this phase loads it".to_owned(),
                );
                return false;
            }
            RootChange::IgnoredMultirootOff => {
                env.deviate(
                    Some(c),
                    "istiod ignored the new cacerts: root-cert.pem changed and ISTIO_MULTIROOT_MESH is off (\"Multi root is disabled\", \"updating new ROOT-CA not supported\"); signer and roots unchanged".to_owned(),
                );
                return false;
            }
            RootChange::Refused { rule } => {
                env.deviate(
                    Some(c),
                    format!(
                        "istiod {version} refused the new root-cert.pem ({}) and keeps the old CA",
                        rule.refusal()
                    ),
                );
                return false;
            }
        }
        self.load_roots(c, &new, env)
    }

    /// The watcher saw root-cert.pem unchanged: istiod reloads its signer from `new`.
    fn reload_signer(&mut self, c: ClusterId, new: &CaSecret, env: &mut Env<'_>) -> bool {
        let at = env.queue.clock().instant();
        match behaviour::load(new, env.world.profile.istio_version, at) {
            Ok(l) => {
                let state = Istiod::adopt(env.world, l);
                let signer = state.signer;
                let Some(cl) = self.clusters.get_mut(c) else {
                    return false;
                };
                let before = cl.istiod.signer;
                cl.istiod = state;
                if before != signer {
                    let label = env.world.signer_label(signer);
                    env.log(
                        Some(c),
                        format!("istiod reloaded its signing CA (root-cert.pem unchanged): now signs with {label}; no push, leaves move at their next rotation"),
                    );
                }
                true
            }
            Err(e) => refused(c, &e, env),
        }
    }

    /// The watcher accepted a new root-cert.pem: istiod loads `new` and pushes its roots.
    fn load_roots(&mut self, c: ClusterId, new: &CaSecret, env: &mut Env<'_>) -> bool {
        let at = env.queue.clock().instant();
        match behaviour::load(new, env.world.profile.istio_version, at) {
            Ok(l) => {
                let state = Istiod::adopt(env.world, l);
                let (signer, trust) = (state.signer, state.trust);
                if let Some(cl) = self.clusters.get_mut(c) {
                    cl.istiod = state;
                }
                let (sl, tl) = (env.world.signer_label(signer), env.world.trust_label(trust));
                env.log(
                    Some(c),
                    format!("istiod accepted the new root-cert.pem: trusts {tl}, signs with {sl}"),
                );
                self.push_all(c, env);
                true
            }
            Err(e) => refused(c, &e, env),
        }
    }

    /// A restarted istiod loads whatever the secret holds; when it cannot, it runs its
    /// self-signed CA or the rollout stalls ([`fallback::without_cacerts`]). Returns whether
    /// istiod now serves what it loaded (the operator may be waiting for it).
    pub(super) fn ready(&mut self, c: ClusterId, env: &mut Env<'_>) -> bool {
        let version = env.world.profile.istio_version;
        let at = env.queue.clock().instant();
        let Some(cl) = self.clusters.get_mut(c) else {
            return false;
        };
        cl.restarting = false;
        let Some(secret) = cl.applied.clone() else {
            env.log(
                Some(c),
                "istiod restarted: no cacerts, it keeps its self-signed CA".to_owned(),
            );
            self.push_all(c, env);
            return false;
        };
        let (loaded, fallback) = match behaviour::load(&secret, version, at) {
            Ok(l) => (l, None),
            Err(e) => {
                let own = &mut cl.istio_ca_secret;
                match fallback::without_cacerts(env.world, own, &secret, &e, at) {
                    Ok((l, why)) => (l, Some(why)),
                    Err(deviation) => {
                        env.deviate(Some(c), deviation);
                        return false;
                    }
                }
            }
        };
        let state = Istiod::adopt(env.world, loaded);
        let (signer, trust) = (state.signer, state.trust);
        let was_self_signed = cl.self_signed;
        cl.istiod = state;
        cl.self_signed = fallback.is_some();
        // The new pod mounts the current secret.
        cl.mounted = cl.applied.clone();
        cl.mounted_version = cl.applied_version;
        let (sl, tl) = (env.world.signer_label(signer), env.world.trust_label(trust));
        match fallback {
            None => env.log(
                Some(c),
                format!(
                    "istiod restarted{}: loaded cacerts, trusts {tl}, signs with {sl}",
                    if was_self_signed { " in plugged-in mode" } else { "" }
                ),
            ),
            Some(why) => env.deviate(
                Some(c),
                format!("{why}: signs new leaves with {sl} and publishes {tl} in the istio-ca-root-cert ConfigMap, a different root: its leaves fail at peers that do not trust {sl}"),
            ),
        }
        self.push_all(c, env);
        true
    }

    /// istiod pushes its trust bundle to every agent of its cluster (PROXY_CONFIG_XDS_AGENT).
    fn push_all(&mut self, c: ClusterId, env: &mut Env<'_>) {
        let p = &env.world.profile;
        if !behaviour::push_reaches_agent(p.multiroot, p.xds_agent) {
            return;
        }
        let spread = ms(self.timing.push_spread);
        for p in env.world.members(c, |k| k != ProxyKind::Ztunnel) {
            let at = env.now() + env.queue.delay_below(spread);
            env.queue.schedule(at, Ev::Push(p));
        }
    }

    /// A trust-bundle push reaches proxy `p`: when the bytes changed, it trusts the new roots
    /// and asks for a new leaf. Returns whether its roots changed.
    pub(super) fn push(&mut self, p: ProxyId, env: &mut Env<'_>) -> bool {
        let latency = ms(self.timing.csr_latency);
        let Some(x) = env.world.proxies.get(p) else {
            return false;
        };
        let Some(cl) = self.clusters.get(x.cluster) else {
            return false;
        };
        let (bytes, kind) = (cl.istiod.bytes, x.kind);
        let changed = x.bytes != bytes;
        if let Some(r) = env.journal.report() {
            r.pushes += 1;
        }
        if !changed {
            return false;
        }
        let trust = env.world.roots_for(kind, &cl.istiod.roots_file);
        if let Some(x) = env.world.proxies.get_mut(p) {
            x.bytes = bytes;
            x.roots = trust;
        }
        env.queue
            .schedule(env.now() + latency, Ev::Csr(p, Cause::Push));
        true
    }

    /// A restarted ztunnel (node `n` of cluster `c`) reads the istio-ca-root-cert ConfigMap
    /// istiod serves now; returns the workloads whose certificates it re-fetches.
    pub(super) fn restart_node(&mut self, c: ClusterId, n: usize) -> Vec<ProxyId> {
        let Some(cl) = self.clusters.get_mut(c) else {
            return Vec::new();
        };
        let trust = cl.istiod.trust;
        if let Some(r) = cl.node_ca_roots.get_mut(n) {
            *r = trust;
        }
        cl.nodes.get(n).cloned().unwrap_or_default()
    }

    /// A CSR of proxy `p` answered by istiod at `at`: a new leaf from its current signer, and
    /// its roots (or a retry when istiod cannot sign or a ztunnel cannot reach it). `cause` is
    /// None for the leaves the proxies hold when the simulation starts.
    pub(super) fn issue(
        &mut self,
        p: ProxyId,
        at: i64,
        cause: Option<Cause>,
        env: &mut Env<'_>,
    ) -> Result<(), SimError> {
        let Some(x) = env.world.proxies.get(p) else {
            return Ok(());
        };
        let (c, kind) = (x.cluster, x.kind);
        let Some(cl) = self.clusters.get(c) else {
            return Ok(());
        };
        let (sid, bytes) = (cl.istiod.signer, cl.istiod.bytes);
        let roots_file = cl.istiod.roots_file.clone();
        let retry = at + ms(self.timing.retry);
        if kind == ProxyKind::Ztunnel && !self.ztunnel_reaches_istiod(p, c, sid, at, env) {
            env.queue.schedule(retry, Ev::Csr(p, Cause::Retry));
            return Ok(());
        }
        if env.world.signers.get(sid).is_none() {
            return Ok(());
        }
        let t = env.queue.clock().unix_at(at);
        let Some((not_before, not_after)) = self.validity(c, sid, t, env) else {
            env.queue.schedule(retry, Ev::Csr(p, Cause::Retry));
            return Ok(());
        };
        let presented = env.world.presented_for(kind, sid, bytes, &roots_file)?;
        env.world.leaves.push(LeafRec {
            signer: sid,
            owner: p,
            issued: t,
            not_before,
            not_after,
            presented,
            cert: None,
        });
        let lid = env.world.leaves.len() - 1;
        self.leaves += 1;
        if self.exact_leaves {
            env.world.materialize(lid)?;
        }
        let roots = env.world.roots_for(kind, &roots_file);
        let Some(x) = env.world.proxies.get_mut(p) else {
            return Ok(());
        };
        x.leaf = lid;
        x.roots = roots;
        x.bytes = bytes;
        x.generation += 1;
        x.valid = t <= not_after;
        let generation = x.generation;
        self.schedule_renewal(p, lid, at, generation, env);
        if let (Some(cause), Some(r)) = (cause, env.journal.report()) {
            match cause {
                Cause::Rotation | Cause::Retry => r.rotations += 1,
                Cause::Push => r.reissued_on_push += 1,
                Cause::Restart => r.restarts += 1,
            }
        }
        Ok(())
    }

    /// The validity istiod of cluster `c` gives a leaf of signer `sid` issued at Unix second
    /// `t` ([`behaviour::leaf_validity`]), or None when it cannot sign (its CA chain expired,
    /// from 1.28.7, 1.29.3, 1.30.0). Logs, once per cluster, a CA chain that expired or that
    /// leaves outlive.
    fn validity(
        &mut self,
        c: ClusterId,
        sid: SignerId,
        t: i64,
        env: &mut Env<'_>,
    ) -> Option<(i64, i64)> {
        let signer = env.world.signers.get(sid)?;
        let version = env.world.profile.istio_version;
        let (limit, label) = (signer.limit, signer.label.clone());
        let cl = self.clusters.get_mut(c)?;
        let logged = cl.signing_failure_logged;
        if limit <= t && behaviour::clamps_leaf_to_signer(version) {
            // From 1.28.7, 1.29.3, 1.30.0 istiod cannot sign with an expired CA chain.
            if !logged {
                cl.signing_failure_logged = true;
                env.log(
                    Some(c),
                    format!("istiod cannot sign: its CA chain ({label}) has expired; agents retry"),
                );
            }
            return None;
        }
        let (not_before, not_after) =
            behaviour::leaf_validity(version, t, env.world.ttl_secs, limit);
        if not_after > limit {
            self.leaves_outliving_ca += 1;
            if !logged {
                cl.signing_failure_logged = true;
                let what = if limit <= t {
                    "keeps signing with its expired CA chain"
                } else {
                    "issues leaves that outlive their CA chain"
                };
                env.log(
                    Some(c),
                    format!(
                        "istiod {version} {what} ({label}, notAfter {}): leaves are clamped to the signer only from {}; they fail once it has expired",
                        instant_unix(limit),
                        behaviour::clamp_fixed_in()
                    ),
                );
            }
        }
        Some((not_before, not_after))
    }

    /// Schedules the rotation of leaf `lid` of proxy `p` (issued at `at`, the proxy's
    /// `generation`-th) when grace_ratio (± jitter) of its lifetime remains (secretcache
    /// rotateTime, [`behaviour::renewal_at`]), and its expiry.
    fn schedule_renewal(
        &self,
        p: ProxyId,
        lid: LeafId,
        at: i64,
        generation: u64,
        env: &mut Env<'_>,
    ) {
        let (Some(x), Some(leaf)) = (env.world.proxies.get(p), env.world.leaves.get(lid)) else {
            return;
        };
        let start_unix = env.queue.clock().start_unix;
        let expire = (leaf.not_after + 1 - start_unix).saturating_mul(1000);
        let born = (leaf.not_before - start_unix).saturating_mul(1000);
        let draw = behaviour::Jitter {
            fraction: env.queue.rng.unit(),
            positive: env.queue.rng.below(2) == 1,
        };
        let profile = &env.world.profile;
        let rotate = behaviour::renewal_at(
            x.kind.model(),
            profile.istio_version,
            at,
            born,
            expire,
            profile.grace_ratio,
            self.jitter,
            draw,
        )
        .max(at + 1000);
        env.queue.schedule(rotate, Ev::Rotate(p, generation));
        env.queue.schedule(expire, Ev::LeafExpiry(p, lid));
    }

    /// Whether the ztunnel holding `p` can reach istiod of cluster `c` for a CSR: its CA client
    /// verifies istiod's serving certificate, which istiod re-signs with its current signer
    /// `sid`, against the roots of [`behaviour::ztunnel_ca_client_roots`] (those read at its
    /// start before ztunnel 1.28.6, 1.29.2, 1.30.0; istio/ztunnel issue 1679).
    fn ztunnel_reaches_istiod(
        &mut self,
        p: ProxyId,
        c: ClusterId,
        sid: SignerId,
        at: i64,
        env: &mut Env<'_>,
    ) -> bool {
        let Some(cl) = self.clusters.get_mut(c) else {
            return true;
        };
        let node = cl.nodes.iter().position(|n| n.contains(&p));
        let Some(at_start) = node.and_then(|n| cl.node_ca_roots.get(n).copied()) else {
            return true;
        };
        let z = env.world.profile.ztunnel();
        let roots = *behaviour::ztunnel_ca_client_roots(z, &at_start, &cl.istiod.trust);
        let ok = *self.reach_cache.entry((sid, roots)).or_insert_with(|| {
            match (env.world.signers.get(sid), env.world.root_sets.get(roots)) {
                (Some(s), Some(r)) => verify::verify(
                    s.issuer.certificate(),
                    &s.chain_pool,
                    &r.pool,
                    &VerifyOptions::at(env.queue.clock().instant_at(at)),
                )
                .is_ok(),
                _ => true,
            }
        });
        if !ok && !cl.ztunnel_channel_logged {
            cl.ztunnel_channel_logged = true;
            let (sl, tl) = (env.world.signer_label(sid), env.world.trust_label(roots));
            env.log(
                Some(c),
                format!(
                    "ztunnel {z} cannot reach istiod: istiod's serving certificate is signed by {sl} and ztunnel (before {}) still verifies istiod with the roots it read at start ({tl}); it stops renewing (istio/ztunnel issue 1679): restart ztunnel after the new roots reach the istio-ca-root-cert ConfigMap, before the signer switch",
                    behaviour::ztunnel_watch_fixed_in()
                ),
            );
        }
        ok
    }
}

/// istiod refused a new cacerts: it keeps the old one, which the plan did not intend.
fn refused(c: ClusterId, why: &str, env: &mut Env<'_>) -> bool {
    env.deviate(
        Some(c),
        format!("istiod refused the new cacerts and keeps the old one: {why}"),
    );
    false
}
