//! The mesh against a rotation plan: the phase each proxy is in, the phase reached, and
//! whether the next phase is safe to apply, with its blockers proxy by proxy.

use serde::Serialize;
use time::OffsetDateTime;

use crate::cert::{Certificate, Fingerprint};
use crate::istio::CaSecret;
use crate::plan::Plan;

use super::evaluate::MeshState;
use super::{ProxyKind, model};

/// Why the next phase is not safe yet, for one proxy (or one namespace's ConfigMap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blocker {
    /// The proxy's name, or `configmap/NAMESPACE`, or `secret/NAME`.
    pub proxy: String,
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
    /// (signer, certificates above it) per cluster.
    signers: Vec<(Certificate, Vec<Certificate>)>,
    /// Root file bytes and certificates per cluster.
    roots: Vec<(Vec<u8>, Vec<Certificate>)>,
}

fn signer_of(s: &CaSecret) -> Option<(Certificate, Vec<Certificate>)> {
    let signer = s.ca_cert().ok()?;
    let chain = s
        .cert_chain()
        .map(|b| {
            b.certificates()
                .filter(|c| **c != signer)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    Some((signer, chain))
}

fn views(plan: &Plan) -> Vec<PhaseView> {
    plan.phases
        .iter()
        .map(|p| PhaseView {
            name: p.name.clone(),
            signers: p
                .clusters
                .iter()
                .filter_map(|c| signer_of(&c.secret))
                .collect(),
            roots: p
                .clusters
                .iter()
                .filter_map(|c| {
                    let b = c.secret.root_bundle().ok()?;
                    Some((b.bytes().to_vec(), b.certificates().cloned().collect()))
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
        for (s, chain) in v.signers {
            out.push(s);
            out.extend(chain);
        }
        for (_, certs) in v.roots {
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
        // Per phase and data plane (Envoy, ztunnel): the sorted root sets its clusters give.
        let held: Vec<[Vec<Vec<Fingerprint>>; 2]> = views
            .iter()
            .map(|v| {
                [ProxyKind::Sidecar, ProxyKind::Ztunnel].map(|kind| {
                    self.stores_after(v, kind)
                        .into_iter()
                        .map(|s| sorted(self.checker.fingerprints(s)))
                        .collect()
                })
            })
            .collect();
        // Each proxy's phase: the phases whose signer signed its leaf and whose roots, as its
        // data plane holds them, are exactly the roots it trusts.
        let mut matches: Vec<Vec<usize>> = Vec::with_capacity(self.proxies.len());
        for i in 0..self.proxies.len() {
            let p = &self.proxies[i];
            let (kind, signer, trusts) = (
                p.kind,
                p.leaf.as_ref().and_then(|l| l.signer_sha256),
                sorted(&p.trusts),
            );
            let mut m = Vec::new();
            for (k, v) in views.iter().enumerate() {
                let signs = v
                    .signers
                    .iter()
                    .any(|(s, _)| Some(s.fingerprint()) == signer);
                if !signs {
                    continue;
                }
                let sets = &held[k][usize::from(!kind.is_envoy())];
                if sets.contains(&trusts) {
                    m.push(k);
                }
            }
            matches.push(m);
        }
        let applied = applied_candidates(self, &views);
        let reached_floor = matches.iter().filter(|m| !m.is_empty()).map(|m| m[0]).min();
        let applied_k = applied
            .iter()
            .copied()
            .find(|&k| reached_floor.is_none_or(|r| k >= r))
            .or_else(|| applied.last().copied());
        for (p, m) in self.proxies.iter_mut().zip(&matches) {
            let k = m
                .iter()
                .rev()
                .find(|&&k| applied_k.is_none_or(|a| k <= a))
                .or(m.last());
            p.phase = k.map(|&k| views[k].name.clone());
        }
        let reached = matches
            .iter()
            .filter_map(|m| {
                m.iter()
                    .rev()
                    .find(|&&k| applied_k.is_none_or(|a| k <= a))
                    .or(m.last())
                    .copied()
            })
            .min();
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
                .filter(|(_, v)| v.roots.iter().any(|(b, _)| *b == cm.root_cert))
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

    /// The two rules for the next phase `nv`, proxy by proxy.
    fn proxy_blockers(
        &mut self,
        views: &[PhaseView],
        nv: &PhaseView,
        applied: Option<usize>,
        blockers: &mut Vec<Blocker>,
    ) {
        let at = self.at;
        let kinds: Vec<bool> = {
            let mut k: Vec<bool> = self.proxies.iter().map(|p| p.kind.is_envoy()).collect();
            k.sort();
            k.dedup();
            k
        };
        let applied_view = applied.and_then(|a| views.get(a));
        // Trust stores per data plane (Envoy, ztunnel): after the next phase, and after a
        // renewal under the applied phase.
        let next_stores =
            [ProxyKind::Sidecar, ProxyKind::Ztunnel].map(|k| self.stores_after(nv, k));
        let after_stores = [ProxyKind::Sidecar, ProxyKind::Ztunnel].map(|k| {
            applied_view
                .map(|av| self.stores_after(av, k))
                .unwrap_or_default()
        });
        for i in 0..self.proxies.len() {
            let p = &self.proxies[i];
            let (name, kind, store) = (p.name.clone(), p.kind, p.inner.store);
            let has_leaf = p.leaf.is_some();
            let signer = p.inner.signer.clone();
            let leaf = p.inner.leaf.clone();
            let presented = p.inner.presented.clone();
            let renewal = p
                .inner
                .leaf
                .as_ref()
                .map(|l| model::renewal_at(&self.profile, kind, l))
                .filter(|r| *r > at);
            // Rule 1: it trusts what the next phase's signer needs.
            if let Some(store) = store {
                for (s, above) in &nv.signers {
                    if let Err(why) = self.checker.signer_trusted(s, above, store, kind, at) {
                        // After a renewal the proxy holds the applied phase's roots.
                        let after = &after_stores[usize::from(!kind.is_envoy())];
                        let clears = after
                            .iter()
                            .any(|&st| self.checker.signer_trusted(s, above, st, kind, at).is_ok())
                            .then_some(renewal)
                            .flatten();
                        blockers.push(Blocker {
                            proxy: name.clone(),
                            reason: format!(
                                "does not trust {}, the signer of {} ({why})",
                                s.subject(),
                                nv.name
                            ),
                            clears_at: clears,
                        });
                    }
                }
            }
            // Rule 2: its leaf stays trusted by the next phase's roots, as each data plane holds them.
            match (&signer, &leaf) {
                (Some(sg), Some(leaf)) => {
                    for &envoy in &kinds {
                        let k = if envoy { ProxyKind::Sidecar } else { ProxyKind::Ztunnel };
                        let stores = &next_stores[usize::from(!envoy)];
                        let ok = stores.iter().any(|&st| {
                            self.checker
                                .leaf_trusted(leaf, &presented, st, k, at)
                                .is_ok()
                        });
                        if !ok {
                            let clears = applied_view.and_then(|av| {
                                let new_ok = av.signers.iter().any(|(s2, above2)| {
                                    stores.iter().any(|&st| {
                                        self.checker.signer_trusted(s2, above2, st, k, at).is_ok()
                                    })
                                });
                                new_ok.then_some(renewal).flatten()
                            });
                            blockers.push(Blocker {
                                proxy: name.clone(),
                                reason: format!(
                                    "its leaf is signed by {}, which {}'s roots as {} holds them do not trust",
                                    crate::verify::Named(sg),
                                    nv.name,
                                    if envoy { "Envoy" } else { "ztunnel" }
                                ),
                                clears_at: clears,
                            });
                        }
                    }
                }
                _ if has_leaf => blockers.push(Blocker {
                    proxy: name.clone(),
                    reason: "its leaf's signer is unknown (a table shows serials only): read it with -o json".to_owned(),
                    clears_at: None,
                }),
                _ => {}
            }
        }
    }

    /// The trust stores a phase's root files give a data plane, one per cluster.
    fn stores_after(&mut self, v: &PhaseView, kind: ProxyKind) -> Vec<usize> {
        v.roots
            .iter()
            .map(|(_, certs)| {
                let r = model::roots_held(&self.profile, kind, certs);
                self.checker.store(&r)
            })
            .collect()
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
                v.roots.iter().any(|(b, _)| Some(b) == roots.as_ref())
                    && v.signers
                        .iter()
                        .any(|(c, _)| Some(c.fingerprint()) == signer)
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
                .any(|cm| v.roots.iter().any(|(b, _)| *b == cm.root_cert))
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
