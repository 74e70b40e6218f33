//! Differential test: meshtrust's `verify::Policy::Envoy` against BoringSSL itself (the
//! `boring` crate builds the BoringSSL it bundles), run as Envoy runs it: `X509_verify_cert`
//! with `X509_V_FLAG_PARTIAL_CHAIN`, the verification time set to the test instant, the trust
//! store filled in order, the peer's whole chain (leaf first, then the presented order) as
//! the untrusted stack.
//!
//! Inputs: the testkit's generated chains with one defect each (any target: leaf,
//! intermediate or root), its random CA topologies (re-keyed and cross-signed same-named
//! roots, intermediate trees, expired certificates) in several store and presented orders,
//! Istio's sample CAs, and targeted cases (same-named roots with and without AKI in both
//! store orders, a cross-signed root in both presented orders, expired anchors, duplicates).
//! Verdicts must agree, and so must the error class (a BoringSSL error code maps to one
//! `PathError::kind`) and, on success, the chain BoringSSL built. No difference is allowed:
//! the known remaining differences (module docs of `meshtrust::verify`, "Policies") are not
//! produced by these inputs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use meshtrust::testkit::chains::{AT, TOPOLOGY_AT, chain_case, key_kind, shuffled, topology};
use meshtrust::testkit::{Aki, CertSpec, Issued, KeyType, TestKey};
use meshtrust::verify::{CertPool, Policy, RequiredEku, VerifyOptions, verify};
use meshtrust::{Bundle, Certificate};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};

#[path = "common/boring.rs"]
mod boring_oracle;

/// BoringSSL's verdict ([`boring_oracle::boring_verify`]) on owned certificate lists.
fn boring_verify(
    target: &Certificate,
    presented: &[Certificate],
    store: &[Certificate],
    at: i64,
) -> Result<Vec<Vec<u8>>, String> {
    let presented: Vec<&Certificate> = presented.iter().collect();
    let store: Vec<&Certificate> = store.iter().collect();
    boring_oracle::boring_verify(target, &presented, &store, at)
}

/// meshtrust's `Policy::Envoy` verdict in the same shape.
fn envoy_verify(
    target: &Certificate,
    presented: &[Certificate],
    store: &[Certificate],
    at: i64,
) -> Result<Vec<Vec<u8>>, String> {
    let store: CertPool = store.iter().cloned().collect();
    let presented: CertPool = presented.iter().cloned().collect();
    let at = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
    let opts = VerifyOptions::at(at).with_policy(Policy::Envoy);
    match verify(target, &presented, &store, &opts) {
        Ok(p) => Ok(p.certificates().iter().map(|c| c.der().to_vec()).collect()),
        // BoringSSL's X509_verify reports an outer/inner algorithm mismatch as a signature
        // failure (X509_R_SIGNATURE_ALGORITHM_MISMATCH under CERT_SIGNATURE_FAILURE).
        Err(e) => Err(match e.failures()[0].error.kind() {
            "signature-algorithm-mismatch" => "bad-signature".to_owned(),
            k => k.to_owned(),
        }),
    }
}

/// rustls-webpki's verdict (server usage), as ztunnel's client side calls it.
fn webpki_ok(
    target: &Certificate,
    presented: &[Certificate],
    roots: &[Certificate],
    at: i64,
) -> bool {
    webpki_ok_for(
        target,
        presented,
        roots,
        at,
        webpki::KeyUsage::server_auth(),
    )
}

