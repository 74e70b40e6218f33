//! Rotation inputs and plan mutations for property tests: random CA topologies (key types,
//! depths, several clusters, self-signed current CAs), random safe Istio profiles, and the
//! ways operators break a plan (drop a phase, swap phases, drop the trigger, reorder root
//! bytes, drop the old root early, shorten the wait, mismatch a key, switch one cluster early),
//! each with the plan-check codes that must catch it.
//!
//! ```
//! use meshtrust::testkit::plans::{self, PlanMutation};
//! use proptest::prelude::*;
//!
//! proptest!(ProptestConfig::with_cases(2), |(case in plans::rotation_case())| {
//!     let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
//!     for m in PlanMutation::all_for(&plan) {
//!         if let Some(bad) = m.apply(&plan) {
//!             let findings = meshtrust::plan::check_plan(&bad, &case.check_options());
//!             prop_assert!(findings.iter().any(|f| m.expected_codes().contains(&f.code)), "{m:?}: {findings:?}");
//!         }
//!     }
//! });
//! ```

use std::time::Duration;

use proptest::prelude::*;
use time::OffsetDateTime;

use super::{CertSpec, Issued, KeyKind, TestKey, TestkitError};
use crate::bundle::Bundle;
use crate::istio::{self, CaSecret, DataPlane, IstioProfile, IstioVersion, SecretForm};
use crate::pem::{self, Label};
use crate::plan::{CheckOptions, ClusterInput, Plan, PlanOptions, RotationKind};

/// A CA made by the factory: a root and the intermediates below it, top down.
#[derive(Debug, Clone)]
pub struct TestCa {
    /// The self-signed root.
    pub root: Issued,
    /// Intermediates, top down; the last one signs (the root signs when there is none).
    pub intermediates: Vec<Issued>,
}

fn intermediate_spec(cluster: &str) -> CertSpec {
    let mut spec = CertSpec::intermediate("Istio", "Intermediate CA");
    spec.subject
        .push((super::NameAttr::Locality, cluster.to_owned()));
    spec
}

fn key_pem(key: &TestKey) -> Vec<u8> {
    pem::encode(&Label::PrivateKey, key.pkcs8_der()).into_bytes()
}

impl TestCa {
    /// A root `O=<org>, CN=Root CA` and a chain of intermediates `O=<org>, CN=Intermediate CA,
    /// L=<cluster>` (Istio's names) with the given keys.
    pub fn new(
        org: &str,
        cluster: &str,
        root_key: &TestKey,
        intermediate_keys: &[TestKey],
    ) -> Result<TestCa, TestkitError> {
        let root = Issued::self_signed(&CertSpec::root(org, "Root CA"), root_key)?;
        let mut ca = TestCa {
            root,
            intermediates: Vec::new(),
        };
        for (i, k) in intermediate_keys.iter().enumerate() {
            let name = if i + 1 == intermediate_keys.len() {
                cluster.to_owned()
            } else {
                format!("{cluster}-level{}", i + 1)
            };
            let next = ca.signer().issue(&intermediate_spec(&name), k)?;
            ca.intermediates.push(next);
        }
        Ok(ca)
    }

    /// Another signing intermediate `L=<cluster>`, a sibling of the signer: issued by the
    /// signer's own issuer (another cluster's intermediate, or the next one of a rotation).
    pub fn issue_sibling(&self, cluster: &str, key: &TestKey) -> Result<Issued, TestkitError> {
        let parent = match self.intermediates.len() {
            0 | 1 => &self.root,
            n => &self.intermediates[n - 2],
        };
        parent.issue(&intermediate_spec(cluster), key)
    }

    /// The signing CA (the last intermediate, or the root).
    pub fn signer(&self) -> &Issued {
        self.intermediates.last().unwrap_or(&self.root)
    }

    /// The `cacerts` of the signing CA: ca-cert, its key, cert-chain (ca-cert up to the root,
    /// as Istio's tools write it) and root-cert.
    pub fn cacerts(&self) -> CaSecret {
        self.cacerts_with(
            self.signer(),
            &self.intermediates[..self.intermediates.len().saturating_sub(1)],
        )
    }

    /// The `cacerts` of another intermediate under this CA's root (another cluster).
    pub fn cacerts_for(&self, other: &Issued) -> CaSecret {
        self.cacerts_with(
            other,
            &self.intermediates[..self.intermediates.len().saturating_sub(1)],
        )
    }

    fn cacerts_with(&self, signer: &Issued, above: &[Issued]) -> CaSecret {
        let mut chain = signer.pem();
        for i in above.iter().rev() {
            chain.push_str(&i.pem());
        }
        chain.push_str(&self.root.pem());
        CaSecret::cacerts(
            signer.pem().as_bytes(),
            &key_pem(signer.key()),
            chain.as_bytes(),
            self.root.pem().as_bytes(),
        )
    }

