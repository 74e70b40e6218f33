use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;
use crate::cert::KeyUsage;
use crate::testkit::{Aki, Basic, CertSpec, Eku, Issued, KeyType, SigAlg, TestChain, TestKey};

/// 2030-01-01T00:00:00Z, inside the testkit's default validity window.
const AT: i64 = 1_893_456_000;
const DAY: i64 = 86_400;

fn at() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(AT).unwrap()
}

fn opts() -> VerifyOptions {
    VerifyOptions::at(at())
}

fn p256(i: usize) -> TestKey {
    TestKey::pooled(KeyType::EcP256, i)
}

fn pool(certs: &[&Issued]) -> CertPool {
    certs.iter().map(|i| i.cert().clone()).collect()
}

fn chain3() -> TestChain {
    TestChain::build("Acme", &[p256(0), p256(1), p256(2)]).unwrap()
}

fn kinds(e: &VerifyError) -> Vec<&'static str> {
    e.failures().iter().map(|f| f.error.kind()).collect()
}

#[test]
fn leaf_intermediate_root() {
    let c = chain3();
    let roots = pool(&[&c.root]);
    let ints: CertPool = c.chain().into_iter().collect();
    let p = verify(c.leaf.cert(), &ints, &roots, &opts()).unwrap();
    assert_eq!(
        p.fingerprints(),
        vec![
            c.leaf.cert().fingerprint(),
            c.intermediates[0].cert().fingerprint(),
            c.root.cert().fingerprint()
        ]
    );
    assert_eq!(p.signature_checks(), 2);
    assert!(p.anchor_is_self_issued());
    assert_eq!(p.to_string().matches(" -> ").count(), 2);
    // Without the intermediate: unknown issuer, naming the missing name.
    let e = verify(c.leaf.cert(), &CertPool::new(), &roots, &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["unknown-issuer"]);
    assert!(e.to_string().contains("Acme Intermediate 1"), "{e}");
}

#[test]
fn intermediate_and_root_as_targets() {
    let c = chain3();
    let roots = pool(&[&c.root]);
    let p = verify(c.intermediates[0].cert(), &CertPool::new(), &roots, &opts()).unwrap();
    assert_eq!(p.certificates().len(), 2);
    let p = verify(c.root.cert(), &CertPool::new(), &roots, &opts()).unwrap();
    assert_eq!(p.certificates(), [c.root.cert().clone()]);
    assert_eq!(p.signature_checks(), 0);
    // An intermediate placed among the roots is an anchor.
    let ints = pool(&[&c.intermediates[0]]);
    let p = verify(c.leaf.cert(), &CertPool::new(), &ints, &opts()).unwrap();
    assert_eq!(p.certificates().len(), 2);
    assert!(!p.anchor_is_self_issued());
}