/// rustls-webpki's verdict for `usage` (server usage as ztunnel's client side verifies a
/// peer, client usage as its server side does).
fn webpki_ok_for(
    target: &Certificate,
    presented: &[Certificate],
    roots: &[Certificate],
    at: i64,
    usage: webpki::KeyUsage,
) -> bool {
    let ders: Vec<CertificateDer<'static>> = roots
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let anchors: Vec<TrustAnchor<'static>> = ders
        .iter()
        .filter_map(|d| {
            webpki::anchor_from_trusted_cert(d)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    let chain: Vec<CertificateDer<'static>> = presented
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let leaf = CertificateDer::from(target.der().to_vec());
    let Ok(ee) = webpki::EndEntityCert::try_from(&leaf) else {
        return false;
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
    .is_ok()
}

/// `Policy::Ztunnel` called as webpki is above (server usage).
fn ztunnel_ok(
    target: &Certificate,
    presented: &[Certificate],
    roots: &[Certificate],
    at: i64,
) -> bool {
    ztunnel_ok_for(target, presented, roots, at, Some(RequiredEku::ServerAuth))
}

/// `Policy::Ztunnel` with `eku` required (None: the model's default, both directions).
fn ztunnel_ok_for(
    target: &Certificate,
    presented: &[Certificate],
    roots: &[Certificate],
    at: i64,
    eku: Option<RequiredEku>,
) -> bool {
    let roots: CertPool = roots.iter().cloned().collect();
    let presented: CertPool = presented.iter().cloned().collect();
    let at = time::OffsetDateTime::from_unix_timestamp(at).unwrap();
    let mut opts = VerifyOptions::at(at).with_policy(Policy::Ztunnel);
    if let Some(e) = eku {
        opts = opts.with_eku(e);
    }
    verify(target, &presented, &roots, &opts).is_ok()
}

#[derive(Default, Debug)]
struct Stats {
    cases: usize,
    /// Verdicts by kind ("valid" or the error kind), both sides agreeing.
    agreed: BTreeMap<String, usize>,
}

/// Runs both on one input; any difference (verdict, error class, chain) fails.
fn differential(
    what: &str,
    target: &Certificate,
    presented: &[Certificate],
    store: &[Certificate],
    at: i64,
    stats: &Mutex<Stats>,
) -> Result<(), TestCaseError> {
    let theirs = boring_verify(target, presented, store, at);
    let ours = envoy_verify(target, presented, store, at);
    let describe = |v: &Result<Vec<Vec<u8>>, String>| match v {
        Ok(chain) => format!("valid, chain of {}", chain.len()),
        Err(k) => k.clone(),
    };
    prop_assert_eq!(
        &ours,
        &theirs,
        "unexplained disagreement on {}: meshtrust {} / BoringSSL {}",
        what,
        describe(&ours),
        describe(&theirs)
    );
    let mut s = stats.lock().unwrap();
    s.cases += 1;
    let key = match &ours {
        Ok(_) => "valid".to_owned(),
        Err(k) => k.clone(),
    };
    *s.agreed.entry(key).or_default() += 1;
    Ok(())
}

#[test]
fn boring_agrees_on_generated_chains_with_one_defect() {
    let stats = Mutex::new(Stats::default());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&chain_case(key_kind().boxed()), |case| {
            let built = case
                .build()
                .map_err(|e| TestCaseError::fail(format!("building {case:?}: {e}")))?;
            let what = format!("{case:?}");
            differential(&what, &built.target, &built.chain, &built.roots, AT, &stats)
        })
        .unwrap();
    let s = stats.into_inner().unwrap();
    println!("{s:?}");
    assert_eq!(s.cases, 300);
    for k in ["valid", "expired", "bad-signature", "unknown-issuer"] {
        assert!(s.agreed.contains_key(k), "no {k} case: {s:?}");
    }
}

#[test]
fn boring_agrees_on_topologies_in_every_order() {
    let stats = Mutex::new(Stats::default());
    let mut runner = TestRunner::new(Config {
        cases: 128,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(topology(), any::<u64>()), |(spec, seed)| {
            let t = spec
                .build()
                .map_err(|e| TestCaseError::fail(format!("building {spec:?}: {e}")))?;
            let roots = t.trusted_roots();
            let pool = t.chain_pool();
            let orders = [
                (roots.clone(), pool.clone()),
                (shuffled(&roots, seed), shuffled(&pool, seed ^ 1)),
                (
                    roots.iter().rev().cloned().collect(),
                    pool.iter().rev().cloned().collect(),
                ),
            ];
            for (l, leaf) in t.leaves.iter().enumerate() {
                for (o, (store, presented)) in orders.iter().enumerate() {
                    let what = format!("leaf {l}, order {o} of {spec:?}");
                    differential(&what, leaf.cert(), presented, store, TOPOLOGY_AT, &stats)?;
                }
            }
            Ok(())
        })
        .unwrap();
    let s = stats.into_inner().unwrap();
    println!("{s:?}");
    assert!(
        s.agreed.contains_key("valid") && s.agreed.len() > 2,
        "{s:?}"
    );
}

fn key(i: usize) -> TestKey {
    TestKey::pooled(KeyType::EcP256, i)
}

fn certs(v: &[&Issued]) -> Vec<Certificate> {
    v.iter().map(|i| i.cert().clone()).collect()
}

/// Runs the targeted case through BoringSSL and `Policy::Envoy` (which must agree) and
/// returns the verdict kind.
fn targeted(target: &Issued, presented: &[&Issued], store: &[&Issued], at: i64) -> String {
    let stats = Mutex::new(Stats::default());
    let (p, s) = (certs(presented), certs(store));
    differential("targeted case", target.cert(), &p, &s, at, &stats).unwrap();
    match envoy_verify(target.cert(), &p, &s, at) {
        Ok(_) => "valid".to_owned(),
        Err(k) => k,
    }
}

/// Two roots `O=Istio, CN=Root CA` (as every root Istio's tools/certs makes), an
/// intermediate under B with or without an authorityKeyIdentifier, a workload leaf.
fn same_named_roots(aki: Aki) -> [Issued; 4] {
    let a = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &key(0)).unwrap();
    let b = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &key(1)).unwrap();
    let ib = b
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA").aki(aki),
            &key(2),
        )
        .unwrap();
    let leaf = ib
        .issue(
            &CertSpec::workload("spiffe://cluster.local/ns/a/sa/b"),
            &key(3),
        )
        .unwrap();
    [a, b, ib, leaf]
}

