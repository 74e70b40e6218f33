//! Generated chains with one deliberate defect each, shared by the differential tests.

use std::collections::HashMap;

use meshtrust::Certificate;
use meshtrust::cert::KeyUsage;
use meshtrust::signature::Hash;
use meshtrust::testkit::{
    Aki, Basic, CertSpec, Eku, Issued, KeyKind, SigAlg, TestKey, TestkitError,
};
use proptest::prelude::*;

/// 2030-01-01T00:00:00Z.
pub const AT: i64 = 1_893_456_000;
pub const DAY: i64 = 86_400;

/// A position in the generated chain: the leaf, intermediate `i` (0 is issued by the root),
/// or the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pos {
    Leaf,
    Int(usize),
    Root,
}

/// One deliberate defect (or none). Variants after `RootTwin` trigger documented
/// differences from `openssl verify -x509_strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutation {
    None,
    Expired(Pos),
    NotYetValid(Pos),
    NotBeforeBoundary(Pos),
    /// The leaf names an issuer that exists nowhere (signed by its real issuer's key).
    UnknownIssuerName,
    /// The leaf is signed by a key other than its issuer's (an issuer twin with its name).
    WrongKey,
    Tampered(Pos),
    IssuerNotCa(Pos),
    IssuerNoBasicConstraints(Pos),
    PathLenTooSmall(Pos),
    NoKeyCertSign(Pos),
    UnknownCriticalExtension(Pos),
    AlgorithmMismatch(Pos),
    /// A second root with the real root's name and another key; the real root kept or not.
    RootTwin {
        keep_real: bool,
    },
    // Documented differences from OpenSSL:
    ExpiryBoundary(Pos),
    CaWithoutKeyUsage(Pos),
    MissingAki(Pos),
    MisleadingAki(Pos),
    IntermediateAsAnchor,
    RekeyedRootCrossSigned,
}

impl Mutation {
    /// The variant name without its position (for coverage statistics).
    pub fn name(&self) -> String {
        let s = format!("{self:?}");
        s.split(['(', ' ']).next().unwrap_or_default().to_owned()
    }
}

#[derive(Debug, Clone)]
pub struct Case {
    /// Certificates below the root: the leaf and `depth - 1` intermediates (1..=4).
    pub depth: usize,
    /// Key kinds: root, intermediates top down, leaf.
    pub kinds: Vec<KeyKind>,
    /// Signature variant per non-root certificate, by the issuer's kind (RSA: PKCS#1 or PSS
    /// with SHA-256/384/512), and for the root's self-signature (last).
    pub sigs: Vec<u8>,
    /// Validity (days before, days after AT) per certificate, root first.
    pub windows: Vec<(u16, u16)>,
    pub target: Pos,
    pub mutation: Mutation,
    pub distractors: usize,
    pub dup_roots: bool,
    pub seed: u64,
    pub chain_dups: bool,
    pub root_in_chain: bool,
    pub workload_leaf: bool,
    /// The leaf's EKU: 0 serverAuth + clientAuth, 1 serverAuth, 2 clientAuth, 3 none,
    /// 4 codeSigning.
    pub leaf_eku: u8,
}

pub fn kind_strategy() -> impl Strategy<Value = KeyKind> {
    prop_oneof![
        4 => Just(KeyKind::EcP256),
        1 => Just(KeyKind::EcP384),
        2 => Just(KeyKind::Ed25519),
        3 => Just(KeyKind::Rsa2048),
        1 => Just(KeyKind::Rsa3072),
        1 => Just(KeyKind::Rsa4096),
    ]
}

fn positions(depth: usize) -> Vec<Pos> {
    let mut v = vec![Pos::Leaf];
    v.extend((0..depth - 1).map(Pos::Int));
    v.push(Pos::Root);
    v
}

pub fn mutation_strategy(depth: usize) -> BoxedStrategy<Mutation> {
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
        6 => Just(Mutation::None),
        2 => any_pos.clone().prop_map(Mutation::Expired),
        2 => any_pos.clone().prop_map(Mutation::NotYetValid),
        1 => any_pos.clone().prop_map(Mutation::NotBeforeBoundary),
        1 => Just(Mutation::UnknownIssuerName),
        1 => Just(Mutation::WrongKey),
        2 => any_pos.clone().prop_map(Mutation::Tampered),
        1 => ca.clone().prop_map(Mutation::IssuerNotCa),
        1 => ca.clone().prop_map(Mutation::IssuerNoBasicConstraints),
        2 => ca.clone().prop_map(Mutation::PathLenTooSmall),
        1 => ca.clone().prop_map(Mutation::NoKeyCertSign),
        1 => any_pos.clone().prop_map(Mutation::UnknownCriticalExtension),
        1 => any_pos.clone().prop_map(Mutation::AlgorithmMismatch),
        2 => any::<bool>().prop_map(|keep_real| Mutation::RootTwin { keep_real }),
        1 => any_pos.clone().prop_map(Mutation::ExpiryBoundary),
        1 => ca.prop_map(Mutation::CaWithoutKeyUsage),
        1 => non_root.clone().prop_map(Mutation::MissingAki),
        1 => non_root.prop_map(Mutation::MisleadingAki),
    ]
    .boxed();
    if depth >= 2 {
        s = prop_oneof![
            20 => s,
            1 => Just(Mutation::IntermediateAsAnchor),
            1 => Just(Mutation::RekeyedRootCrossSigned),
        ]
        .boxed();
    }
    s
}