#[test]
fn validity_of_every_certificate_including_the_anchor() {
    let root_expired = Issued::self_signed(
        &CertSpec::root("Acme", "Old Root").validity(AT - 400 * DAY, AT - DAY),
        &p256(0),
    )
    .unwrap();
    let int = root_expired
        .issue(&CertSpec::intermediate("Acme", "Int"), &p256(1))
        .unwrap();
    let leaf = int.issue(&CertSpec::leaf("svc"), &p256(2)).unwrap();
    let e = verify(
        leaf.cert(),
        &pool(&[&int]),
        &pool(&[&root_expired]),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(kinds(&e), ["expired"]);
    let f = &e.failures()[0];
    assert_eq!(f.path.len(), 3);
    assert_eq!(f.error.certificate(), Some(root_expired.cert()));
    let line = e.to_string();
    assert!(line.contains("expired at 2029-12-31T00:00:00Z"), "{line}");
    assert!(!line.contains('\n'));
    // As the target, the expired root fails too, even though it is in the roots.
    let e = verify(
        root_expired.cert(),
        &CertPool::new(),
        &pool(&[&root_expired]),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(kinds(&e), ["expired"]);
    // notBefore and notAfter are inclusive.
    let edge =
        Issued::self_signed(&CertSpec::root("Acme", "Edge").validity(AT, AT), &p256(3)).unwrap();
    assert!(verify(edge.cert(), &CertPool::new(), &pool(&[&edge]), &opts()).is_ok());
    // Not yet valid intermediate.
    let c = chain3();
    let young = c
        .root
        .issue(
            &CertSpec::intermediate("Acme", "Acme Intermediate 1").validity(AT + 1, AT + DAY),
            c.intermediates[0].key(),
        )
        .unwrap();
    let e = verify(c.leaf.cert(), &pool(&[&young]), &pool(&[&c.root]), &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["not-yet-valid"]);
    assert!(
        e.to_string()
            .contains("is not valid before 2030-01-01T00:00:01Z"),
        "{e}"
    );
}

#[test]
fn issuer_constraints() {
    let root_key = p256(0);
    let cases: [(CertSpec, &str); 4] = [
        (
            CertSpec::intermediate("A", "I").basic(Basic::NotCa),
            "issuer-not-ca",
        ),
        (
            CertSpec::intermediate("A", "I").basic(Basic::Absent),
            "issuer-not-ca",
        ),
        (
            CertSpec::intermediate("A", "I")
                .key_usage(Some(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::CRL_SIGN)),
            "missing-key-cert-sign",
        ),
        (
            CertSpec::intermediate("A", "I").critical_unknown_extension(),
            "unknown-critical-extension",
        ),
    ];
    let root = Issued::self_signed(&CertSpec::root("A", "R"), &root_key).unwrap();
    for (spec, kind) in cases {
        let int = root.issue(&spec, &p256(1)).unwrap();
        let leaf = int.issue(&CertSpec::leaf("svc"), &p256(2)).unwrap();
        let e = verify(leaf.cert(), &pool(&[&int]), &pool(&[&root]), &opts()).unwrap_err();
        assert_eq!(kinds(&e), [kind], "{spec:?}");
        // The intermediate itself still chains: the constraints bind it as an issuer only.
        // (Except an unknown critical extension, which binds every certificate.)
        let as_target = verify(int.cert(), &CertPool::new(), &pool(&[&root]), &opts());
        assert_eq!(
            as_target.is_ok(),
            kind != "unknown-critical-extension",
            "{spec:?}"
        );
    }
    // The anchor is held to the same rules.
    let bad_root =
        Issued::self_signed(&CertSpec::root("A", "R2").basic(Basic::NotCa), &root_key).unwrap();
    let leaf = bad_root.issue(&CertSpec::leaf("svc"), &p256(2)).unwrap();
    let e = verify(leaf.cert(), &CertPool::new(), &pool(&[&bad_root]), &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["issuer-not-ca"]);
}

#[test]
fn path_length() {
    let root = Issued::self_signed(
        &CertSpec::root("A", "R").basic(Basic::Ca(Some(0))),
        &p256(0),
    )
    .unwrap();
    let int = root
        .issue(&CertSpec::intermediate("A", "I"), &p256(1))
        .unwrap();
    let leaf = int.issue(&CertSpec::leaf("svc"), &p256(2)).unwrap();
    let roots = pool(&[&root]);
    // The root allows no intermediate below it: the intermediate as target is fine (the
    // target never counts), the leaf below it is not.
    assert!(verify(int.cert(), &CertPool::new(), &roots, &opts()).is_ok());
    let e = verify(leaf.cert(), &pool(&[&int]), &roots, &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["path-length-exceeded"]);
    assert!(
        e.to_string().contains("at most 0 intermediate CA(s)"),
        "{e}"
    );
    // pathLen 1 on the root, 0 on the intermediate: depth 3 fine, depth 4 not.
    let root = Issued::self_signed(
        &CertSpec::root("A", "R").basic(Basic::Ca(Some(1))),
        &p256(0),
    )
    .unwrap();
    let i1 = root
        .issue(
            &CertSpec::intermediate("A", "I1").basic(Basic::Ca(Some(0))),
            &p256(1),
        )
        .unwrap();
    let i2 = i1
        .issue(&CertSpec::intermediate("A", "I2"), &p256(2))
        .unwrap();
    let leaf = i2.issue(&CertSpec::leaf("svc"), &p256(3)).unwrap();
    assert!(verify(i2.cert(), &pool(&[&i1]), &pool(&[&root]), &opts()).is_ok());
    let e = verify(leaf.cert(), &pool(&[&i1, &i2]), &pool(&[&root]), &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["path-length-exceeded"]);
    assert_eq!(e.failures()[0].error.certificate(), Some(i1.cert()));
}

#[test]
fn signatures_and_algorithms() {
    let c = chain3();
    let roots = pool(&[&c.root]);
    let tampered = c.intermediates[0]
        .issue(&CertSpec::leaf("svc").tampered(), &p256(5))
        .unwrap();
    let e = verify(
        tampered.cert(),
        &c.chain().into_iter().collect(),
        &roots,
        &opts(),
    )
    .unwrap_err();
    assert_eq!(kinds(&e), ["bad-signature"]);
    // Outer algorithm differs from the TBS one (the signature itself is valid for the outer).
    let rsa_root = Issued::self_signed(
        &CertSpec::root("R", "RSA"),
        &TestKey::pooled(KeyType::Rsa2048, 0),
    )
    .unwrap();
    let spec = CertSpec::leaf("svc")
        .signature(SigAlg::RsaPkcs1(crate::signature::Hash::Sha256))
        .outer_signature(SigAlg::RsaPkcs1(crate::signature::Hash::Sha384));
    let mismatched = rsa_root.issue(&spec, &p256(6)).unwrap();
    mismatched.cert().verify_signed_by(rsa_root.cert()).unwrap();
    let e = verify(
        mismatched.cert(),
        &CertPool::new(),
        &pool(&[&rsa_root]),
        &opts(),
    )
    .unwrap_err();
    assert_eq!(kinds(&e), ["signature-algorithm-mismatch"]);
    // RSA-PSS and PKCS#1 with SHA-384/512 verify.
    for alg in [
        SigAlg::RsaPss(crate::signature::Hash::Sha256),
        SigAlg::RsaPss(crate::signature::Hash::Sha512),
        SigAlg::RsaPkcs1(crate::signature::Hash::Sha512),
    ] {
        let leaf = rsa_root
            .issue(&CertSpec::leaf("svc").signature(alg), &p256(7))
            .unwrap();
        let p = verify(leaf.cert(), &CertPool::new(), &pool(&[&rsa_root]), &opts()).unwrap();
        assert_eq!(p.certificates().len(), 2, "{alg:?}");
    }
    // A key that cannot have made the signature (ECDSA issuer name, RSA key) costs no check.
    let impostor = Issued::self_signed(&CertSpec::root("R", "RSA"), &p256(8)).unwrap();
    let leaf = rsa_root.issue(&CertSpec::leaf("svc"), &p256(7)).unwrap();
    let e = verify(leaf.cert(), &CertPool::new(), &pool(&[&impostor]), &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["bad-signature"]);
    assert_eq!(e.signature_checks(), 0);
}

#[test]
fn same_name_roots_with_different_keys() {
    // Rotation: root B' re-keyed under the name of root B.
    let b = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &p256(0)).unwrap();
    let b2 = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &p256(1)).unwrap();
    let int = b
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA"),
            &p256(2),
        )
        .unwrap();
    assert_eq!(b.cert().subject_der(), b2.cert().subject_der());
    // Only the wrong one: a bad signature naming it.
    let e = verify(int.cert(), &CertPool::new(), &pool(&[&b2]), &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["bad-signature"]);
    assert_eq!(e.failures()[0].error.certificate(), Some(b2.cert()));
    // Both, wrong one first in the file: the AKI hint tries the right one first.
    let p = verify(int.cert(), &CertPool::new(), &pool(&[&b2, &b]), &opts()).unwrap();
    assert_eq!(p.anchor(), b.cert());
    assert_eq!(p.signature_checks(), 1);
    // Without AKI the search still finds it, one signature later.
    let no_aki = b
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA").aki(Aki::Omit),
            &p256(2),
        )
        .unwrap();
    let p = verify(no_aki.cert(), &CertPool::new(), &pool(&[&b2, &b]), &opts()).unwrap();
    assert_eq!((p.anchor(), p.signature_checks()), (b.cert(), 2));
    // A misleading AKI (pointing at B') is only a hint: the signature decides.
    let lying = b
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA")
                .aki(Aki::Explicit(b2.cert().subject_key_id().unwrap().to_vec())),
            &p256(2),
        )
        .unwrap();
    let p = verify(lying.cert(), &CertPool::new(), &pool(&[&b2, &b]), &opts()).unwrap();
    assert_eq!((p.anchor(), p.signature_checks()), (b.cert(), 2));
}

