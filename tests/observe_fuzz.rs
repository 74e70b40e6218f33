//! The observe fuzz targets' seed corpora replayed through the same entry points
//! (`fuzz/corpus/observe*`), and property tests of the readers: both Envoy spellings and both
//! ztunnel forms read to the same report, and mutated real captures never panic (refusals
//! name the input and a location). `write_observe_seeds` (ignored) regenerates the seeds
//! built from a generated plan's phases.
#![cfg(feature = "testkit")]

use std::path::{Path, PathBuf};

use meshtrust::observe::{self, Observation};
use meshtrust::testkit::bundles::sample_certificates;
use meshtrust::testkit::dumps::{self, ZtunnelIdentity};
use meshtrust::testkit::fuzz;
use proptest::prelude::*;

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let mut n = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(corpus(target))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    for path in paths.into_iter().filter(|p| p.is_file()) {
        let data = std::fs::read(&path).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| f(&data)) {
            panic!("{}: {:?}", path.display(), e.downcast_ref::<String>());
        }
        n += 1;
    }
    n
}

#[test]
fn observe_corpus() {
    assert!(replay("observe", fuzz::observe) >= 10);
}

#[test]
fn observe_files_corpus() {
    assert!(replay("observe_files", fuzz::observe_files) >= 3);
}

#[test]
#[ignore = "writes fuzz/corpus/observe*/generated-*: run by hand to refresh the seeds"]
fn write_observe_seeds() {
    use meshtrust::generate::{self, KeyType};
    use meshtrust::plan::{self, ClusterInput, PlanOptions};
    let now = time::macros::datetime!(2026-06-01 12:00 UTC);
    let (_, a) = generate::istio_ca("cluster1", KeyType::EcP256, now).unwrap();
    let (_, b) = generate::istio_ca("cluster1", KeyType::EcP256, now).unwrap();
    let profile = meshtrust::istio::IstioProfile {
        multiroot: true,
        xds_agent: true,
        ..Default::default()
    };
    let p = plan::plan(
        &[ClusterInput::single(a.cacerts(), b.cacerts())],
        &profile,
        &PlanOptions::default(),
        now,
    )
    .unwrap();
    let files = dumps::phase_mesh(&p, 2, 2, 1, now).unwrap();
    for (name, body) in &files {
        std::fs::write(corpus("observe").join(format!("generated-{name}")), body).unwrap();
    }
    std::fs::write(
        corpus("observe_files").join("generated-phase-02"),
        fuzz::join_files(&files),
    )
    .unwrap();
}

fn report(name: &str, bytes: &[u8]) -> Vec<observe::ProxyReport> {
    match observe::read(name, bytes).unwrap() {
        Observation::Proxies(p) => p,
        other => panic!("{other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Envoy's snake_case and istioctl's camelCase read to the same report, leaf first,
    /// presented chain and roots in order.
    #[test]
    fn envoy_spellings_agree(chain in proptest::sample::subsequence((0..8usize).collect::<Vec<_>>(), 1..4),
                             roots in proptest::sample::subsequence((0..8usize).collect::<Vec<_>>(), 1..4)) {
        let certs = sample_certificates();
        let chain: Vec<_> = chain.iter().map(|&i| certs[i % certs.len()].clone()).collect();
        let roots: Vec<_> = roots.iter().map(|&i| certs[i % certs.len()].clone()).collect();
        let snake = report("p.json", dumps::envoy(&chain, &roots, false).as_bytes());
        let camel = report("p.json", dumps::envoy(&chain, &roots, true).as_bytes());
        prop_assert_eq!(&snake, &camel);
        prop_assert_eq!(snake[0].leaf.as_ref().and_then(|l| l.cert()), Some(&chain[0]));
        prop_assert_eq!(snake[0].chain.len(), chain.len() - 1);
        prop_assert_eq!(snake[0].roots.iter().filter_map(|r| r.cert()).cloned().collect::<Vec<_>>(), roots);
    }

    /// ztunnel's pre-1.26 form (root last in certChain, plain PEM, hex serials) and its 1.26
    /// form (rootCerts, base64 PEM, decimal serials) read to the same identity when it holds
    /// one root.
    #[test]
    fn ztunnel_forms_agree(chain in proptest::sample::subsequence((0..8usize).collect::<Vec<_>>(), 1..3), root in 0..8usize) {
        let certs = sample_certificates();
        let id = ZtunnelIdentity {
            identity: "spiffe://cluster.local/ns/a/sa/b".to_owned(),
            chain: chain.iter().map(|&i| certs[i % certs.len()].clone()).collect(),
            roots: vec![certs[root % certs.len()].clone()],
        };
        let old = report("z.json", dumps::ztunnel(std::slice::from_ref(&id), false).as_bytes());
        let new = report("z.json", dumps::ztunnel(std::slice::from_ref(&id), true).as_bytes());
        prop_assert_eq!(&old, &new);
        prop_assert_eq!(old[0].roots.len(), 1);
    }

    /// Mutated real captures never panic; a refusal names the input and a location.
    #[test]
    fn mutated_captures_are_refused_with_a_location(seed in 0..4usize, at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let files = ["envoy-config-dump.json", "ztunnel-dump-pre-1.26.json", "pc-secret-table.txt", "configmaps.json"];
        let mut data = std::fs::read(corpus("observe").join(files[seed])).unwrap();
        let i = at.index(data.len());
        if cut { data.truncate(i) } else { data[i] = byte }
        fuzz::observe(&data);
        if let Err(e) = observe::read("m.json", &data) {
            prop_assert_eq!(e.input, "m.json");
            prop_assert!(!e.location.is_empty());
        }
    }
}
