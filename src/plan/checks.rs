//! Plan checks: every invariant a safe rotation needs, each violation a finding naming the phase.
//!
//! | code | what |
//! |---|---|
//! | istiod load-check codes (`ca-key-mismatch`, `ca-cert-unverified`, `multiple-roots-without-multiroot`, `ztunnel-multiroot-unsupported`, ...) | the phase's `cacerts` fails istiod's own checks for the profile's version (see [`crate::istio::check`]) |
//! | `too-few-phases` | fewer than two phases |
//! | `multiroot-off` | the root file changes but ISTIO_MULTIROOT_MESH is off: istiod ignores the change |
//! | `root-containment` | istiod refuses the new root file: up to 1.29 neither file's bytes contain the other's; from 1.30 neither certificate set contains the other |
//! | `signer-not-trusted` | a phase signs with a CA that the previous phase's bundles (of every cluster) do not trust |
//! | `missing-trigger` | the signer moves to another root but the root bytes do not change, so leaves are not re-issued |
//! | `trigger-changes-trust` | the phase that switches the signer also changes the trust set |
//! | `cross-matrix` | a leaf of one phase does not verify against the bundle of the same, the next or the previous phase (of any cluster) |
//! | `early-root-removal` | a root leaves the bundle while leaves chaining to it can still be valid |
//! | `waits-unknown` | (info) no recorded waits: the minimum wait before the removal is stated instead |
//! | `final-trust` | the last phase trusts more (or other) than the root of its signer |
//! | `presented-order` | (cross-signed plans) a leaf as a sidecar presents it (cert-chain.pem, then root-cert.pem) is refused by an Envoy peer trusting the roots of the same, the previous or the next phase: B' must precede the self-signed B |
//! | `ztunnel-chain` | (meshes with ztunnel) ztunnel drops certificates of cert-chain.pem from what it presents (before 1.24.6, 1.25.3, 1.26.0, under an istiod that sends the chain as one element) and a ztunnel peer trusting the same phase's roots refuses the leaf |
//! | `no-rotation` | the last phase signs with the same CA as the first |
//! | `rollback-unsafe` | ([`check_rollback`]) going back from a phase to the previous one, as the runbook prints it, breaks one of the rules above |

use std::time::Duration;

use time::OffsetDateTime;

use super::{Action, Phase, Plan, PlanFinding};
use crate::bundle::Bundle;
use crate::cert::{Certificate, Fingerprint, SpiffeId};
use crate::generate::{self, Issuer, KeyType, LeafSpec};
use crate::istio::behaviour::{self, RootChange, RootRule};
use crate::istio::{self, CaSecret, Severity, format_duration};
use crate::verify::{self, CertPool, VerifyOptions};

/// How to check a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// The instant at which certificates are checked (and throwaway leaves issued).
    pub now: OffsetDateTime,
    /// The margin the planner adds to waits (for messages; the minimum enforced is one leaf
    /// lifetime).
    pub margin: Duration,
    /// False for a plan read from directories without plan.json: gates are unknown, so the
    /// waits before a root removal are stated as info instead of checked.
    pub waits_known: bool,
}

/// What the checker derives once per (phase, cluster).
struct View {
    roots: Option<Bundle>,
    root_bytes: Vec<u8>,
    signer: Option<Certificate>,
    chain: Vec<Certificate>,
    /// The root the signer chains to within its own phase.
    anchor: Option<Fingerprint>,
    /// A throwaway leaf issued by the phase's signer (None when the key is unusable).
    leaf: Option<Certificate>,
}

