//! The mesh against a rotation plan: the cluster each proxy runs in, the phase it is in, the
//! phase reached, and whether the next phase is safe to apply, with its blockers proxy by
//! proxy.
//!
//! In a multi-cluster plan each proxy is judged against its own cluster's phase contents (that
//! cluster's signer and root file), so it is first assigned a cluster, from the best evidence
//! there is: what the caller said ([`Observation::in_cluster`](super::Observation::in_cluster)),
//! the dump's `CLUSTER_ID`, else the one cluster whose CA (in some phase) signed its leaf. When
//! nothing decides, the proxy is listed unassigned with a warning and judged against every
//! cluster, as a single-cluster mesh is.

use std::collections::HashMap;

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, Fingerprint};
use crate::plan::Plan;

use super::evaluate::{MeshState, ProxyState, Warning};
use super::{ClusterEvidence, ProxyKind, model};

/// Why the next phase is not safe yet, for one proxy (or one namespace's ConfigMap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// The proxy's name, or `configmap/NAMESPACE`, or `secret/NAME`.
    pub proxy: String,
    /// The cluster the proxy runs in, when known.
    pub cluster: Option<String>,
    /// Why.
    pub reason: String,
    /// The earliest instant it clears by itself (the leaf's renewal), if it does.
    #[serde(with = "super::ser::opt_instant")]
    pub clears_at: Option<OffsetDateTime>,
}

/// One namespace's `istio-ca-root-cert` against the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigMapState {
    /// The namespace.
    pub namespace: String,
    /// The phase whose root-cert.pem its bytes equal, if any.
    pub phase: Option<String>,
    /// True when it does not carry the applied phase's root-cert.pem (istiod has not written
    /// it there yet).
    pub lags: bool,
}

/// Where the mesh stands in a plan, and whether the next phase is safe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The earliest phase any observed proxy is in (all proxies are at least there).
    pub phase_reached: Option<String>,
    /// The phase applied on the istiod side (CA secret, else the ConfigMaps), if observed.
    pub applied_phase: Option<String>,
    /// The phase to apply next (none when the rotation is complete).
    pub next_phase: Option<String>,
    /// True only when every observed proxy already trusts what the next phase's signer needs,
    /// no proxy holds a leaf the next phase stops trusting, and istiod published the applied
    /// phase's roots in every namespace observed.
    pub safe_to_advance: bool,
    /// Why not, proxy by proxy.
    pub blockers: Vec<Blocker>,
    /// The ConfigMaps against the plan.
    pub configmaps: Vec<ConfigMapState>,
}

/// One phase as each data plane holds it.
struct PhaseView {
    name: String,
    /// (cluster, signer, certificates above it) per cluster.
    signers: Vec<(String, Certificate, Vec<Certificate>)>,
    /// (cluster, root file bytes, its certificates) per cluster.
    roots: Vec<(String, Vec<u8>, Vec<Certificate>)>,
}

fn views(plan: &Plan) -> Vec<PhaseView> {
    plan.phases
        .iter()
        .map(|p| PhaseView {
            name: p.name.clone(),
            signers: p
                .clusters
                .iter()
                .filter_map(|c| {
                    // An unreadable cert-chain.pem leaves the signer alone.
                    let (s, above) = match c.secret.signer_and_chain() {
                        Ok(sc) => sc,
                        Err(_) => (c.secret.ca_cert().ok()?, Vec::new()),
                    };
                    Some((c.cluster.clone(), s, above))
                })
                .collect(),
            roots: p
                .clusters
                .iter()
                .filter_map(|c| {
                    let b = c.secret.root_bundle().ok()?;
                    let certs = b.certificates().cloned().collect();
                    Some((c.cluster.clone(), b.bytes().to_vec(), certs))
                })
                .collect(),
        })
        .collect()
}

