//! How long the testkit's strategies take for a 256-case property test: drawing 256 values
//! and building the material of each (certificates signed with pooled keys, nothing
//! generated beyond the pools). Each sample is one full 256-case run.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meshtrust::testkit::{bundles, chains, meshes, plans};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

const CASES: usize = 256;

fn run<S: Strategy>(strategy: &S, mut build: impl FnMut(S::Value)) {
    let mut runner = TestRunner::deterministic();
    for _ in 0..CASES {
        let v = strategy.new_tree(&mut runner).unwrap().current();
        build(v);
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("testkit: 256 cases");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    let chain = chains::chain_case(chains::key_kind().boxed());
    g.bench_function("chains::chain_case (built)", |b| {
        b.iter(|| run(&chain, |c| drop(c.build().unwrap())))
    });
    let topology = chains::topology();
    g.bench_function("chains::topology (built)", |b| {
        b.iter(|| run(&topology, |t| drop(t.build().unwrap())))
    });
    let rotation = plans::rotation_case();
    g.bench_function("plans::rotation_case (CAs built)", |b| {
        b.iter(|| run(&rotation, drop))
    });
    let rotation_planned = plans::rotation_case();
    g.bench_function("plans::rotation_case + plan + check_plan", |b| {
        b.iter(|| {
            run(&rotation_planned, |case| {
                let p = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)
                    .unwrap();
                drop(meshtrust::plan::check_plan(&p, &case.check_options()));
            })
        })
    });
    let mesh = meshes::mesh_case();
    g.bench_function("meshes::mesh_case (CAs built)", |b| {
        b.iter(|| run(&mesh, drop))
    });
    let mesh_simulated = meshes::mesh_case();
    g.bench_function("meshes::mesh_case + plan + simulate", |b| {
        b.iter(|| {
            run(&mesh_simulated, |case| {
                let p = case.plan().unwrap();
                assert!(
                    meshtrust::sim::simulate(&p, &case.config)
                        .unwrap()
                        .ran_as_planned()
                );
            })
        })
    });
    let text = bundles::bundle_text(bundles::sample_certificates());
    g.bench_function("bundles::bundle_text", |b| b.iter(|| run(&text, drop)));
    let profile = plans::any_profile();
    g.bench_function("plans::any_profile", |b| b.iter(|| run(&profile, drop)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
