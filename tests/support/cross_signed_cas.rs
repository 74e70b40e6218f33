//! The CAs of the cross-signed rotation tests (Istio-recipe-shaped: every root
//! `O=Istio, CN=Root CA`), shared by `tests/cross_signed.rs` and the BoringSSL oracle's
//! `oracles/boring/tests/cross_signed_boring.rs`.
// Helpers shared by several test crates: `pub` so each can use them, not every one does.
#![allow(dead_code, unreachable_pub)]

use meshtrust::generate::{self, KeyType};
use meshtrust::istio::{DataPlane, IstioProfile};
use meshtrust::plan::{self, ClusterInput, PlanOptions, RotationKind};

pub fn now() -> time::OffsetDateTime {
    time::macros::datetime!(2026-03-01 0:00 UTC)
}

pub struct Cas {
    pub a: generate::Generated,
    pub ia: generate::Generated,
    pub b: generate::Generated,
    pub ib: generate::Generated,
    pub b_prime: generate::CrossSigned,
}

pub fn cas() -> Cas {
    cas_made(now() - time::Duration::days(30))
}

/// The CAs, made at `made` (the CLI simulates from the real clock).
pub fn cas_made(made: time::OffsetDateTime) -> Cas {
    let (a, ia) = generate::istio_ca("cluster1", KeyType::EcP256, made).unwrap();
    let (b, ib) = generate::istio_ca("cluster1", KeyType::EcP256, made).unwrap();
    let b_prime = generate::cross_sign(&b.certificate, &a.issuer().unwrap(), made).unwrap();
    Cas {
        a,
        ia,
        b,
        ib,
        b_prime,
    }
}

pub fn opts(c: &Cas) -> PlanOptions {
    PlanOptions {
        kind: Some(RotationKind::CrossSigned),
        cross_signed: Some(c.b_prime.certificate.clone()),
        ..PlanOptions::default()
    }
}

pub fn profile(data_plane: DataPlane) -> IstioProfile {
    IstioProfile {
        multiroot: false,
        xds_agent: false,
        data_plane,
        ..IstioProfile::default()
    }
}

pub fn plan_for(c: &Cas, p: &IstioProfile) -> plan::Plan {
    plan::plan(
        &[ClusterInput::single(c.ia.cacerts(), c.ib.cacerts())],
        p,
        &opts(c),
        now(),
    )
    .unwrap()
}
