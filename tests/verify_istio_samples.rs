//! Real material: Istio's samples/certs (two roots named alike, their intermediates, workload
//! leaves) and the combined root file of seed 002. Every leaf and intermediate must verify
//! against the root files that hold its root and fail against the others, and `openssl
//! verify` (without -x509_strict: Istio's sample root A breaks several RFC 5280 profile
//! rules, see difference 1 in the `meshtrust::verify` docs) must agree on every cell.

mod common;

use meshtrust::verify::{self, CertPool, Chain, VerifyOptions};
use meshtrust::{Bundle, Certificate, SpiffeId};

/// 2025-07-01T00:00:00Z: inside every sample's validity (seed 002's tools/certs root starts
/// on 2025-06-24).
const AT: i64 = 1_751_328_000;

fn read(path: &str) -> Bundle {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    Bundle::parse(&std::fs::read(&full).unwrap()).unwrap()
}

fn opts() -> VerifyOptions {
    VerifyOptions::at(time::OffsetDateTime::from_unix_timestamp(AT).unwrap())
}

/// Root A (root-cert.pem) or root B (root-cert-alt.pem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    A,
    B,
}

const SUBJECT_FILES: [(&str, Family); 9] = [
    ("ca-cert.pem", Family::A),
    ("cert-chain.pem", Family::A),
    ("workload-foo-cert.pem", Family::A),
    ("workload-bar-cert.pem", Family::A),
    ("leaf-workload-foo-cert.pem", Family::A),
    ("leaf-workload-bar-cert.pem", Family::A),
    ("ca-cert-alt.pem", Family::B),
    ("cert-chain-alt.pem", Family::B),
    ("cert-chain-alt-2.pem", Family::B),
];

/// Root files and the families they trust.
const ROOT_FILES: [(&str, &[Family]); 8] = [
    ("istio-samples/root-cert.pem", &[Family::A]),
    ("istio-samples/root-cert-alt.pem", &[Family::B]),
    (
        "istio-samples/root-cert-combined.pem",
        &[Family::A, Family::B],
    ),
    (
        "istio-samples/root-cert-combined-2.pem",
        &[Family::A, Family::B],
    ),
    ("istio-samples/workload-foo-root-certs.pem", &[Family::A]),
    ("istio-samples/workload-bar-root-certs.pem", &[Family::A]),
    ("istio-samples/ca-cert-alt-2.pem", &[]), // an intermediate, trusted as anchor below
    // Istio's self-signed root + a tools/certs "O=Istio, CN=Root CA" with another key.
    ("seeds/seed002-combined-root.pem", &[]),
];

/// Every certificate of every subject file, with the rest of its file (and, for the bare
/// leaves, ca-cert.pem) as intermediates.
fn targets() -> Vec<(String, Family, Chain)> {
    let ca = read("istio-samples/ca-cert.pem");
    let mut out = Vec::new();
    for (file, family) in SUBJECT_FILES {
        let b = read(&format!("istio-samples/{file}"));
        let certs: Vec<Certificate> = b.certificates().cloned().collect();
        for (i, target) in certs.iter().enumerate() {
            let mut chain = Chain::new(
                target.clone(),
                certs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, c)| c.clone()),
            );
            if file.starts_with("leaf-") {
                chain = chain.with_intermediates(ca.certificates());
            }
            out.push((format!("{file}#{i}"), family, chain));
        }
    }
    out
}

#[test]
fn every_sample_verifies_against_its_roots_and_only_those() {
    let dir = tempfile::tempdir().unwrap();
    let mut cells = 0;
    for (root_file, trusted) in ROOT_FILES {
        let bundle = read(root_file);
        let roots = CertPool::from(&bundle);
        for (name, family, chain) in targets() {
            let ours = verify::verify(chain.target(), chain.intermediates(), &roots, &opts());
            let mut expected = trusted.contains(&family);
            if root_file.ends_with("ca-cert-alt-2.pem") {
                // Trusting cluster 2's intermediate as an anchor: only itself verifies (a
                // one-certificate path); OpenSSL needs a self-signed anchor (difference 3),
                // so this file is checked here without the oracle.
                expected = name == "cert-chain-alt-2.pem#0";
                assert_eq!(
                    ours.is_ok(),
                    expected,
                    "{name} against {root_file}: {ours:?}"
                );
                continue;
            }
            assert_eq!(
                ours.is_ok(),
                expected,
                "{name} against {root_file}: {}",
                match &ours {
                    Ok(p) => p.to_string(),
                    Err(e) => e.report(),
                }
            );
            let chain_pem = common::pem_of(chain.intermediates().iter());
            let ossl = common::openssl_verify(
                dir.path(),
                false,
                &String::from_utf8_lossy(bundle.bytes()),
                &chain_pem,
                &chain.target().to_pem(),
                AT,
            );
            assert_eq!(
                ossl.ok, expected,
                "OpenSSL on {name} against {root_file}: {}",
                ossl.output
            );
            cells += 1;
        }
    }
    assert_eq!(cells, 7 * 13);
}

