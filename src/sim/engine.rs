//! The discrete-event engine: [`Mesh`] composes the parts of a simulation (the world, the
//! schedule, istiod in each cluster, the operator, the traffic check and the journal) and runs
//! the loop: take the next event, let the part it concerns react, check the traffic, and at
//! the end compare the mesh with the plan's last phase.

use super::istiod::Istiods;
use super::journal::{Env, Journal};
use super::operator::Operator;
use super::queue::{Cause, Ev, Queue};
use super::setup;
use super::traffic::Traffic;
use super::world::{ClusterId, ProxyId, RootSetId, SignerId, World};
use super::{Outcome, ProxyKind, SimConfig, SimError, Stats};
use crate::cert::{Certificate, Fingerprint};
use crate::istio::CaSecret;
use crate::plan::Plan;

/// A simulated mesh running a plan. Build it with [`Mesh::new`], run it with [`Mesh::run`]
/// (or call [`super::simulate`]).
pub struct Mesh {
    cfg: SimConfig,
    pub(super) world: World,
    queue: Queue,
    pub(super) traffic: Traffic,
    istiods: Istiods,
    operator: Operator,
    journal: Journal,
    finished: bool,
    /// Plan facts for the end-state check: the plan's new roots, and istiod's signer in each
    /// cluster at the start.
    new_roots: Vec<Fingerprint>,
    initial_signers: Vec<Fingerprint>,
}

/// Proxy `p` asks istiod for a leaf now (for `cause`): istiod answers, and the proxy moves to
/// its new class.
fn csr(
    istiods: &mut Istiods,
    traffic: &mut Traffic,
    env: &mut Env<'_>,
    p: ProxyId,
    cause: Cause,
) -> Result<(), SimError> {
    istiods.issue(p, env.now(), Some(cause), env)?;
    traffic.reclass(env.world, p);
    Ok(())
}

impl Mesh {
    /// Prepares the simulation of `plan` (with `plan.profile`): loads phase `00` into every
    /// cluster's istiod, creates the proxies and issues their first leaves (of seeded ages).
    pub fn new(plan: &Plan, config: &SimConfig) -> Result<Mesh, SimError> {
        let ready = setup::prepare(plan, config)?;
        Ok(Mesh {
            cfg: config.clone(),
            world: ready.world,
            queue: ready.queue,
            traffic: ready.traffic,
            istiods: ready.istiods,
            operator: ready.operator,
            journal: ready.journal,
            finished: false,
            new_roots: plan.new_roots.clone(),
            initial_signers: ready.initial_signers,
        })
    }