/// Every certificate of a plan's phases (signers, chains, roots): give them to
/// [`MeshState::evaluate`] to resolve table serials and find signers.
pub fn plan_certificates(plan: &Plan) -> Vec<Certificate> {
    let mut out = Vec::new();
    for v in views(plan) {
        for (_, s, chain) in v.signers {
            out.push(s);
            out.extend(chain);
        }
        for (_, _, certs) in v.roots {
            out.extend(certs);
        }
    }
    out
}

impl MeshState {
    /// The mesh against `plan`: sets each proxy's [`phase`](super::ProxyState::phase) and
    /// returns the verdict for the next phase.
    pub fn against(&mut self, plan: &Plan) -> Verdict {
        let views = views(plan);
        let ctx = Context::new(self, &views);
        self.assign_clusters(plan, &views);
        // Each proxy's phase: the phases whose signer (of its cluster) signed its leaf and
        // whose roots (of its cluster), as its data plane holds them, are exactly the roots it
        // trusts.
        let mut matches: Vec<Vec<usize>> = Vec::with_capacity(self.proxies.len());
        let mut set_of: HashMap<usize, usize> = HashMap::new();
        for p in &self.proxies {
            let signer = p.leaf.as_ref().and_then(|l| l.signer_sha256);
            let trusts = match p.inner.store {
                Some(st) => *set_of
                    .entry(st)
                    .or_insert_with(|| ctx.set_id(self.checker.fingerprints(st))),
                None => ctx.set_id(&[]),
            };
            let dp = usize::from(!p.kind.is_envoy());
            let mine = |c: &String| p.cluster.as_ref().is_none_or(|m| m == c);
            let m = (0..views.len())
                .filter(|&k| {
                    views[k]
                        .signers
                        .iter()
                        .any(|(c, s, _)| mine(c) && Some(s.fingerprint()) == signer)
                        && ctx.held[k][dp]
                            .iter()
                            .any(|(c, set)| mine(c) && *set == trusts)
                })
                .collect();
            matches.push(m);
        }
        let applied = applied_candidates(self, &views);
        let reached_floor = matches.iter().filter(|m| !m.is_empty()).map(|m| m[0]).min();
        let applied_k = applied
            .iter()
            .copied()
            .find(|&k| reached_floor.is_none_or(|r| k >= r))
            .or_else(|| applied.last().copied());
        let phase_of = |m: &Vec<usize>| {
            m.iter()
                .rev()
                .find(|&&k| applied_k.is_none_or(|a| k <= a))
                .or(m.last())
                .copied()
        };
        for (p, m) in self.proxies.iter_mut().zip(&matches) {
            p.phase = phase_of(m).map(|k| views[k].name.clone());
        }
        let reached = matches.iter().filter_map(phase_of).min();
        let current = match (reached, applied_k) {
            (Some(r), Some(a)) => Some(r.max(a)),
            (r, a) => r.or(a),
        };
        let next = current.map_or(0, |c| c + 1);
        let mut blockers = Vec::new();
        let configmaps = self.configmap_states(&views, applied_k, &mut blockers);
        if let Some(nv) = views.get(next) {
            self.proxy_blockers(&views, nv, applied_k.or(current), &mut blockers);
        }
        Verdict {
            phase_reached: reached.map(|k| views[k].name.clone()),
            applied_phase: applied_k.map(|k| views[k].name.clone()),
            next_phase: views.get(next).map(|v| v.name.clone()),
            safe_to_advance: views.get(next).is_some() && blockers.is_empty(),
            blockers,
            configmaps,
        }
    }

    /// Sets every proxy's cluster against `plan`, from the best evidence: the caller's word,
    /// the dump's metadata, else the one cluster whose signer (in any phase) signed the leaf.
    fn assign_clusters(&mut self, plan: &Plan, views: &[PhaseView]) {
        for p in &mut self.proxies {
            match assign(p, plan, views) {
                Ok((cluster, from)) => {
                    p.cluster = Some(cluster);
                    p.cluster_from = Some(from);
                }
                Err(reason) => {
                    p.cluster = None;
                    p.cluster_from = None;
                    p.warnings.push(Warning::ClusterUnassigned { reason });
                }
            }
        }
    }

