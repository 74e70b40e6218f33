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

use super::{
    Aki, Basic, CertSpec, Eku, Issued, KeyAllocator, KeyType, SigAlg, TestkitError,
    default_signature,
};
use crate::cert::{Certificate, KeyUsage};
use crate::signature::Hash;

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

/// An algorithm identifier other than `actual` (the TBS side of a mismatch).
fn other_alg(actual: SigAlg) -> SigAlg {
    match actual {
        SigAlg::RsaPkcs1(Hash::Sha256) => SigAlg::RsaPkcs1(Hash::Sha384),
        SigAlg::RsaPkcs1(_) | SigAlg::RsaPss(_) => SigAlg::RsaPkcs1(Hash::Sha256),
        SigAlg::EcdsaP256Sha256 => SigAlg::EcdsaP384Sha384,
        SigAlg::EcdsaP384Sha384 | SigAlg::Ed25519 => SigAlg::EcdsaP256Sha256,
    }
}

impl ChainCase {
    /// The positions from the target up to the root.
    pub fn path(&self) -> Vec<Pos> {
        let mut v = Vec::new();
        match self.target {
            Pos::Leaf => {
                v.push(Pos::Leaf);
                v.extend((0..self.depth.saturating_sub(1)).rev().map(Pos::Int));
            }
            Pos::Int(k) => v.extend((0..=k).rev().map(Pos::Int)),
            Pos::Root => {}
        }
        v.push(Pos::Root);
        v
    }

    /// True when the leaf's EKU allows serverAuth (`server`) or clientAuth (`!server`).
    pub fn leaf_eku_allows(&self, server: bool) -> bool {
        match self.leaf_eku {
            1 => server,
            2 => !server,
            4 => false,
            _ => true,
        }
    }

    /// True when `p` is on the path from the target to the root.
    pub fn on_path(&self, p: Pos) -> bool {
        self.path().contains(&p)
    }

    /// Certificates strictly between the target and `p` on the path.
    pub fn below(&self, p: Pos) -> usize {
        self.path()
            .iter()
            .position(|x| *x == p)
            .unwrap_or(0)
            .saturating_sub(1)
    }

    fn index(&self, p: Pos) -> usize {
        match p {
            Pos::Root => 0,
            Pos::Int(i) => i + 1,
            Pos::Leaf => self.depth,
        }
    }

    fn window(&self, p: Pos) -> (i64, i64) {
        let (b, a) = self
            .windows
            .get(self.index(p))
            .copied()
            .unwrap_or((100, 100));
        (AT - i64::from(b) * DAY, AT + i64::from(a) * DAY)
    }

    fn spec(&self, p: Pos, issuer_kind: KeyType) -> CertSpec {
        let (nb, na) = self.window(p);
        let mut spec = match p {
            Pos::Root => CertSpec::root("Mesh", "Root CA"),
            Pos::Int(i) => CertSpec::intermediate("Mesh", &format!("Intermediate {i}")),
            Pos::Leaf if self.workload_leaf => {
                CertSpec::workload("spiffe://cluster.local/ns/default/sa/default")
            }
            Pos::Leaf => CertSpec::leaf("svc.mesh.example"),
        }
        .validity(nb, na);
        if p == Pos::Leaf {
            spec = spec.eku(match self.leaf_eku {
                1 => &[Eku::ServerAuth][..],
                2 => &[Eku::ClientAuth],
                3 => &[],
                4 => &[Eku::CodeSigning],
                _ => &[Eku::ServerAuth, Eku::ClientAuth],
            });
        }
        let variant = self.sigs.get(self.index(p)).copied().unwrap_or(0);
        let alg = signature_for(issuer_kind, variant);
        spec = spec.signature(alg);
        let here = |q: Pos| q == p;
        match self.defect {
            Defect::Expired(q) if here(q) => spec = spec.validity(AT - 400 * DAY, AT - 1),
            Defect::NotYetValid(q) if here(q) => spec = spec.validity(AT + 1, AT + 400 * DAY),
            Defect::NotBeforeBoundary(q) if here(q) => spec = spec.validity(AT, AT + 400 * DAY),
            Defect::ExpiryBoundary(q) if here(q) => spec = spec.validity(AT - 400 * DAY, AT),
            Defect::Tampered(q) if here(q) => spec = spec.tampered(),
            Defect::IssuerNotCa(q) if here(q) => {
                spec = spec
                    .basic(Basic::NotCa)
                    .key_usage(Some(KeyUsage::DIGITAL_SIGNATURE))
            }
            Defect::IssuerNoBasicConstraints(q) if here(q) => {
                spec = spec
                    .basic(Basic::Absent)
                    .key_usage(Some(KeyUsage::DIGITAL_SIGNATURE))
            }
            Defect::PathLenTooSmall(q) if here(q) => {
                let n = if self.on_path(q) {
                    self.below(q).saturating_sub(1)
                } else {
                    0
                };
                spec = spec.basic(Basic::Ca(Some(u8::try_from(n).unwrap_or(u8::MAX))))
            }
            Defect::NoKeyCertSign(q) if here(q) => {
                spec = spec.key_usage(Some(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::CRL_SIGN))
            }
            Defect::UnknownCriticalExtension(q) if here(q) => {
                spec = spec.critical_unknown_extension()
            }
            Defect::AlgorithmMismatch(q) if here(q) => {
                spec = spec.signature(other_alg(alg)).outer_signature(alg)
            }
            Defect::CaWithoutKeyUsage(q) if here(q) => spec = spec.key_usage(None),
            Defect::MissingAki(q) if here(q) => spec = spec.aki(Aki::Omit),
            Defect::MisleadingAki(q) if here(q) => spec = spec.aki(Aki::Explicit(vec![0xab; 20])),
            Defect::RekeyedRootCrossSigned => match p {
                Pos::Int(0) => {
                    spec.subject = CertSpec::root("Mesh", "Root CA").subject;
                }
                Pos::Root => {
                    let n = self.below(Pos::Root).saturating_sub(1);
                    spec = spec.basic(Basic::Ca(Some(u8::try_from(n).unwrap_or(u8::MAX))));
                }
                _ => {}
            },
            _ => {}
        }
        spec
    }