/// The issue's named case: same-named roots, an intermediate without AKI, store [A, B].
/// ztunnel (rustls-webpki, and `Policy::Ztunnel`) backtracks from A to B and accepts; Envoy
/// (BoringSSL, and `Policy::Envoy`) takes A, the first root of the name, without checking
/// its signature, and refuses with "certificate signature failure".
#[test]
fn ztunnel_accepts_envoy_refuses_same_named_roots_without_aki() {
    let [a, b, ib, leaf] = same_named_roots(Aki::Omit);
    let (chain, store) = (certs(&[&ib]), certs(&[&a, &b]));
    assert!(webpki_ok(leaf.cert(), &chain, &store, AT));
    assert!(ztunnel_ok(leaf.cert(), &chain, &store, AT));
    assert_eq!(targeted(&leaf, &[&ib], &[&a, &b], AT), "bad-signature");
    // The store order [B, A] verifies in Envoy too.
    assert_eq!(targeted(&leaf, &[&ib], &[&b, &a], AT), "valid");
    // An authorityKeyIdentifier makes BoringSSL skip A: both orders verify.
    let [a, b, ib, leaf] = same_named_roots(Aki::FromIssuer);
    assert_eq!(targeted(&leaf, &[&ib], &[&a, &b], AT), "valid");
    assert_eq!(targeted(&leaf, &[&ib], &[&b, &a], AT), "valid");
    // Presenting the intermediate among the roots' duplicates changes nothing.
    let [a, b, ib, leaf] = same_named_roots(Aki::Omit);
    assert_eq!(
        targeted(&leaf, &[&ib, &ib], &[&a, &b, &a], AT),
        "bad-signature"
    );
}

/// A cross-signed B' (B's name and key, issued by A) presented after or before B.
#[test]
fn cross_signed_root_in_both_presented_orders() {
    let a = Issued::self_signed(&CertSpec::root("Istio", "Root A"), &key(0)).unwrap();
    let b = Issued::self_signed(&CertSpec::root("Istio", "Root B"), &key(1)).unwrap();
    let b_cross = a
        .issue(&CertSpec::intermediate("Istio", "Root B"), &key(1))
        .unwrap();
    let ib = b
        .issue(&CertSpec::intermediate("Istio", "Intermediate B"), &key(2))
        .unwrap();
    let leaf = ib.issue(&CertSpec::leaf("svc"), &key(3)).unwrap();
    let bb = [&ib, &b, &b_cross];
    let bx = [&ib, &b_cross, &b];
    assert_eq!(targeted(&leaf, &bb, &[&a], AT), "self-signed-in-chain");
    assert_eq!(targeted(&leaf, &bx, &[&a], AT), "valid");
    assert_eq!(targeted(&leaf, &bb, &[&a, &b], AT), "valid");
    assert_eq!(targeted(&leaf, &bx, &[&a, &b], AT), "valid");
    assert_eq!(targeted(&leaf, &bb, &[&b], AT), "valid");
    assert_eq!(targeted(&leaf, &bx, &[&b], AT), "valid");
    // ztunnel backtracks past B in either order.
    for order in [bb, bx] {
        let chain = certs(&order);
        assert!(webpki_ok(leaf.cert(), &chain, &certs(&[&a]), AT));
        assert!(ztunnel_ok(leaf.cert(), &chain, &certs(&[&a]), AT));
    }
}

/// An expired root: BoringSSL checks the anchor's validity, webpki does not.
#[test]
fn expired_anchors() {
    let day = 86_400;
    let old = Issued::self_signed(
        &CertSpec::root("Istio", "Root CA").validity(AT - 400 * day, AT - day),
        &key(0),
    )
    .unwrap();
    let new = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &key(1)).unwrap();
    let ia = old
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA").validity(AT - 2 * day, AT + day),
            &key(2),
        )
        .unwrap();
    let leaf = ia.issue(&CertSpec::leaf("svc"), &key(3)).unwrap();
    assert_eq!(targeted(&leaf, &[&ia], &[&old], AT), "expired");
    assert_eq!(targeted(&leaf, &[&ia], &[&new, &old], AT), "expired");
    assert!(webpki_ok(leaf.cert(), &certs(&[&ia]), &certs(&[&old]), AT));
    assert!(ztunnel_ok(leaf.cert(), &certs(&[&ia]), &certs(&[&old]), AT));
    // notAfter is exclusive in BoringSSL: at the notAfter second the root has expired.
    assert_eq!(targeted(&leaf, &[&ia], &[&old], AT - day), "expired");
    assert_eq!(targeted(&leaf, &[&ia], &[&old], AT - day - 1), "valid");
}

