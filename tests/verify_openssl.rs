//! Differential test: meshtrust's verifier against `openssl verify -x509_strict -no-CApath
//! -no-CAstore -CAfile ROOTS -untrusted CHAIN -attime T`, on generated chains of depth 1 to
//! 4 (RSA PKCS#1 and PSS, ECDSA, Ed25519) with one deliberate defect each.
//!
//! Every case is judged three ways: a model of the defect (what must happen and which
//! failure must be reported), meshtrust, and OpenSSL. meshtrust must match the model
//! exactly (the verified path certificate by certificate, or a failure of the predicted
//! kind); OpenSSL must agree with meshtrust, except for the deliberate differences listed
//! in the `meshtrust::verify` docs, where the model predicts OpenSSL's exact error codes.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;

use common::{openssl_verify, pem_of};
use meshtrust::Bundle;
use meshtrust::signature::KeyAlgorithm;
use meshtrust::testkit::chains::{
    AT, BuiltChain, ChainCase, Defect, Node, Pos, TOPOLOGY_AT, TopologySpec, chain_case, key_kind,
    topology,
};
use meshtrust::verify::{CertPool, VerifyOptions, verify};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// What OpenSSL should say relative to meshtrust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ossl {
    /// The same verdict.
    Same,
    /// A documented difference: OpenSSL rejects with only codes from this set.
    Rejects(&'static str, &'static [u32]),
    /// A documented difference: OpenSSL accepts.
    Accepts(&'static str),
}

// OpenSSL X509_V_ERR codes.
const UNABLE_TO_GET_ISSUER_CERT: u32 = 2;
const CERT_HAS_EXPIRED: u32 = 10;
const DEPTH_ZERO_SELF_SIGNED_CERT: u32 = 18;
const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: u32 = 20;
const MISSING_AUTHORITY_KEY_IDENTIFIER: u32 = 85;
const CA_CERT_MISSING_KEY_USAGE: u32 = 92;