fn view(secret: &CaSecret, now: OffsetDateTime, with_leaf: bool) -> View {
    let roots = secret.root_bundle().ok();
    let root_bytes = secret.file(secret.root_file()).unwrap_or_default().to_vec();
    let signer = secret.ca_cert().ok();
    let chain: Vec<Certificate> = secret
        .cert_chain()
        .map(|b| b.certificates().cloned().collect())
        .unwrap_or_default();
    let anchor = match (&signer, &roots) {
        (Some(s), Some(r)) => verify::verify(
            s,
            &CertPool::from_certificates(chain.iter()),
            &CertPool::from_certificates(r.certificates()),
            &VerifyOptions::at(now),
        )
        .ok()
        .map(|p| p.anchor().fingerprint()),
        _ => None,
    };
    let leaf = match (&signer, secret.ca_key()) {
        (Some(s), Ok(k)) if with_leaf => Issuer::new(s.clone(), k).ok().and_then(|issuer| {
            let id = SpiffeId::istio("cluster.local", "meshtrust-check", "probe").ok()?;
            let mut spec = LeafSpec::istio(id);
            spec.key_type = KeyType::EcP256;
            generate::leaf(&spec, &issuer, now)
                .ok()
                .map(|g| g.certificate)
        }),
        _ => None,
    };
    View {
        roots,
        root_bytes,
        signer,
        chain,
        anchor,
        leaf,
    }
}

fn finding(
    code: &'static str,
    severity: Severity,
    phase: &Phase,
    cluster: &str,
    multi: bool,
    message: String,
) -> PlanFinding {
    PlanFinding {
        code,
        severity,
        phase: phase.name.clone(),
        cluster: if multi {
            Some(cluster.to_owned())
        } else {
            None
        },
        message,
    }
}

/// The invariants [`check_plan`] proves (DESIGN.md 3-7); [`check_invariants`] checks a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum Invariant {
    /// Every phase's `cacerts` passes istiod's own load checks for the version (invariant 7).
    LoadChecks,
    /// istiod accepts every change of the root file: byte containment to 1.29, set
    /// containment from 1.30, and ISTIO_MULTIROOT_MESH on (invariant 3).
    RootContainment,
    /// No phase signs with a CA the previous phase's bundles do not trust (invariant 4).
    SignerTrust,
    /// A signer switch to another root changes the root bytes and keeps the trust set.
    Trigger,
    /// Leaves of each phase verify against the bundles of the phase, the next and the
    /// previous one, across clusters (invariant 5).
    CrossMatrix,
    /// A root leaves only after every leaf chaining to it has expired (invariant 6).
    NoEarlyRemoval,
    /// The last phase trusts only its signer's root, and the signer changed.
    FinalState,
}

impl Invariant {
    /// Every invariant, in the order [`check_plan`] reports them.
    pub const ALL: [Invariant; 7] = [
        Invariant::LoadChecks,
        Invariant::RootContainment,
        Invariant::SignerTrust,
        Invariant::Trigger,
        Invariant::CrossMatrix,
        Invariant::NoEarlyRemoval,
        Invariant::FinalState,
    ];
}

/// Checks a plan (see the module docs for the codes). Returns every finding; the plan is safe
/// when none is an error ([`super::has_errors`]).
pub fn check_plan(plan: &Plan, opts: &CheckOptions) -> Vec<PlanFinding> {
    check_invariants(plan, opts, &Invariant::ALL)
}

