//! Building a [`ChainCase`] into a [`BuiltChain`]: keys, certificates, the defect applied.

use std::collections::HashMap;

use super::{AT, BuiltChain, ChainCase, DAY, Defect, Pos, shuffled, signature_for};
use crate::cert::{Certificate, KeyUsage};
use crate::signature::Hash;
use crate::testkit::{
    Aki, Basic, CertSpec, Eku, Issued, KeyAllocator, KeyType, SigAlg, TestkitError,
    default_signature,
};

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
