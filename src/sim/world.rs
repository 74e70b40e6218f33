//! The world: what the mesh is made of at an instant. The clusters' names, the proxies, their
//! certificates (leaves and the signers that issued them, what each presents) and their trust
//! sets (interned root sets), with the tables that intern them and the labels stories use.
//! Nothing here schedules, logs or verifies; the Istio rules it applies (which roots a proxy
//! trusts, what it presents) are calls into [`crate::istio::behaviour`].

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use super::present::{self, Presented, PresentedId};
use super::{CensusRow, Label, ProxyKind, SimError};
use crate::cert::{Certificate, Fingerprint, SpiffeId};
use crate::generate::Issuer;
use crate::istio::IstioProfile;
use crate::istio::behaviour;
use crate::plan::Plan;
use crate::verify::{self, CertPool, VerifyOptions};

pub(super) type ClusterId = usize;
pub(super) type ProxyId = usize;
pub(super) type LeafId = usize;
pub(super) type SignerId = usize;
pub(super) type RootSetId = usize;

/// The trust domain of every simulated workload.
pub(super) const TRUST_DOMAIN: &str = "cluster.local";

/// `A`, `B`, ... `Z`, then `R27`, ...: the label of the `i`-th root.
pub(super) fn letters(i: usize) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    match ABC.get(i) {
        Some(c) => char::from(*c).to_string(),
        None => format!("R{}", i + 1),
    }
}

/// A signing CA istiod has loaded (one per distinct ca-cert + cert-chain.pem).
pub(super) struct SignerRec {
    pub fingerprint: Fingerprint,
    pub issuer: Issuer,
    /// cert-chain.pem's certificates: the intermediates a peer receives with the leaf.
    pub chain: Vec<Certificate>,
    pub chain_pool: CertPool,
    /// notAfter of the issuer chain's first-expiring certificate: leaves end by then.
    pub limit: i64,
    pub label: String,
}

/// A distinct trust set (the deduplicated roots a proxy trusts).
pub(super) struct RootSetRec {
    pub certs: Vec<Certificate>,
    pub pool: CertPool,
    pub labels: Vec<String>,
}

/// A leaf istiod issued: everything verification depends on, and the real certificate once
/// it is needed.
pub(super) struct LeafRec {
    pub signer: SignerId,
    pub owner: ProxyId,
    /// Issuance instant (Unix seconds).
    pub issued: i64,
    pub not_before: i64,
    pub not_after: i64,
    /// What its holder presents after it (the CSR response's chain and roots, by the model).
    pub presented: PresentedId,
    pub cert: Option<Certificate>,
}

pub(super) struct Proxy {
    pub name: String,
    pub cluster: ClusterId,
    pub kind: ProxyKind,
    pub identity: SpiffeId,
    pub leaf: LeafId,
    pub roots: RootSetId,
    /// The trust bundle bytes (SHA-256) this proxy last received.
    pub bytes: Fingerprint,
    /// Bumped at each issuance: a scheduled rotation of an older leaf is stale.
    pub generation: u64,
    /// The leaf is within its validity at the current instant.
    pub valid: bool,
}

/// The mesh's clusters, proxies, certificates and trust sets.
pub(super) struct World {
    /// The Istio versions and flags every model answer is for.
    pub profile: IstioProfile,
    /// The lifetime istiod gives leaves (Unix seconds).
    pub ttl_secs: i64,
    /// Cluster names, by index: the plan's order, then any other cluster a phase names.
    pub clusters: Vec<String>,
    pub proxies: Vec<Proxy>,
    pub leaves: Vec<LeafRec>,
    pub signers: Vec<SignerRec>,
    pub presented: Presented,
    pub root_sets: Vec<RootSetRec>,
    signer_index: HashMap<(Fingerprint, Vec<Fingerprint>), SignerId>,
    root_set_index: HashMap<Vec<Fingerprint>, RootSetId>,
    /// The trust store each proxy kind builds from a root file (the model's answer, cached).
    trust_cache: HashMap<(ProxyKind, Vec<Fingerprint>), RootSetId>,
    pub root_labels: HashMap<Fingerprint, String>,
    pub signer_labels: HashMap<Fingerprint, String>,
    pub roots_legend: Vec<Label>,
    pub signers_legend: Vec<Label>,
    /// Real certificates issued ([`World::materialize`]).
    pub certificates_issued: u64,
}

impl World {
    /// An empty world of `clusters` following `profile`, with every root and signer of `plan`
    /// labelled ([`World::label_plan`]).
    pub(super) fn new(
        profile: IstioProfile,
        ttl_secs: i64,
        clusters: Vec<String>,
        plan: &Plan,
        at: OffsetDateTime,
    ) -> World {
        let mut world = World {
            profile,
            ttl_secs,
            clusters,
            proxies: Vec::new(),
            leaves: Vec::new(),
            signers: Vec::new(),
            presented: Presented::default(),
            root_sets: Vec::new(),
            signer_index: HashMap::new(),
            root_set_index: HashMap::new(),
            trust_cache: HashMap::new(),
            root_labels: HashMap::new(),
            signer_labels: HashMap::new(),
            roots_legend: Vec::new(),
            signers_legend: Vec::new(),
            certificates_issued: 0,
        };
        world.label_plan(plan, at);
        world
    }