/// The model: the meshtrust failure kind expected (None = valid) and OpenSSL's relation.
fn model(c: &ChainCase, built: &BuiltChain) -> (Option<&'static str>, Ossl) {
    let on = |p: Pos| c.on_path(p);
    let issuer_on = |p: Pos| c.on_path(p) && p != c.target;
    let single = c.target == Pos::Root; // the target is the trusted root itself
    let valid = (None, Ossl::Same);
    let invalid = |k| (Some(k), Ossl::Same);
    match c.defect {
        Defect::None | Defect::NotBeforeBoundary(_) => valid,
        Defect::Expired(p) if on(p) => invalid("expired"),
        Defect::NotYetValid(p) if on(p) => invalid("not-yet-valid"),
        Defect::UnknownIssuerName if c.target == Pos::Leaf => invalid("unknown-issuer"),
        Defect::WrongKey if c.target == Pos::Leaf => invalid("bad-signature"),
        Defect::Tampered(p) if on(p) && p != Pos::Root => invalid("bad-signature"),
        Defect::IssuerNotCa(p) | Defect::IssuerNoBasicConstraints(p) if issuer_on(p) => {
            invalid("issuer-not-ca")
        }
        Defect::PathLenTooSmall(p) if issuer_on(p) && c.below(p) >= 1 => {
            invalid("path-length-exceeded")
        }
        Defect::NoKeyCertSign(p) if issuer_on(p) => invalid("missing-key-cert-sign"),
        Defect::UnknownCriticalExtension(p) if on(p) => invalid("unknown-critical-extension"),
        Defect::AlgorithmMismatch(p) if on(p) => (
            Some("signature-algorithm-mismatch"),
            // OpenSSL runs its -x509_strict checks only on chains of two or more.
            // That holds when the TBS algorithm still fits the key type (the generated
            // mismatch only changes the hash for RSA and ECDSA keys, but names ECDSA for an
            // Ed25519 key): otherwise OpenSSL does not consider the root self-signed and
            // looks for its issuer, in vain.
            if single && !matches!(built.target.key_algorithm(), KeyAlgorithm::Ed25519) {
                Ossl::Accepts("difference 9: one-certificate paths get no strict checks")
            } else {
                Ossl::Same
            },
        ),
        Defect::RootTwin { keep_real: false } => invalid("bad-signature"),
        // The target is the real root; the twin has its name and comes first in the file.
        // Neither carries an authorityKeyIdentifier (as Istio's tools/certs roots), so
        // OpenSSL takes the twin as the target's trusted "issuer" without checking a
        // signature, and never tries the real one.
        Defect::RootTwin { keep_real: true } if single && built.twin_first() => (
            None,
            Ossl::Rejects(
                "difference 8: no backtracking in OpenSSL",
                &[DEPTH_ZERO_SELF_SIGNED_CERT],
            ),
        ),
        Defect::ExpiryBoundary(p) if on(p) => (
            None,
            Ossl::Rejects("difference 4: notAfter inclusive", &[CERT_HAS_EXPIRED]),
        ),
        Defect::CaWithoutKeyUsage(p) if on(p) && !single => (
            None,
            Ossl::Rejects("difference 1: profile rule", &[CA_CERT_MISSING_KEY_USAGE]),
        ),
        Defect::MissingAki(p) if on(p) => (
            None,
            Ossl::Rejects(
                "difference 1: profile rule",
                &[MISSING_AUTHORITY_KEY_IDENTIFIER],
            ),
        ),
        Defect::MisleadingAki(p) if on(p) => (
            None,
            Ossl::Rejects(
                "difference 2: AKI is a hint",
                &[UNABLE_TO_GET_ISSUER_CERT, UNABLE_TO_GET_ISSUER_CERT_LOCALLY],
            ),
        ),
        Defect::IntermediateAsAnchor if c.target == Pos::Root => invalid("unknown-issuer"),
        Defect::IntermediateAsAnchor => (
            None,
            Ossl::Rejects(
                "difference 3: any root is an anchor",
                &[UNABLE_TO_GET_ISSUER_CERT, UNABLE_TO_GET_ISSUER_CERT_LOCALLY],
            ),
        ),
        Defect::RekeyedRootCrossSigned if matches!(c.target, Pos::Leaf | Pos::Int(1..)) => (
            Some("path-length-exceeded"),
            Ossl::Accepts("difference 5: self-issued intermediates count"),
        ),
        // The defect is off the target's path, or harmless where it is.
        _ => valid,
    }
}

#[derive(Default, Debug)]
struct Stats {
    cases: usize,
    depths: BTreeMap<usize, usize>,
    algorithms: BTreeMap<String, usize>,
    by_defect: BTreeMap<String, [usize; 2]>,
    differences: BTreeMap<&'static str, usize>,
    openssl_codes: BTreeMap<u32, usize>,
}

