//! Per-proxy state and the mesh's groups, from what the proxies reported.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, Fingerprint};
use crate::istio::{CaSecret, IstioProfile};
use crate::verify::{self, CertPool};

use super::{
    CertRef, ClusterEvidence, IdentityStatus, Observation, ProxyKind, ProxyReport, RootConfigMap,
    model,
};

/// A proxy's workload certificate as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeafState {
    /// SHA-256 of the leaf (none when a table showed only its serial).
    pub sha256: Option<Fingerprint>,
    /// Its serial, lowercase hex.
    pub serial: String,
    /// SHA-256 of the CA certificate that signed it (its signature checked).
    pub signer_sha256: Option<Fingerprint>,
    /// Its notAfter (RFC 3339).
    #[serde(with = "super::ser::opt_instant")]
    pub not_after: Option<OffsetDateTime>,
    /// Whether its chain verifies against the proxy's own trusted roots with its data
    /// plane's verifier.
    pub verifies: Option<bool>,
}

/// Something wrong, or about to be, with one proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
pub enum Warning {
    /// The mesh publishes several roots and this proxy trusts only one of them (ztunnel before
    /// 1.24.6/1.25.3/1.26.0, or istiod 1.24.4/1.25.1).
    OneRootOfMany {
        /// Roots the mesh publishes.
        published: usize,
        /// The single root trusted.
        trusted: Fingerprint,
    },
    /// The leaf is past its renewal time (within the grace period) and not renewed.
    ExpiresSoon {
        /// Its notAfter.
        #[serde(with = "super::ser::instant")]
        not_after: OffsetDateTime,
    },
    /// The leaf has expired.
    Expired {
        /// Its notAfter.
        #[serde(with = "super::ser::instant")]
        not_after: OffsetDateTime,
    },
    /// The leaf's chain does not verify against the proxy's own trusted roots.
    ChainDoesNotVerify {
        /// Why.
        reason: String,
    },
    /// Other proxies do not trust this proxy's leaf: their connections to it fail.
    NotTrustedByPeers {
        /// How many proxies do not trust it.
        peers: usize,
    },
    /// A table row's serial matches no known certificate.
    Unmatched {
        /// Which row (`leaf`, `root`, `chain`).
        what: String,
        /// Its serial.
        serial: String,
    },
    /// No certificate (ztunnel `Initializing` / `Unavailable`, or Envoy warming only).
    NoCertificate {
        /// The state the tool showed.
        state: String,
    },
    /// Against a multi-cluster plan, nothing decides which cluster the proxy runs in: it is
    /// listed unassigned and judged against every cluster's phase contents.
    ClusterUnassigned {
        /// What was looked at.
        reason: String,
    },
}

impl Warning {
    /// True for warnings that break traffic now.
    pub fn breaks_traffic(&self) -> bool {
        matches!(
            self,
            Warning::Expired { .. }
                | Warning::ChainDoesNotVerify { .. }
                | Warning::NotTrustedByPeers { .. }
        )
    }
}

/// One proxy, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ProxyState {
    /// Its name (pod, or `POD/IDENTITY` for ztunnel).
    pub name: String,
    /// Its kind.
    pub kind: ProxyKind,
    /// Its SPIFFE identity.
    pub identity: Option<String>,
    /// In use, warming, initializing, unavailable.
    pub status: IdentityStatus,
    /// SHA-256 of every root it trusts, in its trust store's order.
    pub trusts: Vec<Fingerprint>,
    /// Its leaf.
    pub leaf: Option<LeafState>,
    /// The plan phase whose state it is in (with a plan).
    pub phase: Option<String>,
    /// The cluster it runs in (with a plan: one of the plan's clusters, or none when nothing
    /// decides; without: what the caller or the dump's metadata said).
    pub cluster: Option<String>,
    /// What [`ProxyState::cluster`] was taken from.
    pub cluster_from: Option<ClusterEvidence>,
    /// What is wrong.
    pub warnings: Vec<Warning>,
    #[serde(skip)]
    pub(super) inner: Inner,
}

/// What the verdict needs beyond the public fields.
#[derive(Debug, Clone, Default)]
pub(super) struct Inner {
    pub(super) leaf: Option<Certificate>,
    pub(super) signer: Option<Certificate>,
    /// What the proxy presents after its leaf, in order (a chain id in the checker).
    pub(super) presented: Option<usize>,
    /// Trust-store id in the checker.
    pub(super) store: Option<usize>,
    /// The cluster the caller named.
    pub(super) explicit: Option<String>,
    /// The cluster the dump's metadata named.
    pub(super) cluster_id: Option<String>,
}

