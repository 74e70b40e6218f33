//! Differential test: meshtrust's verifier against rustls-webpki 0.103 (what ztunnel uses) on
//! generated leaf chains with one defect each, for server and client usage.
//!
//! The verdicts must agree, except where a documented difference applies (see the
//! `meshtrust::verify` docs): webpki does not check its trust anchors (validity, cA,
//! pathLenConstraint, critical extensions) and ignores keyUsage.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::chains::{AT, Built, Case, Mutation, Pos, case_strategy, kind_strategy};
use meshtrust::verify::{CertPool, RequiredEku, VerifyOptions, verify};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

/// Which documented difference makes webpki accept what meshtrust rejects, if any.
fn webpki_accepts_because(c: &Case) -> Option<&'static str> {
    let anchor = "anchor not checked by webpki";
    match c.mutation {
        Mutation::Expired(Pos::Root)
        | Mutation::NotYetValid(Pos::Root)
        | Mutation::IssuerNotCa(Pos::Root)
        | Mutation::IssuerNoBasicConstraints(Pos::Root)
        | Mutation::UnknownCriticalExtension(Pos::Root)
        | Mutation::RekeyedRootCrossSigned => Some(anchor),
        Mutation::PathLenTooSmall(Pos::Root) if c.below(Pos::Root) >= 1 => Some(anchor),
        Mutation::NoKeyCertSign(p) if c.on_path(p) => Some("keyUsage ignored by webpki"),
        _ => None,
    }
}

fn webpki_verify(built: &Built, server: bool) -> Result<(), String> {
    let ders: Vec<CertificateDer<'static>> = built
        .roots
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    // As rustls' RootCertStore::add_parsable_certificates: unparsable roots are skipped.
    let anchors: Vec<TrustAnchor<'static>> = ders
        .iter()
        .filter_map(|d| {
            webpki::anchor_from_trusted_cert(d)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    let chain: Vec<CertificateDer<'static>> = built
        .chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let leaf = CertificateDer::from(built.target.der().to_vec());
    let ee = webpki::EndEntityCert::try_from(&leaf).map_err(|e| format!("end entity: {e:?}"))?;
    let usage = if server {
        webpki::KeyUsage::server_auth()
    } else {
        webpki::KeyUsage::client_auth()
    };
    ee.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &anchors,
        &chain,
        UnixTime::since_unix_epoch(Duration::from_secs(AT as u64)),
        usage,
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

#[derive(Default)]
struct Stats {
    cases: usize,
    agreed: BTreeMap<(bool, bool), usize>,
    differences: BTreeMap<&'static str, usize>,
}

fn check(case: &Case, server: bool, stats: &Mutex<Stats>) -> Result<(), TestCaseError> {
    let built = case
        .build()
        .map_err(|e| TestCaseError::fail(format!("building {case:?}: {e}")))?;
    let theirs = webpki_verify(&built, server);
    let roots: CertPool = built.roots.iter().cloned().collect();
    let chain: CertPool = built.chain.iter().cloned().collect();
    let at = time::OffsetDateTime::from_unix_timestamp(AT).unwrap();
    let eku = if server {
        RequiredEku::ServerAuth
    } else {
        RequiredEku::ClientAuth
    };
    let ours = verify(
        &built.target,
        &chain,
        &roots,
        &VerifyOptions::at(at).with_eku(eku),
    );
    let explain = || {
        format!(
            "{case:?} server={server}\nmeshtrust: {}\nwebpki: {theirs:?}",
            match &ours {
                Ok(p) => format!("valid {p}"),
                Err(e) => e.report(),
            }
        )
    };
    if !case.leaf_eku_allows(server) {
        prop_assert!(ours.is_err() && theirs.is_err(), "EKU: {}", explain());
    }
    let mut s = stats.lock().unwrap();
    s.cases += 1;
    match webpki_accepts_because(case) {
        Some(why) if case.leaf_eku_allows(server) => {
            prop_assert!(
                ours.is_err() && theirs.is_ok(),
                "expected a difference ({why}): {}",
                explain()
            );
            *s.differences.entry(why).or_default() += 1;
        }
        _ => {
            prop_assert_eq!(
                ours.is_ok(),
                theirs.is_ok(),
                "unexplained disagreement: {}",
                explain()
            );
            *s.agreed
                .entry((ours.is_ok(), case.leaf_eku_allows(server)))
                .or_default() += 1;
        }
    }
    Ok(())
}

#[test]
fn webpki_agrees_on_generated_leaf_chains() {
    let stats = Mutex::new(Stats::default());
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (case_strategy(kind_strategy().boxed()), any::<bool>());
    runner
        .run(&strategy, |(mut case, server)| {
            case.target = Pos::Leaf; // webpki verifies end entities only
            check(&case, server, &stats)
        })
        .unwrap();
    let s = stats.into_inner().unwrap();
    println!(
        "{} cases; agreed (valid, eku ok): {:?}; differences: {:?}",
        s.cases, s.agreed, s.differences
    );
    assert_eq!(s.cases, 400);
    // Both verdicts occurred, and both kinds of difference.
    assert!(
        s.agreed.keys().any(|k| k.0) && s.agreed.keys().any(|k| !k.0),
        "{:?}",
        s.agreed
    );
    assert_eq!(s.differences.len(), 2, "{:?}", s.differences);
}
