//! The steps and waits of a phase that the plan does not state (a plan directory without
//! plan.json): what an operator following meshtrust's planner would do.

use std::time::Duration;

use crate::istio::{IstioProfile, SecretKind};
use crate::plan::{Action, Plan};

/// The actions and the wait of phase `k` of `plan` when the plan states none, following the
/// planner's rules:
///
/// - actions (phase 1 on; phase `00` is the starting state): for each cluster in order, apply
///   its secret; restart istiod when the cluster moves from the self-signed CA to a
///   `cacerts` (the self-signed CA never watches it), else, when proxies are restarted next,
///   wait until istiod serves the phase's root file; restart the ztunnel daemonset in ambient
///   meshes (ztunnel learns roots only from CSR responses); without PROXY_CONFIG_XDS_AGENT,
///   restart the sidecars and waypoints (they learn roots only at their next rotation);
/// - wait before the next phase: one leaf lifetime plus `margin` when phase `k` changes a
///   signer (its old leaves must expire) or phase `k + 1` removes a root some cluster trusts
///   in phase `k`; `propagation` otherwise. In a multi-cluster plan the wait counts from the
///   last cluster's apply (a barrier).
pub fn default_steps(
    plan: &Plan,
    k: usize,
    profile: &IstioProfile,
    propagation: Duration,
    margin: Duration,
) -> (Vec<Action>, Duration) {
    let Some(phase) = plan.phases.get(k) else {
        return (Vec::new(), propagation);
    };
    let prev = k.checked_sub(1).and_then(|j| plan.phases.get(j));
    let mut actions = Vec::new();
    if k > 0 {
        for c in &phase.clusters {
            let cluster = c.cluster.clone();
            actions.push(Action::ApplySecret {
                cluster: cluster.clone(),
                secret: c.secret.name.clone(),
            });
            let was_self_signed = prev
                .and_then(|p| p.secret(&c.cluster))
                .is_some_and(|s| s.kind == SecretKind::SelfSigned);
            let restarts_istiod = was_self_signed && c.secret.kind == SecretKind::PluggedIn;
            if restarts_istiod {
                actions.push(Action::RestartIstiod {
                    cluster: cluster.clone(),
                    reason: "istiod's self-signed CA does not watch cacerts".to_owned(),
                });
            }
            let restarts_proxies = profile.data_plane.has_ztunnel() || !profile.xds_agent;
            if restarts_proxies && !restarts_istiod {
                actions.push(Action::AwaitIstiod {
                    cluster: cluster.clone(),
                });
            }
            if profile.data_plane.has_ztunnel() {
                actions.push(Action::RestartZtunnel {
                    cluster: cluster.clone(),
                });
            }
            if !profile.xds_agent {
                if profile.data_plane.has_sidecars() {
                    actions.push(Action::RestartSidecars {
                        cluster: cluster.clone(),
                    });
                }
                if profile.data_plane.has_ztunnel() {
                    actions.push(Action::RestartWaypoints { cluster });
                }
            }
        }
    }
    let signer = |p: &crate::plan::Phase, cluster: &str| {
        p.secret(cluster)
            .and_then(|s| s.ca_cert().ok())
            .map(|c| c.fingerprint())
    };
    let switches = prev.is_some_and(|p| {
        phase
            .clusters
            .iter()
            .any(|c| signer(p, &c.cluster) != signer(phase, &c.cluster))
    });
    let removes = plan.phases.get(k + 1).is_some_and(|next| {
        phase.clusters.iter().any(|c| {
            let now = c.secret.root_bundle().map(|b| b.trust_set()).ok();
            let then = next
                .secret(&c.cluster)
                .and_then(|s| s.root_bundle().ok())
                .map(|b| b.trust_set());
            match (now, then) {
                (Some(a), Some(b)) => !a.is_subset(&b),
                _ => false,
            }
        })
    });
    let wait = if switches || removes {
        profile.leaf_ttl + margin
    } else {
        propagation
    };
    (actions, wait)
}
