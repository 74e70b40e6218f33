//! Kind 5, [`RotationKind::CrossSigned`]: root A -> B through B' (B's subject and key, issued
//! by A), for a mesh whose istiod runs without ISTIO_MULTIROOT_MESH and whose proxies lack
//! PROXY_CONFIG_XDS_AGENT. No trust bundle ever holds two roots and no workload restarts:
//!
//! 1. `01-sign-cross-signed`: B's intermediate signs with cert-chain.pem = IB + B', root file
//!    still A, byte for byte (istiod reloads the signer without the flag); wait one leaf
//!    lifetime, until every leaf is from IB.
//! 2. `02-trust-new-root`: root file B, chain still IB + B'; istiod restarts (without the flag
//!    it ignores a root change). A proxy that still trusts only A verifies IB -> B' -> A, one
//!    that learned B at its renewal IB -> B; wait one leaf lifetime (proxies learn roots only
//!    at renewal).
//! 3. `03-drop-cross-signed`: cert-chain.pem = the new CA's own (IB + B); root file unchanged.
//!
//! Sidecars present leaf + cert-chain.pem + the whole root file, so B' (in the chain) always
//! comes before the self-signed B (in the root file): Envoy's first-match issuer choice picks
//! B' for a peer that trusts only A. [`super::checks`] refuses a chain that puts B first.

use std::time::Duration;

use super::build::{Material, refuse};
use super::gates::{fp_list, roots_check, signer_check};
use super::{Action, ClusterPhase, Gate, GateCheck, Phase, Plan, PlanOptions, RotationKind};
use crate::bundle::Bundle;
use crate::cert::{Certificate, Role};
use crate::finding::{Code, Finding};
use crate::istio::behaviour;
use crate::istio::{self, CaSecret, IstioProfile, format_duration};

/// Checks the inputs of a cross-signed rotation: one cluster, a B' for the new root's subject
/// and key issued by a root the cluster trusts now. Returns the chain IB + B' to sign with.
pub(super) fn inputs(
    material: &[Material],
    cross: Option<&Certificate>,
    refusals: &mut Vec<Finding>,
) -> Option<Vec<u8>> {
    let m = &material[0];
    if material.len() > 1 {
        refusals.push(refuse(
            Code::KindMismatch,
            &m.name,
            "a cross-signed rotation is planned one cluster at a time".to_owned(),
        ));
        return None;
    }
    let Some(cross) = cross else {
        refusals.push(refuse(
            Code::CrossSignedMissing,
            &m.name,
            "a cross-signed rotation needs B' (the new root's key issued by the old root): make it with `meshtrust generate cross-sign` and pass it with --cross-signed".to_owned(),
        ));
        return None;
    };
    let new_root = m.new_roots.certificates().find(|c| c.role() == Role::Root);
    let Some(b) = new_root.filter(|_| m.new_roots.trust_set().len() == 1) else {
        refusals.push(refuse(
            Code::CrossSignedMismatch,
            &m.name,
            "the new root-cert.pem must hold exactly one root, B".to_owned(),
        ));
        return None;
    };
    if cross.subject_der() != b.subject_der() || cross.spki_der() != b.spki_der() {
        refusals.push(refuse(
            Code::CrossSignedMismatch,
            &m.name,
            format!(
                "the cross-signed certificate {} is not for the new root {}: it must carry B's subject and public key",
                istio::describe(cross),
                istio::describe(b)
            ),
        ));
    }
    let anchored = m
        .current_roots
        .certificates()
        .any(|a| cross.issuer_der() == a.subject_der() && cross.verify_signed_by(a).is_ok());
    if !anchored || !cross.is_ca() {
        refusals.push(refuse(
            Code::CrossSignedUnanchored,
            &m.name,
            format!(
                "the cross-signed certificate {} must be a CA issued by a root the cluster trusts now (its root-cert.pem)",
                istio::describe(cross)
            ),
        ));
    }
    if m.current_roots.trust_set().len() != 1 {
        refusals.push(refuse(
            Code::CrossSignedMismatch,
            &m.name,
            "the current root-cert.pem must hold exactly one root, A: a cross-signed rotation never trusts two roots".to_owned(),
        ));
    }
    // IB + B': the new chain with every certificate of B's key and name replaced by B'.
    let chain = m.new.cert_chain().ok()?;
    let mut out = String::new();
    for c in chain.certificates() {
        if c.role() == Role::Root {
            continue;
        }
        out.push_str(&c.to_pem());
    }
    out.push_str(&cross.to_pem());
    Some(out.into_bytes())
}

fn apply(cluster: &str) -> Action {
    Action::ApplySecret {
        cluster: cluster.to_owned(),
        secret: "cacerts".to_owned(),
    }
}

/// Phase 2's steps: apply, restart istiod (without ISTIO_MULTIROOT_MESH it loads a new root
/// only at start), and for a ztunnel that keeps the CA roots it read at start
/// ([`behaviour::ztunnel_watches_ca_root`]) a ztunnel restart once istiod serves B in the
/// istio-ca-root-cert ConfigMap: phase 3 drops B', after which istiod's serving chain no
/// longer reaches A.
fn trust_new_root_actions(cluster: &str, profile: &IstioProfile) -> Vec<Action> {
    let mut actions = vec![
        apply(cluster),
        Action::RestartIstiod {
            cluster: cluster.to_owned(),
            reason: "without ISTIO_MULTIROOT_MESH istiod ignores a change of root-cert.pem; a restart loads the new root".to_owned(),
        },
    ];
    if profile.data_plane.has_ztunnel() && !behaviour::ztunnel_watches_ca_root(profile.ztunnel()) {
        actions.push(Action::AwaitIstiod {
            cluster: cluster.to_owned(),
        });
        actions.push(Action::RestartZtunnel {
            cluster: cluster.to_owned(),
        });
    }
    actions
}

