//! The observation against real plans: dumps built from each phase's real certificates give
//! that phase as reached and the next as safe; a mixed mesh names exactly its blockers.

use meshtrust::generate::{self, KeyType};
use meshtrust::istio::{DataPlane, IstioProfile, IstioVersion};
use meshtrust::observe::{self, MeshState, Reader, Verdict};
use meshtrust::plan::{self, ClusterInput, Plan, PlanOptions};
use meshtrust::testkit::dumps::{self, ZtunnelIdentity};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-06-01 12:00 UTC)
}

fn profile() -> IstioProfile {
    IstioProfile {
        multiroot: true,
        xds_agent: true,
        data_plane: DataPlane::Both,
        ..IstioProfile::default()
    }
}

fn root_rotation() -> Plan {
    let (_, a) = generate::istio_ca("cluster1", KeyType::EcP256, now()).unwrap();
    let (_, b) = generate::istio_ca("cluster1", KeyType::EcP256, now()).unwrap();
    plan::plan(
        &[ClusterInput::single(a.cacerts(), b.cacerts())],
        &profile(),
        &PlanOptions::default(),
        now(),
    )
    .unwrap()
}

fn evaluate(
    plan: &Plan,
    files: &[(String, String)],
    profile: &IstioProfile,
) -> (MeshState, Verdict) {
    let mut r = Reader::new();
    let obs = files
        .iter()
        .map(|(n, b)| r.read(n, b.as_bytes()).unwrap())
        .collect();
    let mut mesh = MeshState::evaluate(obs, &observe::plan_certificates(plan), profile, now());
    let v = mesh.against(plan);
    (mesh, v)
}

#[test]
fn every_phase_of_a_root_rotation_is_recognized_and_safe_to_leave() {
    let plan = root_rotation();
    assert_eq!(plan.phases.len(), 4);
    for (k, phase) in plan.phases.iter().enumerate() {
        let files = dumps::phase_mesh(&plan, k, 4, 2, now()).unwrap();
        let (mesh, v) = evaluate(&plan, &files, &plan.profile);
        assert!(mesh.is_consistent(), "{}: {:?}", phase.name, mesh.proxies);
        for p in &mesh.proxies {
            assert_eq!(p.phase.as_deref(), Some(phase.name.as_str()), "{}", p.name);
            assert_eq!(p.leaf.as_ref().unwrap().verifies, Some(true));
            assert!(p.warnings.is_empty(), "{}: {:?}", p.name, p.warnings);
        }
        assert_eq!(v.phase_reached.as_deref(), Some(phase.name.as_str()));
        assert_eq!(v.applied_phase.as_deref(), Some(phase.name.as_str()));
        assert_eq!(
            v.next_phase.as_deref(),
            plan.phases.get(k + 1).map(|p| p.name.as_str())
        );
        assert!(v.blockers.is_empty(), "{}: {:?}", phase.name, v.blockers);
        assert_eq!(v.safe_to_advance, k + 1 < plan.phases.len());
        // One group: every proxy holds the same roots and signer.
        assert_eq!(mesh.groups.len(), 1, "{:?}", mesh.groups);
        assert_eq!(mesh.groups[0].count, 6);
    }
}