#[test]
fn duplicates_and_order_do_not_matter() {
    let c = TestChain::build("Acme", &[p256(0), p256(1), p256(2), p256(3)]).unwrap();
    let mut ints: Vec<Certificate> = c.chain();
    ints.extend(c.chain());
    ints.reverse();
    ints.push(c.leaf.cert().clone());
    ints.push(c.root.cert().clone());
    let roots: CertPool = [c.root.cert().clone(), c.root.cert().clone()]
        .into_iter()
        .collect();
    assert_eq!(roots.len(), 1);
    let p = verify(c.leaf.cert(), &ints.into_iter().collect(), &roots, &opts()).unwrap();
    assert_eq!(p.certificates().len(), 4);
    assert_eq!(p.signature_checks(), 3);
}

#[test]
fn loops_terminate() {
    // A and B cross-sign each other; neither is trusted.
    let a_key = p256(0);
    let b_key = p256(1);
    let a_self = Issued::self_signed(&CertSpec::root("X", "A"), &a_key).unwrap();
    let b_self = Issued::self_signed(&CertSpec::root("X", "B"), &b_key).unwrap();
    let a_by_b = b_self
        .issue(&CertSpec::intermediate("X", "A"), &a_key)
        .unwrap();
    let b_by_a = a_self
        .issue(&CertSpec::intermediate("X", "B"), &b_key)
        .unwrap();
    let leaf = a_self.issue(&CertSpec::leaf("svc"), &p256(2)).unwrap();
    let unrelated = Issued::self_signed(&CertSpec::root("Y", "Z"), &p256(3)).unwrap();
    let ints = pool(&[&a_by_b, &b_by_a, &a_self, &b_self]);
    let e = verify(leaf.cert(), &ints, &pool(&[&unrelated]), &opts()).unwrap_err();
    assert!(kinds(&e).contains(&"loop"), "{}", e.report());
    assert_eq!(e.failures().len(), 6, "{}", e.report());
    // Trusting B makes the path leaf -> A (by B) -> B.
    let p = verify(leaf.cert(), &ints, &pool(&[&b_self]), &opts()).unwrap();
    assert_eq!(p.certificates().len(), 3);
}