/// How many proxies hold one trust set and one signer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The trusted roots (sorted).
    pub trusts: Vec<Fingerprint>,
    /// The signer of their leaves.
    pub signer_sha256: Option<Fingerprint>,
    /// Proxies per kind.
    pub kinds: BTreeMap<ProxyKind, usize>,
    /// Proxies in the group.
    pub count: usize,
}

/// The mesh as observed at an instant: every proxy evaluated, the groups, and the istiod side.
#[derive(Debug)]
pub struct MeshState {
    /// Every proxy, in input order.
    pub proxies: Vec<ProxyState>,
    /// Proxies grouped by (trust set, signer), largest first.
    pub groups: Vec<Group>,
    /// The `istio-ca-root-cert` ConfigMaps observed.
    pub configmaps: Vec<RootConfigMap>,
    /// The CA secrets observed.
    pub secrets: Vec<CaSecret>,
    /// The instant of the evaluation.
    pub at: OffsetDateTime,
    /// The mesh's profile (versions, flags, grace ratio).
    pub profile: IstioProfile,
    pub(super) checker: Checker,
}

/// (chain id: presented chain, or the CA and its chain; trust store; Envoy's verifier; CA
/// target).
type CheckKey = (usize, usize, bool, bool);

/// Trust stores and chains interned by content; path results cached per (presented chain,
/// store, verifier), so 10,000 proxies sharing a signer cost one path search per trust store.
#[derive(Debug, Default)]
pub(super) struct Checker {
    stores: Vec<(Vec<Fingerprint>, CertPool)>,
    ids: HashMap<Vec<Fingerprint>, usize>,
    chains: Vec<Vec<Certificate>>,
    chain_ids: HashMap<Vec<Fingerprint>, usize>,
    results: HashMap<CheckKey, Result<Fingerprint, String>>,
}

impl Checker {
    /// The id of the trust store holding `roots` in this order.
    pub(super) fn store(&mut self, roots: &[Certificate]) -> usize {
        let fps: Vec<Fingerprint> = roots.iter().map(Certificate::fingerprint).collect();
        if let Some(&id) = self.ids.get(&fps) {
            return id;
        }
        let id = self.stores.len();
        let mut pool = CertPool::with_capacity(roots.len());
        for r in roots {
            pool.insert(r.clone());
        }
        self.stores.push((fps.clone(), pool));
        self.ids.insert(fps, id);
        id
    }

    /// The id of the chain `certs` (in this order).
    pub(super) fn chain(&mut self, certs: &[Certificate]) -> usize {
        let fps: Vec<Fingerprint> = certs.iter().map(Certificate::fingerprint).collect();
        if let Some(&id) = self.chain_ids.get(&fps) {
            return id;
        }
        let id = self.chains.len();
        self.chains.push(certs.to_vec());
        self.chain_ids.insert(fps, id);
        id
    }

    /// The fingerprints of a store, in order.
    pub(super) fn fingerprints(&self, store: usize) -> &[Fingerprint] {
        self.stores.get(store).map(|s| &s.0[..]).unwrap_or(&[])
    }

    /// Does `leaf`, presenting chain `presented` (an id from [`Checker::chain`]), verify
    /// against store `store` with the verifier of `kind`? The anchor, or why not. The path
    /// above the leaf is the same for every leaf of one signer presenting one chain, so the
    /// result is cached per (presented chain, store, verifier), except a failure that is about
    /// the leaf itself (its own signature and validity are checked per leaf by the caller).
    pub(super) fn leaf_trusted(
        &mut self,
        leaf: &Certificate,
        presented: usize,
        store: usize,
        kind: ProxyKind,
        at: OffsetDateTime,
    ) -> Result<Fingerprint, String> {
        self.check(leaf, presented, store, kind, at, false)
    }

    /// Does the signing CA at the head of chain `chain` (an id from [`Checker::chain`]: the
    /// signer, then the certificates above it) chain to store `store`, as the data plane
    /// `kind` would build the path? Cached per (chain, store, verifier).
    pub(super) fn signer_trusted(
        &mut self,
        chain: usize,
        store: usize,
        kind: ProxyKind,
        at: OffsetDateTime,
    ) -> Result<Fingerprint, String> {
        let Some(signer) = self.chains.get(chain).and_then(|c| c.first()).cloned() else {
            return Err("no signer".to_owned());
        };
        self.check(&signer, chain, store, kind, at, true)
    }

