//! Simulation speed: 1,000 workloads through a four-phase root rotation (00-current,
//! trust-both, switch-signer, drop-old-root, then istiod's restart and one more leaf
//! lifetime), with ECDSA P-256 CAs as `meshtrust demo` makes them. Every ordered pair is
//! checked at every event; the goal is under one second. For reference, 200 workloads with
//! and without `exact_leaves` (every leaf issued for real and verified itself).
//!
//! `cargo bench --bench sim`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meshtrust::generate::{self, KeyType};
use meshtrust::istio::{CaSecret, DataPlane, IstioProfile};
use meshtrust::plan::{self, ClusterInput, Plan, PlanOptions};
use meshtrust::sim::{self, SimConfig};
use time::OffsetDateTime;

fn t0() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn ca(cluster: &str) -> CaSecret {
    generate::istio_ca(cluster, KeyType::EcP256, t0())
        .unwrap()
        .1
        .cacerts()
}

fn rotation(data_plane: DataPlane) -> Plan {
    let profile = IstioProfile {
        multiroot: true,
        xds_agent: true,
        data_plane,
        ..IstioProfile::default()
    };
    let p = plan::plan(
        &[ClusterInput::single(ca("current"), ca("new"))],
        &profile,
        &PlanOptions::default(),
        t0() + time::Duration::days(1),
    )
    .unwrap();
    assert_eq!(p.phases.len(), 4);
    p
}

fn simulate(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulate");
    g.sample_size(10).measurement_time(Duration::from_secs(30));
    for (name, dp) in [
        ("sidecar", DataPlane::Sidecar),
        ("ambient", DataPlane::Ambient),
    ] {
        let p = rotation(dp);
        let start = t0() + time::Duration::days(1);
        let o = sim::simulate(&p, &SimConfig::new(start, 1, 1_000)).unwrap();
        assert!(o.ran_as_planned(), "{}", o.story());
        eprintln!(
            "{name}: {} events, {} connections, {} leaves, {} certificates issued, {} verifications",
            o.events,
            o.connections,
            o.stats.leaves,
            o.stats.certificates_issued,
            o.stats.verifications
        );
        g.bench_function(format!("1000-workloads-4-phases-{name}"), |b| {
            b.iter(|| sim::simulate(black_box(&p), &SimConfig::new(start, 1, 1_000)).unwrap())
        });
    }
    // Reference: every leaf issued for real and verified itself (no class cache), at 200
    // workloads: what the (chain, trust set) classes save.
    let p = rotation(DataPlane::Sidecar);
    let start = t0() + time::Duration::days(1);
    let mut exact = SimConfig::new(start, 1, 200);
    exact.exact_leaves = true;
    g.bench_function("200-workloads-4-phases-sidecar-exact-leaves", |b| {
        b.iter(|| sim::simulate(black_box(&p), &exact).unwrap())
    });
    let classes = SimConfig::new(start, 1, 200);
    g.bench_function("200-workloads-4-phases-sidecar", |b| {
        b.iter(|| sim::simulate(black_box(&p), &classes).unwrap())
    });
    g.finish();
}

criterion_group!(benches, simulate);
criterion_main!(benches);
