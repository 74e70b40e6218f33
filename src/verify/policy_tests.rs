//! Unit tests of the Envoy and ztunnel policies on hand-made topologies (the differential
//! tests against BoringSSL and rustls-webpki are in `tests/verify_boring.rs` and
//! `tests/verify_webpki.rs`).

use time::OffsetDateTime;

use super::*;
use crate::testkit::{Aki, CertSpec, Issued, KeyType, TestKey};

const AT: i64 = 1_893_456_000;
const DAY: i64 = 86_400;

fn key(i: usize) -> TestKey {
    TestKey::pooled(KeyType::EcP256, i)
}

fn opts(policy: Policy) -> VerifyOptions {
    VerifyOptions::at(OffsetDateTime::from_unix_timestamp(AT).unwrap()).with_policy(policy)
}

fn pool(certs: &[&Issued]) -> CertPool {
    certs.iter().map(|i| i.cert().clone()).collect()
}

fn run(
    policy: Policy,
    leaf: &Issued,
    chain: &[&Issued],
    roots: &[&Issued],
) -> Result<usize, String> {
    verify(leaf.cert(), &pool(chain), &pool(roots), &opts(policy))
        .map(|p| p.certificates().len())
        .map_err(|e| e.failures()[0].error.kind().to_owned())
}

/// Two roots named like Istio's tools/certs roots, an intermediate under the second without
/// authorityKeyIdentifier, a leaf under it.
struct SameNamed {
    a: Issued,
    b: Issued,
    ib: Issued,
    leaf: Issued,
}

fn same_named(aki: Aki) -> SameNamed {
    let a = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &key(0)).unwrap();
    let b = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &key(1)).unwrap();
    let ib = b
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA").aki(aki),
            &key(2),
        )
        .unwrap();
    let leaf = ib.issue(&CertSpec::leaf("svc"), &key(3)).unwrap();
    SameNamed { a, b, ib, leaf }
}

#[test]
fn default_policy_is_strict() {
    let o = VerifyOptions::at(OffsetDateTime::from_unix_timestamp(AT).unwrap());
    assert_eq!(o.policy, Policy::Strict);
    assert_eq!(o.clone().with_policy(Policy::Envoy).policy, Policy::Envoy);
    assert_eq!(Policy::default(), Policy::Strict);
    let names: Vec<String> = Policy::ALL.iter().map(|p| p.to_string()).collect();
    assert_eq!(names, ["strict", "envoy", "ztunnel"]);
}

#[test]
fn same_named_roots_without_aki_depend_on_envoys_store_order() {
    let t = same_named(Aki::Omit);
    let (a, b, ib, leaf) = (&t.a, &t.b, &t.ib, &t.leaf);
    // Envoy takes A, the first root of the name, checks no signature while choosing, and
    // fails on it; ztunnel and Strict backtrack to B.
    assert_eq!(
        run(Policy::Envoy, leaf, &[ib], &[a, b]),
        Err("bad-signature".into())
    );
    assert_eq!(run(Policy::Ztunnel, leaf, &[ib], &[a, b]), Ok(3));
    assert_eq!(run(Policy::Strict, leaf, &[ib], &[a, b]), Ok(3));
    assert_eq!(run(Policy::Envoy, leaf, &[ib], &[b, a]), Ok(3));
    // With an authorityKeyIdentifier, BoringSSL skips A: the order no longer matters.
    let t = same_named(Aki::FromIssuer);
    assert_eq!(run(Policy::Envoy, &t.leaf, &[&t.ib], &[&t.a, &t.b]), Ok(3));
    assert_eq!(run(Policy::Envoy, &t.leaf, &[&t.ib], &[&t.b, &t.a]), Ok(3));
}

#[test]
fn cross_signed_root_presented_order_matters_to_envoy_only() {
    let a = Issued::self_signed(&CertSpec::root("Acme", "Root A"), &key(0)).unwrap();
    let b = Issued::self_signed(&CertSpec::root("Acme", "Root B"), &key(1)).unwrap();
    // B' : B's name and key, issued by A.
    let b_cross = a
        .issue(&CertSpec::intermediate("Acme", "Root B"), &key(1))
        .unwrap();
    let ib = b
        .issue(&CertSpec::intermediate("Acme", "Intermediate B"), &key(2))
        .unwrap();
    let leaf = ib.issue(&CertSpec::leaf("svc"), &key(3)).unwrap();
    let envoy = |chain: &[&Issued], roots: &[&Issued]| run(Policy::Envoy, &leaf, chain, roots);
    assert_eq!(
        envoy(&[&ib, &b, &b_cross], &[&a]),
        Err("self-signed-in-chain".into())
    );
    assert_eq!(envoy(&[&ib, &b_cross, &b], &[&a]), Ok(4));
    // With B in the store, it is found first whatever the presented order.
    assert_eq!(envoy(&[&ib, &b, &b_cross], &[&a, &b]), Ok(3));
    assert_eq!(envoy(&[&ib, &b_cross, &b], &[&b]), Ok(3));
    for order in [[&ib, &b, &b_cross], [&ib, &b_cross, &b]] {
        assert_eq!(run(Policy::Ztunnel, &leaf, &order, &[&a]), Ok(4));
        assert_eq!(run(Policy::Strict, &leaf, &order, &[&a]), Ok(4));
    }
}

