//! The waits, checks and propagation steps between phases: what the runbook waits for and
//! verifies before the next phase, and how a secret change reaches the proxies (istiod's
//! push, restarts), per the one Istio model.

use std::time::Duration;

use super::build::Material;
use super::{Action, Gate, GateCheck, Plan, PlanOptions, RotationKind};
use crate::bundle::Bundle;
use crate::cert::{Certificate, Fingerprint};
use crate::istio::{self, IstioProfile, behaviour, format_duration};

/// Restarts that make proxies see a change now rather than at their next rotation. They
/// follow an [`Action::AwaitIstiod`] unless `istiod_restarted` (a restarted istiod has loaded
/// the secret already): a proxy restarted before istiod has loaded the new secret gets the
/// old roots, and kubelet updates the mounted secret up to a sync period after the apply.
pub(super) fn propagation_actions(
    cluster: &str,
    profile: &IstioProfile,
    istiod_restarted: bool,
) -> Vec<Action> {
    let mut a = Vec::new();
    if profile.data_plane.has_ztunnel() {
        a.push(Action::RestartZtunnel {
            cluster: cluster.to_owned(),
        });
    }
    if !profile.xds_agent {
        if profile.data_plane.has_sidecars() {
            a.push(Action::RestartSidecars {
                cluster: cluster.to_owned(),
            });
        }
        if profile.data_plane.has_ztunnel() {
            a.push(Action::RestartWaypoints {
                cluster: cluster.to_owned(),
            });
        }
    }
    // Confirm istiod took the secret (its ConfigMap equals root-cert.pem) in every data plane,
    // before any restart and before the next phase: a refused secret is found here, not later.
    if !istiod_restarted {
        a.insert(
            0,
            Action::AwaitIstiod {
                cluster: cluster.to_owned(),
            },
        );
    }
    a
}

/// Why ztunnel is restarted after the new roots reach the istio-ca-root-cert ConfigMap and
/// before the signer switch, when its version needs it ([`behaviour::ztunnel_watches_ca_root`]).
pub(super) fn ztunnel_channel_note(profile: &IstioProfile) -> String {
    let z = profile.ztunnel();
    if !profile.data_plane.has_ztunnel() || behaviour::ztunnel_watches_ca_root(z) {
        return String::new();
    }
    format!(
        "; ztunnel {z} (before {}) keeps the CA roots it read at start for its own connection to istiod, and istiod re-signs its serving certificate with the new signer: ztunnel is restarted in this phase, after istiod serves the new roots in the istio-ca-root-cert ConfigMap and before the signer switch, or it stops renewing (istio/ztunnel issue 1679)",
        behaviour::ztunnel_watch_fixed_in()
    )
}

pub(super) fn fp_list(b: &Bundle) -> Vec<Fingerprint> {
    b.trust_set().fingerprints().copied().collect()
}

pub(super) fn roots_check(
    profile: &IstioProfile,
    expect: Vec<Fingerprint>,
    what: &str,
) -> Vec<GateCheck> {
    let mut checks = vec![GateCheck {
        description: format!("every sidecar, gateway and waypoint trusts {what} (the ROOTCA secret)"),
        command: "istioctl proxy-config secret deploy/WORKLOAD -n NAMESPACE -o json | jq -r '.dynamicActiveSecrets[] | select(.name == \"ROOTCA\") | .secret.validationContext.trustedCa.inlineBytes' | base64 -d | meshtrust inspect -".to_owned(),
        expect: expect.clone(),
    }];
    if profile.data_plane.has_ztunnel() {
        checks.push(GateCheck {
            description: format!(
                "every ztunnel identity trusts {what}, read from its certificates (the table shows serials only; check one pod per node that carries traffic)"
            ),
            command: "istioctl ztunnel-config certificates ZTUNNEL_POD.istio-system -o json | meshtrust status --json - | jq '.proxies[] | {name, trusts}'".to_owned(),
            expect,
        });
    }
    checks
}

pub(super) fn signer_check(profile: &IstioProfile, signer: &Certificate) -> Vec<GateCheck> {
    let mut checks = vec![GateCheck {
        description: format!("every workload certificate is issued by {} (its chain shows this CA)", istio::describe(signer)),
        command: "istioctl proxy-config secret deploy/WORKLOAD -n NAMESPACE -o json | jq -r '.dynamicActiveSecrets[] | select(.name == \"default\") | .secret.tlsCertificate.certificateChain.inlineBytes' | base64 -d | meshtrust inspect -".to_owned(),
        expect: vec![signer.fingerprint()],
    }];
    if profile.data_plane.has_ztunnel() {
        checks.push(GateCheck {
            description: format!(
                "every ztunnel identity's leaf is signed by {} (serial {}), read from its certificates",
                signer.subject(),
                signer.serial_hex()
            ),
            command: "istioctl ztunnel-config certificates ZTUNNEL_POD.istio-system -o json | meshtrust status --json - | jq '.proxies[] | {name, signer: .leaf.signer_sha256}'".to_owned(),
            expect: vec![signer.fingerprint()],
        });
    }
    checks
}

