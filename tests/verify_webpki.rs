//! Differential test: meshtrust's verifier against rustls-webpki 0.103 (what ztunnel uses) on
//! generated leaf chains with one defect each, for server and client usage, and on random CA
//! topologies (cross-signed and re-keyed roots, expired certificates) against the testkit's
//! model of which roots anchor each leaf.
//!
//! The verdicts must agree, except where a documented difference applies (see the
//! `meshtrust::verify` docs): webpki does not check its trust anchors (validity, cA,
//! pathLenConstraint, critical extensions) and ignores keyUsage.
//!
//! `Policy::Ztunnel` (webpki's semantics) must agree with webpki on every one of the same
//! inputs, without exception, in both orders of the roots and of the chain, webpki's error
//! being among its failed paths; on the topologies it finds exactly the anchors webpki can
//! reach. The one tolerated difference in the error (not the verdict): webpki searches each
//! copy of a duplicated intermediate, so its signature budget can run out where meshtrust's
//! deduplicated pools do not.

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use meshtrust::Certificate;
use meshtrust::testkit::chains::{AT, BuiltChain, ChainCase, Defect, Pos, chain_case, key_kind};
use meshtrust::testkit::chains::{Node, TOPOLOGY_AT, topology};
use meshtrust::verify::{CertPool, Policy, RequiredEku, VerifiedPath, VerifyError, VerifyOptions};
use meshtrust::verify::{anchoring_roots, verify};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

/// Which documented difference makes webpki accept what meshtrust rejects, if any.
fn webpki_accepts_because(c: &ChainCase) -> Option<&'static str> {
    let anchor = "anchor not checked by webpki";
    match c.defect {
        Defect::Expired(Pos::Root)
        | Defect::NotYetValid(Pos::Root)
        | Defect::IssuerNotCa(Pos::Root)
        | Defect::IssuerNoBasicConstraints(Pos::Root)
        | Defect::UnknownCriticalExtension(Pos::Root)
        | Defect::RekeyedRootCrossSigned => Some(anchor),
        Defect::PathLenTooSmall(Pos::Root) if c.below(Pos::Root) >= 1 => Some(anchor),
        Defect::NoKeyCertSign(p) if c.on_path(p) => Some("keyUsage ignored by webpki"),
        _ => None,
    }
}

fn webpki_verify(built: &BuiltChain, server: bool) -> Result<(), String> {
    webpki_verify_parts(&built.roots, &built.chain, &built.target, AT, server)
}

fn webpki_verify_parts(
    roots: &[Certificate],
    chain: &[Certificate],
    target: &Certificate,
    at: i64,
    server: bool,
) -> Result<(), String> {
    let ders: Vec<CertificateDer<'static>> = roots
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
    let chain: Vec<CertificateDer<'static>> = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let leaf = CertificateDer::from(target.der().to_vec());
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
        UnixTime::since_unix_epoch(Duration::from_secs(at as u64)),
        usage,
        None,
        None,
    )
    .map(|_| ())
    .map_err(|e| format!("{e:?}"))
}

