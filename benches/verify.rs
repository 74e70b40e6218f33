//! Chain verification against bundles of 1, 100 and 10,000 roots (the shapes of
//! ../shared/peers/gen.py): leaf -> intermediate -> root, P-256 and RSA-4096 (RSA-2048 leaf),
//! next to the floor (the two bare signature checks of the same path), and the same warm
//! verification with the Envoy and ztunnel policies at 1 and 10,000 roots.
//!
//! - `warm`: roots and intermediates already indexed ([`CertPool`]s built once).
//! - `cold`: from the PEM bytes of the 10,001-root bundle and of the chain files (in memory):
//!   parse, index, verify once.
//!
//! Workloads: with MESHTRUST_PEERS_DATA pointing at a directory made by
//! `python3 ../shared/peers/gen.py DIR`, its files (`bundle-10000-with-R*.pem`, `chain*/`,
//! the verification time of `meta.json`); otherwise generated here with the testkit in the
//! same shapes: 10,000 distinct P-256 self-signed roots `O=Peer, CN=Root i` (CA critical,
//! keyUsage keyCertSign + cRLSign, SKI), the chain's root inserted at index 5000 (at 50 of
//! 100 for the 100-root bundle).
//!
//! Goals (issue 3): warm <= 1.2x the floor at 10,000 roots; cold <= 25 ms. Peers on this
//! machine (../shared/peers/README.md): Go 152 / 286 us warm, 111 / 117 ms cold; Python
//! cryptography 193 / 209 us, 71 / 72 ms; openssl verify 4.6 s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use meshtrust::cert::KeyUsage;
use meshtrust::testkit::{Basic, CertSpec, Eku, Issued, KeyType, TestKey};
use meshtrust::verify::{CertPool, Policy, VerifyOptions, verify};
use meshtrust::{Bundle, Certificate};

/// One chain and the bundles to verify it against.
struct Workload {
    name: &'static str,
    leaf: Certificate,
    intermediate: Certificate,
    root: Certificate,
    leaf_pem: Vec<u8>,
    chain_pem: Vec<u8>,
    /// Bundles of 1, 100 (+R) and 10,000 (+R) roots, as PEM bytes.
    bundles: Vec<(usize, Vec<u8>)>,
    at: time::OffsetDateTime,
}

fn first_cert(pem: &[u8]) -> Certificate {
    Bundle::parse(pem)
        .unwrap()
        .certificates()
        .next()
        .unwrap()
        .clone()
}

fn with_root_at(distractors: &[u8], root_pem: &[u8], index: usize) -> Vec<u8> {
    let b = Bundle::parse(distractors).unwrap();
    let mut out = Vec::with_capacity(distractors.len() + root_pem.len());
    for (i, _) in b.entries().iter().enumerate() {
        if i == index {
            out.extend_from_slice(root_pem);
        }
        out.extend_from_slice(b.entry_text(i).unwrap());
    }
    out
}

fn from_peers_data(dir: &Path) -> Vec<Workload> {
    let read = |f: &str| std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
    let meta: serde_json::Value = serde_json::from_slice(&read("meta.json")).unwrap();
    let at = time::OffsetDateTime::from_unix_timestamp(meta["verify_time_unix"].as_i64().unwrap())
        .unwrap();
    let bundle_100 = read("bundle-100.pem");
    [
        ("p256", "chain", "bundle-10000-with-R.pem"),
        ("rsa4096", "chain-rsa", "bundle-10000-with-R-rsa.pem"),
    ]
    .into_iter()
    .map(|(name, chain_dir, big)| {
        let root_pem = read(&format!("{chain_dir}/root.pem"));
        Workload {
            name,
            leaf: first_cert(&read(&format!("{chain_dir}/leaf.pem"))),
            intermediate: first_cert(&read(&format!("{chain_dir}/intermediate.pem"))),
            root: first_cert(&root_pem),
            leaf_pem: read(&format!("{chain_dir}/leaf.pem")),
            chain_pem: read(&format!("{chain_dir}/chain.pem")),
            bundles: vec![
                (1, root_pem.clone()),
                (100, with_root_at(&bundle_100, &root_pem, 50)),
                (10_000, read(big)),
            ],
            at,
        }
    })
    .collect()
}

