//! The operator running the plan: its phases (as the simulation runs them), the phase in
//! effect, and one function per plan [`Action`]: apply a secret, restart istiod, ztunnel,
//! sidecars or waypoints, wait for istiod to serve a phase's root file. Then, after the last
//! phase, istiod's restart in every cluster and the run after it.

use super::ProxyKind;
use super::Timing;
use super::istiod::Istiods;
use super::journal::Env;
use super::queue::{Ev, Step, ms};
use super::world::ClusterId;
use crate::cert::Fingerprint;
use crate::istio::{CaSecret, SecretKind};
use crate::plan::Action;

/// A phase as the simulation runs it.
pub(super) struct PhaseSpec {
    pub name: String,
    pub title: String,
    /// Per cluster index.
    pub secrets: Vec<Option<CaSecret>>,
    pub actions: Vec<Action>,
    /// The gate's minimum wait (milliseconds).
    pub wait: i64,
    /// The wait holds for every cluster (multi-cluster barrier): it counts from the last
    /// cluster's apply instead of the phase's start.
    pub barrier: bool,
}

/// The operator waiting for istiod to serve a phase's root file ([`Action::AwaitIstiod`]).
#[derive(Debug, Clone, Copy)]
struct Awaiting {
    step: Step,
    cluster: ClusterId,
    bytes: Fingerprint,
}

/// The operator: the plan's phases and where it stands in them.
pub(super) struct Operator {
    pub phases: Vec<PhaseSpec>,
    /// When each phase started (clock milliseconds).
    phase_start: Vec<i64>,
    awaiting: Option<Awaiting>,
    /// When the operator last applied a secret.
    last_apply: i64,
    timing: Timing,
    /// Restart istiod in every cluster after the last phase.
    restart_istiod_at_end: bool,
    /// How long the mesh runs after the plan (milliseconds, before istiod's restart).
    observe: i64,
}

impl Operator {
    /// An operator about to run `phases`.
    pub(super) fn new(
        phases: Vec<PhaseSpec>,
        timing: Timing,
        restart_istiod_at_end: bool,
        observe: i64,
    ) -> Operator {
        Operator {
            phase_start: vec![0; phases.len()],
            phases,
            awaiting: None,
            last_apply: 0,
            timing,
            restart_istiod_at_end,
            observe,
        }
    }

    /// The secret phase `k` gives cluster `c`.
    pub(super) fn secret(&self, k: usize, c: ClusterId) -> Option<&CaSecret> {
        self.phases.get(k)?.secrets.get(c)?.as_ref()
    }

    /// Phase `k` starts: its report opens, its first action follows (or, without actions,
    /// the next phase after its wait).
    pub(super) fn start_phase(&mut self, k: usize, env: &mut Env<'_>) {
        let Some(spec) = self.phases.get(k) else {
            return;
        };
        let (name, title, wait, n_actions) = (
            spec.name.clone(),
            spec.title.clone(),
            spec.wait,
            spec.actions.len(),
        );
        env.open_report(name, title);
        let now = env.now();
        if let Some(s) = self.phase_start.get_mut(k) {
            *s = now;
        }
        if k == 0 || n_actions == 0 {
            self.next_phase(k, now + wait, env);
        } else {
            env.queue
                .schedule(now, Ev::Action(Step { phase: k, index: 0 }));
        }
    }

    /// Schedules what follows phase `k` at `at`: the next phase, or the run after the plan.
    fn next_phase(&self, k: usize, at: i64, env: &mut Env<'_>) {
        if k + 1 < self.phases.len() {
            env.queue.schedule(at, Ev::StartPhase(k + 1));
        } else {
            env.queue.schedule(at, Ev::AfterPlan);
        }
    }

    /// The operator performs `step`.
    pub(super) fn action(&mut self, step: Step, istiods: &mut Istiods, env: &mut Env<'_>) {
        let Some(action) = self
            .phases
            .get(step.phase)
            .and_then(|spec| spec.actions.get(step.index))
            .cloned()
        else {
            return;
        };
        if let Some(done) = self.perform(step, &action, istiods, env) {
            self.finish_action(step, done, env);
        }
    }

