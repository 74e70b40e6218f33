//! Random CA topologies: roots (re-keyed and cross-signed same-name ones), intermediates,
//! cross-certificates and leaves anywhere, with lifetimes, built into real certificates.

use proptest::prelude::*;

use super::{AT, DAY, key_kind, shuffled, signature_for};
use crate::cert::Certificate;
use crate::testkit::{CertSpec, Issued, KeyAllocator, KeyType, TestkitError};

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
