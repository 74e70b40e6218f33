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

/// `plan check` at the cases' instant; `waits_known` false as for a plan without plan.json.
fn check(p: &plan::Plan, waits_known: bool) -> Vec<plan::Finding> {
    plan::check_plan(
        p,
        &plan::CheckOptions {
            now: now(),
            margin: plan::PlanOptions::default().margin,
            waits_known,
        },
    )
}

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
                    .find(|f| f.code.as_str() == "ztunnel-chain-truncated")
                    .unwrap_or_else(|| panic!("{istiod}/{ztunnel}: {f:?}"));
                assert!(
                    hit.message.contains(ztunnel) && hit.message.contains("1.26.0"),
                    "names the version and the fix: {}",
                    hit.message
                );
            }
            Ok(plan) if !refused => {
                let findings = check(&plan, true);
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
        let findings = check(&bare, true);
        assert!(
            findings
                .iter()
                .any(|f| f.code.as_str() == "ztunnel-ca-channel"),
            "{findings:?}"
        );
    }
}

/// A cross-signed plan read back without plan.json (an operator who kept only the phase
/// directories) is recognised as cross-signed, not as a root rotation (which would demand
/// ISTIO_MULTIROOT_MESH), and passes its checks; a root rotation's directories still read as
/// a root rotation.
#[test]
fn cross_signed_plan_without_plan_json_reads_as_cross_signed() {
    use meshtrust::plan::RotationKind;
    let c = cas();
    let dir = tempfile::tempdir().unwrap();
    let p = profile(DataPlane::Sidecar);
    let written = cross_signed_cas::plan_for(&c, &p);
    plan::write_plan_dir(&written, dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let plan::PlanDir {
        plan: read,
        has_json: had_json,
        ..
    } = plan::read_plan_dir(dir.path()).unwrap();
    assert!(!had_json);
    assert_eq!(read.kind, RotationKind::CrossSigned);
    let mut read = read;
    read.profile = p.clone();
    let findings = check(&read, false);
    assert!(!plan::has_errors(&findings), "{findings:?}");
    let restart = findings
        .iter()
        .find(|f| f.code.as_str() == "multiroot-off")
        .expect("the istiod restart phase 2 needs is stated");
    assert_eq!(restart.phase.as_deref(), Some("02-trust-new-root"));
    assert!(
        restart.message.contains("restart istiod in this phase"),
        "{}",
        restart.message
    );
    // Known as cross-signed, the presented order is checked too: B before B' is refused.
    let mut swapped = read.clone();
    let s = &mut swapped.phases[2].clusters[0].secret;
    let pem = |c: &meshtrust::Certificate| c.to_pem();
    let chain = [&c.ib.certificate, &c.b.certificate, &c.b_prime.certificate]
        .map(pem)
        .concat();
    *s = meshtrust::istio::CaSecret::cacerts(
        s.file("ca-cert.pem").unwrap(),
        s.file("ca-key.pem").unwrap(),
        chain.as_bytes(),
        s.file("root-cert.pem").unwrap(),
    );
    let findings = check(&swapped, false);
    assert!(
        findings
            .iter()
            .any(|f| f.code.as_str() == "presented-order"),
        "{findings:?}"
    );
    // The multi-root kind from the same CAs.
    let mut multi = p.clone();
    multi.multiroot = true;
    multi.xds_agent = true;
    let root_plan = plan::plan(
        &[ClusterInput::single(c.ia.cacerts(), c.ib.cacerts())],
        &multi,
        &plan::PlanOptions::default(),
        now(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    plan::write_plan_dir(&root_plan, dir.path()).unwrap();
    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let plan::PlanDir { plan: read, .. } = plan::read_plan_dir(dir.path()).unwrap();
    assert_eq!(read.kind, RotationKind::RootRotation);
}
