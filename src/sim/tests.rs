//! Unit tests of the simulator on generated material (the scenario tests are in tests/sim.rs).

use super::*;
use crate::generate::{self, IntermediateSpec, KeyType, RootSpec};
use crate::istio::{CaSecret, IstioProfile};
use crate::plan::{self, ClusterInput, PlanOptions};

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 0:00 UTC)
}

fn ca(cluster: &str) -> CaSecret {
    let root = generate::root(
        &RootSpec {
            key_type: KeyType::EcP256,
            ..RootSpec::istio()
        },
        t0(),
    )
    .unwrap();
    let int = generate::intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio(cluster)
        },
        &root.issuer().unwrap(),
        t0(),
    )
    .unwrap();
    CaSecret::cacerts(
        int.cert_pem.as_bytes(),
        int.key_pem().as_bytes(),
        int.cert_chain_pem().as_bytes(),
        &root.trust_bundle,
    )
}

#[test]
fn root_rotation_sidecar_passes() {
    let profile = IstioProfile {
        multiroot: true,
        xds_agent: true,
        ..Default::default()
    };
    let now = t0() + time::Duration::days(1);
    let p = plan::plan(
        &[ClusterInput::single(ca("a"), ca("b"))],
        &profile,
        &PlanOptions::default(),
        now,
    )
    .unwrap();
    let o = simulate(&p, &SimConfig::new(now, 1, 12)).unwrap();
    println!("{}", o.story());
    assert!(o.ok());
}