    fn configmap_states(
        &self,
        views: &[PhaseView],
        applied: Option<usize>,
        blockers: &mut Vec<Blocker>,
    ) -> Vec<ConfigMapState> {
        let mut out = Vec::new();
        for cm in &self.configmaps {
            let phase = views
                .iter()
                .enumerate()
                .filter(|(_, v)| v.roots.iter().any(|(_, b, _)| *b == cm.root_cert))
                .map(|(k, _)| k)
                .collect::<Vec<_>>();
            let lags = applied.is_some_and(|a| !phase.contains(&a));
            let shown = phase
                .iter()
                .rev()
                .find(|&&k| applied.is_none_or(|a| k <= a))
                .or(phase.last());
            if lags || phase.is_empty() {
                blockers.push(Blocker {
                    proxy: format!("configmap/{}", cm.namespace),
                    cluster: None,
                    reason: match (applied, shown) {
                        (Some(a), Some(&k)) => format!(
                            "istio-ca-root-cert still holds {}'s root-cert.pem, not {}'s (istiod has not published it in this namespace)",
                            views[k].name, views[a].name
                        ),
                        _ => "istio-ca-root-cert holds the root-cert.pem of no phase of the plan".to_owned(),
                    },
                    clears_at: None,
                });
            }
            out.push(ConfigMapState {
                namespace: cm.namespace.clone(),
                phase: shown.map(|&k| views[k].name.clone()),
                lags,
            });
        }
        out
    }

    /// The two rules for the next phase `nv`, proxy by proxy; each proxy against its own
    /// cluster's phase contents when it has one.
    fn proxy_blockers(
        &mut self,
        views: &[PhaseView],
        nv: &PhaseView,
        applied: Option<usize>,
        blockers: &mut Vec<Blocker>,
    ) {
        let at = self.at;
        let kinds = self.data_planes();
        let applied_view = applied.and_then(|a| views.get(a));
        // Signer chains (signer first) of the next and the applied phase, per cluster.
        let next_signers: Vec<(String, Certificate, usize)> = nv
            .signers
            .iter()
            .map(|(c, s, above)| (c.clone(), s.clone(), self.signer_chain(s, above)))
            .collect();
        let applied_signers: Vec<(String, usize)> = applied_view
            .map(|av| {
                av.signers
                    .iter()
                    .map(|(c, s, above)| (c.clone(), self.signer_chain(s, above)))
                    .collect()
            })
            .unwrap_or_default();
        // Trust stores per data plane (Envoy, ztunnel) and cluster: after the next phase, and
        // after a renewal under the applied phase.
        let next_stores =
            [ProxyKind::Sidecar, ProxyKind::Ztunnel].map(|k| self.stores_after(nv, k));
        let after_stores = [ProxyKind::Sidecar, ProxyKind::Ztunnel].map(|k| {
            applied_view
                .map(|av| self.stores_after(av, k))
                .unwrap_or_default()
        });
        for i in 0..self.proxies.len() {
            let p = &self.proxies[i];
            let (kind, store, cluster) = (p.kind, p.inner.store, p.cluster.clone());
            let mine = |c: &String| cluster.as_ref().is_none_or(|m| m == c);
            let blocker = |reason: String, clears_at| Blocker {
                proxy: p.name.clone(),
                cluster: cluster.clone(),
                reason,
                clears_at,
            };
            let mut found = Vec::new();
            let has_leaf = p.leaf.is_some();
            let signer = p.inner.signer.clone();
            let leaf = p.inner.leaf.clone();
            let presented = p.inner.presented;
            let renewal = p
                .inner
                .leaf
                .as_ref()
                .map(|l| model::renewal_at(&self.profile, kind, l))
                .filter(|r| *r > at);
            // Rule 1: it trusts what the next phase's signer (of every cluster: its peers'
            // leaves) needs.
            if let Some(store) = store {
                for (_, s, chain) in &next_signers {
                    if let Err(why) = self.checker.signer_trusted(*chain, store, kind, at) {
                        // After a renewal the proxy holds its cluster's applied phase's roots.
                        let after = &after_stores[usize::from(!kind.is_envoy())];
                        let clears = after
                            .iter()
                            .filter(|(c, _)| mine(c))
                            .any(|&(_, st)| {
                                self.checker.signer_trusted(*chain, st, kind, at).is_ok()
                            })
                            .then_some(renewal)
                            .flatten();
                        found.push(blocker(
                            format!(
                                "does not trust {}, the signer of {} ({why})",
                                s.subject(),
                                nv.name
                            ),
                            clears,
                        ));
                    }
                }
            }
            // Rule 2: its leaf stays trusted by the next phase's roots (of its cluster), as
            // each data plane holds them.
            match (&signer, &leaf, presented) {
                (Some(sg), Some(leaf), Some(presented)) => {
                    for &envoy in &kinds {
                        let k = if envoy { ProxyKind::Sidecar } else { ProxyKind::Ztunnel };
                        let stores = &next_stores[usize::from(!envoy)];
                        let ok = stores.iter().filter(|(c, _)| mine(c)).any(|&(_, st)| {
                            self.checker.leaf_trusted(leaf, presented, st, k, at).is_ok()
                        });
                        if !ok {
                            // After a renewal its leaf comes from its cluster's applied signer.
                            let new_ok = applied_signers.iter().filter(|(c, _)| mine(c)).any(
                                |&(_, chain)| {
                                    stores.iter().filter(|(c, _)| mine(c)).any(|&(_, st)| {
                                        self.checker.signer_trusted(chain, st, k, at).is_ok()
                                    })
                                },
                            );
                            found.push(blocker(
                                format!(
                                    "its leaf is signed by {}, which {}'s roots as {} holds them do not trust",
                                    crate::verify::Named(sg),
                                    nv.name,
                                    if envoy { "Envoy" } else { "ztunnel" }
                                ),
                                new_ok.then_some(renewal).flatten(),
                            ));
                        }
                    }
                }
                _ if has_leaf => found.push(blocker(
                    "its leaf's signer is unknown (a table shows serials only): read it with -o json".to_owned(),
                    None,
                )),
                _ => {}
            }
            blockers.extend(found);
        }
    }

