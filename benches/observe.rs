//! `meshtrust status` at scale: 10,000 proxies' dumps (9,000 Envoy secret dumps, half of them
//! camelCase, and 1,000 ztunnel dumps in the 1.26+ form) in the state of phase 02 of a
//! four-phase root rotation, with Istio-shaped RSA-2048 CAs (leaves: ECDSA P-256 keys signed
//! by the RSA intermediate, as istiod signs them). Parse (every dump read by one Reader) and
//! evaluation (per-proxy state, groups, and the verdict against the plan) are measured
//! separately. Target: each well under 1 s.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use meshtrust::generate::{self, KeyType};
use meshtrust::istio::{DataPlane, IstioProfile};
use meshtrust::observe::{self, MeshState, Reader};
use meshtrust::plan::{self, ClusterInput, PlanOptions};
use meshtrust::testkit::dumps;

fn bench(c: &mut Criterion) {
    let now = time::macros::datetime!(2026-06-01 12:00 UTC);
    let (_, a) = generate::istio_ca("cluster1", KeyType::Rsa2048, now).unwrap();
    let (_, b) = generate::istio_ca("cluster1", KeyType::Rsa2048, now).unwrap();
    let profile = IstioProfile {
        multiroot: true,
        xds_agent: true,
        data_plane: DataPlane::Both,
        ..IstioProfile::default()
    };
    let p = plan::plan(
        &[ClusterInput::single(a.cacerts(), b.cacerts())],
        &profile,
        &PlanOptions::default(),
        now,
    )
    .unwrap();
    assert_eq!(p.phases.len(), 4);
    let files = dumps::phase_mesh(&p, 2, 9_000, 1_000, now).unwrap();
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "observe bench: {} inputs, {:.1} MB",
        files.len(),
        bytes as f64 / 1e6
    );
    let parse = || {
        let mut r = Reader::new();
        files
            .iter()
            .map(|(n, b)| r.read(n, b.as_bytes()).unwrap())
            .collect::<Vec<_>>()
    };
    let observations = parse();
    let extra = observe::plan_certificates(&p);
    let evaluate = |obs| {
        let mut mesh = MeshState::evaluate(obs, &extra, &p.profile, now);
        let v = mesh.against(&p);
        (mesh, v)
    };
    let (mesh, v) = evaluate(observations.clone());
    assert_eq!(mesh.proxies.len(), 10_000);
    assert_eq!(v.phase_reached.as_deref(), Some("02-switch-signer"));
    assert!(
        v.safe_to_advance,
        "{:?}",
        &v.blockers[..v.blockers.len().min(3)]
    );

    let mut g = c.benchmark_group("observe 10,000 proxies, four-phase plan");
    g.sample_size(10);
    g.bench_function("parse", |b| b.iter(parse));
    g.bench_function("evaluate + verdict", |b| {
        b.iter_batched(|| observations.clone(), evaluate, BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
