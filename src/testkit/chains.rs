//! Strategies for certificate chains and CA topologies, for path-validation tests.
//!
//! Two families:
//!
//! - [`ChainCase`] ([`chain_case`]): one root, zero to three intermediates and a target (leaf,
//!   intermediate or the root itself), any key types and signature algorithms (RSA PKCS#1 and
//!   PSS with SHA-256/384/512, ECDSA P-256/P-384, Ed25519), random lifetimes, roots and chain
//!   files in random order with duplicates and distractors, and exactly one deliberate
//!   [`Defect`] (or none): expired, not yet valid, tampered, not a CA, path length, keyUsage,
//!   unknown critical extension, algorithm mismatch, a same-named root twin with another
//!   key, misleading key identifiers, a re-keyed root cross-signed by the old one...
//!   meshtrust's differential tests against `openssl verify` and rustls-webpki run on these.
//! - [`TopologySpec`] ([`topology`]): random CA topologies: several roots (some re-keyed,
//!   i.e. with the name of another root and a new key), trees of intermediates, roots
//!   cross-signed by other roots, leaves anywhere, some certificates expired or not yet
//!   valid, and a trusted subset of the roots. [`TopologySpec::expected_anchors`] is an
//!   independent model of which trusted roots anchor each leaf (a search over names and
//!   keys, no X.509 involved), to compare with any verifier.
//!
//! Keys come from the pool ([`super::KeyAllocator`]), so building a case costs only
//! signatures: 256 cases take seconds (see `benches/testkit.rs`).
//!
//! ```
//! use meshtrust::testkit::chains::{self, TOPOLOGY_AT};
//! use meshtrust::verify::{self, CertPool, VerifyOptions};
//! use proptest::prelude::*;
//!
//! let at = time::OffsetDateTime::from_unix_timestamp(TOPOLOGY_AT).unwrap();
//! proptest!(ProptestConfig::with_cases(4), |(spec in chains::topology())| {
//!     let t = spec.build().unwrap();
//!     let roots: CertPool = t.trusted_roots().into_iter().collect();
//!     let pool: CertPool = t.chain_pool().into_iter().collect();
//!     for leaf in 0..t.leaves.len() {
//!         let found = verify::anchoring_roots(t.leaves[leaf].cert(), &pool, &roots, &VerifyOptions::at(at));
//!         let got: Vec<_> = found.roots().iter().map(|c| c.fingerprint()).collect();
//!         let want: Vec<_> = spec.expected_anchors(leaf, true).iter().map(|&r| t.roots[r].cert().fingerprint()).collect();
//!         prop_assert_eq!(got, want);
//!     }
//! });
//! ```

use std::collections::HashMap;

use proptest::prelude::*;

use super::{KeyType, SigAlg, default_signature};
use crate::cert::Certificate;
use crate::signature::Hash;

mod topology;

pub use topology::{
    CaNode, CaRef, CrossNode, Issuers, LeafNode, Lifetime, Node, RootNode, TOPOLOGY_AT, Topology,
    TopologyLimits, TopologySpec, lifetime, topology, topology_with,
};

mod build;

/// The validation instant of [`ChainCase`]s: 2030-01-01T00:00:00Z (Unix seconds).
pub const AT: i64 = 1_893_456_000;
/// One day in seconds.
pub const DAY: i64 = 86_400;

/// Key kinds weighted toward the fast ones (ECDSA P-256 most, RSA 3072/4096 least), as the
/// differential tests draw them.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let kind = meshtrust::testkit::chains::key_kind().new_tree(&mut runner).unwrap().current();
/// assert!(meshtrust::testkit::KeyType::ALL.contains(&kind));
/// ```
pub fn key_kind() -> impl Strategy<Value = KeyType> + Clone {
    prop_oneof![
        4 => Just(KeyType::EcP256),
        1 => Just(KeyType::EcP384),
        2 => Just(KeyType::Ed25519),
        3 => Just(KeyType::Rsa2048),
        1 => Just(KeyType::Rsa3072),
        1 => Just(KeyType::Rsa4096),
    ]
}

