//! Unit tests of the simulator's parts (the scenario tests are in tests/sim.rs).

use super::*;
use crate::generate::{self, KeyType};
use crate::istio::{CaSecret, DataPlane, IstioProfile};
use crate::plan::{self, Action, ClusterInput, PlanOptions};

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 0:00 UTC)
}

fn ca(cluster: &str) -> CaSecret {
    generate::istio_ca(cluster, KeyType::EcP256, t0())
        .unwrap()
        .1
        .cacerts()
}

fn now() -> OffsetDateTime {
    t0() + time::Duration::days(1)
}

fn root_plan(profile: &IstioProfile) -> Plan {
    plan::plan(
        &[ClusterInput::single(ca("a"), ca("b"))],
        profile,
        &PlanOptions::default(),
        now(),
    )
    .unwrap()
}

fn sidecar(xds: bool) -> IstioProfile {
    IstioProfile {
        multiroot: true,
        xds_agent: xds,
        ..IstioProfile::default()
    }
}

#[test]
fn settings_out_of_range_are_refused() {
    let p = root_plan(&sidecar(true));
    let bad = |f: &dyn Fn(&mut SimConfig)| {
        let mut c = SimConfig::new(now(), 1, 10);
        f(&mut c);
        simulate(&p, &c).unwrap_err()
    };
    assert!(matches!(bad(&|c| c.workloads = 1), SimError::Config(_)));
    assert!(matches!(
        bad(&|c| c.workloads_per_node = 0),
        SimError::Config(_)
    ));
    assert!(matches!(
        bad(&|c| c.jitter = Some(1.0)),
        SimError::Config(_)
    ));
    let mut empty = p.clone();
    empty.phases.clear();
    assert_eq!(
        simulate(&empty, &SimConfig::new(now(), 1, 10)).unwrap_err(),
        SimError::NoPhases
    );
    let mut wrong = p.clone();
    wrong.profile.grace_ratio = 1.5;
    assert!(matches!(
        simulate(&wrong, &SimConfig::new(now(), 1, 10)).unwrap_err(),
        SimError::Profile(_)
    ));
}

#[test]
fn a_first_phase_istiod_cannot_load_is_an_error() {
    let mut p = root_plan(&sidecar(true));
    let other = ca("c");
    p.phases[0].clusters[0].secret.set_file(
        crate::istio::CA_KEY,
        other.file(crate::istio::CA_KEY).unwrap().to_vec(),
    );
    match simulate(&p, &SimConfig::new(now(), 1, 10)).unwrap_err() {
        SimError::InitialState { phase, reason, .. } => {
            assert_eq!(phase, "00-current");
            assert!(reason.contains("does not match"), "{reason}");
        }
        e => panic!("{e}"),
    }
}

#[test]
fn the_mesh_holds_every_kind_of_its_data_plane() {
    let count = |dp: DataPlane, n: usize| {
        let mut profile = sidecar(true);
        profile.data_plane = dp;
        profile.ztunnel_version = Some(crate::istio::IstioVersion::NEWEST);
        let o = simulate(&root_plan(&profile), &SimConfig::new(now(), 1, n)).unwrap();
        let first = &o.phases[0].census;
        let mut by_kind = std::collections::BTreeMap::new();
        for r in first {
            *by_kind.entry(r.kind).or_insert(0) += r.proxies;
        }
        assert_eq!(by_kind.values().sum::<usize>(), n);
        by_kind
    };
    let k = |v: &[(ProxyKind, usize)]| v.iter().copied().collect();
    assert_eq!(count(DataPlane::Sidecar, 5), k(&[(ProxyKind::Sidecar, 5)]));
    assert_eq!(
        count(DataPlane::Ambient, 2),
        k(&[(ProxyKind::Ztunnel, 1), (ProxyKind::Waypoint, 1)])
    );
    assert_eq!(
        count(DataPlane::Ambient, 45),
        k(&[(ProxyKind::Ztunnel, 43), (ProxyKind::Waypoint, 2)])
    );
    assert_eq!(
        count(DataPlane::Both, 3),
        k(&[
            (ProxyKind::Sidecar, 1),
            (ProxyKind::Ztunnel, 1),
            (ProxyKind::Waypoint, 1)
        ])
    );
    assert_eq!(
        count(DataPlane::Both, 2),
        k(&[(ProxyKind::Sidecar, 1), (ProxyKind::Ztunnel, 1)])
    );
}