/// `Policy::Ztunnel` against webpki: the same verdict, and when both refuse, webpki's error
/// (the most specific of its failed paths) is among meshtrust's failed paths.
fn ztunnel_agrees(
    ours: &Result<VerifiedPath, VerifyError>,
    theirs: &Result<(), String>,
) -> Result<(), String> {
    match (ours, theirs) {
        (Ok(_), Ok(())) => Ok(()),
        (Err(e), Err(w)) => {
            // The end entity's parse errors are prefixed (see `webpki_verify_parts`).
            let code = w.strip_prefix("end entity: ").unwrap_or(w);
            let kinds: &[&str] = match code.split(['(', ' ', '{']).next().unwrap_or_default() {
                "CertExpired" => &["expired"],
                "CertNotValidYet" => &["not-yet-valid"],
                "InvalidSignatureForPublicKey" => &["bad-signature"],
                // A key of another type than the signature's (ring: key mismatch).
                "UnsupportedSignatureAlgorithmForPublicKey"
                | "UnsupportedSignatureAlgorithmForPublicKeyContext" => {
                    &["bad-signature", "unsupported-algorithm"]
                }
                "UnsupportedSignatureAlgorithm" | "UnsupportedSignatureAlgorithmContext" => {
                    &["unsupported-algorithm"]
                }
                "CaUsedAsEndEntity" => &["ca-as-end-entity"],
                "EndEntityUsedAsCa" => &["issuer-not-ca"],
                "PathLenConstraintViolated" => &["path-length-exceeded"],
                "RequiredEkuNotFound" | "RequiredEkuNotFoundContext" => &["eku-not-allowed"],
                "UnknownIssuer" => &["unknown-issuer", "loop"],
                "MaximumPathDepthExceeded" => &["too-deep"],
                "SignatureAlgorithmMismatch" => &["signature-algorithm-mismatch"],
                "UnsupportedCriticalExtension" => &["unknown-critical-extension"],
                // Both refuse. webpki searches each copy of a duplicated intermediate (the
                // testkit's chain_dups / dup_roots), meshtrust's pools hold it once, so
                // webpki's budget can run out where meshtrust's does not (documented).
                "MaximumSignatureChecksExceeded" | "MaximumPathBuildCallsExceeded" => return Ok(()),
                other => return Err(format!("unmapped webpki error {other}: {w}")),
            };
            if e.any(|x| kinds.contains(&x.kind())) {
                Ok(())
            } else {
                Err(format!("webpki's {w} is not among ours: {}", e.report()))
            }
        }
        (Ok(p), Err(w)) => Err(format!("ztunnel valid {p}, webpki {w}")),
        (Err(e), Ok(())) => Err(format!("ztunnel invalid, webpki valid: {}", e.report())),
    }
}

#[derive(Default)]
struct Stats {
    cases: usize,
    agreed: BTreeMap<(bool, bool), usize>,
    differences: BTreeMap<&'static str, usize>,
}