    /// The index of the cluster called `name`.
    pub(super) fn cluster_index(&self, name: &str) -> Option<ClusterId> {
        self.clusters.iter().position(|c| c == name)
    }

    /// The name of cluster `c` (empty for none).
    pub(super) fn cluster_name(&self, c: Option<ClusterId>) -> String {
        c.and_then(|c| self.clusters.get(c))
            .cloned()
            .unwrap_or_default()
    }

    /// The proxies of cluster `c` whose kind satisfies `kind`.
    pub(super) fn members(&self, c: ClusterId, kind: impl Fn(ProxyKind) -> bool) -> Vec<ProxyId> {
        self.proxies
            .iter()
            .enumerate()
            .filter(|(_, p)| p.cluster == c && kind(p.kind))
            .map(|(i, _)| i)
            .collect()
    }

    /// Labels every root and signer of the plan: roots `A`, `B`, ... in order of first
    /// appearance; signers by the root they chain to.
    fn label_plan(&mut self, plan: &Plan, at: OffsetDateTime) {
        for p in &plan.phases {
            for c in &p.clusters {
                let Ok(roots) = c.secret.root_bundle() else {
                    continue;
                };
                for cert in roots.certificates() {
                    let fp = cert.fingerprint();
                    if !self.root_labels.contains_key(&fp) {
                        let label = letters(self.root_labels.len());
                        self.root_labels.insert(fp, label.clone());
                        self.roots_legend.push(Label {
                            label,
                            subject: cert.subject().to_owned(),
                            fingerprint: fp,
                        });
                    }
                }
            }
        }
        let mut per_root: HashMap<String, usize> = HashMap::new();
        for p in &plan.phases {
            for c in &p.clusters {
                let Ok(signer) = c.secret.ca_cert() else {
                    continue;
                };
                let fp = signer.fingerprint();
                if self.signer_labels.contains_key(&fp) {
                    continue;
                }
                let label = match self.root_labels.get(&fp) {
                    Some(root) => root.clone(),
                    None => self.signer_label_in(&c.secret, &signer, at, &mut per_root),
                };
                self.signer_labels.insert(fp, label.clone());
                self.signers_legend.push(Label {
                    label,
                    subject: signer.subject().to_owned(),
                    fingerprint: fp,
                });
            }
        }
    }

    /// The label of a signer that is not a root: the letter of the root its secret's chain
    /// leads it to, numbered in order of appearance (`B1`, `B2`, ...; `?1` for none).
    fn signer_label_in(
        &self,
        secret: &crate::istio::CaSecret,
        signer: &Certificate,
        at: OffsetDateTime,
        per_root: &mut HashMap<String, usize>,
    ) -> String {
        let chain: Vec<Certificate> = secret
            .cert_chain()
            .map(|b| b.certificates().cloned().collect())
            .unwrap_or_default();
        let roots: Vec<Certificate> = secret
            .root_bundle()
            .map(|b| b.certificates().cloned().collect())
            .unwrap_or_default();
        let anchor = verify::verify(
            signer,
            &CertPool::from_certificates(chain.iter()),
            &CertPool::from_certificates(roots.iter()),
            &VerifyOptions::at(at),
        )
        .ok()
        .and_then(|path| self.root_labels.get(&path.anchor().fingerprint()).cloned())
        .unwrap_or_else(|| "?".to_owned());
        let n = per_root.entry(anchor.clone()).or_insert(0);
        *n += 1;
        format!("{anchor}{n}")
    }

    /// Gives a root the simulation made (not in the plan) the next letter, as root and as
    /// signer (a root that signs itself carries the root's letter).
    pub(super) fn label_root(&mut self, root: &Certificate) {
        let fp = root.fingerprint();
        if self.root_labels.contains_key(&fp) {
            return;
        }
        let label = letters(self.root_labels.len());
        self.root_labels.insert(fp, label.clone());
        self.signer_labels.insert(fp, label.clone());
        for legend in [&mut self.roots_legend, &mut self.signers_legend] {
            legend.push(Label {
                label: label.clone(),
                subject: root.subject().to_owned(),
                fingerprint: fp,
            });
        }
    }

    /// Interns a signing CA istiod loaded: `ca_cert` with its key (`issuer`) and cert-chain.pem
    /// (`chain`).
    pub(super) fn intern_signer(
        &mut self,
        ca_cert: &Certificate,
        issuer: Issuer,
        chain: Vec<Certificate>,
    ) -> SignerId {
        let fp = ca_cert.fingerprint();
        let key = (
            fp,
            chain
                .iter()
                .map(Certificate::fingerprint)
                .collect::<Vec<_>>(),
        );
        if let Some(&id) = self.signer_index.get(&key) {
            return id;
        }
        let label = self
            .signer_labels
            .get(&fp)
            .cloned()
            .unwrap_or_else(|| format!("?{}", fp.short()));
        let limit = issuer.first_expiring().not_after_unix();
        self.signers.push(SignerRec {
            chain_pool: CertPool::from_certificates(chain.iter()),
            fingerprint: fp,
            issuer,
            chain,
            limit,
            label,
        });
        let id = self.signers.len() - 1;
        self.signer_index.insert(key, id);
        id
    }