    fn check_shape(&self) -> Result<(), TestkitError> {
        let n = self.depth + 1;
        let bad = |what: &str| Err(TestkitError::Unsupported(format!("chain case: {what}")));
        if !(1..=8).contains(&self.depth) {
            return bad("depth must be 1 to 8");
        }
        if self.kinds.len() != n || self.sigs.len() != n || self.windows.len() != n {
            return bad("kinds, sigs and windows need depth + 1 entries");
        }
        if let Pos::Int(i) = self.target {
            if i + 1 >= self.depth {
                return bad("the target intermediate does not exist");
            }
        }
        if matches!(
            self.defect,
            Defect::IntermediateAsAnchor | Defect::RekeyedRootCrossSigned
        ) && self.depth < 2
        {
            return bad("this defect needs an intermediate");
        }
        Ok(())
    }

    /// Builds every certificate and the two files (keys from a fresh [`KeyAllocator`]).
    pub fn build(&self) -> Result<BuiltChain, TestkitError> {
        self.check_shape()?;
        let mut alloc = KeyAllocator::new();
        let keys: Vec<_> = self.kinds.iter().map(|&k| alloc.take(k)).collect();
        let (root_key, leaf_key) = match (keys.first(), keys.last()) {
            (Some(r), Some(l)) => (r, l),
            _ => return Err(TestkitError::Unsupported("no keys".to_owned())),
        };
        let root_kind = root_key.kind();
        let root = Issued::self_signed(&self.spec(Pos::Root, root_kind), root_key)?;
        let mut by_pos = HashMap::new();
        by_pos.insert(Pos::Root, root.cert().clone());
        let mut issuer = root.clone();
        let mut ints = Vec::new();
        for (i, key) in keys
            .iter()
            .enumerate()
            .skip(1)
            .take(self.depth - 1)
            .map(|(i, k)| (i - 1, k))
        {
            let next = issuer.issue(&self.spec(Pos::Int(i), issuer.key().kind()), key)?;
            by_pos.insert(Pos::Int(i), next.cert().clone());
            ints.push(next.cert().clone());
            issuer = next;
        }
        let leaf_spec = self.spec(Pos::Leaf, issuer.key().kind());
        let leaf = match self.defect {
            Defect::UnknownIssuerName => {
                let ghost_spec = CertSpec::intermediate("Ghost", "Nobody");
                let ghost = Issued::self_signed(&ghost_spec, issuer.key())?;
                ghost.issue(&leaf_spec, leaf_key)?
            }
            Defect::WrongKey => {
                let twin_key = alloc.take(issuer.key().kind());
                let spec = issuer.spec().clone().serial(&[0x55, 1]);
                let twin = Issued::self_signed(
                    &spec.signature(default_signature(twin_key.kind())),
                    &twin_key,
                )?;
                let leaf_spec = leaf_spec.signature(default_signature(twin_key.kind()));
                twin.issue(&leaf_spec, leaf_key)?
            }
            _ => issuer.issue(&leaf_spec, leaf_key)?,
        };
        by_pos.insert(Pos::Leaf, leaf.cert().clone());

        let mut roots: Vec<Certificate> = Vec::new();
        let mut root_twin = None;
        for i in 0..self.distractors {
            let spec = CertSpec::root("Other", &format!("Distractor {i}"));
            roots.push(
                Issued::self_signed(&spec, &alloc.take(KeyType::EcP256))?
                    .cert()
                    .clone(),
            );
        }
        match self.defect {
            Defect::IntermediateAsAnchor => roots.extend(ints.first().cloned()),
            Defect::RootTwin { keep_real } => {
                let twin_key = alloc.take(root_kind);
                let spec = root.spec().clone().serial(&[0x66, 1]);
                let twin = Issued::self_signed(
                    &spec.signature(default_signature(twin_key.kind())),
                    &twin_key,
                )?;
                roots.push(twin.cert().clone());
                root_twin = Some(twin.cert().clone());
                if keep_real {
                    roots.push(root.cert().clone());
                }
            }
            _ => roots.push(root.cert().clone()),
        }
        if self.dup_roots {
            roots.extend(roots.last().cloned());
        }
        let roots = shuffled(&roots, self.seed);

        let mut chain = ints.clone();
        if self.root_in_chain && self.defect != Defect::IntermediateAsAnchor {
            chain.push(root.cert().clone());
        }
        if self.chain_dups {
            chain.extend(ints.iter().cloned());
        }
        let chain = shuffled(&chain, self.seed.rotate_left(29));
        let target = by_pos
            .get(&self.target)
            .cloned()
            .ok_or_else(|| TestkitError::Unsupported("no such target".to_owned()))?;
        Ok(BuiltChain {
            roots,
            chain,
            target,
            by_pos,
            root_twin,
        })
    }
}