fn check(case: &ChainCase, stats: &Mutex<Stats>) -> Result<(), TestCaseError> {
    let built = case
        .build()
        .map_err(|e| TestCaseError::fail(format!("building {case:?}: {e}")))?;
    let roots_pem = pem_of(&built.roots);
    let chain_pem = pem_of(&built.chain);
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let ossl = openssl_verify(
        dir.path(),
        true,
        &roots_pem,
        &chain_pem,
        &built.target.to_pem(),
        AT,
    );

    let roots = CertPool::from(&Bundle::parse(roots_pem.as_bytes()).unwrap());
    let chain = CertPool::from(&Bundle::parse(chain_pem.as_bytes()).unwrap());
    let at = time::OffsetDateTime::from_unix_timestamp(AT).unwrap();
    let ours = verify(&built.target, &chain, &roots, &VerifyOptions::at(at));
    let (expected, relation) = model(case, &built);

    // meshtrust against the model.
    match (&ours, expected) {
        (Ok(p), None) => {
            let mut want: Vec<Pos> = case.path();
            if case.defect == Defect::IntermediateAsAnchor {
                want.pop(); // the path ends at intermediate 0, trusted as an anchor
            }
            let want: Vec<_> = want.iter().map(|p| built.by_pos[p].fingerprint()).collect();
            prop_assert_eq!(p.fingerprints(), want, "wrong path for {:?}", case);
        }
        (Err(e), Some(kind)) => prop_assert!(
            e.any(|f| f.kind() == kind),
            "expected a {} failure for {:?}, got:\n{}",
            kind,
            case,
            e.report()
        ),
        (Ok(p), Some(kind)) => {
            prop_assert!(false, "expected {kind}, got a valid path {p} for {case:?}")
        }
        (Err(e), None) => {
            prop_assert!(false, "expected valid for {:?}, got:\n{}", case, e.report())
        }
    }
    // OpenSSL against meshtrust: agreement, or a documented difference exactly as predicted.
    let explain = || {
        format!(
            "{case:?}\nmeshtrust: {}\nopenssl: {}",
            match &ours {
                Ok(p) => format!("valid {p}"),
                Err(e) => e.report(),
            },
            ossl.output
        )
    };
    match relation {
        Ossl::Same => prop_assert_eq!(
            ossl.ok,
            ours.is_ok(),
            "unexplained disagreement: {}",
            explain()
        ),
        Ossl::Rejects(why, codes) => {
            prop_assert!(
                !ossl.ok
                    && !ossl.errors.is_empty()
                    && ossl.errors.iter().all(|c| codes.contains(c)),
                "expected OpenSSL to reject with {codes:?} ({why}): {}",
                explain()
            );
        }
        Ossl::Accepts(why) => {
            prop_assert!(ossl.ok, "expected OpenSSL to accept ({why}): {}", explain())
        }
    }

    let mut s = stats.lock().unwrap();
    s.cases += 1;
    *s.depths.entry(case.depth).or_default() += 1;
    for c in built.by_pos.values() {
        *s.algorithms
            .entry(c.signature_algorithm().name())
            .or_default() += 1;
    }
    s.by_defect.entry(case.defect.name()).or_default()[usize::from(ours.is_ok())] += 1;
    match relation {
        Ossl::Same => {}
        Ossl::Rejects(why, _) | Ossl::Accepts(why) => *s.differences.entry(why).or_default() += 1,
    }
    for code in &ossl.errors {
        *s.openssl_codes.entry(*code).or_default() += 1;
    }
    Ok(())
}

fn run(cases: u32) {
    let stats = Mutex::new(Stats::default());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&chain_case(key_kind().boxed()), |case| check(&case, &stats))
        .unwrap();
    let s = stats.into_inner().unwrap();
    println!(
        "{} cases; (invalid, valid) per defect: {:#?}",
        s.cases, s.by_defect
    );
    println!(
        "depths: {:?}\nsignature algorithms: {:?}",
        s.depths, s.algorithms
    );
    println!("documented differences seen: {:#?}", s.differences);
    println!("OpenSSL error codes seen: {:?}", s.openssl_codes);
    assert_eq!(s.cases, cases as usize);
    // Every kind of defect was generated, and each documented difference was observed.
    assert!(s.by_defect.len() >= 18, "{:?}", s.by_defect.keys());
    assert!(s.differences.len() >= 5, "{:?}", s.differences);
    assert_eq!(s.depths.len(), 4, "depths 1 to 4: {:?}", s.depths);
    for alg in [
        "sha256WithRSAEncryption",
        "sha384WithRSAEncryption",
        "sha512WithRSAEncryption",
        "RSASSA-PSS-SHA256",
        "RSASSA-PSS-SHA384",
        "RSASSA-PSS-SHA512",
        "ecdsa-with-SHA256",
        "ecdsa-with-SHA384",
        "Ed25519",
    ] {
        assert!(
            s.algorithms.contains_key(alg),
            "{alg} never generated: {:?}",
            s.algorithms
        );
    }
}