/// Checks only the given invariants (the throwaway leaves of the cross matrix are issued only
/// when [`Invariant::CrossMatrix`] is asked for).
///
/// ```no_run
/// # fn f(plan: &meshtrust::plan::Plan, opts: &meshtrust::plan::CheckOptions) {
/// use meshtrust::plan::{check_invariants, Invariant};
/// let findings = check_invariants(plan, opts, &[Invariant::RootContainment, Invariant::SignerTrust]);
/// # }
/// ```
pub fn check_invariants(plan: &Plan, opts: &CheckOptions, which: &[Invariant]) -> Vec<PlanFinding> {
    let on = |i: Invariant| which.contains(&i);
    let mut out = Vec::new();
    let multi = plan.is_multi_cluster();
    let profile = &plan.profile;
    let now = opts.now;
    if plan.phases.len() < 2 {
        out.push(PlanFinding {
            code: "too-few-phases",
            severity: Severity::Error,
            phase: plan
                .phases
                .first()
                .map(|p| p.name.clone())
                .unwrap_or_default(),
            cluster: None,
            message: format!(
                "a rotation needs the current state and at least one phase; found {}",
                plan.phases.len()
            ),
        });
        return out;
    }
    // views[p][c]
    let views: Vec<Vec<(String, View)>> = plan
        .phases
        .iter()
        .map(|p| {
            p.clusters
                .iter()
                .map(|c| {
                    (
                        c.cluster.clone(),
                        view(&c.secret, now, on(Invariant::CrossMatrix)),
                    )
                })
                .collect()
        })
        .collect();

    // 1. istiod's load checks of every phase's secret.
    for p in plan.phases.iter().filter(|_| on(Invariant::LoadChecks)) {
        for c in &p.clusters {
            for f in istio::check(&c.secret, profile, now) {
                if f.severity > Severity::Info {
                    out.push(finding(f.code, f.severity, p, &c.cluster, multi, f.message));
                }
            }
        }
    }

    // 2. Transitions.
    for k in 1..plan.phases.len() {
        let (prev, cur) = (&plan.phases[k - 1], &plan.phases[k]);
        for (ci, (cluster, v)) in views[k].iter().enumerate() {
            let Some((_, pv)) = views[k - 1]
                .iter()
                .find(|(n, _)| n == cluster)
                .or_else(|| views[k - 1].get(ci))
            else {
                out.push(finding(
                    "cross-matrix",
                    Severity::Error,
                    cur,
                    cluster,
                    multi,
                    format!("cluster {cluster} is not in phase {}", prev.name),
                ));
                continue;
            };
            let restarted = cur
                .actions
                .iter()
                .any(|a| matches!(a, Action::RestartIstiod { cluster: c, .. } if c == cluster));
            let prev_secret = prev.secret(cluster);
            let mode_switch = prev_secret
                .is_some_and(|s| s.kind != cur.secret(cluster).map_or(s.kind, |x| x.kind));
            if on(Invariant::RootContainment)
                && pv.root_bytes != v.root_bytes
                && !restarted
                && !mode_switch
            {
                match behaviour::root_change(
                    profile.istio_version,
                    profile.multiroot,
                    &pv.root_bytes,
                    &v.root_bytes,
                ) {
                    RootChange::Accepted | RootChange::Unchanged => {}
                    RootChange::IgnoredMultirootOff => out.push(finding(
                        "multiroot-off",
                        Severity::Error,
                        cur,
                        cluster,
                        multi,
                        "root-cert.pem changes but ISTIO_MULTIROOT_MESH is off: istiod (1.22.0+) ignores the new secret (\"Multi root is disabled\")".to_owned(),
                    )),
                    RootChange::Refused { rule } => out.push(finding(
                        "root-containment",
                        Severity::Error,
                        cur,
                        cluster,
                        multi,
                        match rule {
                            RootRule::CertificateSets => format!(
                                "istiod {} refuses the new root file: {}",
                                profile.istio_version,
                                rule.refusal()
                            ),
                            RootRule::ByteContainment => format!(
                                "istiod {} refuses the new root file: {} (build each root file by appending to or trimming the previous one, never by reordering or re-encoding)",
                                profile.istio_version,
                                rule.refusal()
                            ),
                        },
                    )),
                }
            }

            // Signer trust: the new signer must be trusted by every cluster's previous bundle.
            let signer_changed = v.signer.as_ref().map(Certificate::fingerprint)
                != pv.signer.as_ref().map(Certificate::fingerprint);
            if let (true, Some(s)) = (signer_changed, &v.signer) {
                for (other, ov) in views[k - 1].iter().filter(|_| on(Invariant::SignerTrust)) {
                    let Some(r) = &ov.roots else { continue };
                    let ok = verify::verify(
                        s,
                        &CertPool::from_certificates(v.chain.iter()),
                        &CertPool::from_certificates(r.certificates()),
                        &VerifyOptions::at(now),
                    );
                    if let Err(e) = ok {
                        out.push(finding(
                            "signer-not-trusted",
                            Severity::Error,
                            cur,
                            cluster,
                            multi,
                            format!(
                                "signs with {} but the bundle of {}{} does not trust it: {e}",
                                istio::describe(s),
                                prev.name,
                                if multi {
                                    format!(" in cluster {other}")
                                } else {
                                    String::new()
                                }
                            ),
                        ));
                    }
                }
                // Trigger: moving to a CA under another root must re-issue every leaf now.
                if on(Invariant::Trigger)
                    && v.anchor.is_some()
                    && pv.anchor.is_some()
                    && v.anchor != pv.anchor
                {
                    if v.root_bytes == pv.root_bytes {
                        out.push(finding(
                            "missing-trigger",
                            Severity::Error,
                            cur,
                            cluster,
                            multi,
                            "the signer moves to another root but root-cert.pem keeps its bytes: proxies keep leaves from the old CA until their normal rotation; repeat the new root in the file (A+B -> A+B+B)".to_owned(),
                        ));
                    } else if let (Some(a), Some(b)) = (&pv.roots, &v.roots) {
                        if a.trust_set() != b.trust_set() {
                            out.push(finding(
                                "trigger-changes-trust",
                                Severity::Error,
                                cur,
                                cluster,
                                multi,
                                "the phase that switches the signer also changes the trust set; switch with the same roots and a changed byte layout (A+B+B)".to_owned(),
                            ));
                        }
                    }
                }
            }
        }

        // Cross matrix over every pair of clusters.
        for (ci, (cname, v)) in views[k]
            .iter()
            .enumerate()
            .filter(|_| on(Invariant::CrossMatrix))
        {
            let pv = &views[k - 1].get(ci).map(|x| &x.1);
            for (oname, ov) in &views[k] {
                let opv = views[k - 1].iter().find(|(n, _)| n == oname).map(|x| &x.1);
                let pairs = [
                    (Some(v), Some(ov), k, k, "its own phase"),
                    (pv.as_deref(), Some(ov), k - 1, k, "the next phase"),
                    (Some(v), opv, k, k - 1, "the previous phase"),
                ];
                for (leaf_view, bundle_view, lp, bp, rel) in pairs {
                    let (Some(lv), Some(bv)) = (leaf_view, bundle_view) else {
                        continue;
                    };
                    let (Some(leaf), Some(roots)) = (&lv.leaf, &bv.roots) else {
                        continue;
                    };
                    let mut inter: Vec<&Certificate> = lv.chain.iter().collect();
                    if let Some(s) = &lv.signer {
                        inter.push(s);
                    }
                    let r = verify::verify(
                        leaf,
                        &CertPool::from_certificates(inter),
                        &CertPool::from_certificates(roots.certificates()),
                        &VerifyOptions::at(now),
                    );
                    if let Err(e) = r {
                        out.push(finding(
                            "cross-matrix",
                            Severity::Error,
                            &plan.phases[bp],
                            oname,
                            multi,
                            format!(
                                "a leaf issued in {}{} is refused by the bundle of {}{} ({rel}): {e}",
                                plan.phases[lp].name,
                                if multi { format!(" by cluster {cname}") } else { String::new() },
                                plan.phases[bp].name,
                                if multi { format!(" in cluster {oname}") } else { String::new() },
                            ),
                        ));
                    }
                }
            }
        }
    }

    if plan.kind == super::RotationKind::CrossSigned && on(Invariant::CrossMatrix) {
        out.extend(presented_order(plan, &views, now, multi));
    }
    if on(Invariant::CrossMatrix) {
        out.extend(ztunnel_chain(plan, &views, now, multi));
    }

    // 3. Early removal of a root that still anchors live leaves.
    if !on(Invariant::NoEarlyRemoval) {
        return final_state(plan, &views, on(Invariant::FinalState), multi, out);
    }
    let anchors: Vec<Vec<Fingerprint>> = views
        .iter()
        .map(|p| p.iter().filter_map(|(_, v)| v.anchor).collect())
        .collect();
    for k in 1..plan.phases.len() {
        for (cluster, v) in &views[k] {
            let Some(prev) = views[k - 1]
                .iter()
                .find(|(n, _)| n == cluster)
                .map(|x| &x.1)
            else {
                continue;
            };
            let (Some(a), Some(b)) = (&prev.roots, &v.roots) else {
                continue;
            };
            let after = b;
            let (a, b) = (a.trust_set(), b.trust_set());
            for removed in a.fingerprints().filter(|fp| !b.contains(fp)) {
                // The last phase signing under the removed root whose leaves the new bundle
                // does not also trust (a cross-signed signer chains to both).
                let Some(j) = (0..k).rev().find(|&p| {
                    anchors[p].contains(removed) && !signers_trusted_by(&views[p], after, now)
                }) else {
                    continue;
                };
                let cur = &plan.phases[k];
                let name = a
                    .get(removed)
                    .map(istio::describe)
                    .unwrap_or_else(|| removed.short());
                if j + 1 == k {
                    out.push(finding(
                        "early-root-removal",
                        Severity::Error,
                        cur,
                        cluster,
                        multi,
                        format!("drops root {name} while {} still signs under it: those leaves stop verifying at once", plan.phases[j].name),
                    ));
                    continue;
                }
                if opts.waits_known {
                    let waited: Duration = plan.phases[j + 1..k]
                        .iter()
                        .filter_map(|p| p.gate.as_ref())
                        .map(|g| g.min_wait)
                        .fold(Duration::ZERO, Duration::saturating_add);
                    if waited < profile.leaf_ttl {
                        out.push(finding(
                            "early-root-removal",
                            Severity::Error,
                            cur,
                            cluster,
                            multi,
                            format!(
                                "drops root {name} {} after {} stopped signing under it; leaves live {}: wait at least that long (plus a margin of {})",
                                format_duration(waited),
                                plan.phases[j + 1].name,
                                format_duration(profile.leaf_ttl),
                                format_duration(opts.margin)
                            ),
                        ));
                    }
                } else {
                    out.push(finding(
                        "waits-unknown",
                        Severity::Info,
                        cur,
                        cluster,
                        multi,
                        format!(
                            "drops root {name}: apply this phase no sooner than {} (one leaf lifetime plus margin) after {}",
                            format_duration(profile.leaf_ttl.saturating_add(opts.margin)),
                            plan.phases[j + 1].name
                        ),
                    ));
                }
            }
        }
    }

    final_state(plan, &views, on(Invariant::FinalState), multi, out)
}

