//! The observation against a two-cluster plan made by the planner, with dumps built from the
//! plan's real certificates: each proxy is assigned its cluster from the best evidence (the
//! caller's word, the dump's CLUSTER_ID, the signer of its leaf), judged against that
//! cluster's phase contents, and named with its cluster in the blockers; when nothing decides,
//! it is listed unassigned with a warning.

mod common;

use meshtrust::Certificate;
use meshtrust::generate::{self, KeyType};
use meshtrust::observe::{
    self, ClusterEvidence, MeshState, Observation, ProxyState, Reader, Verdict, Warning,
};
use meshtrust::plan::Plan;
use meshtrust::testkit::dumps;
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-06-01 12:00 UTC)
}

fn two_cluster_plan() -> Plan {
    common::two_cluster_plan(now())
}

fn evaluate(plan: &Plan, observations: Vec<Observation>) -> (MeshState, Verdict) {
    let mut mesh = MeshState::evaluate(
        observations,
        &observe::plan_certificates(plan),
        &plan.profile,
        now(),
    );
    let v = mesh.against(plan);
    (mesh, v)
}

fn read_all(files: &[(String, String)]) -> Vec<Observation> {
    let mut r = Reader::new();
    files
        .iter()
        .map(|(n, b)| r.read(n, b.as_bytes()).unwrap())
        .collect()
}

fn proxy<'a>(mesh: &'a MeshState, name: &str) -> &'a ProxyState {
    mesh.proxies
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no proxy {name}"))
}

/// (leaf and chain, roots) of the first sidecar of `cluster`'s mesh in phase `phase`.
fn sidecar_certs(plan: &Plan, phase: usize, cluster: &str) -> (Vec<Certificate>, Vec<Certificate>) {
    let files = dumps::phase_mesh_in(plan, phase, cluster, 1, 0, now()).unwrap();
    let Observation::Proxies(p) = Reader::new().read("x.json", files[0].1.as_bytes()).unwrap()
    else {
        panic!()
    };
    let cert = |c: &observe::CertRef| c.cert().unwrap().clone();
    let chain = std::iter::once(p[0].leaf.as_ref().unwrap())
        .chain(&p[0].chain)
        .map(cert)
        .collect();
    (chain, p[0].roots.iter().map(cert).collect())
}

fn unassigned(p: &ProxyState) -> Option<&str> {
    p.warnings.iter().find_map(|w| match w {
        Warning::ClusterUnassigned { reason } => Some(reason.as_str()),
        _ => None,
    })
}

#[test]
fn a_proxy_of_cluster2_on_its_old_signer_blocks_with_cluster2_named() {
    let plan = two_cluster_plan();
    assert_eq!(plan.phases[2].name, "02-switch-signer");
    // Both clusters in phase 02; one more cluster2 sidecar still holds phase 01's leaf (its
    // cluster's old signer).
    let mut files = dumps::phase_mesh_in(&plan, 2, "cluster1", 2, 1, now()).unwrap();
    files.extend(dumps::phase_mesh_in(&plan, 2, "cluster2", 2, 1, now()).unwrap());
    let old = dumps::phase_mesh_in(&plan, 1, "cluster2", 1, 0, now()).unwrap();
    files.push(("laggard.default.json".to_owned(), old[0].1.clone()));
    let (mesh, v) = evaluate(&plan, read_all(&files));

    for p in &mesh.proxies {
        let want = if p.name == "laggard.default" || p.name.starts_with("cluster2-") {
            "cluster2"
        } else {
            "cluster1"
        };
        assert_eq!(p.cluster.as_deref(), Some(want), "{}", p.name);
        assert_eq!(p.cluster_from, Some(ClusterEvidence::Signer), "{}", p.name);
        assert_eq!(unassigned(p), None, "{}", p.name);
    }
    let laggard = proxy(&mesh, "laggard.default");
    assert_eq!(laggard.phase.as_deref(), Some("01-trust-both"));
    assert_eq!(
        proxy(&mesh, "cluster1-app-0.default").phase.as_deref(),
        Some("02-switch-signer")
    );
    assert_eq!(v.applied_phase.as_deref(), Some("02-switch-signer"));
    assert_eq!(v.next_phase.as_deref(), Some("03-drop-old-root"));
    assert!(!v.safe_to_advance);
    assert!(!v.blockers.is_empty());
    for b in &v.blockers {
        assert_eq!(b.proxy, "laggard.default", "{b:?}");
        assert_eq!(b.cluster.as_deref(), Some("cluster2"), "{b:?}");
        assert!(
            b.reason.contains("cluster2"),
            "the old signer of cluster2: {b:?}"
        );
    }
    // The JSON contract gains the keys, for proxies and blockers.
    let j = serde_json::to_value(laggard).unwrap();
    assert_eq!(j["cluster"], "cluster2");
    assert_eq!(j["cluster_from"], "signer");
    assert_eq!(
        serde_json::to_value(&v.blockers[0]).unwrap()["cluster"],
        "cluster2"
    );

    // Without the laggard, both clusters are in 02 and 03 is safe.
    files.pop();
    let (_, v) = evaluate(&plan, read_all(&files));
    assert!(v.safe_to_advance, "{:?}", v.blockers);
}