// ---------------------------------------------------------------------------------------
// CA topologies.

/// The instant topologies are checked at: 2030-01-01T12:00:00Z. Topology validity windows
/// start and end at midnight, so no certificate is ever on a boundary at this instant.
pub const TOPOLOGY_AT: i64 = AT + DAY / 2;

/// A validity window in whole days around [`TOPOLOGY_AT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifetime {
    /// First valid day, relative to the day of [`TOPOLOGY_AT`] (negative: in the past).
    pub starts: i32,
    /// Length in days (at least 1).
    pub days: u32,
}

impl Lifetime {
    /// notBefore and notAfter, Unix seconds.
    ///
    /// ```
    /// use meshtrust::testkit::chains::{Lifetime, TOPOLOGY_AT};
    /// let l = Lifetime { starts: -10, days: 20 };
    /// let (nb, na) = l.window();
    /// assert!(nb < TOPOLOGY_AT && TOPOLOGY_AT < na && l.is_valid());
    /// assert!(!Lifetime { starts: -10, days: 10 }.is_valid());
    /// ```
    pub fn window(&self) -> (i64, i64) {
        let nb = AT + i64::from(self.starts) * DAY;
        (nb, nb + i64::from(self.days.max(1)) * DAY)
    }

    /// True when valid at [`TOPOLOGY_AT`].
    pub fn is_valid(&self) -> bool {
        let (nb, na) = self.window();
        nb <= TOPOLOGY_AT && TOPOLOGY_AT <= na
    }
}

/// Lifetimes: mostly valid at [`TOPOLOGY_AT`] (up to ten years either side), some expired,
/// a few not yet valid.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let l = meshtrust::testkit::chains::lifetime().new_tree(&mut runner).unwrap().current();
/// assert!(l.days >= 1);
/// ```
pub fn lifetime() -> impl Strategy<Value = Lifetime> + Clone {
    prop_oneof![
        17 => (1i32..3650, 1u32..3650).prop_map(|(ago, left)| Lifetime { starts: -ago, days: ago.unsigned_abs() + left }),
        2 => (2i32..3650, 1u32..3650).prop_map(|(ago, len)| Lifetime { starts: -ago, days: len.min(ago.unsigned_abs() - 1).max(1) }),
        1 => (1i32..100, 1u32..3650).prop_map(|(ahead, days)| Lifetime { starts: ahead, days }),
    ]
}

/// A CA of a topology: a root or an intermediate, by index (see [`TopologySpec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaRef {
    /// `roots[i]`.
    Root(usize),
    /// `intermediates[i]`.
    Intermediate(usize),
}

/// A certificate of a topology, by index.
///
/// ```
/// use meshtrust::testkit::chains::{self, Node};
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let t = chains::topology().new_tree(&mut runner).unwrap().current().build()?;
/// assert!(t.cert(Node::Root(0)).is_some() && t.cert(Node::Leaf(0)).is_some());
/// assert!(t.cert(Node::Leaf(99)).is_none());
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// `roots[i]` (self-signed).
    Root(usize),
    /// `intermediates[i]`.
    Intermediate(usize),
    /// `cross_signed[i]`: a root's name and key, issued by another root.
    CrossSigned(usize),
    /// `leaves[i]`.
    Leaf(usize),
}

