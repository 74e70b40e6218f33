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
//! | `ztunnel-chain-truncated` | (ambient, istiod before 1.24.4/1.25.1/1.26.0 with ztunnel before 1.24.6/1.25.3/1.26.0) ztunnel presents only cert-chain.pem's first certificate, and a peer of the same, the previous or the next phase cannot verify its leaf without the rest (deep and cross-signed chains) |
//! | `ztunnel-ca-channel` | (ambient, ztunnel before 1.28.6, 1.29.2, 1.30.0) a phase signs with a CA the roots ztunnel read at its last restart do not anchor: it can no longer reach istiod to renew (istio/ztunnel issue 1679) |
//! | `no-rotation` | the last phase signs with the same CA as the first |
//! | `rollback-unsafe` | ([`check_rollback`]) going back from a phase to the previous one, as the runbook prints it, breaks one of the rules above |

use std::time::Duration;

use time::OffsetDateTime;

use super::{Action, Phase, Plan};
use crate::bundle::Bundle;
use crate::cert::{Certificate, Fingerprint, SpiffeId};
use crate::finding::{Code, Finding, Severity};
use crate::generate::{self, KeyType, LeafSpec};
use crate::istio::behaviour::{self, RootChange, RootRule};
use crate::istio::{self, CaSecret, ChainUse, format_duration};
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
pub(super) struct View {
    pub(super) roots: Option<Bundle>,
    root_bytes: Vec<u8>,
    signer: Option<Certificate>,
    pub(super) chain: Vec<Certificate>,
    /// The root the signer chains to within its own phase.
    anchor: Option<Fingerprint>,
    /// A throwaway leaf issued by the phase's signer (None when the key is unusable).
    pub(super) leaf: Option<Certificate>,
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
        (Some(s), Ok(k)) if with_leaf => istio::issuer_from(
            s.clone(),
            k,
            Vec::new(),
            None,
            ChainUse::SignerOnly,
            secret.signing_cert_file(),
        )
        .ok()
        .and_then(|issuer| {
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

pub(super) fn finding(
    code: Code,
    severity: Severity,
    phase: &Phase,
    cluster: &str,
    multi: bool,
    message: String,
) -> Finding {
    Finding::new(code, severity, message)
        .in_phase(phase.name.clone())
        .in_cluster(multi.then(|| cluster.to_owned()))
}

/// The invariants [`check_plan`] proves (DESIGN.md 3-7); [`check_invariants`] checks a subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
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
    /// An ambient mesh whose ztunnel keeps the roots it read at start (before 1.28.6, 1.29.2,
    /// 1.30.0) restarts it before a signer those roots do not anchor.
    ZtunnelCaChannel,
}

impl Invariant {
    /// Every invariant, in the order [`check_plan`] reports them.
    pub const ALL: [Invariant; 8] = [
        Invariant::LoadChecks,
        Invariant::RootContainment,
        Invariant::SignerTrust,
        Invariant::Trigger,
        Invariant::CrossMatrix,
        Invariant::NoEarlyRemoval,
        Invariant::FinalState,
        Invariant::ZtunnelCaChannel,
    ];
}

/// Checks a plan (see the module docs for the codes). Returns every finding; the plan is safe
/// when none is an error ([`super::has_errors`]).
pub fn check_plan(plan: &Plan, opts: &CheckOptions) -> Vec<Finding> {
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
pub fn check_invariants(plan: &Plan, opts: &CheckOptions, which: &[Invariant]) -> Vec<Finding> {
    let mut out = Vec::new();
    if plan.phases.len() < 2 {
        out.push(
            Finding::error(
                Code::TooFewPhases,
                format!(
                    "a rotation needs the current state and at least one phase; found {}",
                    plan.phases.len()
                ),
            )
            .in_phase(
                plan.phases
                    .first()
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
            ),
        );
        return out;
    }
    let cx = Ctx::new(plan, opts, which.contains(&Invariant::CrossMatrix));
    for i in Invariant::ALL.into_iter().filter(|i| which.contains(i)) {
        out.extend(i.check(&cx));
    }
    out
}

/// What every check reads: the plan, the options and one [`View`] per (phase, cluster).
pub(super) struct Ctx<'a> {
    pub(super) plan: &'a Plan,
    pub(super) opts: &'a CheckOptions,
    /// `views[phase][cluster]`.
    pub(super) views: Vec<Vec<(String, View)>>,
    pub(super) multi: bool,
}

impl<'a> Ctx<'a> {
    fn new(plan: &'a Plan, opts: &'a CheckOptions, with_leaves: bool) -> Ctx<'a> {
        let views = plan
            .phases
            .iter()
            .map(|p| {
                p.clusters
                    .iter()
                    .map(|c| (c.cluster.clone(), view(&c.secret, opts.now, with_leaves)))
                    .collect()
            })
            .collect();
        Ctx {
            plan,
            opts,
            views,
            multi: plan.is_multi_cluster(),
        }
    }

    /// Each transition k-1 -> k and cluster of phase k: (k, cluster, its view, the previous
    /// phase's view of the same cluster, or of the same position).
    fn transitions(&self) -> impl Iterator<Item = (usize, &str, &View, Option<&View>)> + '_ {
        (1..self.views.len()).flat_map(move |k| {
            self.views[k]
                .iter()
                .enumerate()
                .map(move |(ci, (cluster, v))| {
                    let pv = self.views[k - 1]
                        .iter()
                        .find(|(n, _)| n == cluster)
                        .or_else(|| self.views[k - 1].get(ci))
                        .map(|x| &x.1);
                    (k, cluster.as_str(), v, pv)
                })
        })
    }
}

