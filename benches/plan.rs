//! Plan + full check of a four-phase root rotation, with the CA keys given (none generated):
//! Istio-shaped RSA-4096 roots and intermediates (tools/certs), and ECDSA P-256 ones.
//! The check issues one throwaway P-256 leaf per phase and runs istiod's load checks, the
//! containment rule, signer trust, the trigger, the cross matrix and the removal wait.

use criterion::{Criterion, criterion_group, criterion_main};
use meshtrust::plan::{self, ClusterInput, PlanOptions, RotationKind};
use meshtrust::testkit::KeyType;
use meshtrust::testkit::plans::build_case;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("plan four-phase root rotation");
    for (label, kinds) in [
        ("rsa4096", [KeyType::Rsa4096; 4]),
        ("ec-p256", [KeyType::EcP256; 4]),
    ] {
        let profile = meshtrust::istio::IstioProfile {
            multiroot: true,
            xds_agent: true,
            ..Default::default()
        };
        let case = build_case(RotationKind::RootRotation, kinds, 1, 1, false, profile).unwrap();
        let inputs: Vec<ClusterInput> = case.inputs.clone();
        let opts = PlanOptions::default();
        let p = plan::plan(&inputs, &case.profile, &opts, case.now).unwrap();
        assert_eq!(p.phases.len(), 4);
        g.bench_function(format!("plan + check ({label})"), |b| {
            b.iter(|| plan::plan(&inputs, &case.profile, &opts, case.now).unwrap())
        });
        g.bench_function(format!("check only ({label})"), |b| {
            b.iter(|| plan::check_plan(&p, &case.check_options()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