/// A self-signed root `O=Mesh, CN=Root CA <name>`. Built into a
/// topology as [`TopologySpec::expected_anchors`] shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RootNode {
    /// Name number: roots with equal numbers have equal subjects (a re-keyed root).
    pub name: usize,
    /// Its key (every root has its own key).
    pub key: KeyType,
    /// Validity.
    pub lifetime: Lifetime,
    /// In the trusted roots file.
    pub trusted: bool,
    /// Signature variant ([`signature_for`]).
    pub signature: u8,
}

/// An intermediate CA `O=Mesh, CN=Intermediate <i>`. Built into a
/// topology as [`TopologySpec::expected_anchors`] shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaNode {
    /// Its issuer.
    pub parent: CaRef,
    /// Its key.
    pub key: KeyType,
    /// Validity.
    pub lifetime: Lifetime,
    /// Signature variant of its issuer ([`signature_for`]).
    pub signature: u8,
}

/// A cross-signature: root `subject`'s name and key, issued by root `issuer`. Built into a
/// topology as [`TopologySpec::expected_anchors`] shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CrossNode {
    /// The root whose name and key the certificate carries.
    pub subject: usize,
    /// The root that signs it.
    pub issuer: usize,
    /// Validity.
    pub lifetime: Lifetime,
    /// Signature variant of the issuer ([`signature_for`]).
    pub signature: u8,
}

/// A leaf: an Istio workload leaf (SPIFFE URI SAN) or a named server/client leaf. Built into a
/// topology as [`TopologySpec::expected_anchors`] shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeafNode {
    /// Its issuer.
    pub parent: CaRef,
    /// Its key.
    pub key: KeyType,
    /// Validity.
    pub lifetime: Lifetime,
    /// Signature variant of its issuer ([`signature_for`]).
    pub signature: u8,
    /// Istio workload shape (empty subject, URI SAN) instead of `CN=leaf<i>.mesh.example`.
    pub workload: bool,
}

/// A CA topology to build: roots, intermediates, cross-signatures and leaves. Draw them
/// with [`topology`], or write one by hand (see [`TopologySpec::expected_anchors`]).
///
/// ```
/// use meshtrust::testkit::chains::*;
/// use meshtrust::testkit::KeyType::EcP256;
/// let ok = Lifetime { starts: -30, days: 365 };
/// // Root 1 is root 0 re-keyed (same name, new key); only root 1 is trusted.
/// let spec = TopologySpec {
///     roots: vec![
///         RootNode { name: 0, key: EcP256, lifetime: ok, trusted: false, signature: 0 },
///         RootNode { name: 0, key: EcP256, lifetime: ok, trusted: true, signature: 0 },
///     ],
///     intermediates: vec![],
///     cross_signed: vec![],
///     leaves: vec![
///         LeafNode { parent: CaRef::Root(0), key: EcP256, lifetime: ok, signature: 0, workload: true },
///         LeafNode { parent: CaRef::Root(1), key: EcP256, lifetime: ok, signature: 0, workload: true },
///     ],
///     roots_in_chain: false,
///     seed: 0,
/// };
/// assert_eq!(spec.expected_anchors(0, true), Vec::<usize>::new()); // the name matches, the key does not
/// assert_eq!(spec.expected_anchors(1, true), vec![1]);
/// let t = spec.build()?;
/// assert_eq!(t.trusted_roots().len(), 1);
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopologySpec {
    /// Roots (at least one).
    pub roots: Vec<RootNode>,
    /// Intermediates; each one's parent is a root or an earlier intermediate.
    pub intermediates: Vec<CaNode>,
    /// Cross-signatures between roots.
    pub cross_signed: Vec<CrossNode>,
    /// Leaves.
    pub leaves: Vec<LeafNode>,
    /// The chain pool also holds every root (as Istio's cert-chain.pem holds its root).
    pub roots_in_chain: bool,
    /// Orders the chain pool ([`shuffled`]).
    pub seed: u64,
}

/// Bounds of [`topology_with`] (example there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologyLimits {
    /// Most roots (at least 1).
    pub roots: usize,
    /// Most intermediates.
    pub intermediates: usize,
    /// Most intermediates between a leaf and a root (paths stay within the verifiers'
    /// default depth of 8 certificates with two cross-signatures: keep it at most 4).
    pub depth: usize,
    /// Most cross-signatures.
    pub cross_signed: usize,
    /// Most leaves (at least 1).
    pub leaves: usize,
}