    /// istiod's self-signed `istio-ca-secret` holding this CA's root.
    pub fn istio_ca_secret(&self) -> CaSecret {
        let root = self.root.pem().into_bytes();
        CaSecret::from_files(
            "istio-ca-secret",
            "istio-system",
            SecretForm::Memory,
            [
                (istio::CA_CERT, root.clone()),
                (istio::CA_KEY, key_pem(self.root.key())),
                (istio::CERT_CHAIN, Vec::new()),
                (istio::KEY, Vec::new()),
                (istio::ROOT_CERT, root),
            ],
        )
    }
}

/// Hands out distinct pooled keys, so that no two CAs of a case share one.
#[derive(Debug, Default)]
struct KeyAllocator {
    used: Vec<(KeyKind, usize)>,
}

impl KeyAllocator {
    fn take(&mut self, wanted: KeyKind) -> TestKey {
        // Fall back to another kind when the pool of the wanted one is used up.
        for kind in
            std::iter::once(wanted).chain([KeyKind::EcP256, KeyKind::EcP384, KeyKind::Ed25519])
        {
            for i in 0..kind.pool_size() {
                if !self.used.contains(&(kind, i)) {
                    self.used.push((kind, i));
                    return TestKey::pooled(kind, i);
                }
            }
        }
        TestKey::pooled(wanted, 0)
    }
}

/// A rotation to plan: inputs, profile, options and the instant.
#[derive(Debug, Clone)]
pub struct RotationCase {
    /// The kind the inputs call for.
    pub kind: RotationKind,
    /// Per-cluster current and new secrets.
    pub inputs: Vec<ClusterInput>,
    /// A profile that allows the rotation (multi-root on, capable ztunnel).
    pub profile: IstioProfile,
    /// Planner options.
    pub options: PlanOptions,
    /// The planning instant (inside the factory's default validity window).
    pub now: OffsetDateTime,
}

impl RotationCase {
    /// The options [`crate::plan::check_plan`] needs for plans of this case.
    pub fn check_options(&self) -> CheckOptions {
        CheckOptions {
            now: self.now,
            margin: self.options.margin,
            waits_known: true,
        }
    }
}

/// The instant test plans are made at: 2026-06-01, inside the factory's validity window.
pub fn test_now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Random Istio profiles in which a root rotation is possible: ISTIO_MULTIROOT_MESH on, any
/// data plane, and a ztunnel that trusts every root of a bundle in ambient mode.
pub fn safe_profile() -> impl Strategy<Value = IstioProfile> {
    (
        prop::sample::select(vec![
            "1.22.0", "1.24.6", "1.26.2", "1.28.0", "1.29.1", "1.30.0",
        ]),
        any::<bool>(),
        prop::sample::select(vec![
            DataPlane::Sidecar,
            DataPlane::Ambient,
            DataPlane::Both,
        ]),
        prop::sample::select(vec!["1.24.6", "1.25.3", "1.26.0", "1.28.0"]),
        1u64..=48,
        prop::sample::select(vec![0.3, 0.5, 0.7]),
    )
        .prop_map(|(v, xds, dp, z, ttl_h, ratio)| IstioProfile {
            istio_version: v.parse().unwrap_or(IstioVersion::NEWEST),
            multiroot: true,
            xds_agent: xds,
            data_plane: dp,
            ztunnel_version: if dp.has_ztunnel() {
                z.parse().ok()
            } else {
                None
            },
            leaf_ttl: Duration::from_secs(ttl_h * 3600),
            grace_ratio: ratio,
        })
}

fn key_kind() -> impl Strategy<Value = KeyKind> {
    prop::sample::select(KeyKind::ALL.to_vec())
}

/// Random rotation inputs of every kind: root rotations, self-signed to plugged-in,
/// intermediate rotations (with and without immediate re-issue) and multi-cluster rotations
/// of two or three clusters; roots and intermediates of any key type; one or two
/// intermediate levels.
pub fn rotation_case() -> impl Strategy<Value = RotationCase> {
    (
        prop::sample::select(vec![
            RotationKind::RootRotation,
            RotationKind::SelfSignedToPluggedIn,
            RotationKind::IntermediateRotation,
            RotationKind::MultiCluster,
        ]),
        key_kind(),
        key_kind(),
        key_kind(),
        key_kind(),
        1usize..=2,
        2usize..=3,
        any::<bool>(),
        safe_profile(),
    )
        .prop_map(
            |(kind, root_a, int_a, root_b, int_b, depth, clusters, reissue, profile)| {
                build_case(
                    kind,
                    [root_a, int_a, root_b, int_b],
                    depth,
                    clusters,
                    reissue,
                    profile,
                )
                .unwrap_or_else(|e| panic!("test material: {e}"))
            },
        )
}