    /// Performs `action` (at `step`); returns when it completes, or None when it completes
    /// later (a wait for istiod).
    fn perform(
        &mut self,
        step: Step,
        action: &Action,
        istiods: &mut Istiods,
        env: &mut Env<'_>,
    ) -> Option<i64> {
        let Some(c) = env.world.cluster_index(action.cluster()) else {
            env.log(
                None,
                format!("skipped \"{}\": no such cluster", action.describe()),
            );
            return Some(env.now());
        };
        match action {
            Action::ApplySecret { .. } => Some(self.apply_secret(step, c, istiods, env)),
            Action::RestartIstiod { .. } => Some(self.restart_istiod(c, istiods, env)),
            Action::RestartZtunnel { .. } => Some(self.restart_ztunnel(c, istiods, env)),
            Action::RestartSidecars { .. } => {
                Some(self.restart_proxies(c, ProxyKind::Sidecar, env))
            }
            Action::RestartWaypoints { .. } => {
                Some(self.restart_proxies(c, ProxyKind::Waypoint, env))
            }
            Action::AwaitIstiod { .. } => self.await_istiod(step, c, istiods, env),
        }
    }

    /// `kubectl apply` of the phase's secret for cluster `c`: it reaches istiod's volume at
    /// the cluster's next kubelet sync tick.
    fn apply_secret(
        &mut self,
        step: Step,
        c: ClusterId,
        istiods: &mut Istiods,
        env: &mut Env<'_>,
    ) -> i64 {
        let now = env.now();
        let Some(secret) = self.secret(step.phase, c).cloned() else {
            env.log(
                Some(c),
                "the phase has no secret for this cluster: nothing applied".to_owned(),
            );
            return now;
        };
        if secret.kind == SecretKind::SelfSigned {
            env.log(
                Some(c),
                format!(
                    "applied {} (the self-signed CA reads it only when istiod starts)",
                    secret.name
                ),
            );
            return now;
        }
        let period = ms(self.timing.secret_sync).max(1);
        let restart_follows = self.restarts_istiod_later(step, c, env);
        let Some(cl) = istiods.clusters.get_mut(c) else {
            return now;
        };
        cl.applied = Some(secret);
        cl.applied_version += 1;
        cl.restart_follows = restart_follows;
        self.last_apply = now;
        let schedule_sync = !cl.sync_pending;
        cl.sync_pending = true;
        let offset = cl.sync_offset;
        env.log(Some(c), "kubectl apply: cacerts updated".to_owned());
        if schedule_sync {
            // kubelet's next sync tick of the mounted volume.
            let ticks = (now - offset).div_euclid(period) + 1;
            env.queue
                .schedule(offset + ticks * period, Ev::SecretSync(c));
        }
        now
    }

    /// Whether an action after `step` in its phase restarts istiod of cluster `c`.
    fn restarts_istiod_later(&self, step: Step, c: ClusterId, env: &Env<'_>) -> bool {
        let name = env.world.cluster_name(Some(c));
        self.phases.get(step.phase).is_some_and(|p| {
            p.actions
                .iter()
                .skip(step.index + 1)
                .any(|a| matches!(a, Action::RestartIstiod { .. }) && a.cluster() == name)
        })
    }

    /// `kubectl rollout restart deployment/istiod` in cluster `c`: the new pod serves after
    /// the rollout.
    fn restart_istiod(&self, c: ClusterId, istiods: &mut Istiods, env: &mut Env<'_>) -> i64 {
        let now = env.now();
        let d = ms(self.timing.istiod_rollout);
        if let Some(cl) = istiods.clusters.get_mut(c) {
            cl.restarting = true;
        }
        env.log(Some(c), "rollout restart of istiod".to_owned());
        env.queue.schedule(now + d, Ev::IstiodReady(c));
        now + d
    }

    /// Rollout restart of the ztunnel daemonset of cluster `c`: node after node over the
    /// rollout.
    fn restart_ztunnel(&self, c: ClusterId, istiods: &Istiods, env: &mut Env<'_>) -> i64 {
        let now = env.now();
        let nodes = istiods.clusters.get(c).map_or(0, |cl| cl.nodes.len());
        if nodes == 0 {
            env.log(
                Some(c),
                "rollout restart of ztunnel: this mesh has no ztunnel".to_owned(),
            );
            return now;
        }
        let d = ms(self.timing.ztunnel_rollout);
        env.log(
            Some(c),
            format!(
                "rollout restart of the ztunnel daemonset ({nodes} node{})",
                if nodes == 1 { "" } else { "s" }
            ),
        );
        let n = i64::try_from(nodes).unwrap_or(1);
        for i in 0..nodes {
            let step = i64::try_from(i + 1).unwrap_or(n);
            env.queue
                .schedule(now + d * step / n, Ev::NodeRestart(c, i));
        }
        now + d
    }