#[test]
fn depth_limit() {
    let keys: Vec<TestKey> = (0..10).map(p256).collect();
    let c = TestChain::build("Deep", &keys).unwrap(); // root + 8 intermediates + leaf
    let ints: CertPool = c.chain().into_iter().collect();
    let roots = pool(&[&c.root]);
    let e = verify(c.leaf.cert(), &ints, &roots, &opts()).unwrap_err();
    assert_eq!(kinds(&e), ["too-deep"]);
    assert_eq!(e.failures()[0].path.len(), VerifyOptions::DEFAULT_MAX_DEPTH);
    let p = verify(c.leaf.cert(), &ints, &roots, &opts().with_max_depth(10)).unwrap();
    assert_eq!(p.certificates().len(), 10);
}

#[test]
fn budgets_bound_hostile_bundles() {
    // 120 roots named like the real one with other keys, the real one last, no AKI hint.
    let real = Issued::self_signed(&CertSpec::root("Mesh", "Root"), &p256(0)).unwrap();
    let mut decoys: Vec<Issued> = (0..120)
        .map(|i| {
            Issued::self_signed(
                &CertSpec::root("Mesh", "Root").serial(&[1, i as u8 + 1]),
                &p256(1 + i % 15),
            )
            .unwrap()
        })
        .collect();
    let leaf = real
        .issue(&CertSpec::leaf("svc").aki(Aki::Omit), &p256(3))
        .unwrap();
    decoys.push(real.clone());
    let roots: CertPool = decoys.iter().map(|i| i.cert().clone()).collect();
    assert_eq!(roots.len(), 121);
    let e = verify(leaf.cert(), &CertPool::new(), &roots, &opts()).unwrap_err();
    assert_eq!(e.primary().unwrap().error.kind(), "budget-exhausted");
    assert_eq!(
        e.signature_checks(),
        VerifyOptions::DEFAULT_SIGNATURE_BUDGET
    );
    assert!(
        e.to_string()
            .contains("signature-check budget of 100 exhausted"),
        "{e}"
    );
    // A larger budget finds it.
    let p = verify(
        leaf.cert(),
        &CertPool::new(),
        &roots,
        &opts().with_signature_budget(200),
    )
    .unwrap();
    assert_eq!(p.anchor(), real.cert());
    // With the AKI hint the right root is tried first.
    let hinted = real.issue(&CertSpec::leaf("svc"), &p256(3)).unwrap();
    let p = verify(hinted.cert(), &CertPool::new(), &roots, &opts()).unwrap();
    assert_eq!(p.signature_checks(), 1);
    // Expired decoys cost no signature at all.
    let mut expired: Vec<Certificate> = (0..150)
        .map(|i| {
            Issued::self_signed(
                &CertSpec::root("Mesh", "Root")
                    .validity(AT - 9 * DAY, AT - DAY)
                    .serial(&[2, i as u8 + 1]),
                &p256(1 + i % 15),
            )
            .unwrap()
            .cert()
            .clone()
        })
        .collect();
    expired.push(real.cert().clone());
    let p = verify(
        leaf.cert(),
        &CertPool::new(),
        &expired.into_iter().collect(),
        &opts(),
    )
    .unwrap();
    assert_eq!(p.signature_checks(), 1);
    // The candidate budget bounds the cheap work too.
    let mut o = opts();
    o.candidate_budget = 10;
    let e = verify(leaf.cert(), &CertPool::new(), &roots, &o).unwrap_err();
    assert!(
        e.to_string().contains("candidate budget of 10 exhausted"),
        "{e}"
    );
}