#[test]
fn expired_anchor_refused_by_envoy_accepted_by_ztunnel() {
    let root = Issued::self_signed(
        &CertSpec::root("Acme", "Old Root").validity(AT - 400 * DAY, AT - DAY),
        &key(0),
    )
    .unwrap();
    let leaf = root
        .issue(&CertSpec::leaf("svc").validity(AT - DAY, AT + DAY), &key(1))
        .unwrap();
    assert_eq!(
        run(Policy::Envoy, &leaf, &[], &[&root]),
        Err("expired".into())
    );
    assert_eq!(
        run(Policy::Strict, &leaf, &[], &[&root]),
        Err("expired".into())
    );
    assert_eq!(run(Policy::Ztunnel, &leaf, &[], &[&root]), Ok(2));
}

#[test]
fn envoys_not_after_is_exclusive() {
    let root = Issued::self_signed(&CertSpec::root("Acme", "Root"), &key(0)).unwrap();
    let leaf = root
        .issue(&CertSpec::leaf("svc").validity(AT - DAY, AT), &key(1))
        .unwrap();
    assert_eq!(
        run(Policy::Envoy, &leaf, &[], &[&root]),
        Err("expired".into())
    );
    assert_eq!(run(Policy::Strict, &leaf, &[], &[&root]), Ok(2));
    assert_eq!(run(Policy::Ztunnel, &leaf, &[], &[&root]), Ok(2));
}

#[test]
fn targets_ztunnel_and_envoy_treat_differently() {
    let root = Issued::self_signed(&CertSpec::root("Acme", "Root"), &key(0)).unwrap();
    let ca = root
        .issue(&CertSpec::intermediate("Acme", "Intermediate"), &key(1))
        .unwrap();
    assert_eq!(run(Policy::Envoy, &ca, &[], &[&root]), Ok(2));
    assert_eq!(
        run(Policy::Ztunnel, &ca, &[], &[&root]),
        Err("ca-as-end-entity".into())
    );
    // A lone self-signed target: trusted only as the store's first certificate of its name.
    let twin = Issued::self_signed(&CertSpec::root("Acme", "Root"), &key(2)).unwrap();
    assert_eq!(run(Policy::Envoy, &root, &[], &[&root, &twin]), Ok(1));
    assert_eq!(
        run(Policy::Envoy, &root, &[], &[&twin, &root]),
        Err("self-signed-not-trusted".into())
    );
    assert_eq!(
        run(Policy::Envoy, &root, &[], &[]),
        Err("self-signed-not-trusted".into())
    );
}

#[test]
fn envoy_checks_no_extension_of_store_certificates() {
    // A store intermediate with cA false still anchors for Envoy (check_chain_extensions
    // covers the presented part only); ztunnel's anchors carry nothing either.
    let root = Issued::self_signed(&CertSpec::root("Acme", "Root"), &key(0)).unwrap();
    let not_ca = root
        .issue(
            &CertSpec::intermediate("Acme", "Not a CA").basic(crate::testkit::Basic::NotCa),
            &key(1),
        )
        .unwrap();
    let leaf = not_ca.issue(&CertSpec::leaf("svc"), &key(2)).unwrap();
    assert_eq!(run(Policy::Envoy, &leaf, &[], &[&not_ca]), Ok(2));
    assert_eq!(run(Policy::Ztunnel, &leaf, &[], &[&not_ca]), Ok(2));
    assert_eq!(
        run(Policy::Strict, &leaf, &[], &[&not_ca]),
        Err("issuer-not-ca".into())
    );
    // Presented, it is refused by both.
    assert_eq!(
        run(Policy::Envoy, &leaf, &[&not_ca], &[&root]),
        Err("issuer-not-ca".into())
    );
    assert_eq!(
        run(Policy::Ztunnel, &leaf, &[&not_ca], &[&root]),
        Err("issuer-not-ca".into())
    );
}

#[test]
fn anchoring_roots_follow_the_policy() {
    let t = same_named(Aki::Omit);
    let chain = pool(&[&t.ib]);
    let roots = pool(&[&t.a, &t.b]);
    let found = |p| anchoring_roots(t.leaf.cert(), &chain, &roots, &opts(p));
    assert_eq!(found(Policy::Strict).roots(), [t.b.cert().clone()]);
    assert_eq!(found(Policy::Ztunnel).roots(), [t.b.cert().clone()]);
    assert!(found(Policy::Envoy).roots().is_empty());
    assert!(found(Policy::Envoy).is_complete());
}
