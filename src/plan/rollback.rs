//! Going back: the actions that return a cluster to an earlier phase, and the checks that
//! prove each rollback step safe the way forward steps are (istiod's verdict on the root-file
//! change for the version, and the plan invariants on the reversed sequence).

use super::{Action, CheckOptions, Invariant, Plan, check_invariants};
use crate::finding::{Code, Finding, Severity};
use crate::istio;

/// The invariants a step back must keep: istiod accepts the root-file change, the signer gone
/// back to is trusted, the trigger rule, the cross matrix and no early removal (the load checks
/// of each phase are forward findings already; the final state does not apply).
const ROLLBACK_INVARIANTS: [Invariant; 5] = [
    Invariant::RootContainment,
    Invariant::SignerTrust,
    Invariant::Trigger,
    Invariant::CrossMatrix,
    Invariant::NoEarlyRemoval,
];

/// The steps the runbook prints to go back from phase `k` to phase `k - 1`: re-apply the
/// earlier phase's secret (or, when the earlier phase is istiod's self-signed CA, delete
/// `cacerts` and restart istiod so that it falls back to `istio-ca-secret`), then the same
/// restarts a forward step of this profile needs.
pub fn rollback_actions(plan: &Plan, k: usize) -> Vec<Action> {
    let (Some(cur), Some(prev)) = (
        plan.phases.get(k),
        k.checked_sub(1).and_then(|j| plan.phases.get(j)),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in &prev.clusters {
        let back_to_self_signed = c.secret.kind == istio::SecretKind::SelfSigned
            && cur
                .secret(&c.cluster)
                .is_some_and(|s| s.kind != istio::SecretKind::SelfSigned);
        if back_to_self_signed {
            out.push(Action::RestartIstiod {
                cluster: c.cluster.clone(),
                reason: "after deleting cacerts: istiod starts on its self-signed CA (istio-ca-secret) again".to_owned(),
            });
        } else {
            out.push(Action::ApplySecret {
                cluster: c.cluster.clone(),
                secret: c.secret.name.clone(),
            });
        }
        // The restarts the forward step into `cur` needed make proxies see this change too;
        // an istiod restart too (a root change istiod only loads at start, as in a
        // cross-signed rotation without ISTIO_MULTIROOT_MESH), unless one is already there.
        out.extend(
            cur.actions
                .iter()
                .filter(|a| a.cluster() == c.cluster)
                .filter(|a| match a {
                    Action::ApplySecret { .. } => false,
                    Action::RestartIstiod { .. } => !back_to_self_signed,
                    _ => true,
                })
                .cloned(),
        );
    }
    out
}

/// Checks every rollback step the runbook prints (phase `k` back to `k - 1`, for every
/// `k >= 1`) the way [`check_invariants`] checks forward steps: the step is the two-phase plan
/// `[k, k - 1]` with [`rollback_actions`]. Each violation is a `rollback-unsafe` finding on
/// phase `k` naming the forward code.
pub fn check_rollback(plan: &Plan, opts: &CheckOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    for k in 1..plan.phases.len() {
        let mut back = plan.phases[k - 1].clone();
        back.actions = rollback_actions(plan, k);
        back.trigger = false;
        let mut step = plan.clone();
        step.phases = vec![plan.phases[k].clone(), back];
        for f in check_invariants(&step, opts, &ROLLBACK_INVARIANTS) {
            if f.severity != Severity::Error {
                continue;
            }
            out.push(
                Finding::error(
                    Code::RollbackUnsafe,
                    format!(
                        "going back from {} to {} is not safe: [{}] {}",
                        plan.phases[k].name,
                        plan.phases[k - 1].name,
                        f.code,
                        f.message
                    ),
                )
                .in_phase(plan.phases[k].name.clone())
                .in_cluster(f.cluster.clone()),
            );
        }
    }
    out
}

/// Whether istiod (the profile's version and flags) accepts the root-file change of going back
/// from phase `k` to `k - 1` in `cluster`, as [`check_rollback`] decides it: None when the step
/// changes no root bytes or restarts istiod, else Some(accepted).
pub fn rollback_root_change_accepted(
    plan: &Plan,
    k: usize,
    cluster: &str,
    opts: &CheckOptions,
) -> Option<bool> {
    let (cur, prev) = (plan.phases.get(k)?, plan.phases.get(k.checked_sub(1)?)?);
    let (a, b) = (cur.secret(cluster)?, prev.secret(cluster)?);
    if a.file(a.root_file()) == b.file(b.root_file()) || a.kind != b.kind {
        return None;
    }
    let mut back = prev.clone();
    back.actions = rollback_actions(plan, k);
    let mut step = plan.clone();
    step.phases = vec![cur.clone(), back];
    let refused = check_invariants(&step, opts, &[Invariant::RootContainment])
        .iter()
        .any(|f| {
            f.severity == Severity::Error && f.cluster.as_deref().is_none_or(|c| c == cluster)
        });
    Some(!refused)
}