#[test]
fn the_named_cases() {
    let ca_alt = read("istio-samples/ca-cert-alt.pem");
    let ca_alt = ca_alt.certificates().next().unwrap();
    let none = CertPool::new();
    let a = CertPool::from(&read("istio-samples/root-cert.pem"));
    let e = verify::verify(ca_alt, &none, &a, &opts()).unwrap_err();
    assert_eq!(e.failures().len(), 1);
    assert_eq!(e.failures()[0].error.kind(), "unknown-issuer");
    assert!(e.to_string().contains("\"CN=Root CA,O=Istio\""), "{e}");

    let abb = CertPool::from(&read("istio-samples/root-cert-combined-2.pem"));
    let p = verify::verify(ca_alt, &none, &abb, &opts()).unwrap();
    assert_eq!(p.certificates().len(), 2);
    assert_eq!(p.anchor().subject(), "CN=Root CA,O=Istio");

    // Seed 002's "Root CA" has root B's name and another key: a bad signature, not a
    // missing issuer. Before that root's notBefore the cheaper reason is given instead.
    let seed = CertPool::from(&read("seeds/seed002-combined-root.pem"));
    let e = verify::verify(ca_alt, &none, &seed, &opts()).unwrap_err();
    assert_eq!(
        e.failures()[0].error.kind(),
        "bad-signature",
        "{}",
        e.report()
    );
    let june = VerifyOptions::at(time::macros::datetime!(2025-06-01 0:00 UTC));
    let e = verify::verify(ca_alt, &none, &seed, &june).unwrap_err();
    assert_eq!(
        e.failures()[0].error.kind(),
        "not-yet-valid",
        "{}",
        e.report()
    );
    assert_eq!(e.signature_checks(), 0);

    // Workload leaves carry their SPIFFE IDs; the foo leaf is not bar.
    let foo = Chain::from_bundle(&read("istio-samples/workload-foo-cert.pem")).unwrap();
    let foo_roots = CertPool::from(&read("istio-samples/workload-foo-root-certs.pem"));
    let foo_id: SpiffeId = foo.target().spiffe_ids()[0].clone();
    assert_eq!(foo_id.trust_domain(), "trust-domain-foo");
    assert!(
        verify::verify(
            foo.target(),
            foo.intermediates(),
            &foo_roots,
            &opts().with_spiffe_id(foo_id)
        )
        .is_ok()
    );
    let bar = read("istio-samples/leaf-workload-bar-cert.pem");
    let bar_id = bar.certificates().next().unwrap().spiffe_ids()[0].clone();
    let e = verify::verify(
        foo.target(),
        foo.intermediates(),
        &foo_roots,
        &opts().with_spiffe_id(bar_id),
    )
    .unwrap_err();
    assert_eq!(e.failures()[0].error.kind(), "spiffe-id-mismatch");

    // Which roots of A+B+B anchor cluster 1's chain: B only, at file position 1.
    let chain = Chain::from_bundle(&read("istio-samples/cert-chain-alt.pem")).unwrap();
    let found = verify::anchoring_roots(chain.target(), chain.intermediates(), &abb, &opts());
    assert!(found.is_complete());
    assert_eq!(found.roots().len(), 1);
    assert_eq!(abb.position(&found.roots()[0].fingerprint()), Some(1));
    // Root A has another name: it is never a candidate, so no path failed.
    assert!(found.failures().is_empty(), "{:?}", found.failures());
}

#[test]
fn rotation_cross_matrix_of_the_sample_phases() {
    // Istio's own rotation test: trust A; A+B; A+B+B with B's intermediate; B.
    let phases: Vec<CertPool> = [
        "root-cert.pem",
        "root-cert-combined.pem",
        "root-cert-combined-2.pem",
        "root-cert-alt.pem",
    ]
    .iter()
    .map(|f| CertPool::from(&read(&format!("istio-samples/{f}"))))
    .collect();
    let old = Chain::from_bundle(&read("istio-samples/workload-foo-cert.pem")).unwrap();
    let new = Chain::from_bundle(&read("istio-samples/cert-chain-alt.pem")).unwrap();
    let m = verify::cross_matrix(&[old, new], &phases, &opts());
    let fails: Vec<(usize, usize)> = m.failures().map(|(i, j, _)| (i, j)).collect();
    // The old leaf fails only once A is gone; the new chain only before B arrives.
    assert_eq!(fails, [(0, 3), (1, 0)], "{m}");
}