pub(super) fn precondition_gate(
    profile: &IstioProfile,
    kind: RotationKind,
    reissue_now: bool,
) -> Gate {
    let mut checks = Vec::new();
    if kind != RotationKind::IntermediateRotation || reissue_now {
        checks.push(GateCheck {
            description: "every istiod Deployment (each revision: istiod, istiod-<rev>, label istio.io/rev) runs with ISTIO_MULTIROOT_MESH=\"true\" (fails listing the others)".to_owned(),
            command: "kubectl get deployment -A -l app=istiod -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{\" rev=\"}{.metadata.labels.istio\\.io/rev}{\" \"}{.spec.template.spec.containers[?(@.name==\"discovery\")].env[?(@.name==\"ISTIO_MULTIROOT_MESH\")].value}{\"\\n\"}{end}' | awk '{ print } $3 != \"true\" { bad = 1 } END { exit bad + (NR == 0) }'".to_owned(),
            expect: Vec::new(),
        });
    }
    if profile.xds_agent {
        checks.push(GateCheck {
            description: "new proxies get PROXY_CONFIG_XDS_AGENT=true (mesh config proxyMetadata)".to_owned(),
            command: "kubectl get configmap istio -n istio-system -o jsonpath='{.data.mesh}' | grep PROXY_CONFIG_XDS_AGENT".to_owned(),
            expect: Vec::new(),
        });
        checks.push(GateCheck {
            description: "every RUNNING proxy has PROXY_CONFIG_XDS_AGENT=true in its environment (pods injected before the flag was set lack it until restarted; fails listing them: restart them)".to_owned(),
            command: "kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{\" \"}{.spec.containers[?(@.name==\"istio-proxy\")].env[?(@.name==\"PROXY_CONFIG_XDS_AGENT\")].value}{.spec.initContainers[?(@.name==\"istio-proxy\")].env[?(@.name==\"PROXY_CONFIG_XDS_AGENT\")].value}{\" \"}{.spec.containers[?(@.name==\"istio-proxy\")].name}{.spec.initContainers[?(@.name==\"istio-proxy\")].name}{\"\\n\"}{end}' | awk '$NF == \"istio-proxy\" && $2 != \"true\" { print $1; n++ } END { exit n > 0 }'".to_owned(),
            expect: Vec::new(),
        });
    }
    if profile.data_plane.has_ztunnel() {
        checks.push(GateCheck {
            description: format!(
                "ztunnel is {} in every cluster (it trusts every root), and istiod is not 1.24.4 or 1.25.1",
                behaviour::ztunnel_multi_root_fixed_in()
            ),
            command: "kubectl get daemonset ztunnel -n istio-system -o jsonpath='{.spec.template.spec.containers[0].image}'".to_owned(),
            expect: Vec::new(),
        });
    }
    Gate {
        min_wait: Duration::ZERO,
        reason: "preconditions of the rotation".to_owned(),
        barrier: false,
        checks,
    }
}

/// Each gate's first check: one `meshtrust status --collect --plan .` (per cluster in
/// multi-cluster plans) and the verdict it must print before the next phase. The gate's wait
/// stays as the lower bound the model proves; the verdict, not the clock, is the signal to go
/// on. The other checks stay as the manual equivalent.
pub(super) fn status_gates(plan: &mut Plan) {
    let multi = plan.is_multi_cluster();
    let names: Vec<String> = plan.phases.iter().map(|p| p.name.clone()).collect();
    for (k, phase) in plan.phases.iter_mut().enumerate() {
        let Some(gate) = phase.gate.as_mut() else {
            continue;
        };
        let (verdict, what) = match names.get(k + 1) {
            Some(next) => (
                format!("SAFE to apply {next}"),
                format!("the mesh has reached {} and {next} is safe", names[k]),
            ),
            None => (
                "rotation complete: no phase left to apply".to_owned(),
                format!("every proxy is in {}'s state", names[k]),
            ),
        };
        let context = if multi { " --context CLUSTER" } else { "" };
        gate.checks.insert(
            0,
            GateCheck {
                description: format!(
                    "{what}{}: the command must print `{verdict}` (and exit 0); the verdict, not the clock, is the signal to go on (the wait above is only the lower bound), and a blocker line names each proxy to wait for or restart",
                    if multi { ", in every cluster" } else { "" }
                ),
                command: format!("meshtrust status --collect{context} --plan ."),
                expect: Vec::new(),
            },
        );
    }
}

/// The gates after the three phases of a root rotation: both roots everywhere; no old leaf
/// left before the old root goes; only the new root.
pub(super) fn root_gates(
    material: &[Material],
    profile: &IstioProfile,
    opts: &PlanOptions,
) -> [Gate; 3] {
    let multi = material.len() > 1;
    let m0 = &material[0];
    let both = fp_list(&m0.current_roots.append(&m0.new_roots));
    let who = if multi { " in every cluster" } else { "" };
    let gate1 = Gate {
        min_wait: opts.propagation,
        reason: format!(
            "let istiod push the new roots and the restarts finish{who} ({}), then verify every proxy trusts both roots before any signer changes{}",
            if behaviour::push_reaches_agent(profile.multiroot, profile.xds_agent) {
                "ISTIO_MULTIROOT_MESH with PROXY_CONFIG_XDS_AGENT pushes roots at once"
            } else {
                "without PROXY_CONFIG_XDS_AGENT only restarted proxies have them"
            },
            ztunnel_channel_note(profile)
        ),
        barrier: multi,
        checks: roots_check(profile, both, "both the old and the new roots"),
    };
    let wait2 = profile.leaf_ttl + opts.margin;
    let gate2 = Gate {
        min_wait: wait2,
        reason: format!(
            "the old root may go only when no leaf from the old intermediate can still be valid: one leaf lifetime ({}) plus a {} margin after the switch{}",
            format_duration(profile.leaf_ttl),
            format_duration(opts.margin),
            if multi { " of the LAST cluster" } else { "" }
        ),
        barrier: multi,
        checks: material
            .iter()
            .flat_map(|m| signer_check(profile, &m.new_signer))
            .collect(),
    };
    let new_fps = fp_list(&m0.new_roots);
    let gate3 = Gate {
        min_wait: opts.propagation,
        reason: "final state: verify every proxy trusts only the new root".to_owned(),
        barrier: multi,
        checks: roots_check(profile, new_fps, "only the new root"),
    };
    [gate1, gate2, gate3]
}