    /// The parts a reaction acts on.
    fn env(&mut self) -> Env<'_> {
        Env {
            world: &mut self.world,
            queue: &mut self.queue,
            journal: &mut self.journal,
        }
    }

    /// Runs the simulation to its end.
    pub fn run(mut self) -> Result<Outcome, SimError> {
        while let Some(ev) = self.queue.pop() {
            if self.handle(ev)? {
                self.check_traffic()?;
            }
            if self.finished {
                break;
            }
        }
        self.end_state();
        self.env().close_report();
        let events = self.journal.events;
        let (log, deviations, phases) = self.journal.into_parts();
        let stats = Stats {
            leaves: self.istiods.leaves,
            certificates_issued: self.world.certificates_issued,
            verifications: self.traffic.verifications,
            cache_hits: self.traffic.cache_hits,
            leaves_outliving_ca: self.istiods.leaves_outliving_ca,
        };
        let clock = self.queue.clock();
        Ok(Outcome {
            seed: self.cfg.seed,
            proxies: self.world.proxies.len(),
            start: clock.instant_at(0),
            end: clock.instant(),
            events,
            connections: self.traffic.connections,
            failed_connections: self.traffic.failed_connections,
            failures: self.traffic.failures,
            failures_truncated: self.traffic.failures_truncated,
            phases,
            log,
            roots: self.world.roots_legend,
            signers: self.world.signers_legend,
            stats,
            deviations,
        })
    }

    /// An event changed something: count it and check every connection.
    fn check_traffic(&mut self) -> Result<(), SimError> {
        self.journal.events += 1;
        if self.journal.events > self.cfg.max_events {
            return Err(SimError::TooManyEvents(self.cfg.max_events));
        }
        let (conns, failed) = self.traffic.evaluate(
            &mut self.world,
            self.queue.clock(),
            self.journal.phase_name(),
        )?;
        if let Some(r) = self.journal.report() {
            r.events += 1;
            r.connections += conns;
            r.failed_connections += failed;
        }
        Ok(())
    }

    /// Lets the part `ev` concerns react; returns whether it changed anything.
    fn handle(&mut self, ev: Ev) -> Result<bool, SimError> {
        let mut env = Env {
            world: &mut self.world,
            queue: &mut self.queue,
            journal: &mut self.journal,
        };
        let (istiods, traffic) = (&mut self.istiods, &mut self.traffic);
        match ev {
            Ev::StartPhase(k) => self.operator.start_phase(k, &mut env),
            Ev::Action(step) => self.operator.action(step, istiods, &mut env),
            Ev::AfterPlan => self.operator.after_plan(&mut env),
            Ev::EndRun => self.finished = true,
            Ev::SecretSync(c) => istiods.secret_sync(c, &mut env),
            Ev::Watch(c) => {
                if istiods.watch(c, &mut env) {
                    self.operator.check_await(c, istiods, &mut env);
                }
            }
            Ev::IstiodReady(c) => {
                if istiods.ready(c, &mut env) {
                    self.operator.check_await(c, istiods, &mut env);
                }
            }
            Ev::Push(p) => {
                if istiods.push(p, &mut env) {
                    traffic.reclass(env.world, p);
                }
            }
            Ev::Csr(p, cause) => csr(istiods, traffic, &mut env, p, cause)?,
            Ev::Rotate(p, generation) => {
                let current = env.world.proxies.get(p).map(|x| x.generation);
                if current != Some(generation) {
                    return Ok(false);
                }
                csr(istiods, traffic, &mut env, p, Cause::Rotation)?;
            }
            Ev::PodRestart(p) => csr(istiods, traffic, &mut env, p, Cause::Restart)?,
            Ev::NodeRestart(c, n) => {
                for p in istiods.restart_node(c, n) {
                    csr(istiods, traffic, &mut env, p, Cause::Restart)?;
                }
            }
            Ev::AwaitTimeout(step) => return Ok(self.operator.await_timeout(step, &mut env)),
            Ev::LeafExpiry(p, leaf) => {
                let Some(x) = env.world.proxies.get_mut(p) else {
                    return Ok(false);
                };
                if x.leaf != leaf {
                    return Ok(false);
                }
                x.valid = false;
                traffic.reclass(env.world, p);
            }
        }
        Ok(true)
    }

    /// Deviations of the end state from the plan's last phase: istiod's signer and root
    /// file, the proxies' roots and leaves, the plan's new roots, and that a rotation took
    /// place at all.
    fn end_state(&mut self) {
        let Some(last) = self.operator.phases.last() else {
            return;
        };
        let secrets = last.secrets.clone();
        let last_name = last.name.clone();
        for (c, secret) in secrets.iter().enumerate() {
            if let Some(secret) = secret {
                self.end_state_of(c, secret, &last_name);
            }
        }
    }

    /// The end-state check of cluster `c`, whose secret in the last phase (`last_name`) is
    /// `secret`.
    fn end_state_of(&mut self, c: ClusterId, secret: &CaSecret, last_name: &str) {
        let Some(cl) = self.istiods.clusters.get(c) else {
            return;
        };
        let (signer, trust, bytes) = (cl.istiod.signer, cl.istiod.trust, cl.istiod.bytes);
        let roots_file = cl.istiod.roots_file.clone();
        let initial = self.initial_signers.get(c).copied();
        let new_roots = self.new_roots.clone();
        let mut env = self.env();
        let signer_fp = env.world.signers.get(signer).map(|s| s.fingerprint);
        let expected = secret.ca_cert().ok().map(|x| x.fingerprint());
        if expected.is_some() && signer_fp != expected {
            let want = expected
                .and_then(|fp| env.world.signer_labels.get(&fp).cloned())
                .unwrap_or_else(|| "?".to_owned());
            let got = env.world.signer_label(signer);
            env.deviate(
                Some(c),
                format!("at the end istiod signs with {got}, not with {want} of {last_name}"),
            );
        }
        if bytes != Fingerprint::of(secret.file(secret.root_file()).unwrap_or_default()) {
            let tl = env.world.trust_label(trust);
            env.deviate(
                Some(c),
                format!("at the end istiod does not serve the root-cert.pem of {last_name} (it trusts {tl})"),
            );
        }
        if initial == signer_fp {
            env.deviate(
                Some(c),
                "the signer never changed: no rotation took place".to_owned(),
            );
        }
        let stale = stale_proxies(env.world, c, signer, &roots_file);
        if stale > 0 {
            env.deviate(
                Some(c),
                format!("at the end {stale} proxies do not trust what istiod serves or hold leaves from another signer"),
            );
        }
        if !new_roots.is_empty() {
            check_new_roots(&mut env, c, trust, new_roots);
        }
    }
}

/// The proxies of cluster `c` that do not trust what istiod serves (`roots_file`, by the model
/// for their kind) or hold a leaf from another signer than `signer`.
fn stale_proxies(
    world: &mut World,
    c: ClusterId,
    signer: SignerId,
    roots_file: &[Certificate],
) -> usize {
    let want: Vec<(ProxyKind, RootSetId)> =
        [ProxyKind::Sidecar, ProxyKind::Waypoint, ProxyKind::Ztunnel]
            .into_iter()
            .map(|k| (k, world.roots_for(k, roots_file)))
            .collect();
    world
        .proxies
        .iter()
        .filter(|p| p.cluster == c)
        .filter(|p| {
            let want = want.iter().find(|(k, _)| *k == p.kind).map(|(_, r)| *r);
            Some(p.roots) != want || world.leaves.get(p.leaf).map(|l| l.signer) != Some(signer)
        })
        .count()
}

/// A deviation when istiod of cluster `c` does not end trusting (`trust`) the plan's new
/// roots.
fn check_new_roots(env: &mut Env<'_>, c: ClusterId, trust: RootSetId, mut want: Vec<Fingerprint>) {
    want.sort();
    want.dedup();
    let mut have: Vec<Fingerprint> = env
        .world
        .root_sets
        .get(trust)
        .map(|r| r.certs.iter().map(Certificate::fingerprint).collect())
        .unwrap_or_default();
    have.sort();
    if have != want {
        let tl = env.world.trust_label(trust);
        let names: Vec<String> = want.iter().map(|fp| env.world.root_label(fp)).collect();
        env.deviate(
            Some(c),
            format!(
                "at the end the mesh trusts {tl}; the plan's new roots are {{{}}}",
                names.join(", ")
            ),
        );
    }
}
