//! plan.json: the machine-readable plan. Its keys are a contract for scripts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::runbook::RunbookOptions;
use super::{Action, Gate, Plan, RotationKind};
use crate::cert::Fingerprint;
use crate::istio::IstioProfile;

/// The machine-readable plan (plan.json). Keys are a contract for scripts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PlanJson {
    /// Format version (1).
    pub format: u32,
    /// Rotation kind.
    pub kind: RotationKind,
    /// The mesh the plan was made for.
    pub profile: IstioProfile,
    /// Cluster names.
    pub clusters: Vec<String>,
    /// Roots retired by the rotation.
    pub old_roots: Vec<Fingerprint>,
    /// Roots trusted at the end.
    pub new_roots: Vec<Fingerprint>,
    /// The phases, in order.
    pub phases: Vec<PhaseJson>,
    /// The kube context of each cluster (`--context`), when given.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<String, String>,
}

/// One phase in plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PhaseJson {
    /// Directory name.
    pub name: String,
    /// What it does.
    pub title: String,
    /// Whether the root bytes change on purpose to re-issue leaves.
    pub trigger: bool,
    /// Every file of the phase (path relative to the phase directory) and its SHA-256.
    pub files: BTreeMap<String, Fingerprint>,
    /// Union of the trust sets of the phase's clusters (SHA-256 fingerprints, sorted).
    pub trust_set: Vec<Fingerprint>,
    /// The signing CA (single-cluster plans; null for multi-cluster, see `clusters`).
    pub signer: Option<Fingerprint>,
    /// Per cluster: trust set and signer.
    pub clusters: Vec<ClusterJson>,
    /// What to do to enter the phase, in order.
    pub actions: Vec<ActionJson>,
    /// What to wait for and verify before the next phase.
    pub gate: Option<Gate>,
}

/// One cluster of a phase in plan.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ClusterJson {
    /// Cluster name.
    pub cluster: String,
    /// Its trust set.
    pub trust_set: Vec<Fingerprint>,
    /// Its signer.
    pub signer: Option<Fingerprint>,
}

/// An action with its command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ActionJson {
    /// The action.
    #[serde(flatten)]
    pub action: Action,
    /// The command to run from the phase directory.
    pub command: String,
}

/// plan.json for a plan.
pub fn render_plan_json(plan: &Plan) -> String {
    render_plan_json_with(plan, &RunbookOptions::default())
}

/// plan.json for a plan whose commands carry each cluster's `--context` (recorded in
/// `contexts`).
pub fn render_plan_json_with(plan: &Plan, opts: &RunbookOptions) -> String {
    let multi = plan.is_multi_cluster();
    let phases = plan
        .phases
        .iter()
        .map(|p| {
            let mut files = BTreeMap::new();
            let mut union: Vec<Fingerprint> = Vec::new();
            let mut clusters = Vec::new();
            for c in &p.clusters {
                let prefix = if multi {
                    format!("{}/", c.cluster)
                } else {
                    String::new()
                };
                for name in c.secret.file_names() {
                    files.insert(
                        format!("{prefix}{name}"),
                        Fingerprint::of(c.secret.file(name).unwrap_or_default()),
                    );
                }
                files.insert(
                    format!("{prefix}secret.yaml"),
                    Fingerprint::of(c.secret.to_manifest_yaml().as_bytes()),
                );
                let ts: Vec<Fingerprint> = c
                    .secret
                    .root_bundle()
                    .map(|b| b.trust_set().fingerprints().copied().collect())
                    .unwrap_or_default();
                for fp in &ts {
                    if !union.contains(fp) {
                        union.push(*fp);
                    }
                }
                clusters.push(ClusterJson {
                    cluster: c.cluster.clone(),
                    trust_set: ts,
                    signer: c.secret.ca_cert().ok().map(|s| s.fingerprint()),
                });
            }
            union.sort();
            PhaseJson {
                name: p.name.clone(),
                title: p.title.clone(),
                trigger: p.trigger,
                files,
                trust_set: union,
                signer: if multi {
                    None
                } else {
                    clusters.first().and_then(|c| c.signer)
                },
                clusters,
                actions: p
                    .actions
                    .iter()
                    .map(|a| ActionJson {
                        action: a.clone(),
                        command: a.command_in(opts.context(plan, a.cluster())),
                    })
                    .collect(),
                gate: p.gate.clone(),
            }
        })
        .collect();
    let json = PlanJson {
        format: 1,
        kind: plan.kind,
        profile: plan.profile.clone(),
        clusters: plan.clusters.clone(),
        old_roots: plan.old_roots.clone(),
        new_roots: plan.new_roots.clone(),
        phases,
        contexts: opts.contexts.clone(),
    };
    let mut s = serde_json::to_string_pretty(&json).unwrap_or_default();
    s.push('\n');
    s
}