/// The signature algorithm variant `variant` (any number; taken modulo 6) for an issuer key
/// of `issuer`: RSA keys sign with PKCS#1 v1.5 or PSS and SHA-256/384/512, the others with
/// their only algorithm.
///
/// ```
/// use meshtrust::testkit::{chains::signature_for, KeyType, SigAlg};
/// use meshtrust::signature::Hash;
/// assert_eq!(signature_for(KeyType::Rsa2048, 4), SigAlg::RsaPss(Hash::Sha384));
/// assert_eq!(signature_for(KeyType::EcP256, 4), SigAlg::EcdsaP256Sha256);
/// ```
pub fn signature_for(issuer: KeyType, variant: u8) -> SigAlg {
    if issuer.is_rsa() {
        [
            SigAlg::RsaPkcs1(Hash::Sha256),
            SigAlg::RsaPkcs1(Hash::Sha384),
            SigAlg::RsaPkcs1(Hash::Sha512),
            SigAlg::RsaPss(Hash::Sha256),
            SigAlg::RsaPss(Hash::Sha384),
            SigAlg::RsaPss(Hash::Sha512),
        ][usize::from(variant) % 6]
    } else {
        default_signature(issuer)
    }
}

/// `v` in an order fixed by `seed` (xorshift Fisher-Yates; the same seed, the same order).
///
/// ```
/// let v = meshtrust::testkit::chains::shuffled(&[1, 2, 3, 4], 7);
/// assert_eq!(v.len(), 4);
/// assert_eq!(v, meshtrust::testkit::chains::shuffled(&[1, 2, 3, 4], 7));
/// ```
pub fn shuffled<T: Clone>(v: &[T], seed: u64) -> Vec<T> {
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

// ---------------------------------------------------------------------------------------
// Chains with one defect.

/// A position in a [`ChainCase`]: the leaf, intermediate `i` (0 is issued by the root), or
/// the root.
///
/// ```
/// use meshtrust::testkit::chains::Pos;
/// let mut order = vec![Pos::Root, Pos::Int(0), Pos::Leaf];
/// order.sort();
/// assert_eq!(order, [Pos::Leaf, Pos::Int(0), Pos::Root]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pos {
    /// The leaf.
    Leaf,
    /// Intermediate `i`, top down.
    Int(usize),
    /// The root.
    Root,
}

/// One deliberate defect of a [`ChainCase`] (or none). The variants from
/// [`Defect::ExpiryBoundary`] on trigger the documented differences between meshtrust and
/// `openssl verify -x509_strict` (see the `meshtrust::verify` docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// No defect.
    None,
    /// The certificate expired one second before [`AT`].
    Expired(Pos),
    /// The certificate becomes valid one second after [`AT`].
    NotYetValid(Pos),
    /// notBefore is exactly [`AT`] (valid everywhere).
    NotBeforeBoundary(Pos),
    /// The leaf names an issuer that exists nowhere (signed by its real issuer's key).
    UnknownIssuerName,
    /// The leaf is signed by a key other than its issuer's (an issuer twin with its name).
    WrongKey,
    /// One bit of the signature flipped.
    Tampered(Pos),
    /// basicConstraints cA false on an issuer.
    IssuerNotCa(Pos),
    /// No basicConstraints on an issuer.
    IssuerNoBasicConstraints(Pos),
    /// A pathLenConstraint one below what the path needs.
    PathLenTooSmall(Pos),
    /// keyUsage without keyCertSign on an issuer.
    NoKeyCertSign(Pos),
    /// A critical extension no verifier understands.
    UnknownCriticalExtension(Pos),
    /// The outer signatureAlgorithm differs from the one in tbsCertificate.
    AlgorithmMismatch(Pos),
    /// A second root with the real root's name and another key; the real root kept or not.
    RootTwin {
        /// True when the real root stays in the roots file too.
        keep_real: bool,
    },
    /// notAfter is exactly [`AT`] (RFC 5280: still valid; OpenSSL: expired).
    ExpiryBoundary(Pos),
    /// A CA without a keyUsage extension.
    CaWithoutKeyUsage(Pos),
    /// No authorityKeyIdentifier.
    MissingAki(Pos),
    /// An authorityKeyIdentifier that names no key.
    MisleadingAki(Pos),
    /// Intermediate 0 is in the roots file instead of the root.
    IntermediateAsAnchor,
    /// Intermediate 0 carries the root's name (a re-keyed root cross-signed by the old one),
    /// and the root has a pathLenConstraint that counts it.
    RekeyedRootCrossSigned,
}

impl Defect {
    /// The variant name without its position (for coverage statistics).
    ///
    /// ```
    /// use meshtrust::testkit::chains::{Defect, Pos};
    /// assert_eq!(Defect::Expired(Pos::Int(1)).name(), "Expired");
    /// ```
    pub fn name(&self) -> String {
        let s = format!("{self:?}");
        s.split(['(', ' ']).next().unwrap_or_default().to_owned()
    }
}