/// Each documented difference on a fixed case, so that every run observes all of them
/// (the random cases above hit most, not necessarily all).
#[test]
fn every_documented_difference_is_observed() {
    use meshtrust::testkit::KeyType::*;
    let base = ChainCase {
        depth: 3,
        kinds: vec![Rsa2048, EcP256, Ed25519, EcP384],
        sigs: vec![3, 0, 0, 0],
        windows: vec![(100, 100); 4],
        target: Pos::Leaf,
        defect: Defect::None,
        distractors: 1,
        dup_roots: true,
        seed: 7,
        chain_dups: true,
        root_in_chain: true,
        workload_leaf: true,
        leaf_eku: 0,
    };
    let with = |m: Defect, target: Pos| ChainCase {
        defect: m,
        target,
        ..base.clone()
    };
    let mut cases = vec![
        with(Defect::CaWithoutKeyUsage(Pos::Int(0)), Pos::Leaf),
        with(Defect::MissingAki(Pos::Leaf), Pos::Leaf),
        with(Defect::MisleadingAki(Pos::Int(1)), Pos::Leaf),
        with(Defect::IntermediateAsAnchor, Pos::Leaf),
        with(Defect::ExpiryBoundary(Pos::Root), Pos::Leaf),
        with(Defect::RekeyedRootCrossSigned, Pos::Leaf),
        with(Defect::AlgorithmMismatch(Pos::Root), Pos::Root),
    ];
    // Difference 8 needs the twin before the real root in the file: try seeds until so.
    let twin = (0..64u64)
        .map(|seed| ChainCase {
            seed,
            dup_roots: false,
            ..with(Defect::RootTwin { keep_real: true }, Pos::Root)
        })
        .find(|c| c.build().unwrap().twin_first())
        .unwrap();
    cases.push(twin);
    let stats = Mutex::new(Stats::default());
    for c in &cases {
        check(c, &stats).unwrap_or_else(|e| panic!("{e}"));
    }
    let s = stats.into_inner().unwrap();
    // Differences 1 to 5, 8 and 9 (6 needs version 1 certificates, which the factory does
    // not make; 7 is observed by `openssl_made_pss_chains`).
    assert_eq!(s.differences.len(), 7, "{:#?}", s.differences);
}

#[test]
fn openssl_agrees_on_generated_chains_part_1() {
    run(500);
}

#[test]
fn openssl_agrees_on_generated_chains_part_2() {
    run(500);
}

/// RSA-PSS made by OpenSSL itself (an independent producer of the parameters' encoding):
/// salt = digest length verifies; OpenSSL's "max" salt length is refused as unsupported
/// (difference 7: ring accepts only salt = hash length) while OpenSSL accepts it.
#[test]
fn openssl_made_pss_chains() {
    let dir = tempfile::tempdir().unwrap();
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let root_key = format!("{keys}/rsa-2048-0.pem");
    let leaf_key = format!("{keys}/rsa-2048-1.pem");
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &root_key,
        "-subj",
        "/O=PSS/CN=PSS Root",
        "-days",
        "3650",
        "-sha256",
        "-sigopt",
        "rsa_padding_mode:pss",
        "-sigopt",
        "rsa_pss_saltlen:digest",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-out",
        "root.pem",
    ]);
    run(&[
        "req",
        "-new",
        "-key",
        &leaf_key,
        "-subj",
        "/CN=pss leaf",
        "-out",
        "leaf.csr",
    ]);
    std::fs::write(
        dir.path().join("ext.cnf"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid\n",
    )
    .unwrap();
    for (out, hash, salt) in [
        ("leaf-384.pem", "-sha384", "digest"),
        ("leaf-512.pem", "-sha512", "digest"),
        ("leaf-max.pem", "-sha256", "max"),
    ] {
        run(&[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "root.pem",
            "-CAkey",
            &root_key,
            "-days",
            "365",
            hash,
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            &format!("rsa_pss_saltlen:{salt}"),
            "-set_serial",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            out,
        ]);
    }
    let read = |f: &str| Bundle::parse(&std::fs::read(dir.path().join(f)).unwrap()).unwrap();
    let roots = CertPool::from(&read("root.pem"));
    let root = roots.iter().next().unwrap().clone();
    assert_eq!(root.signature_algorithm().name(), "RSASSA-PSS-SHA256");
    let at = root.not_before() + time::Duration::hours(1);
    let opts = VerifyOptions::at(at);
    for (file, alg) in [
        ("leaf-384.pem", "RSASSA-PSS-SHA384"),
        ("leaf-512.pem", "RSASSA-PSS-SHA512"),
    ] {
        let leaf = read(file).certificates().next().unwrap().clone();
        assert_eq!(leaf.signature_algorithm().name(), alg);
        let p = verify(&leaf, &CertPool::new(), &roots, &opts).unwrap();
        assert_eq!(p.certificates().len(), 2);
    }
    let max = read("leaf-max.pem").certificates().next().unwrap().clone();
    let e = verify(&max, &CertPool::new(), &roots, &opts).unwrap_err();
    assert_eq!(
        e.failures()[0].error.kind(),
        "unsupported-algorithm",
        "{}",
        e.report()
    );
    let pem = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    let ossl = openssl_verify(
        dir.path(),
        true,
        &pem("root.pem"),
        "",
        &pem("leaf-max.pem"),
        at.unix_timestamp(),
    );
    assert!(ossl.ok, "{}", ossl.output);
}