/// `presented-order` (cross-signed plans): a leaf of each phase, in the order a sidecar presents
/// it, verified the way Envoy verifies a peer (first-match issuer choice, no backtracking)
/// against the roots of its own, the previous and the next phase. B' must come before the
/// self-signed B, or a peer that trusts only A picks B and refuses the leaf.
fn presented_order(
    plan: &Plan,
    views: &[Vec<(String, View)>],
    now: OffsetDateTime,
    multi: bool,
) -> Vec<PlanFinding> {
    let mut out = Vec::new();
    for (k, phase_views) in views.iter().enumerate() {
        for (cluster, v) in phase_views {
            let (Some(leaf), Some(roots)) = (&v.leaf, &v.roots) else {
                continue;
            };
            // What a sidecar presents, and how an Envoy peer verifies it: the one model's.
            let root_file: Vec<Certificate> = roots.certificates().cloned().collect();
            let presented = behaviour::presented_chain(
                behaviour::Proxy::Sidecar,
                plan.profile.istio_version,
                plan.profile.ztunnel(),
                leaf,
                &v.chain,
                &root_file,
            );
            let policy = behaviour::verifier_policy(behaviour::Proxy::Sidecar);
            let first = k.saturating_sub(1);
            let last = (k + 1).min(views.len() - 1);
            for (j, peer_views) in views.iter().enumerate().take(last + 1).skip(first) {
                for (_, pv) in peer_views {
                    let Some(peer_roots) = &pv.roots else {
                        continue;
                    };
                    let r = verify::verify(
                        leaf,
                        &CertPool::from_certificates(presented.iter().skip(1)),
                        &CertPool::from_certificates(peer_roots.certificates()),
                        &VerifyOptions::at(now).with_policy(policy),
                    );
                    if let Err(e) = r {
                        out.push(finding(
                            "presented-order",
                            Severity::Error,
                            &plan.phases[k],
                            cluster,
                            multi,
                            format!(
                                "a sidecar of {} presents its leaf with cert-chain.pem then root-cert.pem, and an Envoy peer trusting the roots of {} refuses it: {e}; put the cross-signed certificate before any self-signed certificate of the same name and key",
                                plan.phases[k].name, plan.phases[j].name
                            ),
                        ));
                    }
                }
            }
        }
    }
    out
}

