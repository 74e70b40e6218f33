//! [`PlanMutation`]: the ways operators break a plan, each with the plan-check codes that
//! must catch it.

use super::key_pem;
use crate::bundle::Bundle;
use crate::istio;
use crate::plan::{Plan, RotationKind};
use crate::testkit::{KeyType, TestKey, pool_size};

/// A way to break a plan, as operators do by hand.
///
/// ```
/// use meshtrust::testkit::plans::{self, PlanMutation};
/// let case = plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// let m = PlanMutation::DropPhase(1);                  // skip "trust both"
/// assert!(PlanMutation::all_for(&plan).contains(&m));
/// let findings = meshtrust::plan::check_plan(&m.apply(&plan).unwrap(), &case.check_options());
/// assert!(findings.iter().any(|f| m.expected_codes().contains(&f.code.as_str())));
/// assert!(PlanMutation::DropPhase(9).apply(&plan).is_none());
/// # Ok::<(), meshtrust::plan::PlanError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, arbitrary::Arbitrary)]
#[non_exhaustive]
pub enum PlanMutation {
    /// Remove phase `k` (k >= 1).
    DropPhase(usize),
    /// Swap phases `k` and `k + 1` (k >= 1).
    SwapPhases(usize),
    /// Give the trigger phase the previous phase's root bytes (switch without re-issue).
    DropTrigger,
    /// Reverse the order of the certificate blocks in phase `k`'s root file.
    ReorderRoots(usize),
    /// Drop the old root in the phase that switches the signer.
    DropOldRootEarly,
    /// Halve the wait between the signer switch and the old root's removal, below a leaf TTL.
    ShortenRemovalWait,
    /// Replace phase `k`'s ca-key.pem with a key of another CA.
    MismatchKey(usize),
    /// Multi-cluster: the first cluster switches signer while the others only begin to trust.
    SwitchOneClusterEarly,
    /// Ambient: drop every ztunnel restart (a ztunnel that keeps the roots it read at start
    /// then cannot reach istiod once istiod serves with the new signer).
    DropZtunnelRestarts,
}

fn is_root_plan(plan: &Plan) -> bool {
    plan.kind != RotationKind::IntermediateRotation && plan.phases.len() == 4
}

impl PlanMutation {
    /// Every mutation that breaks `plan` (mutations that would leave a plan of this kind safe,
    /// such as reordering a one-root file, are not listed).
    pub fn all_for(plan: &Plan) -> Vec<PlanMutation> {
        let mut v = Vec::new();
        let n = plan.phases.len();
        if is_root_plan(plan) {
            v.extend([
                PlanMutation::DropPhase(1),
                PlanMutation::DropPhase(2),
                PlanMutation::DropPhase(3),
                PlanMutation::SwapPhases(1),
                PlanMutation::SwapPhases(2),
                PlanMutation::DropTrigger,
                PlanMutation::DropOldRootEarly,
                PlanMutation::ShortenRemovalWait,
            ]);
            if istio::behaviour::root_rule(plan.profile.istio_version)
                == istio::behaviour::RootRule::ByteContainment
            {
                v.extend([PlanMutation::ReorderRoots(1), PlanMutation::ReorderRoots(2)]);
            }
            if plan.clusters.len() > 1 {
                v.push(PlanMutation::SwitchOneClusterEarly);
            }
            let profile = &plan.profile;
            if profile.data_plane.has_ztunnel()
                && !istio::behaviour::ztunnel_watches_ca_root(profile.ztunnel())
            {
                v.push(PlanMutation::DropZtunnelRestarts);
            }
        } else if n == 2 {
            v.push(PlanMutation::DropPhase(1));
        }
        v.extend((1..n).map(PlanMutation::MismatchKey));
        v
    }