#[test]
fn leaf_options() {
    let c = chain3();
    let roots = pool(&[&c.root]);
    let ints: CertPool = c.chain().into_iter().collect();
    let id: SpiffeId = "spiffe://cluster.local/ns/default/sa/sleep"
        .parse()
        .unwrap();
    let workload = c.intermediates[0]
        .issue(&CertSpec::workload(&id.to_string()), &p256(5))
        .unwrap();
    let with = |o: VerifyOptions| verify(workload.cert(), &ints, &roots, &o);
    assert!(
        with(
            opts()
                .with_spiffe_id(id.clone())
                .with_eku(RequiredEku::ClientAuth)
        )
        .is_ok()
    );
    let other: SpiffeId = "spiffe://cluster.local/ns/default/sa/other"
        .parse()
        .unwrap();
    let e = with(opts().with_spiffe_id(other)).unwrap_err();
    assert_eq!(kinds(&e), ["spiffe-id-mismatch"]);
    assert!(
        e.to_string()
            .contains("its URI SANs: spiffe://cluster.local/ns/default/sa/sleep"),
        "{e}"
    );
    // EKU: serverAuth only refuses clientAuth; no EKU extension allows both.
    let server = c.intermediates[0]
        .issue(&CertSpec::leaf("svc").eku(&[Eku::ServerAuth]), &p256(6))
        .unwrap();
    assert!(
        verify(
            server.cert(),
            &ints,
            &roots,
            &opts().with_eku(RequiredEku::ServerAuth)
        )
        .is_ok()
    );
    let e = verify(
        server.cert(),
        &ints,
        &roots,
        &opts().with_eku(RequiredEku::ClientAuth),
    )
    .unwrap_err();
    assert_eq!(kinds(&e), ["eku-not-allowed"]);
    let any = c.intermediates[0]
        .issue(&CertSpec::leaf("svc").eku(&[]), &p256(6))
        .unwrap();
    assert!(
        verify(
            any.cert(),
            &ints,
            &roots,
            &opts().with_eku(RequiredEku::ClientAuth)
        )
        .is_ok()
    );
    // A CA carrying EKU must allow the purpose too.
    let code_int = c
        .root
        .issue(
            &CertSpec::intermediate("Acme", "Code").eku(&[Eku::CodeSigning]),
            &p256(7),
        )
        .unwrap();
    let leaf = code_int.issue(&CertSpec::leaf("svc"), &p256(8)).unwrap();
    assert!(verify(leaf.cert(), &pool(&[&code_int]), &roots, &opts()).is_ok());
    let e = verify(
        leaf.cert(),
        &pool(&[&code_int]),
        &roots,
        &opts().with_eku(RequiredEku::ServerAuth),
    )
    .unwrap_err();
    assert_eq!(kinds(&e), ["eku-not-allowed"]);
    assert_eq!(e.failures()[0].error.certificate(), Some(code_int.cert()));
}