/// Builds one rotation case (the deterministic part of [`rotation_case`]).
pub fn build_case(
    kind: RotationKind,
    kinds: [KeyKind; 4],
    depth: usize,
    clusters: usize,
    reissue_now: bool,
    profile: IstioProfile,
) -> Result<RotationCase, TestkitError> {
    let [root_a, int_a, root_b, int_b] = kinds;
    let mut keys = KeyAllocator::default();
    let inter_keys = |keys: &mut KeyAllocator, kind: KeyKind| -> Vec<TestKey> {
        (0..depth).map(|_| keys.take(kind)).collect()
    };
    let old = TestCa::new(
        "Istio",
        "cluster1",
        &keys.take(root_a),
        &inter_keys(&mut keys, int_a),
    )?;
    let new = TestCa::new(
        "Istio",
        "cluster1",
        &keys.take(root_b),
        &inter_keys(&mut keys, int_b),
    )?;
    let inputs = match kind {
        RotationKind::RootRotation => vec![ClusterInput::single(old.cacerts(), new.cacerts())],
        RotationKind::SelfSignedToPluggedIn => {
            vec![ClusterInput::single(old.istio_ca_secret(), new.cacerts())]
        }
        RotationKind::IntermediateRotation => {
            let next = old.issue_sibling("cluster1-next", &keys.take(int_b))?;
            vec![ClusterInput::single(old.cacerts(), old.cacerts_for(&next))]
        }
        RotationKind::MultiCluster => {
            let mut v = Vec::new();
            for c in 1..=clusters {
                let name = format!("cluster{c}");
                let cur = if c == 1 {
                    old.cacerts()
                } else {
                    old.cacerts_for(&old.issue_sibling(&name, &keys.take(int_a))?)
                };
                let nxt = if c == 1 {
                    new.cacerts()
                } else {
                    new.cacerts_for(&new.issue_sibling(&name, &keys.take(int_b))?)
                };
                v.push(ClusterInput {
                    name,
                    current: cur,
                    new: nxt,
                });
            }
            v
        }
    };
    Ok(RotationCase {
        kind,
        inputs,
        profile,
        options: PlanOptions {
            reissue_now: kind == RotationKind::IntermediateRotation && reissue_now,
            ..PlanOptions::default()
        },
        now: test_now(),
    })
}

/// A way to break a plan, as operators do by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
            if !plan.profile.istio_version.root_change_by_sets() {
                v.extend([PlanMutation::ReorderRoots(1), PlanMutation::ReorderRoots(2)]);
            }
            if plan.clusters.len() > 1 {
                v.push(PlanMutation::SwitchOneClusterEarly);
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
        }
    }

    /// The mutated plan, or `None` when the mutation does not apply to this plan.
    pub fn apply(&self, plan: &Plan) -> Option<Plan> {
        let mut p = plan.clone();
        let n = p.phases.len();
        let trigger = p.phases.iter().position(|ph| ph.trigger);
        match *self {
            PlanMutation::DropPhase(k) => {
                (k >= 1 && k < n).then_some(())?;
                p.phases.remove(k);
            }
            PlanMutation::SwapPhases(k) => {
                (k >= 1 && k + 1 < n).then_some(())?;
                p.phases.swap(k, k + 1);
            }
            PlanMutation::DropTrigger => {
                let t = trigger?;
                for ci in 0..p.phases[t].clusters.len() {
                    let prev = p.phases[t - 1]
                        .clusters
                        .get(ci)?
                        .secret
                        .file(istio::ROOT_CERT)?
                        .to_vec();
                    p.phases[t].clusters[ci]
                        .secret
                        .set_file(istio::ROOT_CERT, prev);
                }
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
                for ci in 0..p.phases[t].clusters.len() {
                    let fin = p.phases[last]
                        .clusters
                        .get(ci)?
                        .secret
                        .file(istio::ROOT_CERT)?
                        .to_vec();
                    p.phases[t].clusters[ci]
                        .secret
                        .set_file(istio::ROOT_CERT, fin);
                }
            }
            PlanMutation::ShortenRemovalWait => {
                let t = trigger?;
                let gate = p.phases[t].gate.as_mut()?;
                gate.min_wait = plan.profile.leaf_ttl / 2;
            }
            PlanMutation::MismatchKey(k) => {
                (k >= 1 && k < n).then_some(())?;
                let other = TestKey::pooled(KeyKind::EcP384, KeyKind::EcP384.pool_size() - 1);
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
        }
        Some(p)
    }
}