fn check(case: &ChainCase, server: bool, stats: &Mutex<Stats>) -> Result<(), TestCaseError> {
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
    // Policy::Ztunnel is webpki's semantics: same verdict, no documented difference, and
    // webpki's (most specific) error among the failed paths.
    let ztunnel = verify(
        &built.target,
        &chain,
        &roots,
        &VerifyOptions::at(at)
            .with_eku(eku)
            .with_policy(Policy::Ztunnel),
    );
    ztunnel_agrees(&ztunnel, &theirs)
        .map_err(|m| TestCaseError::fail(format!("{m}: {}", explain())))?;
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
    let strategy = (chain_case(key_kind().boxed()), any::<bool>());
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

#[derive(Default, Debug)]
struct TopologyStats {
    leaves: usize,
    anchored: usize,
    several_anchors: usize,
    only_through_cross_signature: usize,
    rekeyed_roots: usize,
    expired_anchor_webpki_accepts: usize,
}

/// Random topologies: meshtrust finds exactly the anchors the testkit's model predicts (every
/// trusted root reachable through valid certificates, by name and key), and webpki's verdict
/// is the model's with unchecked anchors (documented difference 1).
#[test]
fn topologies_anchor_as_modelled() {
    let at = time::OffsetDateTime::from_unix_timestamp(TOPOLOGY_AT).unwrap();
    let stats = Mutex::new(TopologyStats::default());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&topology(), |spec| {
            let t = spec
                .build()
                .map_err(|e| TestCaseError::fail(format!("building {spec:?}: {e}")))?;
            let trusted = t.trusted_roots();
            let roots: CertPool = trusted.iter().cloned().collect();
            let chain = t.chain_pool();
            let pool: CertPool = chain.iter().cloned().collect();
            let mut s = stats.lock().unwrap();
            let names: std::collections::HashSet<usize> =
                spec.roots.iter().map(|r| r.name).collect();
            if names.len() < spec.roots.len() {
                s.rekeyed_roots += 1;
            }
            for (l, leaf) in t.leaves.iter().enumerate() {
                let found = anchoring_roots(leaf.cert(), &pool, &roots, &VerifyOptions::at(at));
                prop_assert!(found.is_complete(), "budget ran out on {spec:?}");
                let got: Vec<usize> = found
                    .roots()
                    .iter()
                    .map(|c| t.roots.iter().position(|r| r.cert() == c).unwrap())
                    .collect();
                let want = spec.expected_anchors(l, true);
                prop_assert_eq!(&got, &want, "leaf {} of {:?}", l, spec);
                let webpki_want = spec.expected_anchors(l, false);
                let theirs = webpki_verify_parts(&trusted, &chain, leaf.cert(), TOPOLOGY_AT, true);
                // Policy::Ztunnel finds exactly the anchors webpki can reach, whatever the
                // order of the roots and of the chain.
                let z = VerifyOptions::at(at)
                    .with_eku(RequiredEku::ServerAuth)
                    .with_policy(Policy::Ztunnel);
                let rev_roots: CertPool = trusted.iter().rev().cloned().collect();
                let rev_pool: CertPool = chain.iter().rev().cloned().collect();
                for (r, p) in [(&roots, &pool), (&rev_roots, &rev_pool)] {
                    let ours = verify(leaf.cert(), p, r, &z);
                    prop_assert!(
                        ztunnel_agrees(&ours, &theirs).is_ok(),
                        "leaf {} of {:?}: {:?}",
                        l,
                        spec,
                        ztunnel_agrees(&ours, &theirs)
                    );
                    // Every anchor: more than webpki's 100 signatures may be needed.
                    let all = z.clone().with_signature_budget(100_000);
                    let found = anchoring_roots(leaf.cert(), p, r, &all);
                    prop_assert!(found.is_complete());
                    let mut got: Vec<usize> = found
                        .roots()
                        .iter()
                        .map(|c| t.roots.iter().position(|x| x.cert() == c).unwrap())
                        .collect();
                    got.sort_unstable();
                    prop_assert_eq!(
                        &got,
                        &webpki_want,
                        "ztunnel anchors, leaf {} of {:?}",
                        l,
                        spec
                    );
                }
                prop_assert_eq!(
                    theirs.is_ok(),
                    !webpki_want.is_empty(),
                    "webpki on leaf {} of {:?}: {:?}",
                    l,
                    spec,
                    theirs
                );
                s.leaves += 1;
                s.anchored += usize::from(!want.is_empty());
                s.several_anchors += usize::from(want.len() > 1);
                s.expired_anchor_webpki_accepts += usize::from(want.is_empty() && theirs.is_ok());
                // Anchored, but not by the root its own chain of parents leads to.
                let mut n = Node::Leaf(l);
                let own_root = loop {
                    n = match n {
                        Node::Leaf(i) => ca(spec.leaves[i].parent),
                        Node::Intermediate(i) => ca(spec.intermediates[i].parent),
                        Node::Root(r) => break r,
                        Node::CrossSigned(_) => unreachable!(),
                    };
                };
                if !want.is_empty() && !want.contains(&own_root) {
                    s.only_through_cross_signature += 1;
                }
            }
            Ok(())
        })
        .unwrap();
    let s = stats.into_inner().unwrap();
    println!("{s:?}");
    assert!(s.anchored > 0 && s.anchored < s.leaves, "{s:?}");
    assert!(
        s.several_anchors > 0 && s.only_through_cross_signature > 0,
        "{s:?}"
    );
    assert!(
        s.rekeyed_roots > 0 && s.expired_anchor_webpki_accepts > 0,
        "{s:?}"
    );
}

fn ca(c: meshtrust::testkit::chains::CaRef) -> Node {
    match c {
        meshtrust::testkit::chains::CaRef::Root(i) => Node::Root(i),
        meshtrust::testkit::chains::CaRef::Intermediate(i) => Node::Intermediate(i),
    }
}