#[test]
fn every_anchor_of_a_cross_signed_chain() {
    // Intermediate I exists twice: signed by root A and cross-signed by root B (same key).
    let a = Issued::self_signed(&CertSpec::root("Mesh", "A"), &p256(0)).unwrap();
    let b = Issued::self_signed(&CertSpec::root("Mesh", "B"), &p256(1)).unwrap();
    let c = Issued::self_signed(&CertSpec::root("Mesh", "C"), &p256(2)).unwrap();
    let i_a = a
        .issue(&CertSpec::intermediate("Mesh", "I"), &p256(3))
        .unwrap();
    let i_b = b
        .issue(&CertSpec::intermediate("Mesh", "I"), &p256(3))
        .unwrap();
    let leaf = i_a.issue(&CertSpec::leaf("svc"), &p256(4)).unwrap();
    let roots = pool(&[&c, &b, &a]);
    let chain = Chain::new(
        leaf.cert().clone(),
        [i_a.cert().clone(), i_b.cert().clone()],
    );
    let found = anchoring_roots(chain.target(), chain.intermediates(), &roots, &opts());
    assert!(found.is_complete());
    assert_eq!(found.roots(), [b.cert().clone(), a.cert().clone()]); // pool order
    assert_eq!(found.paths().len(), 2);
    // Expire A: only B remains, and the failure says why A does not anchor.
    let o = VerifyOptions::at(OffsetDateTime::from_unix_timestamp(AT).unwrap());
    let a_old = Issued::self_signed(
        &CertSpec::root("Mesh", "A").validity(AT - 9 * DAY, AT - DAY),
        &p256(0),
    )
    .unwrap();
    let found = anchoring_roots(
        chain.target(),
        chain.intermediates(),
        &pool(&[&a_old, &b]),
        &o,
    );
    assert_eq!(found.roots(), [b.cert().clone()]);
    assert!(found.failures().iter().any(|f| f.error.kind() == "expired"));
    // Cross matrix: the chain against {A}, {B}, {C}.
    let m = cross_matrix(&[chain], &[pool(&[&a]), pool(&[&b]), pool(&[&c])], &opts());
    assert!(!m.all_valid());
    assert_eq!(
        m.failures().map(|(i, j, _)| (i, j)).collect::<Vec<_>>(),
        [(0, 2)]
    );
    assert_eq!(m.to_string().lines().count(), 3);
}