impl Default for TopologyLimits {
    /// 3 roots, 4 intermediates at most 3 deep, 2 cross-signatures, 4 leaves.
    fn default() -> Self {
        TopologyLimits {
            roots: 3,
            intermediates: 4,
            depth: 3,
            cross_signed: 2,
            leaves: 4,
        }
    }
}

/// Random topologies within [`TopologyLimits::default`].
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let spec = meshtrust::testkit::chains::topology().new_tree(&mut runner).unwrap().current();
/// let t = spec.build()?;
/// assert_eq!(t.leaves.len(), spec.leaves.len());
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
pub fn topology() -> impl Strategy<Value = TopologySpec> {
    topology_with(TopologyLimits::default())
}

/// Random topologies within `limits`: root names repeat (re-keyed roots) one time in four,
/// three roots in four are trusted, intermediates hang off any earlier CA.
///
/// ```
/// use meshtrust::testkit::chains::{topology_with, TopologyLimits};
/// use proptest::prelude::*;
/// let limits = TopologyLimits { roots: 2, intermediates: 1, depth: 1, cross_signed: 1, leaves: 1 };
/// proptest!(ProptestConfig::with_cases(4), |(spec in topology_with(limits))| {
///     prop_assert!(spec.roots.len() <= 2 && spec.leaves.len() == 1);
/// });
/// ```
pub fn topology_with(limits: TopologyLimits) -> impl Strategy<Value = TopologySpec> {
    let l = TopologyLimits {
        roots: limits.roots.max(1),
        leaves: limits.leaves.max(1),
        ..limits
    };
    (
        1..=l.roots,
        0..=l.intermediates,
        0..=l.cross_signed,
        1..=l.leaves,
    )
        .prop_flat_map(move |(nr, ni, nc, nl)| {
            let sig = 0u8..6;
            (
                prop::collection::vec(
                    (
                        prop_oneof![3 => Just(None), 1 => any::<prop::sample::Index>().prop_map(Some)],
                        key_kind(),
                        lifetime(),
                        prop_oneof![3 => Just(true), 1 => Just(false)],
                        sig.clone(),
                    ),
                    nr,
                ),
                prop::collection::vec(
                    (
                        any::<prop::sample::Index>(),
                        key_kind(),
                        lifetime(),
                        sig.clone(),
                    ),
                    ni,
                ),
                prop::collection::vec(
                    (
                        any::<prop::sample::Index>(),
                        any::<prop::sample::Index>(),
                        lifetime(),
                        sig.clone(),
                    ),
                    nc,
                ),
                prop::collection::vec(
                    (
                        any::<prop::sample::Index>(),
                        key_kind(),
                        lifetime(),
                        sig,
                        any::<bool>(),
                    ),
                    nl,
                ),
                any::<bool>(),
                any::<u64>(),
            )
                .prop_map(move |(roots, ints, cross, leaves, roots_in_chain, seed)| {
                    let mut spec = TopologySpec {
                        roots: Vec::new(),
                        intermediates: Vec::new(),
                        cross_signed: Vec::new(),
                        leaves: Vec::new(),
                        roots_in_chain,
                        seed,
                    };
                    for (i, (rekey, key, lifetime, trusted, signature)) in
                        roots.into_iter().enumerate()
                    {
                        let name = match rekey {
                            Some(ix) if i > 0 => spec.roots[ix.index(i)].name,
                            _ => i,
                        };
                        spec.roots.push(RootNode {
                            name,
                            key,
                            lifetime,
                            trusted,
                            signature,
                        });
                    }
                    let mut depth: Vec<usize> = Vec::new();
                    for (j, (parent, key, lifetime, signature)) in ints.into_iter().enumerate() {
                        let p = parent.index(nr + j);
                        let (parent, d) = if p < nr || depth[p - nr] >= l.depth {
                            (CaRef::Root(p % nr), 1)
                        } else {
                            (CaRef::Intermediate(p - nr), depth[p - nr] + 1)
                        };
                        depth.push(d);
                        spec.intermediates.push(CaNode {
                            parent,
                            key,
                            lifetime,
                            signature,
                        });
                    }
                    if nr > 1 {
                        for (s, i, lifetime, signature) in cross {
                            let subject = s.index(nr);
                            let issuer = (subject + 1 + i.index(nr - 1)) % nr;
                            spec.cross_signed.push(CrossNode {
                                subject,
                                issuer,
                                lifetime,
                                signature,
                            });
                        }
                    }
                    let ncas = nr + spec.intermediates.len();
                    for (parent, key, lifetime, signature, workload) in leaves {
                        let p = parent.index(ncas);
                        let parent = if p < nr {
                            CaRef::Root(p)
                        } else {
                            CaRef::Intermediate(p - nr)
                        };
                        spec.leaves.push(LeafNode {
                            parent,
                            key,
                            lifetime,
                            signature,
                            workload,
                        });
                    }
                    spec
                })
        })
}