pub fn case_strategy(kinds: BoxedStrategy<KeyKind>) -> impl Strategy<Value = Case> {
    (1usize..=4).prop_flat_map(move |depth| {
        let targets = positions(depth);
        (
            prop::collection::vec(kinds.clone(), depth + 1),
            prop::collection::vec(0u8..6, depth + 1),
            prop::collection::vec((1u16..4000, 1u16..4000), depth + 1),
            prop_oneof![3 => Just(Pos::Leaf), 1 => prop::sample::select(targets)],
            mutation_strategy(depth),
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
                    mutation,
                    (distractors, dup_roots, seed),
                    (chain_dups, root_in_chain, workload_leaf),
                    leaf_eku,
                )| Case {
                    depth,
                    kinds,
                    sigs,
                    windows,
                    target,
                    mutation,
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

/// What the generated files hold.
pub struct Built {
    /// The roots file, in order (distractors, twins, duplicates).
    pub roots: Vec<Certificate>,
    /// The untrusted chain file, in order.
    pub chain: Vec<Certificate>,
    pub target: Certificate,
    pub by_pos: HashMap<Pos, Certificate>,
    /// The same-named root with another key ([`Mutation::RootTwin`]).
    pub root_twin: Option<Certificate>,
}

impl Built {
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

struct KeyAlloc(HashMap<KeyKind, usize>);

impl KeyAlloc {
    fn take(&mut self, kind: KeyKind) -> TestKey {
        let n = self.0.entry(kind).or_insert(0);
        if *n < kind.pool_size() {
            *n += 1;
            TestKey::pooled(kind, *n - 1)
        } else {
            self.take(KeyKind::EcP256)
        }
    }
}

fn sig_for(issuer: KeyKind, variant: u8) -> SigAlg {
    if issuer.is_rsa() {
        [
            SigAlg::RsaPkcs1(Hash::Sha256),
            SigAlg::RsaPkcs1(Hash::Sha384),
            SigAlg::RsaPkcs1(Hash::Sha512),
            SigAlg::RsaPss(Hash::Sha256),
            SigAlg::RsaPss(Hash::Sha384),
            SigAlg::RsaPss(Hash::Sha512),
        ][variant as usize % 6]
    } else {
        issuer.default_signature()
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

impl Case {
    /// The positions from the target up to the root.
    pub fn path(&self) -> Vec<Pos> {
        let mut v = Vec::new();
        match self.target {
            Pos::Leaf => {
                v.push(Pos::Leaf);
                v.extend((0..self.depth - 1).rev().map(Pos::Int));
            }
            Pos::Int(k) => v.extend((0..=k).rev().map(Pos::Int)),
            Pos::Root => {}
        }
        v.push(Pos::Root);
        v
    }

    /// True when the leaf's EKU allows `server` (serverAuth) or client authentication.
    pub fn leaf_eku_allows(&self, server: bool) -> bool {
        match self.leaf_eku {
            1 => server,
            2 => !server,
            4 => false,
            _ => true,
        }
    }

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
        let (b, a) = self.windows[self.index(p)];
        (AT - i64::from(b) * DAY, AT + i64::from(a) * DAY)
    }

    fn spec(&self, p: Pos, issuer_kind: KeyKind) -> CertSpec {
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
        let alg = sig_for(issuer_kind, self.sigs[self.index(p)]);
        spec = spec.signature(alg);
        let m = self.mutation;
        let here = |q: Pos| q == p;
        match m {
            Mutation::Expired(q) if here(q) => spec = spec.validity(AT - 400 * DAY, AT - 1),
            Mutation::NotYetValid(q) if here(q) => spec = spec.validity(AT + 1, AT + 400 * DAY),
            Mutation::NotBeforeBoundary(q) if here(q) => spec = spec.validity(AT, AT + 400 * DAY),
            Mutation::ExpiryBoundary(q) if here(q) => spec = spec.validity(AT - 400 * DAY, AT),
            Mutation::Tampered(q) if here(q) => spec = spec.tampered(),
            Mutation::IssuerNotCa(q) if here(q) => {
                spec = spec
                    .basic(Basic::NotCa)
                    .key_usage(Some(KeyUsage::DIGITAL_SIGNATURE))
            }
            Mutation::IssuerNoBasicConstraints(q) if here(q) => {
                spec = spec
                    .basic(Basic::Absent)
                    .key_usage(Some(KeyUsage::DIGITAL_SIGNATURE))
            }
            Mutation::PathLenTooSmall(q) if here(q) => {
                let n = if self.on_path(q) {
                    self.below(q).saturating_sub(1)
                } else {
                    0
                };
                spec = spec.basic(Basic::Ca(Some(n as u8)))
            }
            Mutation::NoKeyCertSign(q) if here(q) => {
                spec = spec.key_usage(Some(KeyUsage::DIGITAL_SIGNATURE | KeyUsage::CRL_SIGN))
            }
            Mutation::UnknownCriticalExtension(q) if here(q) => {
                spec = spec.critical_unknown_extension()
            }
            Mutation::AlgorithmMismatch(q) if here(q) => {
                spec = spec.signature(other_alg(alg)).outer_signature(alg)
            }
            Mutation::CaWithoutKeyUsage(q) if here(q) => spec = spec.key_usage(None),
            Mutation::MissingAki(q) if here(q) => spec = spec.aki(Aki::Omit),
            Mutation::MisleadingAki(q) if here(q) => spec = spec.aki(Aki::Explicit(vec![0xab; 20])),
            Mutation::RekeyedRootCrossSigned => match p {
                Pos::Int(0) => {
                    spec.subject = CertSpec::root("Mesh", "Root CA").subject;
                }
                Pos::Root => {
                    let n = self.below(Pos::Root).saturating_sub(1);
                    spec = spec.basic(Basic::Ca(Some(n as u8)));
                }
                _ => {}
            },
            _ => {}
        }
        spec
    }

    /// Builds every certificate and the two files.
    pub fn build(&self) -> Result<Built, TestkitError> {
        let mut alloc = KeyAlloc(HashMap::new());
        let keys: Vec<TestKey> = self.kinds.iter().map(|&k| alloc.take(k)).collect();
        let root_kind = self.kinds[0];
        let root = Issued::self_signed(&self.spec(Pos::Root, root_kind), &keys[0])?;
        let mut by_pos = HashMap::new();
        by_pos.insert(Pos::Root, root.cert().clone());
        let mut issuer = root.clone();
        let mut ints = Vec::new();
        for i in 0..self.depth - 1 {
            let next = issuer.issue(&self.spec(Pos::Int(i), issuer.key().kind()), &keys[i + 1])?;
            by_pos.insert(Pos::Int(i), next.cert().clone());
            ints.push(next.cert().clone());
            issuer = next;
        }
        let leaf_spec = self.spec(Pos::Leaf, issuer.key().kind());
        let leaf = match self.mutation {
            Mutation::UnknownIssuerName => {
                let ghost_spec = CertSpec::intermediate("Ghost", "Nobody");
                let ghost = Issued::self_signed(&ghost_spec, issuer.key())?;
                ghost.issue(&leaf_spec, &keys[self.depth])?
            }
            Mutation::WrongKey => {
                let twin_key = alloc.take(issuer.key().kind());
                let spec = issuer.spec().clone().serial(&[0x55, 1]);
                let twin = Issued::self_signed(
                    &spec.signature(twin_key.kind().default_signature()),
                    &twin_key,
                )?;
                let leaf_spec = leaf_spec.signature(twin_key.kind().default_signature());
                twin.issue(&leaf_spec, &keys[self.depth])?
            }
            _ => issuer.issue(&leaf_spec, &keys[self.depth])?,
        };
        by_pos.insert(Pos::Leaf, leaf.cert().clone());

        let mut roots: Vec<Certificate> = Vec::new();
        let mut root_twin = None;
        for i in 0..self.distractors {
            let spec = CertSpec::root("Other", &format!("Distractor {i}"));
            roots.push(
                Issued::self_signed(&spec, &alloc.take(KeyKind::EcP256))?
                    .cert()
                    .clone(),
            );
        }
        match self.mutation {
            Mutation::IntermediateAsAnchor => roots.push(ints[0].clone()),
            Mutation::RootTwin { keep_real } => {
                let twin_key = alloc.take(root_kind);
                let spec = root.spec().clone().serial(&[0x66, 1]);
                let twin = Issued::self_signed(
                    &spec.signature(twin_key.kind().default_signature()),
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
            roots.push(roots[roots.len() - 1].clone());
        }
        let roots = shuffled(&roots, self.seed);

        let mut chain = ints.clone();
        if self.root_in_chain && self.mutation != Mutation::IntermediateAsAnchor {
            chain.push(root.cert().clone());
        }
        if self.chain_dups {
            chain.extend(ints.iter().cloned());
        }
        let chain = shuffled(&chain, self.seed.rotate_left(29));
        let target = by_pos[&self.target].clone();
        Ok(Built {
            roots,
            chain,
            target,
            by_pos,
            root_twin,
        })
    }
}