/// `ztunnel-chain` (meshes with ztunnel): what ztunnel presents with a leaf of a phase
/// ([`behaviour::presented_chain`]) lacks a certificate of cert-chain.pem, and ztunnel's own
/// verifier refuses it against the same phase's roots: the whole phase is broken. One finding,
/// for the first such phase.
fn ztunnel_chain(
    plan: &Plan,
    views: &[Vec<(String, View)>],
    now: OffsetDateTime,
    multi: bool,
) -> Vec<PlanFinding> {
    let mut out = Vec::new();
    if !plan.profile.data_plane.has_ztunnel() {
        return out;
    }
    let (istiod, z) = (plan.profile.istio_version, plan.profile.ztunnel());
    let policy = behaviour::verifier_policy(behaviour::Proxy::Ztunnel);
    for (k, phase_views) in views.iter().enumerate() {
        for (cluster, v) in phase_views {
            let (Some(leaf), Some(roots)) = (&v.leaf, &v.roots) else {
                continue;
            };
            let file: Vec<Certificate> = roots.certificates().cloned().collect();
            let presented = behaviour::presented_chain(
                behaviour::Proxy::Ztunnel,
                istiod,
                z,
                leaf,
                &v.chain,
                &file,
            );
            if v.chain.iter().all(|c| presented.contains(c)) {
                continue;
            }
            let r = verify::verify(
                leaf,
                &CertPool::from_certificates(presented.iter().skip(1)),
                &CertPool::from_certificates(roots.certificates()),
                &VerifyOptions::at(now).with_policy(policy),
            );
            if let Err(e) = r {
                out.push(finding(
                    "ztunnel-chain",
                    Severity::Error,
                    &plan.phases[k],
                    cluster,
                    multi,
                    format!(
                        "ztunnel {z} under istiod {istiod} presents its leaf with only the first certificate of cert-chain.pem, and its peers refuse it: {e}; use ztunnel {} (or an istiod that sends the chain one certificate per element)",
                        behaviour::ztunnel_multi_root_fixed_in()
                    ),
                ));
                // The first phase it breaks is enough: the mesh is down from there.
                return out;
            }
        }
    }
    out
}