/// Who signed a certificate, as (subject name, key) identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subject {
    Root(usize),
    Intermediate(usize),
    Leaf(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyId {
    Root(usize),
    Intermediate(usize),
    Leaf(usize),
}

/// The certificates that can sign a given certificate, as a verifier would find them.
///
/// ```
/// use meshtrust::testkit::chains::*;
/// use meshtrust::testkit::KeyType::EcP256;
/// let ok = Lifetime { starts: -30, days: 365 };
/// let root = |trusted| RootNode { name: 0, key: EcP256, lifetime: ok, trusted, signature: 0 };
/// let spec = TopologySpec {
///     roots: vec![root(false), root(true)],
///     intermediates: vec![],
///     cross_signed: vec![CrossNode { subject: 0, issuer: 1, lifetime: ok, signature: 0 }],
///     leaves: vec![LeafNode { parent: CaRef::Root(0), key: EcP256, lifetime: ok, signature: 0, workload: false }],
///     roots_in_chain: false,
///     seed: 0,
/// };
/// let is = spec.issuers(Node::Leaf(0));
/// assert!(is.trusted.is_empty());                       // root 0 is not trusted
/// assert_eq!(is.pool, vec![Node::CrossSigned(0)]);      // but its cross-signature is in the pool
/// assert_eq!(spec.expected_anchors(0, true), vec![1]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issuers {
    /// Trusted roots (indices into `roots`) with the issuer's name and key.
    pub trusted: Vec<usize>,
    /// Certificates of the chain pool with the issuer's name and key.
    pub pool: Vec<Node>,
}

impl TopologySpec {
    fn check(&self) -> Result<(), TestkitError> {
        let bad = |what: String| Err(TestkitError::Unsupported(format!("topology: {what}")));
        if self.roots.is_empty() {
            return bad("no root".to_owned());
        }
        let ca_ok = |c: CaRef, before: usize| match c {
            CaRef::Root(i) => i < self.roots.len(),
            CaRef::Intermediate(i) => i < before,
        };
        for (j, n) in self.intermediates.iter().enumerate() {
            if !ca_ok(n.parent, j) {
                return bad(format!("intermediate {j}: no such parent {:?}", n.parent));
            }
        }
        for (k, c) in self.cross_signed.iter().enumerate() {
            if c.subject >= self.roots.len() || c.issuer >= self.roots.len() {
                return bad(format!("cross-signature {k}: no such root"));
            }
        }
        for (l, n) in self.leaves.iter().enumerate() {
            if !ca_ok(n.parent, self.intermediates.len()) {
                return bad(format!("leaf {l}: no such parent {:?}", n.parent));
            }
        }
        Ok(())
    }

    fn subject(&self, n: Node) -> Subject {
        match n {
            Node::Root(i) => Subject::Root(self.roots.get(i).map_or(i, |r| r.name)),
            Node::CrossSigned(k) => {
                let s = self.cross_signed.get(k).map_or(0, |c| c.subject);
                self.subject(Node::Root(s))
            }
            Node::Intermediate(j) => Subject::Intermediate(j),
            Node::Leaf(l) => Subject::Leaf(l),
        }
    }

    fn key(&self, n: Node) -> KeyId {
        match n {
            Node::Root(i) => KeyId::Root(i),
            Node::CrossSigned(k) => KeyId::Root(self.cross_signed.get(k).map_or(0, |c| c.subject)),
            Node::Intermediate(j) => KeyId::Intermediate(j),
            Node::Leaf(l) => KeyId::Leaf(l),
        }
    }

    fn ca_node(c: CaRef) -> Node {
        match c {
            CaRef::Root(i) => Node::Root(i),
            CaRef::Intermediate(j) => Node::Intermediate(j),
        }
    }

    /// The node whose name and key sign `n` (a root signs itself).
    fn signer(&self, n: Node) -> Option<Node> {
        Some(match n {
            Node::Root(_) => n,
            Node::CrossSigned(k) => Node::Root(self.cross_signed.get(k)?.issuer),
            Node::Intermediate(j) => Self::ca_node(self.intermediates.get(j)?.parent),
            Node::Leaf(l) => Self::ca_node(self.leaves.get(l)?.parent),
        })
    }

    /// The lifetime of a node.
    pub fn lifetime(&self, n: Node) -> Option<Lifetime> {
        Some(match n {
            Node::Root(i) => self.roots.get(i)?.lifetime,
            Node::CrossSigned(k) => self.cross_signed.get(k)?.lifetime,
            Node::Intermediate(j) => self.intermediates.get(j)?.lifetime,
            Node::Leaf(l) => self.leaves.get(l)?.lifetime,
        })
    }

