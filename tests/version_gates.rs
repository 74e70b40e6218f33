//! Planner gates that depend on what an Istio version presents: a cross-signed rotation in an
//! ambient mesh needs every ztunnel to present B' with its leaf, which an older ztunnel
//! answered by an older istiod does not (it keeps only cert-chain.pem's first certificate).
//! Table-driven across the istiod and ztunnel boundaries.
#![cfg(feature = "testkit")]

#[path = "support/cross_signed_cas.rs"]
mod cross_signed_cas;

use cross_signed_cas::{cas, now, opts, profile};
use meshtrust::istio::DataPlane;
use meshtrust::plan::{self, ClusterInput, PlanError};

#[test]
fn cross_signed_ambient_needs_a_ztunnel_that_presents_b_prime() {
    let c = cas();
    for (istiod, ztunnel, refused) in [
        ("1.24.3", "1.24.5", true),
        ("1.24.3", "1.24.6", false),
        ("1.24.4", "1.24.3", false),
        ("1.25.0", "1.25.2", true),
        ("1.25.0", "1.25.3", false),
        ("1.26.0", "1.25.2", false),
    ] {
        let mut p = profile(DataPlane::Ambient);
        p.istio_version = istiod.parse().unwrap();
        p.ztunnel_version = Some(ztunnel.parse().unwrap());
        let r = plan::plan(
            &[ClusterInput::single(c.ia.cacerts(), c.ib.cacerts())],
            &p,
            &opts(&c),
            now(),
        );
        match r {
            Err(PlanError::Refused(f)) if refused => {
                let hit = f
                    .iter()
                    .find(|f| f.code == "ztunnel-chain-truncated")
                    .unwrap_or_else(|| panic!("{istiod}/{ztunnel}: {f:?}"));
                assert!(
                    hit.message.contains(ztunnel) && hit.message.contains("1.26.0"),
                    "names the version and the fix: {}",
                    hit.message
                );
            }
            Ok(plan) if !refused => {
                let findings = plan::check_plan(
                    &plan,
                    &plan::CheckOptions {
                        now: now(),
                        margin: plan::PlanOptions::default().margin,
                        waits_known: true,
                    },
                );
                assert!(
                    !plan::has_errors(&findings),
                    "{istiod}/{ztunnel}: {findings:?}"
                );
            }
            other => panic!("{istiod}/{ztunnel}: expected refused={refused}, got {other:?}"),
        }
    }
}

/// Cross-signed in an ambient mesh whose ztunnel keeps its start-time CA roots (before
/// 1.28.6): phase 3 drops B', so istiod's serving chain no longer reaches A and ztunnel must
/// have been restarted once istiod served B. The planner orders that restart in phase 2 (and
/// none from 1.28.6); the simulator runs the plan clean, and shows the broken CA channel
/// when the restart is taken out, which the plan check also refuses.
#[test]
fn cross_signed_ambient_restarts_an_older_ztunnel_before_b_prime_leaves() {
    use meshtrust::plan::Action;
    use meshtrust::sim;
    let c = cas();
    for (z, restart) in [("1.28.5", true), ("1.28.6", false)] {
        let mut p = profile(DataPlane::Ambient);
        p.istio_version = z.parse().unwrap();
        p.ztunnel_version = Some(z.parse().unwrap());
        let plan = cross_signed_cas::plan_for(&c, &p);
        let restarts = |plan: &plan::Plan| -> Vec<usize> {
            (0..plan.phases.len())
                .filter(|&k| {
                    plan.phases[k]
                        .actions
                        .iter()
                        .any(|a| matches!(a, Action::RestartZtunnel { .. }))
                })
                .collect()
        };
        assert_eq!(
            restarts(&plan),
            if restart { vec![2] } else { vec![] },
            "{z}"
        );
        let out = sim::simulate(&plan, &sim::SimConfig::new(now(), 3, 24)).unwrap();
        assert!(out.ran_as_planned(), "{z}:\n{}", out.story());
        if !restart {
            continue;
        }
        let mut bare = plan.clone();
        bare.phases[2]
            .actions
            .retain(|a| !matches!(a, Action::RestartZtunnel { .. }));
        let out = sim::simulate(&bare, &sim::SimConfig::new(now(), 3, 24)).unwrap();
        assert!(!out.ran_as_planned(), "{z}: the CA channel break is shown");
        assert!(
            out.story().contains("cannot reach istiod"),
            "{}",
            out.story()
        );
        let findings = plan::check_plan(
            &bare,
            &plan::CheckOptions {
                now: now(),
                margin: plan::PlanOptions::default().margin,
                waits_known: true,
            },
        );
        assert!(
            findings.iter().any(|f| f.code == "ztunnel-ca-channel"),
            "{findings:?}"
        );
    }
}