    fn check(
        &mut self,
        target: &Certificate,
        chain: usize,
        store: usize,
        kind: ProxyKind,
        at: OffsetDateTime,
        ca_target: bool,
    ) -> Result<Fingerprint, String> {
        let key = (chain, store, kind.is_envoy(), ca_target);
        if let Some(r) = self.results.get(&key) {
            return r.clone();
        }
        let Some((_, roots)) = self.stores.get(store) else {
            return Err("no trust store".to_owned());
        };
        let certs = self.chains.get(chain).map(|c| &c[..]).unwrap_or(&[]);
        // A CA target's chain starts with the target itself.
        let presented = if ca_target {
            certs.get(1..).unwrap_or(&[])
        } else {
            certs
        };
        let intermediates = CertPool::from_certificates(presented);
        let opts = model::verify_options(kind, at, ca_target);
        let r = verify::verify(target, &intermediates, roots, &opts);
        let about_target = r.as_ref().err().is_some_and(|e| {
            !ca_target
                && e.failures()
                    .iter()
                    .any(|f| f.error.certificate().is_some_and(|c| c == target))
        });
        let r = r
            .map(|p| p.anchor().fingerprint())
            .map_err(|e| e.to_string());
        if !about_target {
            self.results.insert(key, r.clone());
        }
        r
    }
}

/// Certificates known by serial (to resolve table rows) and by subject (to find signers).
#[derive(Default)]
struct Catalog {
    by_serial: HashMap<String, Vec<Certificate>>,
    by_subject: HashMap<Vec<u8>, Vec<Certificate>>,
}

impl Catalog {
    fn add(&mut self, c: &Certificate) {
        if let Some(s) = self.by_subject.get(c.subject_der()) {
            if s.iter().any(|x| x == c) {
                return;
            }
        }
        let s = self.by_subject.entry(c.subject_der().to_vec()).or_default();
        s.push(c.clone());
        self.by_serial
            .entry(super::normalize_serial(&c.serial_hex()))
            .or_default()
            .push(c.clone());
    }

    fn resolve(&self, r: &CertRef) -> Option<Certificate> {
        match r {
            CertRef::Cert(c) => Some(c.clone()),
            CertRef::Serial(s) => match self.by_serial.get(s).map(Vec::as_slice) {
                Some([one]) => Some(one.clone()),
                _ => None,
            },
        }
    }
}

impl MeshState {
    /// Evaluates what the inputs hold at `at` under `profile`. `extra` are certificates known
    /// otherwise (a plan's), used to resolve table serials and find signers.
    pub fn evaluate(
        observations: Vec<Observation>,
        extra: &[Certificate],
        profile: &IstioProfile,
        at: OffsetDateTime,
    ) -> MeshState {
        let mut reports = Vec::new();
        let mut configmaps = Vec::new();
        let mut secrets = Vec::new();
        for o in observations {
            match o {
                Observation::Proxies(p) => reports.extend(p),
                Observation::ConfigMaps(c) => configmaps.extend(c),
                Observation::CaSecret(s) => secrets.push(*s),
            }
        }
        let mut catalog = Catalog::default();
        extra.iter().for_each(|c| catalog.add(c));
        for s in &secrets {
            for b in [s.ca_cert_bundle(), s.cert_chain(), s.root_bundle()]
                .into_iter()
                .flatten()
            {
                b.certificates().for_each(|c| catalog.add(c));
            }
        }
        for cm in &configmaps {
            if let Ok(b) = crate::Bundle::parse(&cm.root_cert) {
                b.certificates().for_each(|c| catalog.add(c));
            }
        }
        for r in &reports {
            for c in r.chain.iter().chain(&r.roots).filter_map(CertRef::cert) {
                catalog.add(c);
            }
        }
        let published = published_roots(&secrets, &configmaps);
        let mut mesh = MeshState {
            proxies: Vec::with_capacity(reports.len()),
            groups: Vec::new(),
            configmaps,
            secrets,
            at,
            profile: profile.clone(),
            checker: Checker::default(),
        };
        let signers = signers(&reports, &catalog);
        for (r, signer) in reports.into_iter().zip(signers) {
            let p = mesh.proxy(r, &catalog, &published, signer);
            mesh.proxies.push(p);
        }
        mesh.cross_check();
        mesh.groups = groups(&mesh.proxies);
        mesh
    }

    /// True when no proxy has a warning that breaks traffic.
    pub fn is_consistent(&self) -> bool {
        !self
            .proxies
            .iter()
            .any(|p| p.warnings.iter().any(Warning::breaks_traffic))
    }