    /// The data planes the proxies use (true for Envoy), each once.
    fn data_planes(&self) -> Vec<bool> {
        let mut k: Vec<bool> = self.proxies.iter().map(|p| p.kind.is_envoy()).collect();
        k.sort();
        k.dedup();
        k
    }

    /// The checker's id of a signer's chain (the signer, then the certificates above it).
    fn signer_chain(&mut self, signer: &Certificate, above: &[Certificate]) -> usize {
        let mut chain = Vec::with_capacity(above.len() + 1);
        chain.push(signer.clone());
        chain.extend(above.iter().cloned());
        self.checker.chain(&chain)
    }

    /// The trust stores a phase's root files give a data plane, one per cluster.
    fn stores_after(&mut self, v: &PhaseView, kind: ProxyKind) -> Vec<(String, usize)> {
        v.roots
            .iter()
            .map(|(cluster, _, certs)| {
                let r = model::roots_held(&self.profile, kind, certs);
                (cluster.clone(), self.checker.store(&r))
            })
            .collect()
    }
}

/// The plan's root sets, interned: per phase and data plane (Envoy, ztunnel), the sorted root
/// set each cluster's root file gives.
struct Context {
    held: Vec<[Vec<(String, usize)>; 2]>,
    sets: HashMap<Vec<Fingerprint>, usize>,
}

impl Context {
    fn new(mesh: &mut MeshState, views: &[PhaseView]) -> Context {
        let mut ctx = Context {
            held: Vec::with_capacity(views.len()),
            sets: HashMap::new(),
        };
        for v in views {
            let held = [ProxyKind::Sidecar, ProxyKind::Ztunnel].map(|kind| {
                mesh.stores_after(v, kind)
                    .into_iter()
                    .map(|(c, st)| {
                        let fps = mesh.checker.fingerprints(st).to_vec();
                        (c, ctx.intern(&fps))
                    })
                    .collect()
            });
            ctx.held.push(held);
        }
        ctx
    }