/// Where OpenSSL's greedy issuer choice (trusted store first, then the untrusted file; no
/// backtracking, difference 8) cannot go wrong: each step has at most one candidate issuer
/// (and a trusted one that is valid, or none in the untrusted file). Returns the verdict
/// OpenSSL must give, or None when the topology is ambiguous for it.
fn openssl_greedy_verdict(spec: &TopologySpec, leaf: usize) -> Option<bool> {
    let valid = |n: Node| spec.lifetime(n).is_some_and(|l| l.is_valid());
    let mut n = Node::Leaf(leaf);
    if !valid(n) {
        return Some(false);
    }
    for _ in 0..16 {
        if matches!(n, Node::Root(_)) {
            return Some(false); // a self-signed, untrusted certificate ends OpenSSL's chain
        }
        let is = spec.issuers(n);
        if let Some(&r) = is.trusted.first() {
            if valid(Node::Root(r)) {
                return Some(true);
            }
            if is.pool.is_empty() {
                return Some(false);
            }
            return None; // meshtrust backtracks into the untrusted file, OpenSSL does not
        }
        match is.pool.as_slice() {
            [] => return Some(false),
            [one] if !valid(*one) => return Some(false),
            [one] => n = *one,
            _ => return None,
        }
    }
    None
}

/// Random CA topologies (cross-signed and re-keyed roots, trees of intermediates): meshtrust
/// finds a path exactly when the testkit's model says a trusted root is reachable, and
/// OpenSSL agrees wherever its greedy choice is unambiguous.
#[test]
fn openssl_agrees_on_topologies() {
    let at = time::OffsetDateTime::from_unix_timestamp(TOPOLOGY_AT).unwrap();
    let compared = Mutex::new((0usize, 0usize, 0usize));
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&topology(), |spec| {
            let t = spec
                .build()
                .map_err(|e| TestCaseError::fail(format!("building {spec:?}: {e}")))?;
            let trusted = t.trusted_roots();
            let chain = t.chain_pool();
            let roots: CertPool = trusted.iter().cloned().collect();
            let pool: CertPool = chain.iter().cloned().collect();
            let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (l, leaf) in t.leaves.iter().enumerate() {
                let ours = verify(leaf.cert(), &pool, &roots, &VerifyOptions::at(at));
                let model = !spec.expected_anchors(l, true).is_empty();
                prop_assert_eq!(ours.is_ok(), model, "leaf {} of {:?}", l, spec);
                let mut c = compared.lock().unwrap();
                c.0 += 1;
                let Some(want) = openssl_greedy_verdict(&spec, l) else {
                    continue;
                };
                prop_assert_eq!(want, model, "greedy and full search disagree on {:?}", spec);
                if trusted.is_empty() {
                    continue; // openssl refuses an empty -CAfile
                }
                let ossl = openssl_verify(
                    dir.path(),
                    true,
                    &pem_of(&trusted),
                    &pem_of(&chain),
                    &leaf.cert().to_pem(),
                    TOPOLOGY_AT,
                );
                prop_assert_eq!(ossl.ok, want, "leaf {} of {:?}: {}", l, spec, ossl.output);
                c.1 += 1;
                c.2 += usize::from(want);
            }
            Ok(())
        })
        .unwrap();
    let (leaves, with_openssl, valid) = compared.into_inner().unwrap();
    println!("{leaves} leaves; {with_openssl} compared with OpenSSL, {valid} of them valid");
    assert!(
        with_openssl >= leaves / 2 && valid >= with_openssl / 4 && valid <= with_openssl * 3 / 4
    );
}