/// What a cross-signed rotation needs before it starts.
fn precondition_gate() -> Gate {
    Gate {
        min_wait: Duration::ZERO,
        reason: "preconditions of a cross-signed rotation: neither ISTIO_MULTIROOT_MESH nor PROXY_CONFIG_XDS_AGENT is needed; the cross-signed certificate (one use of the old root's key) is ready".to_owned(),
        barrier: false,
        checks: vec![GateCheck {
            description: "istiod's current root-cert.pem is the plan's 00-current root (one root)".to_owned(),
            command: "kubectl get configmap istio-ca-root-cert -n istio-system -o jsonpath='{.data.root-cert\\.pem}' | meshtrust inspect -".to_owned(),
            expect: Vec::new(),
        }],
    }
}

/// The phases of a cross-signed rotation for the one cluster of `material`.
pub(super) fn cross_signed_plan(
    m: &Material,
    chain_with_cross: &[u8],
    profile: &IstioProfile,
    opts: &PlanOptions,
) -> Plan {
    let new_root_bytes = m.new.file(istio::ROOT_CERT).unwrap_or_default();
    let b = Bundle::parse(new_root_bytes).unwrap_or_else(|_| m.new_roots.clone());
    let [nc, nk, nch] = [istio::CA_CERT, istio::CA_KEY, istio::CERT_CHAIN]
        .map(|f| m.new.file(f).unwrap_or_default());
    let secret = |chain: &[u8], roots: &[u8]| CaSecret::cacerts(nc, nk, chain, roots);
    let lifetime = profile.leaf_ttl + opts.margin;
    let cluster = &m.name;
    let phases = vec![
        Phase {
            name: "00-current".to_owned(),
            title: "what the cluster runs now, as read".to_owned(),
            clusters: vec![ClusterPhase {
                cluster: cluster.clone(),
                secret: m.current.clone(),
            }],
            trigger: false,
            actions: Vec::new(),
            gate: Some(precondition_gate()),
        },
        Phase {
            name: "01-sign-cross-signed".to_owned(),
            title: "sign with the new intermediate, chained through the cross-signed B' to the old root; root-cert.pem unchanged, so istiod only reloads its signer".to_owned(),
            clusters: vec![ClusterPhase {
                cluster: cluster.clone(),
                secret: secret(chain_with_cross, m.current_roots.bytes()),
            }],
            trigger: false,
            actions: vec![apply(cluster)],
            gate: Some(Gate {
                min_wait: lifetime,
                reason: format!(
                    "no proxy may trust only the new root while a leaf from the old intermediate is valid: one leaf lifetime ({}) plus a {} margin, until every leaf is from the new intermediate",
                    format_duration(profile.leaf_ttl),
                    format_duration(opts.margin)
                ),
                barrier: false,
                checks: signer_check(profile, &m.new_signer),
            }),
        },
        Phase {
            name: "02-trust-new-root".to_owned(),
            title: format!(
                "root-cert.pem becomes the new root; the chain keeps B', so proxies still trusting only the old root verify through it{}",
                super::gates::ztunnel_channel_note(profile)
            ),
            clusters: vec![ClusterPhase {
                cluster: cluster.clone(),
                secret: secret(chain_with_cross, b.bytes()),
            }],
            trigger: false,
            actions: trust_new_root_actions(cluster, profile),
            gate: Some(Gate {
                min_wait: lifetime,
                reason: format!(
                    "proxies learn the new root only when they renew their leaf: one leaf lifetime ({}) plus a {} margin before B' leaves the chain",
                    format_duration(profile.leaf_ttl),
                    format_duration(opts.margin)
                ),
                barrier: false,
                checks: roots_check(profile, fp_list(&b), "only the new root"),
            }),
        },
        Phase {
            name: "03-drop-cross-signed".to_owned(),
            title: "drop B' from cert-chain.pem (the new CA's own chain); an intermediate-only change".to_owned(),
            clusters: vec![ClusterPhase {
                cluster: cluster.clone(),
                secret: secret(nch, b.bytes()),
            }],
            trigger: false,
            actions: vec![apply(cluster)],
            gate: Some(Gate {
                min_wait: opts.propagation,
                reason: "final state: every proxy trusts only the new root and presents the new CA's own chain".to_owned(),
                barrier: false,
                checks: roots_check(profile, fp_list(&b), "only the new root"),
            }),
        },
    ];
    Plan {
        kind: RotationKind::CrossSigned,
        profile: profile.clone(),
        clusters: vec![cluster.clone()],
        phases,
        old_roots: Vec::new(),
        new_roots: Vec::new(),
    }
}

/// What a cross-signed rotation costs against the multi-root kind, for the runbook and the
/// command line.
pub(super) fn costs(plan: &Plan) -> Option<String> {
    (plan.kind == RotationKind::CrossSigned).then(|| {
        let ttl = format_duration(plan.profile.leaf_ttl);
        format!(
            "What this cross-signed rotation needs: the old root's key once (to sign B'), one istiod restart (02-trust-new-root), two leaf lifetimes ({ttl} each, plus margins) of waiting; neither ISTIO_MULTIROOT_MESH nor PROXY_CONFIG_XDS_AGENT, no workload restart, and no trust bundle ever holds two roots. The multi-root kind (root-rotation) instead needs ISTIO_MULTIROOT_MESH and PROXY_CONFIG_XDS_AGENT (where the agent flag is off, every workload restarts), but no old key and about one leaf lifetime.\n"
        )
    })
}