    fn proxy(
        &mut self,
        r: ProxyReport,
        catalog: &Catalog,
        published: &[Fingerprint],
        signer: Option<Certificate>,
    ) -> ProxyState {
        let mut warnings = Vec::new();
        let resolve = |what: &str, list: &[CertRef], warnings: &mut Vec<Warning>| {
            let mut out = Vec::with_capacity(list.len());
            for c in list {
                match catalog.resolve(c) {
                    Some(c) => out.push(c),
                    None => warnings.push(Warning::Unmatched {
                        what: what.to_owned(),
                        serial: c.serial(),
                    }),
                }
            }
            out
        };
        let roots = resolve("root", &r.roots, &mut warnings);
        let chain = resolve("chain", &r.chain, &mut warnings);
        let leaf_cert = r.leaf.as_ref().and_then(|l| catalog.resolve(l));
        let store = (!roots.is_empty()).then(|| self.checker.store(&roots));
        let mut inner = Inner {
            store,
            explicit: r.cluster.clone(),
            cluster_id: r.cluster_id.clone(),
            ..Inner::default()
        };
        if !matches!(r.status, IdentityStatus::Active) && r.leaf.is_none() {
            warnings.push(Warning::NoCertificate {
                state: match &r.status {
                    IdentityStatus::Unavailable(why) => format!("unavailable: {why}"),
                    other => format!("{other:?}").to_lowercase(),
                },
            });
        }
        if let [only] = roots.as_slice() {
            if published.len() > 1 && published.contains(&only.fingerprint()) {
                warnings.push(Warning::OneRootOfMany {
                    published: published.len(),
                    trusted: only.fingerprint(),
                });
            }
        }
        let leaf = match (&r.leaf, leaf_cert) {
            (None, _) => None,
            (Some(l), None) => {
                warnings.push(Warning::Unmatched {
                    what: "leaf".to_owned(),
                    serial: l.serial(),
                });
                Some(LeafState {
                    sha256: None,
                    serial: l.serial(),
                    signer_sha256: chain.first().map(Certificate::fingerprint),
                    not_after: None,
                    verifies: None,
                })
            }
            (Some(_), Some(leaf)) => {
                let state = self.leaf(&r, &leaf, &chain, signer, &mut inner, &mut warnings);
                inner.leaf = Some(leaf);
                Some(state)
            }
        };
        ProxyState {
            identity: r.identity.clone().or_else(|| {
                inner
                    .leaf
                    .as_ref()
                    .and_then(|l| l.san_uris().first().cloned())
            }),
            trusts: roots.iter().map(Certificate::fingerprint).collect(),
            name: r.name,
            kind: r.kind,
            status: r.status,
            leaf,
            phase: None,
            cluster: r.cluster.clone().or_else(|| r.cluster_id.clone()),
            cluster_from: if r.cluster.is_some() {
                Some(ClusterEvidence::Explicit)
            } else {
                r.cluster_id.as_ref().map(|_| ClusterEvidence::Metadata)
            },
            warnings,
            inner,
        }
    }

    fn leaf(
        &mut self,
        r: &ProxyReport,
        leaf: &Certificate,
        chain: &[Certificate],
        signer: Option<Certificate>,
        inner: &mut Inner,
        warnings: &mut Vec<Warning>,
    ) -> LeafState {
        let renew = model::renewal_at(&self.profile, r.kind, leaf);
        if leaf.not_after() < self.at {
            warnings.push(Warning::Expired {
                not_after: leaf.not_after(),
            });
        } else if renew < self.at {
            warnings.push(Warning::ExpiresSoon {
                not_after: leaf.not_after(),
            });
        }
        let presented = self.checker.chain(chain);
        let mut verifies = None;
        match (&signer, inner.store) {
            (None, _) => {
                verifies = Some(false);
                warnings.push(Warning::ChainDoesNotVerify {
                    reason: format!(
                        "no presented or known CA certificate ({}) signed the leaf",
                        leaf.issuer()
                    ),
                });
            }
            (Some(_), Some(store)) => {
                let ok = self
                    .checker
                    .leaf_trusted(leaf, presented, store, r.kind, self.at);
                verifies = Some(ok.is_ok());
                if let Err(reason) = ok {
                    warnings.push(Warning::ChainDoesNotVerify { reason });
                }
            }
            (Some(_), None) => {}
        }
        inner.signer = signer.clone();
        inner.presented = Some(presented);
        LeafState {
            sha256: Some(leaf.fingerprint()),
            serial: super::normalize_serial(&leaf.serial_hex()),
            signer_sha256: signer.as_ref().map(Certificate::fingerprint),
            not_after: Some(leaf.not_after()),
            verifies,
        }
    }

