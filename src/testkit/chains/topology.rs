//! Random CA topologies: roots (re-keyed and cross-signed same-name ones), intermediates,
//! cross-certificates and leaves anywhere, with lifetimes, built into real certificates.

use proptest::prelude::*;

use super::{AT, DAY, key_kind};
use crate::testkit::KeyType;

mod build;

pub use build::{Issuers, Topology};

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
    /// Signature variant ([`signature_for`](super::signature_for)).
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
    /// Signature variant of its issuer ([`signature_for`](super::signature_for)).
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
    /// Signature variant of the issuer ([`signature_for`](super::signature_for)).
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
    /// Signature variant of its issuer ([`signature_for`](super::signature_for)).
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
    /// Orders the chain pool ([`shuffled`](super::shuffled)).
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
                .prop_map(move |draws| assemble(draws, l.depth))
        })
}

type RootDraw = (Option<prop::sample::Index>, KeyType, Lifetime, bool, u8);
type CaDraw = (prop::sample::Index, KeyType, Lifetime, u8);
type CrossDraw = (prop::sample::Index, prop::sample::Index, Lifetime, u8);
type LeafDraw = (prop::sample::Index, KeyType, Lifetime, u8, bool);
type Draws = (
    Vec<RootDraw>,
    Vec<CaDraw>,
    Vec<CrossDraw>,
    Vec<LeafDraw>,
    bool,
    u64,
);

/// Turns [`topology_with`]'s draws into a spec: re-keyed roots take an earlier root's name,
/// intermediates hang under a root or an intermediate no deeper than `max_depth`,
/// cross-certificates join two distinct roots, leaves hang anywhere.
fn assemble(draws: Draws, max_depth: usize) -> TopologySpec {
    let (roots, ints, cross, leaves, roots_in_chain, seed) = draws;
    let nr = roots.len();
    let mut spec = TopologySpec {
        roots: Vec::new(),
        intermediates: Vec::new(),
        cross_signed: Vec::new(),
        leaves: Vec::new(),
        roots_in_chain,
        seed,
    };
    for (i, (rekey, key, lifetime, trusted, signature)) in roots.into_iter().enumerate() {
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
        let (parent, d) = if p < nr || depth[p - nr] >= max_depth {
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
}