    /// The plan-check codes of which at least one must be reported for the mutated plan.
    pub fn expected_codes(&self) -> &'static [&'static str] {
        match self {
            PlanMutation::DropPhase(1) => &["signer-not-trusted", "cross-matrix", "too-few-phases"],
            PlanMutation::DropPhase(2) => &[
                "early-root-removal",
                "cross-matrix",
                "trigger-changes-trust",
            ],
            PlanMutation::DropPhase(_) => &["final-trust", "no-rotation"],
            PlanMutation::SwapPhases(1) => &["signer-not-trusted", "cross-matrix"],
            PlanMutation::SwapPhases(_) => &["early-root-removal", "cross-matrix", "final-trust"],
            PlanMutation::DropTrigger => &["missing-trigger"],
            PlanMutation::ReorderRoots(_) => &["root-containment"],
            PlanMutation::DropOldRootEarly => &[
                "early-root-removal",
                "cross-matrix",
                "trigger-changes-trust",
            ],
            PlanMutation::ShortenRemovalWait => &["early-root-removal"],
            PlanMutation::MismatchKey(_) => &["ca-key-mismatch"],
            PlanMutation::SwitchOneClusterEarly => &["signer-not-trusted"],
            PlanMutation::DropZtunnelRestarts => &["ztunnel-ca-channel"],
        }
    }

    /// The mutated plan, or `None` when the mutation does not apply to this plan.
    pub fn apply(&self, plan: &Plan) -> Option<Plan> {
        // Only the mutations that break this kind of plan apply (e.g. shortening a wait means
        // nothing in an intermediate rotation, where no root is removed).
        if !Self::all_for(plan).contains(self) {
            return None;
        }
        let mut p = plan.clone();
        let n = p.phases.len();
        let trigger = p.phases.iter().position(|ph| ph.trigger);
        match *self {
            PlanMutation::DropPhase(k) => {
                (k >= 1 && k < n).then_some(())?;
                p.phases.remove(k);
            }
            PlanMutation::SwapPhases(k) => {
                (k >= 1 && k < n.saturating_sub(1)).then_some(())?;
                p.phases.swap(k, k + 1);
            }
            PlanMutation::DropTrigger => {
                let t = trigger.filter(|&t| t >= 1)?;
                copy_root_file(&mut p, t - 1, t)?;
                p.phases[t].trigger = false;
            }
            PlanMutation::ReorderRoots(k) => {
                let phase = p.phases.get_mut(k)?;
                let mut changed = false;
                for c in &mut phase.clusters {
                    let b = Bundle::parse(c.secret.file(istio::ROOT_CERT)?).ok()?;
                    let texts: Vec<&[u8]> =
                        (0..b.len()).rev().filter_map(|i| b.entry_text(i)).collect();
                    let mut out = Vec::new();
                    for t in texts {
                        out.extend_from_slice(t);
                        if !out.ends_with(b"\n") {
                            out.push(b'\n');
                        }
                    }
                    changed |= out != b.bytes();
                    c.secret.set_file(istio::ROOT_CERT, out);
                }
                changed.then_some(())?;
            }
            PlanMutation::DropOldRootEarly => {
                let t = trigger?;
                let last = n - 1;
                (t < last).then_some(())?;
                copy_root_file(&mut p, last, t)?;
            }
            PlanMutation::ShortenRemovalWait => {
                let t = trigger?;
                let gate = p.phases[t].gate.as_mut()?;
                gate.min_wait = plan.profile.leaf_ttl / 2;
            }
            PlanMutation::MismatchKey(k) => {
                (k >= 1 && k < n).then_some(())?;
                let other = TestKey::pooled(KeyType::EcP384, pool_size(KeyType::EcP384) - 1);
                for c in &mut p.phases[k].clusters {
                    c.secret.set_file(istio::CA_KEY, key_pem(&other));
                }
            }
            PlanMutation::SwitchOneClusterEarly => {
                let t = trigger?;
                (t >= 2 && p.clusters.len() > 1).then_some(())?;
                let early = p.phases[t].clusters.first()?.secret.clone();
                p.phases[t - 1].clusters.first_mut()?.secret = early;
            }
            PlanMutation::DropZtunnelRestarts => {
                let before = p.phases.iter().map(|ph| ph.actions.len()).sum::<usize>();
                for ph in &mut p.phases {
                    ph.actions
                        .retain(|a| !matches!(a, crate::plan::Action::RestartZtunnel { .. }));
                }
                let after = p.phases.iter().map(|ph| ph.actions.len()).sum::<usize>();
                (after < before).then_some(())?;
            }
        }
        Some(p)
    }
}

/// Gives every cluster of phase `to` the root-cert.pem of phase `from`.
fn copy_root_file(p: &mut Plan, from: usize, to: usize) -> Option<()> {
    for ci in 0..p.phases.get(to)?.clusters.len() {
        let bytes = p
            .phases
            .get(from)?
            .clusters
            .get(ci)?
            .secret
            .file(istio::ROOT_CERT)?
            .to_vec();
        p.phases[to].clusters[ci]
            .secret
            .set_file(istio::ROOT_CERT, bytes);
    }
    Some(())
}