/// True when every signer of a phase, with its own chain, verifies against `roots`: its
/// leaves outlive the removal of another root they also chain to (a cross-signed signer).
fn signers_trusted_by(phase: &[(String, View)], roots: &Bundle, now: OffsetDateTime) -> bool {
    phase.iter().all(|(_, v)| {
        v.signer.as_ref().is_some_and(|s| {
            verify::verify(
                s,
                &CertPool::from_certificates(v.chain.iter()),
                &CertPool::from_certificates(roots.certificates()),
                &VerifyOptions::at(now),
            )
            .is_ok()
        })
    })
}

/// 4. The end state.
fn final_state(
    plan: &Plan,
    views: &[Vec<(String, View)>],
    on: bool,
    multi: bool,
    mut out: Vec<PlanFinding>,
) -> Vec<PlanFinding> {
    if !on {
        return out;
    }
    let (first, last) = (&views[0], &views[views.len() - 1]);
    let last_phase = &plan.phases[plan.phases.len() - 1];
    for (cluster, v) in last {
        if let (Some(roots), Some(anchor)) = (&v.roots, v.anchor) {
            let set = roots.trust_set();
            if set.len() != 1 || !set.contains(&anchor) {
                out.push(finding(
                    "final-trust",
                    Severity::Error,
                    last_phase,
                    cluster,
                    multi,
                    format!(
                        "the last phase trusts {} roots; it must trust only the root of its signer",
                        set.len()
                    ),
                ));
            }
        }
        let before = first
            .iter()
            .find(|(n, _)| n == cluster)
            .and_then(|(_, v)| v.signer.as_ref());
        if before.is_some() && before == v.signer.as_ref() {
            out.push(finding(
                "no-rotation",
                Severity::Error,
                last_phase,
                cluster,
                multi,
                "the last phase signs with the same CA as the first".to_owned(),
            ));
        }
    }
    out
}

/// The invariants a step back must keep: istiod accepts the root-file change, the signer gone
/// back to is trusted, the trigger rule, the cross matrix and no early removal (the load checks
/// of each phase are forward findings already; the final state does not apply).
const ROLLBACK_INVARIANTS: [Invariant; 5] = [
    Invariant::RootContainment,
    Invariant::SignerTrust,
    Invariant::Trigger,
    Invariant::CrossMatrix,
    Invariant::NoEarlyRemoval,
];