    /// Warns on every proxy whose leaf other proxies do not trust: each distinct signer chain
    /// is checked once against each distinct trust store.
    fn cross_check(&mut self) {
        let mut store_users: HashMap<(usize, bool), usize> = HashMap::new();
        for p in &self.proxies {
            if let Some(s) = p.inner.store {
                *store_users.entry((s, p.kind.is_envoy())).or_default() += 1;
            }
        }
        let at = self.at;
        for i in 0..self.proxies.len() {
            let (Some(leaf), Some(presented)) = (
                self.proxies[i].inner.leaf.clone(),
                self.proxies[i].inner.presented,
            ) else {
                continue;
            };
            if self.proxies[i].inner.signer.is_none() {
                continue;
            }
            let mut peers = 0;
            for (&(store, envoy), &n) in &store_users {
                let kind = if envoy {
                    ProxyKind::Sidecar
                } else {
                    ProxyKind::Ztunnel
                };
                if self
                    .checker
                    .leaf_trusted(&leaf, presented, store, kind, at)
                    .is_err()
                {
                    peers += n;
                }
            }
            // The proxy's own store counts in `peers`: leave that to ChainDoesNotVerify.
            if self.proxies[i].leaf.as_ref().and_then(|l| l.verifies) == Some(false) {
                peers = peers.saturating_sub(1);
            }
            if peers > 0 {
                self.proxies[i]
                    .warnings
                    .push(Warning::NotTrustedByPeers { peers });
            }
        }
    }
}

/// The signer of each report's leaf: a presented or known certificate named as the leaf's
/// issuer whose key verifies the leaf's signature (one signature check per leaf; none without
/// a resolved leaf). The checks are independent, so they run on the available cores.
fn signers(reports: &[ProxyReport], catalog: &Catalog) -> Vec<Option<Certificate>> {
    let one = |r: &ProxyReport| -> Option<Certificate> {
        let leaf = catalog.resolve(r.leaf.as_ref()?)?;
        let chain: Vec<Certificate> = r.chain.iter().filter_map(|c| catalog.resolve(c)).collect();
        let known = catalog.by_subject.get(leaf.issuer_der());
        chain
            .iter()
            .filter(|c| c.subject_der() == leaf.issuer_der())
            .chain(known.into_iter().flatten())
            .find(|c| leaf.verify_signed_by(c).is_ok())
            .cloned()
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if threads < 2 || reports.len() < 512 {
        return reports.iter().map(one).collect();
    }
    let one = &one;
    std::thread::scope(|s| {
        let parts: Vec<_> = reports
            .chunks(reports.len().div_ceil(threads))
            .map(|part| s.spawn(move || part.iter().map(one).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The roots istiod publishes (the CA secret's root file, else the ConfigMaps'), deduplicated.
fn published_roots(secrets: &[CaSecret], configmaps: &[RootConfigMap]) -> Vec<Fingerprint> {
    let mut out: Vec<Fingerprint> = Vec::new();
    let mut add = |b: &crate::Bundle| {
        for c in b.certificates() {
            if !out.contains(&c.fingerprint()) {
                out.push(c.fingerprint());
            }
        }
    };
    let from_secret: Vec<_> = secrets
        .iter()
        .filter_map(|s| s.root_bundle().ok())
        .collect();
    if !from_secret.is_empty() {
        from_secret.iter().for_each(&mut add);
        return out;
    }
    for cm in configmaps {
        if let Ok(b) = crate::Bundle::parse(&cm.root_cert) {
            add(&b);
        }
    }
    out
}

fn groups(proxies: &[ProxyState]) -> Vec<Group> {
    let mut map: BTreeMap<(Vec<Fingerprint>, Option<Fingerprint>), Group> = BTreeMap::new();
    for p in proxies {
        let mut trusts = p.trusts.clone();
        trusts.sort();
        trusts.dedup();
        let signer = p.leaf.as_ref().and_then(|l| l.signer_sha256);
        let g = map
            .entry((trusts.clone(), signer))
            .or_insert_with(|| Group {
                trusts,
                signer_sha256: signer,
                kinds: BTreeMap::new(),
                count: 0,
            });
        g.count += 1;
        *g.kinds.entry(p.kind).or_default() += 1;
    }
    let mut v: Vec<Group> = map.into_values().collect();
    v.sort_by_key(|g| std::cmp::Reverse(g.count));
    v
}