    /// The certificates of the chain pool: intermediates, cross-signatures, and the roots
    /// when [`TopologySpec::roots_in_chain`].
    pub fn pool_nodes(&self) -> Vec<Node> {
        let mut v: Vec<Node> = (0..self.intermediates.len())
            .map(Node::Intermediate)
            .chain((0..self.cross_signed.len()).map(Node::CrossSigned))
            .collect();
        if self.roots_in_chain {
            v.extend((0..self.roots.len()).map(Node::Root));
        }
        v
    }

    /// Every certificate that can sign `n`: same name as its issuer and the same key (a
    /// re-keyed root has the name but not the key; a cross-signature has both).
    pub fn issuers(&self, n: Node) -> Issuers {
        let Some(signer) = self.signer(n) else {
            return Issuers::default();
        };
        let (name, key) = (self.subject(signer), self.key(signer));
        let fits = |m: Node| self.subject(m) == name && self.key(m) == key;
        Issuers {
            trusted: (0..self.roots.len())
                .filter(|&i| self.roots[i].trusted && fits(Node::Root(i)))
                .collect(),
            pool: self
                .pool_nodes()
                .into_iter()
                .filter(|&m| m != n && fits(m))
                .collect(),
        }
    }

    /// The model: the trusted roots (indices into `roots`, ascending) that anchor leaf
    /// `leaf` at [`TOPOLOGY_AT`] through the chain pool. A path needs every certificate
    /// valid at that instant; with `anchors_checked` false the anchor's own validity is not
    /// required (rustls-webpki's rule). Found by a search over names and keys only: an
    /// oracle independent of any X.509 code.
    ///
    /// ```
    /// use meshtrust::testkit::chains::*;
    /// let valid = Lifetime { starts: -10, days: 100 };
    /// let expired = Lifetime { starts: -10, days: 5 };
    /// let root = |name, trusted, lifetime| RootNode { name, key: meshtrust::testkit::KeyType::EcP256, lifetime, trusted, signature: 0 };
    /// let spec = TopologySpec {
    ///     roots: vec![root(0, true, expired), root(1, true, valid)],
    ///     intermediates: vec![CaNode { parent: CaRef::Root(0), key: meshtrust::testkit::KeyType::EcP256, lifetime: valid, signature: 0 }],
    ///     cross_signed: vec![CrossNode { subject: 0, issuer: 1, lifetime: valid, signature: 0 }],
    ///     leaves: vec![LeafNode { parent: CaRef::Intermediate(0), key: meshtrust::testkit::KeyType::EcP256, lifetime: valid, signature: 0, workload: true }],
    ///     roots_in_chain: false,
    ///     seed: 0,
    /// };
    /// assert_eq!(spec.expected_anchors(0, true), vec![1]);      // root 0 expired: only via the cross-signature
    /// assert_eq!(spec.expected_anchors(0, false), vec![0, 1]);  // anchors unchecked: both
    /// ```
    pub fn expected_anchors(&self, leaf: usize, anchors_checked: bool) -> Vec<usize> {
        let mut found = vec![false; self.roots.len()];
        let valid = |n: Node| self.lifetime(n).is_some_and(|l| l.is_valid());
        let start = Node::Leaf(leaf);
        if leaf >= self.leaves.len() || !valid(start) {
            return Vec::new();
        }
        let mut stack = vec![(start, vec![start])];
        while let Some((n, path)) = stack.pop() {
            let is = self.issuers(n);
            for r in is.trusted {
                if !anchors_checked || valid(Node::Root(r)) {
                    found[r] = true;
                }
            }
            for m in is.pool {
                if !path.contains(&m) && valid(m) {
                    let mut p = path.clone();
                    p.push(m);
                    stack.push((m, p));
                }
            }
        }
        (0..found.len()).filter(|&i| found[i]).collect()
    }

    /// True when every certificate of the topology is valid at [`TOPOLOGY_AT`].
    pub fn all_valid(&self) -> bool {
        self.roots
            .iter()
            .map(|r| r.lifetime)
            .chain(self.intermediates.iter().map(|n| n.lifetime))
            .chain(self.cross_signed.iter().map(|n| n.lifetime))
            .chain(self.leaves.iter().map(|n| n.lifetime))
            .all(|l| l.is_valid())
    }