#[test]
fn a_mixed_mesh_names_exactly_its_blockers() {
    let plan = root_rotation();
    // Phase 02 (switch signer) applied; most proxies there.
    let mut files = dumps::phase_mesh(&plan, 2, 4, 2, now()).unwrap();
    // One sidecar still on the old signer (phase 01's leaf).
    let old = dumps::phase_mesh(&plan, 1, 1, 0, now()).unwrap();
    files.push(("laggard.default.json".to_owned(), old[0].1.clone()));
    // One ztunnel identity that trusts only the first root (as ztunnel before 1.26 does),
    // with a leaf from the new signer.
    let new = dumps::phase_mesh(&plan, 2, 0, 1, now()).unwrap();
    let mut r = Reader::new();
    let observe::Observation::Proxies(z) = r.read("z.json", new[0].1.as_bytes()).unwrap() else {
        panic!()
    };
    let chain: Vec<_> = std::iter::once(z[0].leaf.clone().unwrap())
        .chain(z[0].chain.clone())
        .map(|c| c.cert().unwrap().clone())
        .collect();
    let first_root = z[0].roots[0].cert().unwrap().clone();
    let one_root = dumps::ztunnel(
        &[ZtunnelIdentity {
            identity: "spiffe://cluster.local/ns/default/sa/old-zt".to_owned(),
            chain,
            roots: vec![first_root],
        }],
        false,
    );
    files.push(("ztunnel-old.istio-system.json".to_owned(), one_root));
    let (mesh, v) = evaluate(&plan, &files, &plan.profile);
    assert_eq!(v.applied_phase.as_deref(), Some("02-switch-signer"));
    assert_eq!(v.next_phase.as_deref(), Some("03-drop-old-root"));
    assert!(!v.safe_to_advance);
    let mut blocked: Vec<&str> = v.blockers.iter().map(|b| b.proxy.as_str()).collect();
    blocked.dedup();
    assert_eq!(
        blocked,
        [
            "laggard.default",
            "ztunnel-old.istio-system/spiffe://cluster.local/ns/default/sa/old-zt"
        ],
        "{:#?}",
        v.blockers
    );
    // The laggard clears at its renewal (it then gets a leaf from the new signer).
    let lag = &v.blockers[0];
    assert!(
        lag.reason.contains("its leaf is signed by"),
        "{}",
        lag.reason
    );
    assert!(lag.clears_at.is_some_and(|t| t > now()));
    // The one-root ztunnel does not trust the new signer's root; its dump is pre-1.26 and
    // it holds one of the two published roots.
    let zt = mesh
        .proxies
        .iter()
        .find(|p| p.name.contains("old-zt"))
        .unwrap();
    assert!(
        zt.warnings
            .iter()
            .any(|w| matches!(w, observe::Warning::OneRootOfMany { published: 2, .. })),
        "{:?}",
        zt.warnings
    );
    // Today the one-root ztunnel's leaf (new signer) is not trusted by itself: a warning that
    // breaks traffic, so the mesh is not consistent.
    assert!(!mesh.is_consistent());
}

#[test]
fn a_ztunnel_that_keeps_only_the_first_root_never_clears_by_itself() {
    // ztunnel 1.24.0 trusts only the first root of every CSR response: a renewal does not help.
    let plan = root_rotation();
    let mut p = plan.profile.clone();
    p.ztunnel_version = Some("1.24.0".parse::<IstioVersion>().unwrap());
    let files = dumps::phase_mesh(&plan, 1, 0, 1, now()).unwrap();
    // Its dump as the old ztunnel holds it: only root A.
    let mut r = Reader::new();
    let observe::Observation::Proxies(z) = r.read("z.json", files[0].1.as_bytes()).unwrap() else {
        panic!()
    };
    let chain: Vec<_> = std::iter::once(z[0].leaf.clone().unwrap())
        .chain(z[0].chain.clone())
        .map(|c| c.cert().unwrap().clone())
        .collect();
    let a = z[0]
        .roots
        .iter()
        .map(|c| c.cert().unwrap().clone())
        .find(|c| plan.old_roots.contains(&c.fingerprint()));
    let dump = dumps::ztunnel(
        &[ZtunnelIdentity {
            identity: "spiffe://cluster.local/ns/default/sa/zt".to_owned(),
            chain,
            roots: a.into_iter().collect(),
        }],
        true,
    );
    let files = vec![("ztunnel-a.json".to_owned(), dump), files[1].clone()];
    let (_, v) = evaluate(&plan, &files, &p);
    assert_eq!(v.next_phase.as_deref(), Some("02-switch-signer"));
    assert!(!v.safe_to_advance);
    assert_eq!(v.blockers.len(), 1, "{:?}", v.blockers);
    assert!(v.blockers[0].reason.contains("does not trust"));
    assert_eq!(v.blockers[0].clears_at, None);
}

#[test]
fn a_lagging_configmap_is_a_blocker() {
    let plan = root_rotation();
    let mut files = dumps::phase_mesh(&plan, 1, 2, 0, now()).unwrap();
    let cm_idx = files.len() - 1;
    let roots = |k: usize| {
        plan.phases[k].clusters[0]
            .secret
            .root_bundle()
            .unwrap()
            .bytes()
            .to_vec()
    };
    files[cm_idx].1 = dumps::configmaps(&[("istio-system", &roots(1)), ("bookinfo", &roots(0))]);
    let (_, v) = evaluate(&plan, &files, &plan.profile);
    assert_eq!(v.applied_phase.as_deref(), Some("01-trust-both"));
    assert!(!v.safe_to_advance);
    assert_eq!(v.blockers.len(), 1);
    assert_eq!(v.blockers[0].proxy, "configmap/bookinfo");
    assert!(
        v.configmaps
            .iter()
            .any(|c| c.namespace == "bookinfo" && c.lags)
    );
}