#[test]
fn report_lists_every_failed_path() {
    let b = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &p256(0)).unwrap();
    let b2 = Issued::self_signed(&CertSpec::root("Istio", "Root CA"), &p256(1)).unwrap();
    let b3 = Issued::self_signed(
        &CertSpec::root("Istio", "Root CA").validity(AT - 9 * DAY, AT - DAY),
        &p256(0),
    )
    .unwrap();
    let int = b
        .issue(
            &CertSpec::intermediate("Istio", "Intermediate CA"),
            &p256(2),
        )
        .unwrap();
    let e = verify(int.cert(), &CertPool::new(), &pool(&[&b2, &b3]), &opts()).unwrap_err();
    assert_eq!(e.failures().len(), 2);
    // Same key as the real root, so the AKI hint tried the expired one first.
    assert_eq!(kinds(&e), ["expired", "bad-signature"]);
    let r = e.report();
    assert_eq!(r.lines().count(), 3, "{r}");
    assert!(r.contains("  1. ") && r.contains("  2. "), "{r}");
    assert!(
        e.to_string()
            .contains("(and 1 other failed candidate path(s))"),
        "{e}"
    );
}

fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
    let mut out = v.to_vec();
    let mut s = seed | 1;
    for i in (1..out.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        out.swap(i, (s % (i as u64 + 1)) as usize);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Validity does not depend on the order or repetition of intermediates and roots, and a
    /// verified path is sound: each certificate is signed by the next, all valid at `at`,
    /// the last one a root of the pool.
    #[test]
    fn order_and_duplicates_are_irrelevant_and_paths_are_sound(
        depth in 1usize..4,
        distractors in 0usize..4,
        expired_root in any::<bool>(),
        seed in any::<u64>(),
        dup in any::<bool>(),
    ) {
        let keys: Vec<TestKey> = (0..=depth).map(p256).collect();
        let c = TestChain::build("P", &keys).unwrap();
        let mut roots: Vec<Certificate> = (0..distractors)
            .map(|i| Issued::self_signed(&CertSpec::root("P", "P Root").serial(&[9, i as u8]), &p256(10 + i)).unwrap().cert().clone())
            .collect();
        let root = if expired_root {
            Issued::self_signed(&CertSpec::root("P", "P Root").validity(AT - 9 * DAY, AT - DAY), &keys[0]).unwrap()
        } else {
            c.root.clone()
        };
        roots.push(root.cert().clone());
        let mut ints = c.chain();
        if dup {
            ints.extend(c.chain());
            roots.extend(roots.clone());
        }
        let reference = verify(c.leaf.cert(), &ints.iter().cloned().collect(), &roots.iter().cloned().collect(), &opts());
        prop_assert_eq!(reference.is_ok(), !expired_root);
        let again = verify(
            c.leaf.cert(),
            &shuffled(&ints, seed).into_iter().collect(),
            &shuffled(&roots, seed.rotate_left(17)).into_iter().collect(),
            &opts(),
        );
        prop_assert_eq!(again.is_ok(), reference.is_ok());
        if let Ok(p) = again {
            let certs = p.certificates();
            prop_assert_eq!(certs.len(), depth + 1);
            for w in certs.windows(2) {
                prop_assert!(w[0].verify_signed_by(&w[1]).is_ok());
            }
            prop_assert!(certs.iter().all(|x| x.is_valid_at(at())));
            prop_assert!(roots.contains(p.anchor()));
        } else if let Err(e) = again {
            let names_root = e.any(|x| matches!(x, PathError::Expired { cert, .. } if cert == root.cert()));
            prop_assert!(names_root);
        }
    }
}
