//! What each proxy presents, verified the way its peers verify: `presented-order` (a
//! sidecar's cross-signed chain, Envoy's first-match issuer choice) and
//! `ztunnel-chain-truncated` (an older ztunnel that presents only cert-chain.pem's first
//! certificate). Both ask the one Istio model what is presented
//! ([`behaviour::presented_chain`]) and how a peer verifies ([`behaviour::verifier_policy`]).

use time::OffsetDateTime;

use super::Plan;
use super::checks::{View, finding};
use crate::bundle::Bundle;
use crate::cert::Certificate;
use crate::finding::{Code, Finding, Severity};
use crate::istio::behaviour::{self, Proxy};
use crate::verify::{self, CertPool, VerifyError, VerifyOptions};

/// One refusal: the presenting phase `k` and cluster, the peer's phase `j`, and why.
struct Refusal<'a> {
    k: usize,
    cluster: &'a str,
    j: usize,
    error: VerifyError,
}

/// Every refusal of a leaf of each phase, as `presenter` presents it, by a `verifier` peer
/// trusting the roots of the same, the previous or the next phase (of any cluster).
fn refusals<'a>(
    plan: &Plan,
    views: &'a [Vec<(String, View)>],
    presenter: Proxy,
    verifier: Proxy,
    now: OffsetDateTime,
) -> Vec<Refusal<'a>> {
    let (istiod, ztunnel) = (plan.profile.istio_version, plan.profile.ztunnel());
    let policy = behaviour::verifier_policy(verifier);
    let mut out = Vec::new();
    for (k, phase_views) in views.iter().enumerate() {
        for (cluster, v) in phase_views {
            let (Some(leaf), Some(roots)) = (&v.leaf, &v.roots) else {
                continue;
            };
            let root_file: Vec<Certificate> = roots.certificates().cloned().collect();
            let presented =
                behaviour::presented_chain(presenter, istiod, ztunnel, leaf, &v.chain, &root_file);
            let peers = k.saturating_sub(1)..=(k + 1).min(views.len() - 1);
            for j in peers {
                for peer_roots in views[j].iter().filter_map(|(_, pv)| pv.roots.as_ref()) {
                    if let Err(error) = verify_as_peer(leaf, &presented, peer_roots, policy, now) {
                        out.push(Refusal {
                            k,
                            cluster,
                            j,
                            error,
                        });
                    }
                }
            }
        }
    }
    out
}

fn verify_as_peer(
    leaf: &Certificate,
    presented: &[Certificate],
    peer_roots: &Bundle,
    policy: verify::Policy,
    now: OffsetDateTime,
) -> Result<(), VerifyError> {
    verify::verify(
        leaf,
        &CertPool::from_certificates(presented.iter().skip(1)),
        &CertPool::from_certificates(peer_roots.certificates()),
        &VerifyOptions::at(now).with_policy(policy),
    )
    .map(|_| ())
}

/// `presented-order` (cross-signed plans): a leaf of each phase, in the order a sidecar presents
/// it, verified the way Envoy verifies a peer (first-match issuer choice, no backtracking)
/// against the roots of its own, the previous and the next phase. B' must come before the
/// self-signed B, or a peer that trusts only A picks B and refuses the leaf.
pub(super) fn presented_order(
    plan: &Plan,
    views: &[Vec<(String, View)>],
    now: OffsetDateTime,
    multi: bool,
) -> Vec<Finding> {
    refusals(plan, views, Proxy::Sidecar, Proxy::Sidecar, now)
        .into_iter()
        .map(|r| {
            finding(
                Code::PresentedOrder,
                Severity::Error,
                &plan.phases[r.k],
                r.cluster,
                multi,
                format!(
                    "a sidecar of {} presents its leaf with cert-chain.pem then root-cert.pem, and an Envoy peer trusting the roots of {} refuses it: {}; put the cross-signed certificate before any self-signed certificate of the same name and key",
                    plan.phases[r.k].name, plan.phases[r.j].name, r.error
                ),
            )
        })
        .collect()
}

/// `ztunnel-chain-truncated` (ambient): with istiod before 1.24.4, 1.25.1, 1.26.0 and ztunnel
/// before 1.24.6, 1.25.3, 1.26.0 ([`behaviour::ztunnel_presents_whole_chain`]), ztunnel
/// presents only cert-chain.pem's first certificate. A leaf of each phase, so presented, is
/// verified by ztunnel peers and by waypoints (Envoy) trusting the roots of its own, the
/// previous and the next phase: a deep chain (the organisation intermediate) or a
/// cross-signed chain (B') that a peer needs is then missing.
pub(super) fn ztunnel_chain(
    plan: &Plan,
    views: &[Vec<(String, View)>],
    now: OffsetDateTime,
    multi: bool,
) -> Vec<Finding> {
    let profile = &plan.profile;
    let (istiod, z) = (profile.istio_version, profile.ztunnel());
    if !profile.data_plane.has_ztunnel() || behaviour::ztunnel_presents_whole_chain(istiod, z) {
        return Vec::new();
    }
    let mut out = Vec::new();
    for peer in [Proxy::Ztunnel, Proxy::Waypoint] {
        let mut seen = std::collections::BTreeSet::new();
        for r in refusals(plan, views, Proxy::Ztunnel, peer, now) {
            // One finding per presenting phase and cluster and peer kind.
            if !seen.insert((r.k, r.cluster)) {
                continue;
            }
            out.push(finding(
                Code::ZtunnelChainTruncated,
                Severity::Error,
                &plan.phases[r.k],
                r.cluster,
                multi,
                format!(
                    "ztunnel {z} with istiod {istiod} presents only the first certificate of cert-chain.pem, and a {} trusting the roots of {} refuses the leaf: {}; move to {} before this rotation",
                    if peer == Proxy::Ztunnel { "ztunnel peer" } else { "waypoint" },
                    plan.phases[r.j].name,
                    r.error,
                    behaviour::ztunnel_whole_chain_fixed_in()
                ),
            ));
        }
    }
    out
}
