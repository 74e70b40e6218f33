//! Generation speed: roots (RSA-4096, Istio's default, and ECDSA P-256), intermediate signing,
//! and workload leaf issuance (ECDSA P-256 and RSA-2048, istiod's two sidecar key types).
//!
//! `cargo bench --bench generate`. RSA key generation (aws-lc-rs) dominates the RSA figures
//! and has a wide spread (prime search), hence the small sample sizes.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use meshtrust::SpiffeId;
use meshtrust::generate::{self, IntermediateSpec, KeyType, LeafSpec, RootSpec};
use time::OffsetDateTime;

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_790_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn root_spec(key_type: KeyType) -> RootSpec {
    RootSpec {
        key_type,
        ..RootSpec::istio()
    }
}

fn roots(c: &mut Criterion) {
    let mut g = c.benchmark_group("root");
    g.sample_size(20).measurement_time(Duration::from_secs(20));
    if KeyType::Rsa4096.available() {
        g.bench_function("rsa4096", |b| {
            b.iter(|| generate::root(black_box(&root_spec(KeyType::Rsa4096)), now()).unwrap())
        });
    }
    g.sample_size(100).measurement_time(Duration::from_secs(5));
    g.bench_function("ec-p256", |b| {
        b.iter(|| generate::root(black_box(&root_spec(KeyType::EcP256)), now()).unwrap())
    });
    g.finish();
}

fn intermediates(c: &mut Criterion) {
    let mut g = c.benchmark_group("intermediate");
    g.sample_size(100).measurement_time(Duration::from_secs(5));
    let ec_root = generate::root(&root_spec(KeyType::EcP256), now()).unwrap();
    let ec_issuer = ec_root.issuer().unwrap();
    let spec = |k| IntermediateSpec {
        key_type: k,
        ..IntermediateSpec::istio("cluster1")
    };
    // Signing cost with a cheap subject key: an ECDSA intermediate under an ECDSA root...
    g.bench_function("ec-p256-under-ec-p256", |b| {
        b.iter(|| {
            generate::intermediate(black_box(&spec(KeyType::EcP256)), &ec_issuer, now()).unwrap()
        })
    });
    if KeyType::Rsa4096.available() {
        // ...and under an RSA-4096 root (Istio's root; an RSA-4096 signature per certificate).
        let rsa_root = generate::root(&root_spec(KeyType::Rsa4096), now()).unwrap();
        let rsa_issuer = rsa_root.issuer().unwrap();
        g.bench_function("ec-p256-under-rsa4096", |b| {
            b.iter(|| {
                generate::intermediate(black_box(&spec(KeyType::EcP256)), &rsa_issuer, now())
                    .unwrap()
            })
        });
        // Istio's default end to end: a new RSA-4096 key signed by the RSA-4096 root.
        g.sample_size(20).measurement_time(Duration::from_secs(20));
        g.bench_function("rsa4096-under-rsa4096", |b| {
            b.iter(|| {
                generate::intermediate(black_box(&spec(KeyType::Rsa4096)), &rsa_issuer, now())
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn leaves(c: &mut Criterion) {
    let mut g = c.benchmark_group("leaf");
    g.sample_size(100).measurement_time(Duration::from_secs(5));
    let id = SpiffeId::istio("cluster.local", "default", "sleep").unwrap();
    let spec = |k| LeafSpec {
        key_type: k,
        ..LeafSpec::istio(id.clone())
    };
    let ec_root = generate::root(&root_spec(KeyType::EcP256), now()).unwrap();
    let ec_ca = generate::intermediate(
        &IntermediateSpec {
            key_type: KeyType::EcP256,
            ..IntermediateSpec::istio("c")
        },
        &ec_root.issuer().unwrap(),
        now(),
    )
    .unwrap();
    let ec_issuer = ec_ca.issuer().unwrap();
    g.bench_function("ec-p256-under-ec-p256", |b| {
        b.iter(|| generate::leaf(black_box(&spec(KeyType::EcP256)), &ec_issuer, now()).unwrap())
    });
    if KeyType::Rsa2048.available() {
        let rsa_root = generate::root(&root_spec(KeyType::Rsa4096), now()).unwrap();
        let rsa_ca = generate::intermediate(
            &IntermediateSpec::istio("c"),
            &rsa_root.issuer().unwrap(),
            now(),
        )
        .unwrap();
        let rsa_issuer = rsa_ca.issuer().unwrap();
        g.bench_function("ec-p256-under-rsa4096", |b| {
            b.iter(|| {
                generate::leaf(black_box(&spec(KeyType::EcP256)), &rsa_issuer, now()).unwrap()
            })
        });
        // istiod's default sidecar key under Istio's default intermediate.
        g.sample_size(30).measurement_time(Duration::from_secs(15));
        g.bench_function("rsa2048-under-rsa4096", |b| {
            b.iter(|| {
                generate::leaf(black_box(&spec(KeyType::Rsa2048)), &rsa_issuer, now()).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, roots, intermediates, leaves);
criterion_main!(benches);