/// One generated chain: its shape, keys, algorithms, lifetimes, the target and the defect.
///
/// ```
/// use meshtrust::testkit::chains::{ChainCase, Defect, Pos, AT};
/// use meshtrust::testkit::KeyType;
/// use meshtrust::verify::{self, CertPool, VerifyOptions};
/// let case = ChainCase {
///     depth: 2,
///     kinds: vec![KeyType::Rsa2048, KeyType::EcP256, KeyType::Ed25519],
///     sigs: vec![3, 0, 0],             // the root signs the intermediate with RSA-PSS
///     windows: vec![(100, 100); 3],
///     target: Pos::Leaf,
///     defect: Defect::Expired(Pos::Int(0)),
///     distractors: 1,
///     dup_roots: false,
///     seed: 1,
///     chain_dups: false,
///     root_in_chain: true,
///     workload_leaf: true,
///     leaf_eku: 0,
/// };
/// let built = case.build()?;
/// let at = time::OffsetDateTime::from_unix_timestamp(AT).unwrap();
/// let roots: CertPool = built.roots.iter().cloned().collect();
/// let chain: CertPool = built.chain.iter().cloned().collect();
/// let err = verify::verify(&built.target, &chain, &roots, &VerifyOptions::at(at)).unwrap_err();
/// assert!(err.any(|e| e.kind() == "expired"));
/// assert_eq!(case.path(), [Pos::Leaf, Pos::Int(0), Pos::Root]);
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCase {
    /// Certificates below the root: the leaf and `depth - 1` intermediates (1..=4).
    pub depth: usize,
    /// Key kinds: root, intermediates top down, leaf (`depth + 1` entries).
    pub kinds: Vec<KeyType>,
    /// Signature variant ([`signature_for`]) per certificate, root first (`depth + 1`).
    pub sigs: Vec<u8>,
    /// Validity (days before, days after [`AT`]) per certificate, root first (`depth + 1`).
    pub windows: Vec<(u16, u16)>,
    /// The certificate to verify.
    pub target: Pos,
    /// The deliberate defect.
    pub defect: Defect,
    /// Unrelated roots added to the roots file.
    pub distractors: usize,
    /// The last root of the roots file appears twice.
    pub dup_roots: bool,
    /// Orders the roots and chain files ([`shuffled`]).
    pub seed: u64,
    /// The intermediates appear twice in the chain file.
    pub chain_dups: bool,
    /// The root is in the chain file too (as Istio's cert-chain.pem has it).
    pub root_in_chain: bool,
    /// The leaf is an Istio workload leaf (empty subject, SPIFFE URI SAN).
    pub workload_leaf: bool,
    /// The leaf's EKU: 0 serverAuth + clientAuth, 1 serverAuth, 2 clientAuth, 3 none,
    /// 4 codeSigning.
    pub leaf_eku: u8,
}

fn positions(depth: usize) -> Vec<Pos> {
    let mut v = vec![Pos::Leaf];
    v.extend((0..depth.saturating_sub(1)).map(Pos::Int));
    v.push(Pos::Root);
    v
}

/// Defects for a chain of `depth` certificates below the root (`Defect::None` most often).
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let d = meshtrust::testkit::chains::defect(3).new_tree(&mut runner).unwrap().current();
/// println!("{d:?}");
/// ```
pub fn defect(depth: usize) -> BoxedStrategy<Defect> {
    let depth = depth.max(1);
    let any_pos = prop::sample::select(positions(depth));
    let ca: Vec<Pos> = positions(depth)
        .into_iter()
        .filter(|p| *p != Pos::Leaf)
        .collect();
    let ca = prop::sample::select(ca);
    let non_root: Vec<Pos> = positions(depth)
        .into_iter()
        .filter(|p| *p != Pos::Root)
        .collect();
    let non_root = prop::sample::select(non_root);
    let mut s = prop_oneof![
        6 => Just(Defect::None),
        2 => any_pos.clone().prop_map(Defect::Expired),
        2 => any_pos.clone().prop_map(Defect::NotYetValid),
        1 => any_pos.clone().prop_map(Defect::NotBeforeBoundary),
        1 => Just(Defect::UnknownIssuerName),
        1 => Just(Defect::WrongKey),
        2 => any_pos.clone().prop_map(Defect::Tampered),
        1 => ca.clone().prop_map(Defect::IssuerNotCa),
        1 => ca.clone().prop_map(Defect::IssuerNoBasicConstraints),
        2 => ca.clone().prop_map(Defect::PathLenTooSmall),
        1 => ca.clone().prop_map(Defect::NoKeyCertSign),
        1 => any_pos.clone().prop_map(Defect::UnknownCriticalExtension),
        1 => any_pos.clone().prop_map(Defect::AlgorithmMismatch),
        2 => any::<bool>().prop_map(|keep_real| Defect::RootTwin { keep_real }),
        1 => any_pos.clone().prop_map(Defect::ExpiryBoundary),
        1 => ca.prop_map(Defect::CaWithoutKeyUsage),
        1 => non_root.clone().prop_map(Defect::MissingAki),
        1 => non_root.prop_map(Defect::MisleadingAki),
    ]
    .boxed();
    if depth >= 2 {
        s = prop_oneof![
            20 => s,
            1 => Just(Defect::IntermediateAsAnchor),
            1 => Just(Defect::RekeyedRootCrossSigned),
        ]
        .boxed();
    }
    s
}