/// Istio's own sample CAs (tests/fixtures/istio-samples): roots A and B share the name
/// `O=Istio, CN=Root CA`.
#[test]
fn istio_samples() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/istio-samples/"
    );
    let read = |f: &str| -> Vec<Certificate> {
        let b = Bundle::parse(&std::fs::read(format!("{dir}{f}")).unwrap()).unwrap();
        b.certificates().cloned().collect()
    };
    let at = time::macros::datetime!(2025-06-01 0:00 UTC).unix_timestamp();
    let stats = Mutex::new(Stats::default());
    let a = read("root-cert.pem");
    let b = read("root-cert-alt.pem");
    let stores = [
        a.clone(),
        b.clone(),
        [a.clone(), b.clone()].concat(),
        [b, a].concat(),
    ];
    let mut verdicts = Vec::new();
    for chain_file in [
        "cert-chain.pem",
        "cert-chain-alt.pem",
        "workload-foo-cert.pem",
    ] {
        let chain = read(chain_file);
        for store in &stores {
            for presented in [
                chain[1..].to_vec(),
                chain[1..].iter().rev().cloned().collect(),
            ] {
                differential(chain_file, &chain[0], &presented, store, at, &stats).unwrap();
                verdicts.push(envoy_verify(&chain[0], &presented, store, at).is_ok());
            }
        }
    }
    let s = stats.into_inner().unwrap();
    println!("{s:?}");
    assert!(
        verdicts.contains(&true) && verdicts.contains(&false),
        "{s:?}"
    );
}

/// Extended key usage: Envoy sets no purpose on BoringSSL's verification (Envoy
/// default_validator.cc; Istio configures none), so a leaf for codeSigning only, or one under
/// an intermediate restricted to one purpose, verifies in BoringSSL, and `Policy::Envoy`
/// agrees. rustls-webpki checks the purpose on every certificate of the path, with server
/// usage where ztunnel is the client and client usage where it is the server, and
/// `Policy::Ztunnel` agrees in each direction; with no purpose given it requires both, as an
/// mTLS connection through ztunnel does.
#[test]
fn extended_key_usage_envoy_ignores_it_ztunnel_checks_both_directions() {
    use meshtrust::testkit::Eku;
    let root = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &key(0)).unwrap();
    let ica = |eku: &[Eku], k: usize| {
        root.issue(
            &CertSpec::intermediate("Istio", "Intermediate CA").eku(eku),
            &key(k),
        )
        .unwrap()
    };
    let (plain, client_only, server_only) = (
        ica(&[], 1),
        ica(&[Eku::ClientAuth], 2),
        ica(&[Eku::ServerAuth], 4),
    );
    let workload = CertSpec::workload("spiffe://cluster.local/ns/a/sa/b");
    let code_signing = plain
        .issue(&workload.clone().eku(&[Eku::CodeSigning]), &key(3))
        .unwrap();
    let leaf_under = |i: &Issued| i.issue(&workload, &key(3)).unwrap();
    let (good, under_client, under_server) = (
        leaf_under(&plain),
        leaf_under(&client_only),
        leaf_under(&server_only),
    );
    // (leaf, intermediate, webpki server usage, webpki client usage)
    for (leaf, ica, server, client) in [
        (&good, &plain, true, true),
        (&code_signing, &plain, false, false),
        (&under_client, &client_only, false, true),
        (&under_server, &server_only, true, false),
    ] {
        assert_eq!(targeted(leaf, &[ica], &[&root], AT), "valid");
        let (chain, store) = (certs(&[ica]), certs(&[&root]));
        let name = ica.cert().subject();
        let (c, s) = (leaf.cert(), &store);
        assert_eq!(webpki_ok(c, &chain, s, AT), server, "{name}");
        let client_usage = webpki::KeyUsage::client_auth();
        assert_eq!(
            webpki_ok_for(c, &chain, s, AT, client_usage),
            client,
            "{name}"
        );
        let z = |eku| ztunnel_ok_for(c, &chain, s, AT, eku);
        assert_eq!(z(Some(RequiredEku::ServerAuth)), server, "{name}");
        assert_eq!(z(Some(RequiredEku::ClientAuth)), client, "{name}");
        assert_eq!(z(None), server && client, "{name}");
    }
}