    /// Builds every certificate (keys from a fresh [`KeyAllocator`]: every CA its own key).
    pub fn build(&self) -> Result<Topology, TestkitError> {
        self.check()?;
        let mut alloc = KeyAllocator::new();
        let mut roots: Vec<Issued> = Vec::with_capacity(self.roots.len());
        for r in &self.roots {
            let key = alloc.take(r.key);
            let (nb, na) = r.lifetime.window();
            let spec = CertSpec::root("Mesh", &format!("Root CA {}", r.name))
                .validity(nb, na)
                .signature(signature_for(key.kind(), r.signature));
            roots.push(Issued::self_signed(&spec, &key)?);
        }
        let mut intermediates: Vec<Issued> = Vec::with_capacity(self.intermediates.len());
        for (j, n) in self.intermediates.iter().enumerate() {
            let parent = match n.parent {
                CaRef::Root(i) => roots.get(i),
                CaRef::Intermediate(i) => intermediates.get(i),
            }
            .ok_or_else(|| TestkitError::Unsupported(format!("intermediate {j}: no parent")))?;
            let (nb, na) = n.lifetime.window();
            let spec = CertSpec::intermediate("Mesh", &format!("Intermediate {j}"))
                .validity(nb, na)
                .signature(signature_for(parent.key().kind(), n.signature));
            let next = parent.issue(&spec, &alloc.take(n.key))?;
            intermediates.push(next);
        }
        let mut cross_signed = Vec::with_capacity(self.cross_signed.len());
        for c in &self.cross_signed {
            let (Some(subject), Some(issuer)) = (roots.get(c.subject), roots.get(c.issuer)) else {
                return Err(TestkitError::Unsupported(
                    "cross-signature: no such root".to_owned(),
                ));
            };
            let (nb, na) = c.lifetime.window();
            let mut spec = CertSpec::intermediate("Mesh", "x")
                .validity(nb, na)
                .signature(signature_for(issuer.key().kind(), c.signature));
            spec.subject = subject.spec().subject.clone();
            cross_signed.push(issuer.issue(&spec, subject.key())?);
        }
        let mut leaves = Vec::with_capacity(self.leaves.len());
        for (l, n) in self.leaves.iter().enumerate() {
            let parent = match n.parent {
                CaRef::Root(i) => roots.get(i),
                CaRef::Intermediate(i) => intermediates.get(i),
            }
            .ok_or_else(|| TestkitError::Unsupported(format!("leaf {l}: no parent")))?;
            let (nb, na) = n.lifetime.window();
            let spec = if n.workload {
                CertSpec::workload(&format!("spiffe://cluster.local/ns/mesh/sa/leaf{l}"))
            } else {
                CertSpec::leaf(&format!("leaf{l}.mesh.example"))
            }
            .validity(nb, na)
            .signature(signature_for(parent.key().kind(), n.signature));
            leaves.push(parent.issue(&spec, &alloc.take(n.key))?);
        }
        Ok(Topology {
            spec: self.clone(),
            roots,
            intermediates,
            cross_signed,
            leaves,
        })
    }
}

/// A built topology: every certificate with its key.
///
/// ```
/// use meshtrust::testkit::chains;
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let t = chains::topology().new_tree(&mut runner).unwrap().current().build()?;
/// let roots = t.trusted_roots();   // the roots file
/// let pool = t.chain_pool();       // intermediates, cross-signatures (and roots), shuffled
/// assert!(roots.len() <= t.roots.len());
/// assert!(pool.len() >= t.intermediates.len() + t.cross_signed.len());
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Topology {
    /// What was built.
    pub spec: TopologySpec,
    /// The roots, as in the spec.
    pub roots: Vec<Issued>,
    /// The intermediates, as in the spec.
    pub intermediates: Vec<Issued>,
    /// The cross-signatures, as in the spec.
    pub cross_signed: Vec<Issued>,
    /// The leaves, as in the spec.
    pub leaves: Vec<Issued>,
}

impl Topology {
    /// The certificate of a node.
    pub fn cert(&self, n: Node) -> Option<&Certificate> {
        match n {
            Node::Root(i) => self.roots.get(i),
            Node::Intermediate(j) => self.intermediates.get(j),
            Node::CrossSigned(k) => self.cross_signed.get(k),
            Node::Leaf(l) => self.leaves.get(l),
        }
        .map(Issued::cert)
    }

    /// The trusted roots file: the trusted roots in root order.
    pub fn trusted_roots(&self) -> Vec<Certificate> {
        self.spec
            .roots
            .iter()
            .zip(&self.roots)
            .filter(|(s, _)| s.trusted)
            .map(|(_, r)| r.cert().clone())
            .collect()
    }

    /// The untrusted chain pool ([`TopologySpec::pool_nodes`]) in the order of the seed.
    pub fn chain_pool(&self) -> Vec<Certificate> {
        let v: Vec<Certificate> = self
            .spec
            .pool_nodes()
            .into_iter()
            .filter_map(|n| self.cert(n).cloned())
            .collect();
        shuffled(&v, self.spec.seed)
    }
}