#[test]
fn plans_without_steps_get_the_planners() {
    let profile = IstioProfile {
        data_plane: DataPlane::Ambient,
        ..sidecar(false)
    };
    let p = root_plan(&profile);
    let margin = Duration::from_secs(600);
    let propagation = Duration::from_secs(300);
    let steps: Vec<_> = (0..p.phases.len())
        .map(|k| default_steps(&p, k, &profile, propagation, margin))
        .collect();
    assert!(steps[0].0.is_empty());
    let c = plan::DEFAULT_CLUSTER.to_owned();
    assert_eq!(
        steps[1].0,
        vec![
            Action::ApplySecret {
                cluster: c.clone(),
                secret: "cacerts".to_owned()
            },
            Action::AwaitIstiod { cluster: c.clone() },
            Action::RestartZtunnel { cluster: c.clone() },
            Action::RestartWaypoints { cluster: c.clone() },
        ]
    );
    // The planner emits the same steps.
    for (step, phase) in steps.iter().zip(&p.phases).skip(1) {
        assert_eq!(step.0, phase.actions, "{}", phase.name);
    }
    // Waits: propagation, except after the signer switch (the old root goes next).
    assert_eq!(steps[0].1, propagation);
    assert_eq!(steps[1].1, propagation);
    assert_eq!(steps[2].1, profile.leaf_ttl + margin);
    assert_eq!(steps[3].1, propagation);

    // And a plan stripped of its steps simulates like the planner's.
    let mut bare = p.clone();
    for ph in &mut bare.phases {
        ph.actions.clear();
        ph.gate = None;
    }
    let cfg = SimConfig::new(now(), 4, 12);
    let (a, b) = (simulate(&p, &cfg).unwrap(), simulate(&bare, &cfg).unwrap());
    assert!(a.ran_as_planned() && b.ran_as_planned(), "{}", b.story());
    // Only phase 00's wait differs: the planner's gate 0 (preconditions) has none.
    let span = |o: &Outcome| o.end - o.start;
    assert_eq!(span(&b) - span(&a), time::Duration::minutes(5));
}

#[test]
fn the_story_tells_each_phase() {
    let p = root_plan(&sidecar(true));
    let o = simulate(&p, &SimConfig::new(now(), 2, 6)).unwrap();
    let s = o.story();
    for ph in &p.phases {
        assert!(s.contains(&format!("\n{} [", ph.name)), "{}: {s}", ph.name);
    }
    assert!(s.contains("\nafter-plan ["), "{s}");
    assert!(s.contains("6 sidecars trust {B}, leaves from B1"), "{s}");
    assert!(
        s.ends_with(
            "Result: OK, no connection failed and the mesh ended in the plan's final state.\n"
        ),
        "{s}"
    );
    // Connections: every ordered pair at every event.
    assert_eq!(o.connections, o.events * 6 * 5);
    assert_eq!(o.phases.iter().map(|r| r.events).sum::<u64>(), o.events);
}

#[test]
fn the_json_outcome_has_rfc3339_times() {
    let p = root_plan(&sidecar(true));
    let o = simulate(&p, &SimConfig::new(now(), 2, 4)).unwrap();
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(v["start"], "2026-01-02T00:00:00Z");
    assert_eq!(v["phases"][0]["name"], "00-current");
    assert_eq!(v["failed_connections"], 0);
}

/// Every proxy's leaf carries the presented chain the one model gives for its kind (the
/// signer's cert-chain.pem, then for Envoy proxies the whole root file of its CSR response),
/// and the traffic classes split by it: a sidecar and a ztunnel workload of one signer
/// present different chains.
#[test]
fn each_leaf_presents_what_the_model_says() {
    use crate::istio::behaviour;
    let profile = IstioProfile {
        data_plane: DataPlane::Both,
        ..sidecar(true)
    };
    let p = root_plan(&profile);
    let mesh = Mesh::new(&p, &SimConfig::new(now(), 3, 9)).unwrap();
    let file: Vec<crate::cert::Certificate> = p.phases[0].clusters[0]
        .secret
        .root_bundle()
        .unwrap()
        .certificates()
        .cloned()
        .collect();
    let mut kinds = std::collections::BTreeMap::new();
    for (i, x) in mesh.world.proxies.iter().enumerate() {
        let leaf = &mesh.world.leaves[x.leaf];
        let signer = &mesh.world.signers[leaf.signer];
        let want = behaviour::presented_chain(
            x.kind.model(),
            profile.istio_version,
            profile.ztunnel(),
            signer.issuer.certificate(),
            &signer.chain,
            &file,
        );
        let got = &mesh.world.presented.get(leaf.presented).unwrap().certs;
        assert_eq!(got[..], want[1..], "{}", x.name);
        let envoy_len = signer.chain.len() + file.len();
        assert_eq!(
            got.len() == envoy_len,
            x.kind != ProxyKind::Ztunnel,
            "{}",
            x.name
        );
        assert_eq!(
            mesh.traffic.class_of(i).map(|k| k.presented),
            Some(leaf.presented)
        );
        kinds.insert(x.kind, leaf.presented);
    }
    assert_eq!(kinds.len(), 3);
    assert_ne!(kinds[&ProxyKind::Sidecar], kinds[&ProxyKind::Ztunnel]);
    assert_eq!(kinds[&ProxyKind::Sidecar], kinds[&ProxyKind::Waypoint]);
}