    fn intern(&mut self, fps: &[Fingerprint]) -> usize {
        let key = sorted(fps);
        let n = self.sets.len();
        *self.sets.entry(key).or_insert(n)
    }

    /// The id of a root set (sorted, each once); sets no phase holds get `usize::MAX`.
    fn set_id(&self, fps: &[Fingerprint]) -> usize {
        self.sets.get(&sorted(fps)).copied().unwrap_or(usize::MAX)
    }
}

/// The cluster of `p` in `plan`, and what says so; or why nothing decides.
fn assign(
    p: &ProxyState,
    plan: &Plan,
    views: &[PhaseView],
) -> Result<(String, ClusterEvidence), String> {
    let known = |c: &str| plan.clusters.iter().any(|k| k == c);
    let list = plan.clusters.join(", ");
    if let Some(c) = &p.inner.explicit {
        return if known(c) {
            Ok((c.clone(), ClusterEvidence::Explicit))
        } else {
            Err(format!(
                "given as cluster {c}, which the plan does not have (it has {list})"
            ))
        };
    }
    if let [only] = plan.clusters.as_slice() {
        return Ok((only.clone(), ClusterEvidence::OnlyCluster));
    }
    if let Some(c) = p.inner.cluster_id.as_deref().filter(|c| known(c)) {
        return Ok((c.to_owned(), ClusterEvidence::Metadata));
    }
    let metadata = match &p.inner.cluster_id {
        Some(c) => format!("its CLUSTER_ID {c} is not a cluster of the plan ({list})"),
        None => "its dump names no cluster".to_owned(),
    };
    let Some(signer) = p.leaf.as_ref().and_then(|l| l.signer_sha256) else {
        return Err(format!("{metadata}, and its leaf's signer is unknown"));
    };
    let mut by: Vec<&str> = views
        .iter()
        .flat_map(|v| &v.signers)
        .filter(|(_, s, _)| s.fingerprint() == signer)
        .map(|(c, _, _)| c.as_str())
        .collect();
    by.sort_unstable();
    by.dedup();
    match by.as_slice() {
        [one] => Ok(((*one).to_owned(), ClusterEvidence::Signer)),
        [] => Err(format!(
            "{metadata}, and no cluster's CA in the plan signed its leaf (signer {})",
            signer.short()
        )),
        many => Err(format!(
            "{metadata}, and its leaf's signer {} signs in clusters {}: give its cluster",
            signer.short(),
            many.join(", ")
        )),
    }
}

/// Phases the istiod side shows applied (CA secret files, else every ConfigMap), ascending.
fn applied_candidates(mesh: &MeshState, views: &[PhaseView]) -> Vec<usize> {
    let secret_match: Vec<usize> = views
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            mesh.secrets.iter().any(|s| {
                let roots = s.root_bundle().ok().map(|b| b.bytes().to_vec());
                let signer = s.ca_cert().ok().map(|c| c.fingerprint());
                v.roots.iter().any(|(_, b, _)| Some(b) == roots.as_ref())
                    && v.signers
                        .iter()
                        .any(|(_, c, _)| Some(c.fingerprint()) == signer)
            })
        })
        .map(|(k, _)| k)
        .collect();
    if !mesh.secrets.is_empty() {
        return secret_match;
    }
    if mesh.configmaps.is_empty() {
        return Vec::new();
    }
    // The newest phase any namespace publishes: istiod writes every namespace in turn.
    let mut ks: Vec<usize> = views
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            mesh.configmaps
                .iter()
                .any(|cm| v.roots.iter().any(|(_, b, _)| *b == cm.root_cert))
        })
        .map(|(k, _)| k)
        .collect();
    ks.sort_unstable();
    ks
}

fn sorted(f: &[Fingerprint]) -> Vec<Fingerprint> {
    let mut v = f.to_vec();
    v.sort();
    v.dedup();
    v
}