fn generated() -> Vec<Workload> {
    let ca_usage = Some(KeyUsage::KEY_CERT_SIGN | KeyUsage::CRL_SIGN);
    let mut distractors = Vec::new();
    for i in 0..10_000u32 {
        let spec = CertSpec::root("Peer", &format!("Root {i}"))
            .key_usage(ca_usage)
            .serial(&(0x10000 + i).to_be_bytes());
        let key = TestKey::generate(KeyType::EcP256).unwrap();
        distractors.extend_from_slice(Issued::self_signed(&spec, &key).unwrap().pem().as_bytes());
    }
    let bundle_100 = {
        let b = Bundle::parse(&distractors).unwrap();
        (0..100)
            .flat_map(|i| b.entry_text(i).unwrap().to_vec())
            .collect::<Vec<u8>>()
    };
    // Leaf: 24 h from 2026-01-01, verified one hour in.
    let leaf_start = 1_767_225_600;
    let at = time::OffsetDateTime::from_unix_timestamp(leaf_start + 3600).unwrap();
    [
        ("p256", KeyType::EcP256, KeyType::EcP256),
        ("rsa4096", KeyType::Rsa4096, KeyType::Rsa2048),
    ]
    .into_iter()
    .map(|(name, ca_kind, leaf_kind)| {
        let root = Issued::self_signed(
            &CertSpec::root("Peer", "Chain Root").key_usage(ca_usage),
            &TestKey::pooled(ca_kind, 0),
        )
        .unwrap();
        let int = root
            .issue(
                &CertSpec::intermediate("Peer", "Chain Intermediate")
                    .key_usage(ca_usage)
                    .basic(Basic::Ca(Some(0))),
                &TestKey::pooled(ca_kind, 1),
            )
            .unwrap();
        let leaf = int
            .issue(
                &CertSpec::workload("spiffe://cluster.local/ns/default/sa/default")
                    .key_usage(Some(KeyUsage::DIGITAL_SIGNATURE))
                    .eku(&[Eku::ServerAuth, Eku::ClientAuth])
                    .validity(leaf_start, leaf_start + 86_400),
                &TestKey::pooled(leaf_kind, 2),
            )
            .unwrap();
        let root_pem = root.pem().into_bytes();
        Workload {
            name,
            leaf: leaf.cert().clone(),
            intermediate: int.cert().clone(),
            root: root.cert().clone(),
            leaf_pem: leaf.pem().into_bytes(),
            chain_pem: int.pem().into_bytes(),
            bundles: vec![
                (1, root_pem.clone()),
                (100, with_root_at(&bundle_100, &root_pem, 50)),
                (10_000, with_root_at(&distractors, &root_pem, 5000)),
            ],
            at,
        }
    })
    .collect()
}

fn workloads() -> Vec<Workload> {
    match std::env::var("MESHTRUST_PEERS_DATA") {
        Ok(d) => from_peers_data(&PathBuf::from(d)),
        Err(_) => generated(),
    }
}

fn bench(c: &mut Criterion) {
    for w in workloads() {
        let opts = VerifyOptions::at(w.at);
        let ints: CertPool = [w.intermediate.clone()].into_iter().collect();
        let mut g = c.benchmark_group(format!("verify {}", w.name));
        g.measurement_time(Duration::from_secs(6));
        g.bench_function("floor: 2 signature checks", |b| {
            b.iter(|| {
                w.leaf.verify_signed_by(&w.intermediate).unwrap();
                w.intermediate.verify_signed_by(&w.root).unwrap();
            })
        });
        for (n, pem) in &w.bundles {
            let roots = CertPool::from(&Bundle::parse(pem).unwrap());
            assert_eq!(roots.len(), if *n == 1 { 1 } else { n + 1 });
            let p = verify(&w.leaf, &ints, &roots, &opts).unwrap();
            assert_eq!((p.certificates().len(), p.signature_checks()), (3, 2));
            g.bench_with_input(BenchmarkId::new("warm", roots.len()), &roots, |b, roots| {
                b.iter(|| verify(&w.leaf, &ints, roots, &opts).unwrap())
            });
            if *n == 100 {
                continue;
            }
            // The data planes' policies on the same path (Strict above is the default).
            for policy in [Policy::Envoy, Policy::Ztunnel] {
                let opts = opts.clone().with_policy(policy);
                assert_eq!(
                    verify(&w.leaf, &ints, &roots, &opts)
                        .unwrap()
                        .certificates()
                        .len(),
                    3
                );
                let id = BenchmarkId::new(format!("warm {policy}"), roots.len());
                g.bench_with_input(id, &roots, |b, roots| {
                    b.iter(|| verify(&w.leaf, &ints, roots, &opts).unwrap())
                });
            }
        }
        let (_, big) = w.bundles.last().unwrap();
        g.sample_size(20);
        g.bench_function(
            "cold: parse 10,001-root PEM + index + parse chain + verify",
            |b| {
                b.iter(|| {
                    let roots = CertPool::from(&Bundle::parse(big).unwrap());
                    let leaf = first_cert(&w.leaf_pem);
                    let ints = CertPool::from(&Bundle::parse(&w.chain_pem).unwrap());
                    verify(&leaf, &ints, &roots, &opts).unwrap()
                })
            },
        );
        g.bench_function("cold part: Bundle::parse 10,001 roots", |b| {
            b.iter(|| Bundle::parse(big).unwrap())
        });
        let parsed = Bundle::parse(big).unwrap();
        g.bench_function("cold part: CertPool::from 10,001 roots", |b| {
            b.iter(|| CertPool::from(&parsed))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