/// The steps the runbook prints to go back from phase `k` to phase `k - 1`: re-apply the
/// earlier phase's secret (or, when the earlier phase is istiod's self-signed CA, delete
/// `cacerts` and restart istiod so that it falls back to `istio-ca-secret`), then the same
/// restarts a forward step of this profile needs.
pub fn rollback_actions(plan: &Plan, k: usize) -> Vec<Action> {
    let (Some(cur), Some(prev)) = (
        plan.phases.get(k),
        k.checked_sub(1).and_then(|j| plan.phases.get(j)),
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in &prev.clusters {
        let back_to_self_signed = c.secret.kind == istio::SecretKind::SelfSigned
            && cur
                .secret(&c.cluster)
                .is_some_and(|s| s.kind != istio::SecretKind::SelfSigned);
        if back_to_self_signed {
            out.push(Action::RestartIstiod {
                cluster: c.cluster.clone(),
                reason: "after deleting cacerts: istiod starts on its self-signed CA (istio-ca-secret) again".to_owned(),
            });
        } else {
            out.push(Action::ApplySecret {
                cluster: c.cluster.clone(),
                secret: c.secret.name.clone(),
            });
        }
        // The restarts the forward step into `cur` needed make proxies see this change too;
        // an istiod restart too (a root change istiod only loads at start, as in a
        // cross-signed rotation without ISTIO_MULTIROOT_MESH), unless one is already there.
        out.extend(
            cur.actions
                .iter()
                .filter(|a| a.cluster() == c.cluster)
                .filter(|a| match a {
                    Action::ApplySecret { .. } => false,
                    Action::RestartIstiod { .. } => !back_to_self_signed,
                    _ => true,
                })
                .cloned(),
        );
    }
    out
}

/// Checks every rollback step the runbook prints (phase `k` back to `k - 1`, for every
/// `k >= 1`) the way [`check_invariants`] checks forward steps: the step is the two-phase plan
/// `[k, k - 1]` with [`rollback_actions`]. Each violation is a `rollback-unsafe` finding on
/// phase `k` naming the forward code.
pub fn check_rollback(plan: &Plan, opts: &CheckOptions) -> Vec<PlanFinding> {
    let mut out = Vec::new();
    for k in 1..plan.phases.len() {
        let mut back = plan.phases[k - 1].clone();
        back.actions = rollback_actions(plan, k);
        back.trigger = false;
        let mut step = plan.clone();
        step.phases = vec![plan.phases[k].clone(), back];
        for f in check_invariants(&step, opts, &ROLLBACK_INVARIANTS) {
            if f.severity != Severity::Error {
                continue;
            }
            out.push(PlanFinding {
                code: "rollback-unsafe",
                severity: Severity::Error,
                phase: plan.phases[k].name.clone(),
                cluster: f.cluster.clone(),
                message: format!(
                    "going back from {} to {} is not safe: [{}] {}",
                    plan.phases[k].name,
                    plan.phases[k - 1].name,
                    f.code,
                    f.message
                ),
            });
        }
    }
    out
}

/// Whether istiod (the profile's version and flags) accepts the root-file change of going back
/// from phase `k` to `k - 1` in `cluster`, as [`check_rollback`] decides it: None when the step
/// changes no root bytes or restarts istiod, else Some(accepted).
pub fn rollback_root_change_accepted(
    plan: &Plan,
    k: usize,
    cluster: &str,
    opts: &CheckOptions,
) -> Option<bool> {
    let (cur, prev) = (plan.phases.get(k)?, plan.phases.get(k.checked_sub(1)?)?);
    let (a, b) = (cur.secret(cluster)?, prev.secret(cluster)?);
    if a.file(a.root_file()) == b.file(b.root_file()) || a.kind != b.kind {
        return None;
    }
    let mut back = prev.clone();
    back.actions = rollback_actions(plan, k);
    let mut step = plan.clone();
    step.phases = vec![cur.clone(), back];
    let refused = check_invariants(&step, opts, &[Invariant::RootContainment])
        .iter()
        .any(|f| {
            f.severity == Severity::Error && f.cluster.as_deref().is_none_or(|c| c == cluster)
        });
    Some(!refused)
}