#[test]
fn mixed_evidence_assigns_each_proxy_and_says_when_nothing_decides() {
    let plan = two_cluster_plan();
    let (c1, roots) = sidecar_certs(&plan, 2, "cluster1");
    let (c2, _) = sidecar_certs(&plan, 2, "cluster2");
    let node = |pod: &str| format!("sidecar~10.0.0.1~{pod}.default~default.svc.cluster.local");
    let mut r = Reader::new();
    let mut read = |name: &str, text: String| r.read(name, text.as_bytes()).unwrap();
    // The caller says cluster2 for a dump holding cluster1's leaf: the caller wins, and the
    // proxy is judged against cluster2's phases, none of whose signers issued its leaf.
    let mut told = read("told.json", dumps::envoy(&c1, &roots, false));
    told.in_cluster("cluster2");
    // The dump's CLUSTER_ID names a cluster of the plan.
    let meta = read(
        "m.json",
        dumps::envoy_on_node(&c2, &roots, true, &node("meta"), Some("cluster2")),
    );
    // CLUSTER_ID names no cluster of the plan (Istio's default): the signer decides.
    let signer = read(
        "s.json",
        dumps::envoy_on_node(&c1, &roots, false, &node("by-signer"), Some("Kubernetes")),
    );
    // The caller names a cluster the plan does not have.
    let mut typo = read("typo.json", dumps::envoy(&c1, &roots, false));
    typo.in_cluster("cluster-3");
    // A leaf from a CA the plan does not know, and no metadata.
    let (_, foreign) = generate::istio_ca("elsewhere", KeyType::EcP256, now()).unwrap();
    let leaf = generate::leaf(
        &generate::LeafSpec {
            key_type: KeyType::EcP256,
            ..generate::LeafSpec::istio(
                meshtrust::SpiffeId::istio("cluster.local", "default", "stranger").unwrap(),
            )
        },
        &foreign.issuer().unwrap(),
        now(),
    )
    .unwrap();
    let stranger = read(
        "stranger.json",
        dumps::envoy(
            &[leaf.certificate.clone(), foreign.certificate.clone()],
            &roots,
            false,
        ),
    );
    let (mesh, _) = evaluate(&plan, vec![told, meta, signer, typo, stranger]);

    let told = proxy(&mesh, "told");
    assert_eq!(told.cluster.as_deref(), Some("cluster2"));
    assert_eq!(told.cluster_from, Some(ClusterEvidence::Explicit));
    assert_eq!(told.phase, None, "cluster2 never signed its leaf");
    let meta = proxy(&mesh, "meta.default");
    assert_eq!(meta.cluster.as_deref(), Some("cluster2"));
    assert_eq!(meta.cluster_from, Some(ClusterEvidence::Metadata));
    assert_eq!(meta.phase.as_deref(), Some("02-switch-signer"));
    let by_signer = proxy(&mesh, "by-signer.default");
    assert_eq!(by_signer.cluster.as_deref(), Some("cluster1"));
    assert_eq!(by_signer.cluster_from, Some(ClusterEvidence::Signer));
    assert_eq!(by_signer.phase.as_deref(), Some("02-switch-signer"));
    for (name, why) in [
        ("typo", "which the plan does not have"),
        ("stranger", "no cluster's CA in the plan signed its leaf"),
    ] {
        let p = proxy(&mesh, name);
        assert_eq!(p.cluster, None, "{name}");
        assert_eq!(p.cluster_from, None, "{name}");
        let reason = unassigned(p).unwrap_or_else(|| panic!("{name}: {:?}", p.warnings));
        assert!(reason.contains(why), "{name}: {reason}");
        assert!(
            !Warning::ClusterUnassigned {
                reason: reason.to_owned()
            }
            .breaks_traffic()
        );
    }
    // Each assigned proxy is listed once, with no unassigned warning.
    for name in ["told", "meta.default", "by-signer.default"] {
        assert_eq!(unassigned(proxy(&mesh, name)), None, "{name}");
    }
    // The same told dump without the caller's word: the signer says cluster1, phase 02.
    let (c1_mesh, _) = evaluate(
        &plan,
        vec![
            Reader::new()
                .read("told.json", dumps::envoy(&c1, &roots, false).as_bytes())
                .unwrap(),
        ],
    );
    assert_eq!(c1_mesh.proxies[0].cluster.as_deref(), Some("cluster1"));
    assert_eq!(
        c1_mesh.proxies[0].phase.as_deref(),
        Some("02-switch-signer")
    );
}