impl Invariant {
    /// This invariant's findings.
    fn check(self, cx: &Ctx<'_>) -> Vec<Finding> {
        match self {
            Invariant::LoadChecks => load_checks(cx),
            Invariant::RootContainment => root_containment(cx),
            Invariant::SignerTrust => signer_trust(cx),
            Invariant::Trigger => trigger(cx),
            Invariant::CrossMatrix => cross_matrix(cx),
            Invariant::NoEarlyRemoval => no_early_removal(cx),
            Invariant::FinalState => final_state(cx),
            Invariant::ZtunnelCaChannel => {
                super::ca_channel::ztunnel_ca_channel(cx.plan, cx.opts.now, cx.multi)
            }
        }
    }
}

/// Invariant 1: istiod's load checks of every phase's secret ([`istio::check`]).
fn load_checks(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, profile, now, multi) = (cx.plan, &cx.plan.profile, cx.opts.now, cx.multi);
    let mut out = Vec::new();
    for p in plan.phases.iter() {
        for c in &p.clusters {
            for f in istio::check(&c.secret, profile, now) {
                if f.severity > Severity::Info {
                    out.push(finding(f.code, f.severity, p, &c.cluster, multi, f.message));
                }
            }
        }
    }

    out
}

/// Invariant 2: istiod accepts every change of the root file ([`behaviour::root_change`]), unless the
/// phase restarts istiod or switches its mode.
fn root_containment(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, profile, opts, multi) = (cx.plan, &cx.plan.profile, cx.opts, cx.multi);
    let mut out = Vec::new();
    for (k, cluster, v, pv) in cx.transitions() {
        let Some(pv) = pv else { continue };
        let (prev, cur) = (&plan.phases[k - 1], &plan.phases[k]);
        let restarted = cur
            .actions
            .iter()
            .any(|a| matches!(a, Action::RestartIstiod { cluster: c, .. } if c == cluster));
        let prev_secret = prev.secret(cluster);
        let mode_switch =
            prev_secret.is_some_and(|s| s.kind != cur.secret(cluster).map_or(s.kind, |x| x.kind));
        if pv.root_bytes != v.root_bytes && !restarted && !mode_switch {
            match behaviour::root_change(
                    profile.istio_version,
                    profile.multiroot,
                    &pv.root_bytes,
                    &v.root_bytes,
                ) {
                    RootChange::Accepted | RootChange::Unchanged => {}
                    // Without plan.json the phase's restarts are unknown: say what it needs.
                    RootChange::IgnoredMultirootOff => out.push(finding(
                        Code::MultirootOff,
                        if opts.waits_known { Severity::Error } else { Severity::Warning },
                        cur,
                        cluster,
                        multi,
                        format!(
                            "root-cert.pem changes but ISTIO_MULTIROOT_MESH is off: istiod (1.22.0+) ignores the new secret (\"Multi root is disabled\"){}",
                            if opts.waits_known {
                                ""
                            } else {
                                "; restart istiod in this phase (without plan.json the plan's restarts are unknown)"
                            }
                        ),
                    )),
                    RootChange::Refused { rule } => out.push(finding(
                        Code::RootContainment,
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
    }
    out
}

/// Invariant 3: A phase that changes the signer signs with a CA every cluster's previous bundle trusts.
fn signer_trust(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, now, multi, views) = (cx.plan, cx.opts.now, cx.multi, &cx.views);
    let mut out = Vec::new();
    for (k, cluster, v, pv) in cx.transitions() {
        let Some(pv) = pv else { continue };
        let (prev, cur) = (&plan.phases[k - 1], &plan.phases[k]);
        let signer_changed = v.signer.as_ref().map(Certificate::fingerprint)
            != pv.signer.as_ref().map(Certificate::fingerprint);
        if let (true, Some(s)) = (signer_changed, &v.signer) {
            for (other, ov) in views[k - 1].iter() {
                let Some(r) = &ov.roots else { continue };
                let ok = verify::verify(
                    s,
                    &CertPool::from_certificates(v.chain.iter()),
                    &CertPool::from_certificates(r.certificates()),
                    &VerifyOptions::at(now),
                );
                if let Err(e) = ok {
                    out.push(finding(
                        Code::SignerNotTrusted,
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
        }
    }
    out
}

/// Invariant 4: A signer switch to another root changes the root bytes (every leaf is re-issued) and
/// keeps the trust set.
fn trigger(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, multi) = (cx.plan, cx.multi);
    let mut out = Vec::new();
    for (k, cluster, v, pv) in cx.transitions() {
        let Some(pv) = pv else { continue };
        let cur = &plan.phases[k];
        let signer_changed = v.signer.as_ref().map(Certificate::fingerprint)
            != pv.signer.as_ref().map(Certificate::fingerprint);
        if !signer_changed || v.signer.is_none() {
            continue;
        }
        // Moving to a CA under another root must re-issue every leaf now.
        if v.anchor.is_some() && pv.anchor.is_some() && v.anchor != pv.anchor {
            if v.root_bytes == pv.root_bytes {
                out.push(finding(
                            Code::MissingTrigger,
                            Severity::Error,
                            cur,
                            cluster,
                            multi,
                            "the signer moves to another root but root-cert.pem keeps its bytes: proxies keep leaves from the old CA until their normal rotation; repeat the new root in the file (A+B -> A+B+B)".to_owned(),
                        ));
            } else if let (Some(a), Some(b)) = (&pv.roots, &v.roots) {
                if a.trust_set() != b.trust_set() {
                    out.push(finding(
                                Code::TriggerChangesTrust,
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
    out
}

/// Invariant 5: Leaves of each phase verify against the bundles of the same, the next and the previous
/// phase across clusters; a cross-signed plan's presented order, and what an older ztunnel
/// presents ([`super::presented`]).
fn cross_matrix(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, now, multi, views) = (cx.plan, cx.opts.now, cx.multi, &cx.views);
    let mut out = Vec::new();
    for (k, cluster, _, pv) in cx.transitions() {
        if pv.is_none() {
            out.push(finding(
                Code::CrossMatrix,
                Severity::Error,
                &plan.phases[k],
                cluster,
                multi,
                format!(
                    "cluster {cluster} is not in phase {}",
                    plan.phases[k - 1].name
                ),
            ));
        }
    }
    for k in 1..plan.phases.len() {
        for (ci, (cname, v)) in views[k].iter().enumerate() {
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
                            Code::CrossMatrix,
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

    if plan.kind == super::RotationKind::CrossSigned {
        out.extend(super::presented::presented_order(plan, views, now, multi));
    }
    out.extend(super::presented::ztunnel_chain(plan, views, now, multi));
    out
}

/// Invariant 6: A root leaves only after every leaf chaining to it has expired.
fn no_early_removal(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, profile, opts, now, multi, views) = (
        cx.plan,
        &cx.plan.profile,
        cx.opts,
        cx.opts.now,
        cx.multi,
        &cx.views,
    );
    let mut out = Vec::new();
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
                        Code::EarlyRootRemoval,
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
                            Code::EarlyRootRemoval,
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
                        Code::WaitsUnknown,
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

/// Invariant 7: The end state: the last phase trusts only its signer's root, and the signer changed.
fn final_state(cx: &Ctx<'_>) -> Vec<Finding> {
    let (plan, views, multi) = (cx.plan, &cx.views, cx.multi);
    let mut out = Vec::new();
    let (first, last) = (&views[0], &views[views.len() - 1]);
    let last_phase = &plan.phases[plan.phases.len() - 1];
    for (cluster, v) in last {
        if let (Some(roots), Some(anchor)) = (&v.roots, v.anchor) {
            let set = roots.trust_set();
            if set.len() != 1 || !set.contains(&anchor) {
                out.push(finding(
                    Code::FinalTrust,
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
                Code::NoRotation,
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