    /// Interns a trust set: `certs` deduplicated, in order.
    pub(super) fn intern_roots(&mut self, certs: &[Certificate]) -> RootSetId {
        let mut distinct: Vec<Certificate> = Vec::new();
        for c in certs {
            if !distinct.contains(c) {
                distinct.push(c.clone());
            }
        }
        // The order is the trust store's (Envoy picks the first matching issuer in it).
        let key: Vec<Fingerprint> = distinct.iter().map(Certificate::fingerprint).collect();
        if let Some(&id) = self.root_set_index.get(&key) {
            return id;
        }
        let mut labels: Vec<String> = key.iter().map(|fp| self.root_label(fp)).collect();
        labels.sort();
        self.root_sets.push(RootSetRec {
            pool: CertPool::from_certificates(distinct.iter()),
            certs: distinct,
            labels,
        });
        let id = self.root_sets.len() - 1;
        self.root_set_index.insert(key, id);
        id
    }

    /// The trust store a proxy of `kind` builds from istiod's root file `file` (certificates in
    /// file order), in its order: [`behaviour::trusted_roots`].
    pub(super) fn roots_for(&mut self, kind: ProxyKind, file: &[Certificate]) -> RootSetId {
        let key = (
            kind,
            file.iter()
                .map(Certificate::fingerprint)
                .collect::<Vec<_>>(),
        );
        if let Some(&id) = self.trust_cache.get(&key) {
            return id;
        }
        let p = &self.profile;
        let pushed = behaviour::push_reaches_agent(p.multiroot, p.xds_agent);
        let roots =
            behaviour::trusted_roots(p.istio_version, p.ztunnel(), kind.model(), pushed, file);
        let id = self.intern_roots(&roots);
        self.trust_cache.insert(key, id);
        id
    }

    /// What a proxy of `kind` presents after a leaf from signer `sid` that came with istiod's
    /// root file `roots_file` (certificates in file order; `roots_bytes` its SHA-256): the
    /// model's answer ([`present::after_leaf`]), interned.
    pub(super) fn presented_for(
        &mut self,
        kind: ProxyKind,
        sid: SignerId,
        roots_bytes: Fingerprint,
        roots_file: &[Certificate],
    ) -> Result<PresentedId, SimError> {
        let key = (kind.model(), sid, roots_bytes);
        if let Some(id) = self.presented.by_input(&key) {
            return Ok(id);
        }
        let signer = self
            .signers
            .get(sid)
            .ok_or_else(|| SimError::Internal(format!("no signer {sid}")))?;
        let chain = present::after_leaf(
            &self.profile,
            kind,
            signer.issuer.certificate(),
            &signer.chain,
            roots_file,
        );
        Ok(self.presented.intern_for(key, chain))
    }

    /// A root's label (its short fingerprint when the plan does not have it).
    pub(super) fn root_label(&self, fp: &Fingerprint) -> String {
        self.root_labels
            .get(fp)
            .cloned()
            .unwrap_or_else(|| fp.short())
    }

    pub(super) fn signer_label(&self, s: SignerId) -> String {
        self.signers
            .get(s)
            .map(|s| s.label.clone())
            .unwrap_or_else(|| "?".to_owned())
    }

    pub(super) fn trust_label(&self, r: RootSetId) -> String {
        self.root_sets
            .get(r)
            .map(|r| format!("{{{}}}", r.labels.join(", ")))
            .unwrap_or_else(|| "{}".to_owned())
    }

    /// The labels of the roots of trust set `r`.
    pub(super) fn trust_labels(&self, r: RootSetId) -> Vec<String> {
        self.root_sets
            .get(r)
            .map(|r| r.labels.clone())
            .unwrap_or_default()
    }

    /// The label of the signer of leaf `l`.
    pub(super) fn leaf_signer_label(&self, l: LeafId) -> String {
        self.leaves
            .get(l)
            .map(|l| self.signer_label(l.signer))
            .unwrap_or_default()
    }

    /// The proxies grouped by cluster, kind, trust set and signer.
    pub(super) fn census(&self) -> Vec<CensusRow> {
        let mut rows: BTreeMap<(usize, ProxyKind, Vec<String>, String), usize> = BTreeMap::new();
        for p in &self.proxies {
            let key = (
                p.cluster,
                p.kind,
                self.trust_labels(p.roots),
                self.leaf_signer_label(p.leaf),
            );
            *rows.entry(key).or_insert(0) += 1;
        }
        rows.into_iter()
            .map(|((c, kind, trusts, signer), proxies)| CensusRow {
                cluster: self.cluster_name(Some(c)),
                kind,
                trusts,
                signer,
                proxies,
            })
            .collect()
    }
}