    /// Rollout restart of the sidecar workloads or the waypoints (`kind`) of cluster `c`: pods
    /// restart at seeded instants over the rollout.
    fn restart_proxies(&self, c: ClusterId, kind: ProxyKind, env: &mut Env<'_>) -> i64 {
        let now = env.now();
        let members = env.world.members(c, |k| k == kind);
        let d = ms(self.timing.proxy_rollout);
        env.log(
            Some(c),
            format!(
                "rollout restart of {} {kind}{}",
                members.len(),
                if members.len() == 1 { "" } else { "s" }
            ),
        );
        for p in members {
            let at = now + env.queue.delay_below(d);
            env.queue.schedule(at, Ev::PodRestart(p));
        }
        now + d
    }

    /// The operator waits until istiod of cluster `c` serves the root file of `step`'s phase
    /// (polling; it gives up after the timeout). None: the wait is on.
    fn await_istiod(
        &mut self,
        step: Step,
        c: ClusterId,
        istiods: &Istiods,
        env: &mut Env<'_>,
    ) -> Option<i64> {
        let now = env.now();
        let target = self
            .secret(step.phase, c)
            .map(|s| Fingerprint::of(s.file(s.root_file()).unwrap_or_default()));
        let Some(bytes) = target else {
            return Some(now);
        };
        if istiods.clusters.get(c).is_some_and(|cl| cl.serves(bytes)) {
            return Some(now);
        }
        env.log(
            Some(c),
            "waiting for istiod to serve this phase's root-cert.pem".to_owned(),
        );
        self.awaiting = Some(Awaiting {
            step,
            cluster: c,
            bytes,
        });
        env.queue
            .schedule(now + ms(self.timing.await_timeout), Ev::AwaitTimeout(step));
        None
    }

    /// `step` completed at `done`: the next action follows, or the next phase.
    fn finish_action(&mut self, step: Step, done: i64, env: &mut Env<'_>) {
        let Some(spec) = self.phases.get(step.phase) else {
            return;
        };
        let (len, wait, barrier) = (spec.actions.len(), spec.wait, spec.barrier);
        let gap = ms(self.timing.action_gap);
        if step.index + 1 < len {
            let next = Step {
                phase: step.phase,
                index: step.index + 1,
            };
            env.queue.schedule(done + gap, Ev::Action(next));
        } else {
            let started = self
                .phase_start
                .get(step.phase)
                .copied()
                .unwrap_or(env.now());
            let from = if barrier {
                self.last_apply.max(started)
            } else {
                started
            };
            self.next_phase(step.phase, (from + wait).max(done + gap), env);
        }
    }

    /// The operator's wait for istiod ends when istiod of that cluster serves the awaited
    /// root file (seen at the next poll).
    pub(super) fn check_await(&mut self, c: ClusterId, istiods: &Istiods, env: &mut Env<'_>) {
        let Some(a) = self.awaiting else {
            return;
        };
        let serves = istiods.clusters.get(c).is_some_and(|cl| cl.serves(a.bytes));
        if a.cluster == c && serves {
            self.awaiting = None;
            let done = env.now() + ms(self.timing.await_poll);
            self.finish_action(a.step, done, env);
        }
    }

    /// The wait of `step` timed out (unless it already ended): the operator goes on. Returns
    /// whether it was still waiting.
    pub(super) fn await_timeout(&mut self, step: Step, env: &mut Env<'_>) -> bool {
        let Some(a) = self.awaiting else {
            return false;
        };
        if a.step != step {
            return false;
        }
        self.awaiting = None;
        let wait = crate::istio::format_duration(self.timing.await_timeout);
        env.deviate(
            Some(a.cluster),
            format!("istiod does not serve this phase's root-cert.pem after {wait}: the operator goes on"),
        );
        self.finish_action(step, env.now(), env);
        true
    }

    /// The plan is done: istiod restarts in every cluster (unless configured otherwise) and
    /// the mesh runs on until the end of the run.
    pub(super) fn after_plan(&mut self, env: &mut Env<'_>) {
        env.open_report(
            "after-plan".to_owned(),
            if self.restart_istiod_at_end {
                "istiod restarts in every cluster (as at its next upgrade) and the mesh runs on"
                    .to_owned()
            } else {
                "the mesh runs on".to_owned()
            },
        );
        let now = env.now();
        let mut end = now + self.observe;
        if self.restart_istiod_at_end {
            let d = ms(self.timing.istiod_rollout);
            for c in 0..env.world.clusters.len() {
                env.log(
                    Some(c),
                    "rollout restart of istiod (after the plan)".to_owned(),
                );
                env.queue.schedule(now + d, Ev::IstiodReady(c));
            }
            end += d;
        }
        env.queue.schedule(end, Ev::EndRun);
    }
}