/// Chains of depth 1 to 4 with keys drawn from `kinds` (e.g. [`key_kind`]), one defect
/// each, mostly targeting the leaf.
///
/// ```
/// use meshtrust::testkit::chains;
/// use proptest::prelude::*;
/// proptest!(ProptestConfig::with_cases(4), |(case in chains::chain_case(chains::key_kind().boxed()))| {
///     let built = case.build().unwrap();
///     prop_assert_eq!(built.by_pos.len(), case.depth + 1);
/// });
/// ```
pub fn chain_case(kinds: BoxedStrategy<KeyType>) -> impl Strategy<Value = ChainCase> {
    (1usize..=4).prop_flat_map(move |depth| {
        let targets = positions(depth);
        (
            prop::collection::vec(kinds.clone(), depth + 1),
            prop::collection::vec(0u8..6, depth + 1),
            prop::collection::vec((1u16..4000, 1u16..4000), depth + 1),
            prop_oneof![3 => Just(Pos::Leaf), 1 => prop::sample::select(targets)],
            defect(depth),
            (0usize..3, any::<bool>(), any::<u64>()),
            (any::<bool>(), any::<bool>(), any::<bool>()),
            prop_oneof![4 => Just(0u8), 1 => 1u8..5],
        )
            .prop_map(
                move |(
                    kinds,
                    sigs,
                    windows,
                    target,
                    defect,
                    (distractors, dup_roots, seed),
                    (chain_dups, root_in_chain, workload_leaf),
                    leaf_eku,
                )| ChainCase {
                    depth,
                    kinds,
                    sigs,
                    windows,
                    target,
                    defect,
                    distractors,
                    dup_roots,
                    seed,
                    chain_dups,
                    root_in_chain,
                    workload_leaf,
                    leaf_eku,
                },
            )
    })
}

/// What a [`ChainCase`] builds: the roots file, the chain file and the target.
///
/// ```
/// use meshtrust::testkit::chains::{ChainCase, Defect, Pos};
/// use meshtrust::testkit::KeyType;
/// let case = ChainCase {
///     depth: 1, kinds: vec![KeyType::EcP256; 2], sigs: vec![0; 2], windows: vec![(9, 9); 2],
///     target: Pos::Root, defect: Defect::RootTwin { keep_real: true }, distractors: 0,
///     dup_roots: false, seed: 3, chain_dups: false, root_in_chain: false, workload_leaf: false, leaf_eku: 0,
/// };
/// let built = case.build()?;
/// let twin = built.root_twin.clone().unwrap();     // the real root's name, another key
/// assert_eq!(twin.subject(), built.by_pos[&Pos::Root].subject());
/// assert_eq!(built.roots.len(), 2);
/// println!("twin first in the roots file: {}", built.twin_first());
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BuiltChain {
    /// The roots file, in order (distractors, twins, duplicates).
    pub roots: Vec<Certificate>,
    /// The untrusted chain file, in order.
    pub chain: Vec<Certificate>,
    /// The certificate to verify.
    pub target: Certificate,
    /// Every certificate of the chain by position.
    pub by_pos: HashMap<Pos, Certificate>,
    /// The same-named root with another key ([`Defect::RootTwin`]).
    pub root_twin: Option<Certificate>,
}

impl BuiltChain {
    /// True when the root twin comes before the real root in the roots file.
    pub fn twin_first(&self) -> bool {
        let pos = |c: &Certificate| self.roots.iter().position(|x| x == c);
        match (&self.root_twin, self.by_pos.get(&Pos::Root)) {
            (Some(t), Some(r)) => match (pos(t), pos(r)) {
                (Some(a), Some(b)) => a < b,
                _ => false,
            },
            _ => false,
        }
    }
}
