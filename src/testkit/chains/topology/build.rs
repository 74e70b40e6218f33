//! Building a [`TopologySpec`] into real certificates: who signs whom, key identities, and
//! the resulting [`Topology`] with its chains.

use super::super::{shuffled, signature_for};
use super::{CaRef, Lifetime, Node, TopologySpec};
use crate::cert::Certificate;
use crate::testkit::{CertSpec, Issued, KeyAllocator, TestkitError};

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
    /// `leaf` at [`TOPOLOGY_AT`](super::TOPOLOGY_AT) through the chain pool. A path needs every certificate
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

    /// True when every certificate of the topology is valid at [`TOPOLOGY_AT`](super::TOPOLOGY_AT).
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
