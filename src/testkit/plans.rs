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
//!             prop_assert!(findings.iter().any(|f| m.expected_codes().contains(&f.code.as_str())), "{m:?}: {findings:?}");
//!         }
//!     }
//! });
//! ```

use std::time::Duration;

use proptest::prelude::*;
use time::OffsetDateTime;

use super::{CertSpec, Issued, KeyAllocator, KeyType, TestKey, TestkitError, pool_size};
use crate::bundle::Bundle;
use crate::istio::{self, CaSecret, DataPlane, IstioProfile, IstioVersion};
use crate::pem::{self, Label};
use crate::plan::{CheckOptions, ClusterInput, Plan, PlanOptions, RotationKind};

/// A CA made by the factory: a root and the intermediates below it, top down.
///
/// ```
/// use meshtrust::testkit::{plans::TestCa, KeyType, TestKey};
/// let ca = TestCa::new("Istio", "cluster1", &TestKey::pooled(KeyType::EcP256, 0), &[TestKey::pooled(KeyType::EcP256, 1)])?;
/// let cacerts = ca.cacerts();                       // ca-cert, ca-key, cert-chain, root-cert
/// let findings = meshtrust::istio::check(&cacerts, &Default::default(), meshtrust::testkit::plans::test_now());
/// assert!(!meshtrust::istio::has_errors(&findings));
/// let other = ca.issue_sibling("cluster2", &TestKey::pooled(KeyType::EcP256, 2))?;
/// assert_eq!(ca.cacerts_for(&other).root_bundle()?.trust_set(), cacerts.root_bundle()?.trust_set());
/// assert_eq!(ca.istio_ca_secret().name, "istio-ca-secret");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
        CaSecret::istio_ca_secret(self.root.pem().as_bytes(), &key_pem(self.root.key()))
    }
}

/// A rotation to plan: inputs, profile, options and the instant ([`rotation_case`] draws
/// them, [`build_case`] makes one, [`istio_samples_case`] is Istio's samples).
///
/// ```
/// let case = meshtrust::testkit::plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// let findings = meshtrust::plan::check_plan(&plan, &case.check_options());
/// assert!(!meshtrust::plan::has_errors(&findings));
/// # Ok::<(), meshtrust::plan::PlanError>(())
/// ```
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
///
/// ```
/// assert_eq!(meshtrust::testkit::plans::test_now().year(), 2026);
/// ```
pub fn test_now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_780_272_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Random Istio profiles in which a root rotation is possible: ISTIO_MULTIROOT_MESH on, any
/// data plane, and a ztunnel that trusts every root of a bundle in ambient mode.
///
/// ```
/// use meshtrust::testkit::plans::{self, ProfileExpectation};
/// use meshtrust::plan::RotationKind;
/// use proptest::prelude::*;
/// proptest!(ProptestConfig::with_cases(16), |(profile in plans::safe_profile())| {
///     let e = plans::profile_expectation(&profile, RotationKind::RootRotation, false);
///     prop_assert_eq!(e, ProfileExpectation::Plannable);
/// });
/// ```
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
        prop::sample::select(vec!["1.24.6", "1.25.3", "1.26.0", "1.28.0", "1.28.6"]),
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

/// ztunnel releases of every multi-root behaviour: first root only (1.24.0, 1.25.0), last
/// root only (1.24.4, 1.25.1), every root (1.24.6, 1.25.3, 1.26.0, 1.28.0).
const ZTUNNEL_VERSIONS: [&str; 8] = [
    "1.24.0", "1.24.4", "1.24.6", "1.25.0", "1.25.1", "1.25.3", "1.26.0", "1.28.0",
];

/// Random Istio profiles of every kind, the unsafe and the invalid ones included, for tests
/// that expect refusals: ISTIO_MULTIROOT_MESH on or off, every data plane, ztunnel releases
/// that trust only the first or only the last root of a bundle (or default to istiod's
/// release), leaf TTLs from one hour to two days, and now and then a TTL or grace ratio
/// Istio refuses (zero, over 90 days, a ratio of 1 or NaN). [`profile_expectation`] says what
/// the planner must do with each.
///
/// ```
/// use meshtrust::testkit::plans::{self, ProfileExpectation};
/// use meshtrust::plan::RotationKind;
/// use proptest::prelude::*;
/// proptest!(ProptestConfig::with_cases(16), |(profile in plans::any_profile())| {
///     if plans::profile_expectation(&profile, RotationKind::RootRotation, false) == ProfileExpectation::Plannable {
///         prop_assert!(profile.multiroot && profile.validate().is_ok());
///     }
/// });
/// ```
pub fn any_profile() -> impl Strategy<Value = IstioProfile> {
    (
        prop::sample::select(vec![
            "1.22.0", "1.24.3", "1.24.6", "1.25.1", "1.26.2", "1.27.0", "1.28.0", "1.29.1",
            "1.30.0",
        ]),
        prop_oneof![3 => Just(true), 1 => Just(false)],
        any::<bool>(),
        prop::sample::select(vec![
            DataPlane::Sidecar,
            DataPlane::Ambient,
            DataPlane::Both,
        ]),
        prop_oneof![1 => Just(None), 3 => prop::sample::select(ZTUNNEL_VERSIONS.to_vec()).prop_map(Some)],
        prop_oneof![
            20 => (1u64..=48).prop_map(|h| Duration::from_secs(h * 3600)),
            1 => Just(Duration::ZERO),
            1 => Just(Duration::from_secs(91 * 24 * 3600)),
        ],
        prop_oneof![
            20 => prop::sample::select(vec![0.3, 0.5, 0.7]),
            1 => Just(1.0),
            1 => Just(f64::NAN),
        ],
    )
        .prop_map(|(v, multiroot, xds, dp, z, leaf_ttl, grace_ratio)| IstioProfile {
            istio_version: v.parse().unwrap_or(IstioVersion::NEWEST),
            multiroot,
            xds_agent: xds,
            data_plane: dp,
            ztunnel_version: z.and_then(|z| z.parse().ok()),
            leaf_ttl,
            grace_ratio,
        })
}

/// What the planner must do with a profile, from Istio's documented behaviour
/// ([`profile_expectation`] has an example).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileExpectation {
    /// A plan can be made.
    Plannable,
    /// The planner refuses with exactly these error codes.
    Refused(Vec<&'static str>),
    /// The profile itself is invalid ([`IstioProfile::validate`]): a
    /// [`crate::plan::PlanError::Profile`].
    Invalid,
}

/// The expectation for a rotation of `kind` under `profile`: when the root file changes (any
/// root rotation, or an intermediate rotation with immediate re-issue), istiod must have
/// ISTIO_MULTIROOT_MESH on (`multiroot-off`) and ztunnel, when present, must trust every root
/// of a bundle (`ztunnel-multiroot-unsupported`).
///
/// ```
/// use meshtrust::testkit::plans::{profile_expectation, ProfileExpectation};
/// use meshtrust::istio::IstioProfile;
/// use meshtrust::plan::RotationKind;
/// let off = IstioProfile::default(); // ISTIO_MULTIROOT_MESH is off by default
/// assert_eq!(profile_expectation(&off, RotationKind::RootRotation, false), ProfileExpectation::Refused(vec!["multiroot-off"]));
/// assert_eq!(profile_expectation(&off, RotationKind::IntermediateRotation, false), ProfileExpectation::Plannable);
/// ```
pub fn profile_expectation(
    profile: &IstioProfile,
    kind: RotationKind,
    reissue_now: bool,
) -> ProfileExpectation {
    if profile.validate().is_err() {
        return ProfileExpectation::Invalid;
    }
    // A cross-signed rotation never holds two roots and restarts istiod for its root change.
    let changes_roots = !matches!(
        kind,
        RotationKind::IntermediateRotation | RotationKind::CrossSigned
    ) || reissue_now;
    // The planner's own gates (one definition, on the Istio model).
    let codes: Vec<&'static str> = crate::plan::profile_refusals(profile, changes_roots)
        .into_iter()
        .map(|(code, _)| code.as_str())
        .collect();
    if codes.is_empty() {
        ProfileExpectation::Plannable
    } else {
        ProfileExpectation::Refused(codes)
    }
}

/// What the planner must do with a whole case: [`profile_expectation`], and when the profile
/// alone is plannable, the gate on what an older ztunnel presents
/// ([`istio::behaviour::ztunnel_presents_whole_chain`]): in a mesh with ztunnel, istiod before
/// 1.24.4/1.25.1/1.26.0 with ztunnel before 1.24.6/1.25.3/1.26.0 presents only the first
/// certificate of cert-chain.pem, so a chain of two or more CAs below the root (a deep chain,
/// or IB + B' in a cross-signed rotation) is refused with `ztunnel-chain-truncated`.
///
/// ```
/// use meshtrust::testkit::plans::{self, ProfileExpectation};
/// let case = plans::istio_samples_case();
/// assert_eq!(plans::case_expectation(&case), ProfileExpectation::Plannable);
/// ```
pub fn case_expectation(case: &RotationCase) -> ProfileExpectation {
    let e = profile_expectation(&case.profile, case.kind, case.options.reissue_now);
    if e != ProfileExpectation::Plannable {
        return e;
    }
    let p = &case.profile;
    let cas_below_root = |s: &CaSecret| {
        s.cert_chain().map_or(0, |b| {
            b.certificates()
                .filter(|c| c.role() != crate::cert::Role::Root)
                .count()
        })
    };
    let deep = case.kind == RotationKind::CrossSigned
        || case
            .inputs
            .iter()
            .flat_map(|c| [&c.current, &c.new])
            .any(|s| cas_below_root(s) > 1);
    let truncates = p.data_plane.has_ztunnel()
        && !istio::behaviour::ztunnel_presents_whole_chain(p.istio_version, p.ztunnel());
    if deep && truncates {
        ProfileExpectation::Refused(vec!["ztunnel-chain-truncated"])
    } else {
        e
    }
}

fn key_kind() -> impl Strategy<Value = KeyType> {
    prop::sample::select(KeyType::ALL.to_vec())
}

/// Random rotation inputs of every kind: root rotations, self-signed to plugged-in,
/// intermediate rotations (with and without immediate re-issue) and multi-cluster rotations
/// of two or three clusters; roots and intermediates of any key type; one or two
/// intermediate levels; profiles from [`safe_profile`]. (The module docs have an example.)
pub fn rotation_case() -> impl Strategy<Value = RotationCase> {
    rotation_case_with(safe_profile())
}

/// [`rotation_case`] with profiles from `profiles` (e.g. [`any_profile`], to test refusals
/// with [`profile_expectation`]).
///
/// ```
/// use meshtrust::testkit::plans::{self, ProfileExpectation};
/// use proptest::prelude::*;
/// proptest!(ProptestConfig::with_cases(2), |(case in plans::rotation_case_with(plans::any_profile()))| {
///     let result = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now);
///     let expected = plans::case_expectation(&case);
///     prop_assert_eq!(result.is_ok(), expected == ProfileExpectation::Plannable);
/// });
/// ```
pub fn rotation_case_with(
    profiles: impl Strategy<Value = IstioProfile>,
) -> impl Strategy<Value = RotationCase> {
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
        profiles,
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

/// Builds one rotation case (the deterministic part of [`rotation_case`]): `kinds` are the
/// key kinds of root A, intermediate A, root B and intermediate B; `depth` intermediate
/// levels; `clusters` for a multi-cluster rotation.
///
/// ```
/// use meshtrust::testkit::{plans, KeyType};
/// use meshtrust::plan::RotationKind;
/// let profile = meshtrust::istio::IstioProfile { multiroot: true, xds_agent: true, ..Default::default() };
/// let case = plans::build_case(RotationKind::MultiCluster, [KeyType::EcP256; 4], 1, 3, false, profile)?;
/// assert_eq!(case.inputs.len(), 3);
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
/// assert_eq!(plan.kind, RotationKind::MultiCluster);
/// # Ok::<(), meshtrust::testkit::TestkitError>(())
/// ```
pub fn build_case(
    kind: RotationKind,
    kinds: [KeyType; 4],
    depth: usize,
    clusters: usize,
    reissue_now: bool,
    profile: IstioProfile,
) -> Result<RotationCase, TestkitError> {
    let [root_a, int_a, root_b, int_b] = kinds;
    let mut keys = KeyAllocator::new();
    let inter_keys = |keys: &mut KeyAllocator, kind: KeyType| -> Vec<TestKey> {
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
        // A cross-signed case also needs `options.cross_signed` (B'); the strategies do not draw it.
        RotationKind::RootRotation | RotationKind::CrossSigned => {
            vec![ClusterInput::single(old.cacerts(), new.cacerts())]
        }
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

/// Istio's `samples/certs` (embedded when the `testkit` feature is on) as a root rotation
/// A -> B: current = `ca-cert.pem`, `ca-key.pem`, `cert-chain.pem`, `root-cert.pem`; new =
/// the `-alt` files and `root-cert-alt.pem`; a profile with ISTIO_MULTIROOT_MESH and
/// PROXY_CONFIG_XDS_AGENT on; planned at [`test_now`]. No key is generated: a ready-made
/// plan for examples and quick tests.
///
/// ```
/// let case = meshtrust::testkit::plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// assert_eq!(plan.phases.len(), 4);
/// assert!(!meshtrust::plan::has_errors(&meshtrust::plan::check_plan(&plan, &case.check_options())));
/// # Ok::<(), meshtrust::plan::PlanError>(())
/// ```
pub fn istio_samples_case() -> RotationCase {
    macro_rules! sample {
        ($f:literal) => {
            include_bytes!(concat!("../../tests/fixtures/istio-samples/", $f)).as_slice()
        };
    }
    let current = CaSecret::cacerts(
        sample!("ca-cert.pem"),
        sample!("ca-key.pem"),
        sample!("cert-chain.pem"),
        sample!("root-cert.pem"),
    );
    let new = CaSecret::cacerts(
        sample!("ca-cert-alt.pem"),
        sample!("ca-key-alt.pem"),
        sample!("cert-chain-alt.pem"),
        sample!("root-cert-alt.pem"),
    );
    RotationCase {
        kind: RotationKind::RootRotation,
        inputs: vec![ClusterInput::single(current, new)],
        profile: IstioProfile {
            multiroot: true,
            xds_agent: true,
            ..IstioProfile::default()
        },
        options: PlanOptions::default(),
        now: test_now(),
    }
}

/// Istio releases a [`PlanScenario`] draws from.
const ISTIO_VERSIONS: [&str; 9] = [
    "1.22.0", "1.24.3", "1.24.6", "1.25.1", "1.26.2", "1.27.0", "1.28.0", "1.29.1", "1.30.0",
];

/// A whole planner scenario for structure-aware fuzzing: rotation kind, key types, depth,
/// clusters, a profile (mostly well-formed, now and then any [`IstioProfile`] at all) and
/// up to three plan mutations. [`PlanScenario::run`] plans it and checks everything that
/// must hold; [`super::fuzz::plan_scenario`] feeds it from raw fuzzer bytes.
///
/// ```
/// use arbitrary::{Arbitrary, Unstructured};
/// use meshtrust::testkit::plans::PlanScenario;
/// let s = PlanScenario::arbitrary(&mut Unstructured::new(&[7; 64])).unwrap();
/// s.run().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct PlanScenario {
    /// The rotation kind the inputs are made for.
    pub kind: RotationKind,
    /// Key kinds of root A, intermediate A, root B, intermediate B.
    pub keys: [KeyType; 4],
    /// Intermediate levels (1 or 2).
    pub depth: usize,
    /// Clusters of a multi-cluster rotation (2 or 3).
    pub clusters: usize,
    /// Intermediate rotation with immediate re-issue.
    pub reissue_now: bool,
    /// The mesh.
    pub profile: IstioProfile,
    /// Mutations to apply, one at a time, to the emitted plan.
    pub mutations: Vec<PlanMutation>,
    /// Proxies of the simulated mesh (2 to 16).
    pub workloads: usize,
    /// Seed of the simulation.
    pub seed: u64,
}

impl<'a> arbitrary::Arbitrary<'a> for PlanScenario {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let kind = u.arbitrary()?;
        let keys = [
            u.arbitrary()?,
            u.arbitrary()?,
            u.arbitrary()?,
            u.arbitrary()?,
        ];
        let depth = u.int_in_range(1..=2)?;
        let clusters = u.int_in_range(2..=3)?;
        let reissue_now = u.arbitrary()?;
        let profile = if u.ratio(1, 8)? {
            u.arbitrary()?
        } else {
            let z: Option<&&str> = if u.arbitrary()? {
                Some(u.choose(&ZTUNNEL_VERSIONS)?)
            } else {
                None
            };
            IstioProfile {
                istio_version: u
                    .choose(&ISTIO_VERSIONS)?
                    .parse()
                    .unwrap_or(IstioVersion::NEWEST),
                multiroot: u.ratio(3, 4)?,
                xds_agent: u.arbitrary()?,
                data_plane: u.arbitrary()?,
                ztunnel_version: z.and_then(|z| z.parse().ok()),
                leaf_ttl: Duration::from_secs(u64::from(u.int_in_range(1u8..=48)?) * 3600),
                grace_ratio: *u.choose(&[0.3, 0.5, 0.7])?,
            }
        };
        let mut mutations = Vec::new();
        for _ in 0..u.int_in_range(0..=3)? {
            let k = u.int_in_range(0usize..=4)?;
            mutations.push(match u.int_in_range(0u8..=8)? {
                0 => PlanMutation::DropPhase(k),
                1 => PlanMutation::SwapPhases(k),
                2 => PlanMutation::DropTrigger,
                3 => PlanMutation::ReorderRoots(k),
                4 => PlanMutation::DropOldRootEarly,
                5 => PlanMutation::ShortenRemovalWait,
                6 => PlanMutation::MismatchKey(k),
                7 => PlanMutation::SwitchOneClusterEarly,
                _ => PlanMutation::DropZtunnelRestarts,
            });
        }
        Ok(PlanScenario {
            kind,
            keys,
            depth,
            clusters,
            reissue_now,
            profile,
            mutations,
            workloads: u.int_in_range(2..=16)?,
            seed: u.arbitrary()?,
        })
    }
}

/// What went wrong in a [`PlanScenario`].
///
/// ```
/// use meshtrust::testkit::plans::{PlanMutation, ScenarioFailure};
/// let f = ScenarioFailure::MutationMissed { mutation: PlanMutation::DropTrigger, findings: vec![] };
/// assert!(f.to_string().starts_with("DropTrigger is not caught with [\"missing-trigger\"]"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScenarioFailure {
    /// The test material could not be built (a testkit defect).
    #[error("test material: {0}")]
    Material(#[from] TestkitError),
    /// The planner did not do what the profile calls for.
    #[error("expected {expected:?}; the planner {}", match .got { Some(e) => format!("said: {e}"), None => "made a plan".to_owned() })]
    Planner {
        /// What [`profile_expectation`] says.
        expected: ProfileExpectation,
        /// The planner's error (None: it made a plan).
        got: Option<crate::plan::PlanError>,
    },
    /// The planner inferred another kind than the inputs were made for.
    #[error("inputs made for {expected}, the planner made a {got} plan")]
    Kind {
        /// The scenario's kind.
        expected: RotationKind,
        /// The plan's kind.
        got: RotationKind,
    },
    /// An emitted plan breaks an invariant.
    #[error("the emitted plan breaks an invariant: {0}")]
    Invariant(#[from] super::invariants::Violation),
    /// A mutation the plan checks call safe breaks traffic (or does not run as written) in
    /// the simulated mesh.
    #[error("{mutation:?}: the plan checks find nothing, but the simulation does: {violation}")]
    CheckMissedOutage {
        /// The mutation.
        mutation: PlanMutation,
        /// What the simulation saw.
        violation: super::invariants::Violation,
    },
    /// A mutation that breaks the plan is not reported with one of its codes.
    #[error("{mutation:?} is not caught with {:?}; findings: {findings:?}", .mutation.expected_codes())]
    MutationMissed {
        /// The mutation.
        mutation: PlanMutation,
        /// What the checks reported.
        findings: Vec<crate::finding::Finding>,
    },
}

/// What [`PlanScenario::run`] saw.
///
/// ```
/// use arbitrary::{Arbitrary, Unstructured};
/// let s = meshtrust::testkit::plans::PlanScenario::arbitrary(&mut Unstructured::new(&[0; 32])).unwrap();
/// let report = s.run().unwrap();
/// assert!(report.mutations_caught + report.mutations_unjudged <= s.mutations.len());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScenarioReport {
    /// A plan was made (else the refusal was the expected one).
    pub planned: bool,
    /// Mutations that applied and were caught.
    pub mutations_caught: usize,
    /// Mutations that applied but are not known to break this plan (only checked not to
    /// panic).
    pub mutations_unjudged: usize,
}

impl PlanScenario {
    /// The rotation case (keys from the pool).
    pub fn case(&self) -> Result<RotationCase, TestkitError> {
        // Scenarios draw no cross-signed certificate (B'): a drawn cross-signed kind runs as
        // the root rotation of the same inputs.
        let kind = match self.kind {
            RotationKind::CrossSigned => RotationKind::RootRotation,
            k => k,
        };
        build_case(
            kind,
            self.keys,
            self.depth.clamp(1, 2),
            self.clusters.clamp(2, 3),
            self.reissue_now,
            self.profile.clone(),
        )
    }

    /// Plans the scenario and checks: the planner refuses exactly as
    /// [`profile_expectation`] says; an emitted plan has the scenario's kind, passes every
    /// plan invariant, every root file round-trips byte for byte, and it simulates clean on a
    /// mesh of [`PlanScenario::workloads`] proxies; each mutation known to break the plan
    /// ([`PlanMutation::all_for`]) is caught with one of its codes; and a mutated plan the
    /// checks call safe simulates clean too (the checks never pass an outage).
    pub fn run(&self) -> Result<ScenarioReport, ScenarioFailure> {
        use super::invariants;
        use crate::plan::{self, PlanError};
        let case = self.case()?;
        let expected = case_expectation(&case);
        let result = plan::plan(&case.inputs, &case.profile, &case.options, case.now);
        let p = match (&expected, result) {
            (ProfileExpectation::Plannable, Ok(p)) => p,
            (ProfileExpectation::Refused(codes), Err(PlanError::Refused(findings))) => {
                let mut got: Vec<&str> = findings
                    .iter()
                    .filter(|f| f.severity == istio::Severity::Error)
                    .map(|f| f.code.as_str())
                    .collect();
                got.sort_unstable();
                got.dedup();
                let mut want = codes.clone();
                want.sort_unstable();
                if got != want {
                    return Err(ScenarioFailure::Planner {
                        expected,
                        got: Some(PlanError::Refused(findings)),
                    });
                }
                return Ok(ScenarioReport::default());
            }
            (ProfileExpectation::Invalid, Err(PlanError::Profile(_))) => {
                return Ok(ScenarioReport::default());
            }
            (_, r) => {
                return Err(ScenarioFailure::Planner {
                    expected,
                    got: r.err(),
                });
            }
        };
        if p.kind != case.kind {
            return Err(ScenarioFailure::Kind {
                expected: case.kind,
                got: p.kind,
            });
        }
        let opts = case.check_options();
        if let Some(v) = invariants::plan_violations(&p, &opts).into_iter().next() {
            return Err(v.into());
        }
        for phase in &p.phases {
            for c in &phase.clusters {
                invariants::round_trip_bytes(
                    c.secret.file(c.secret.root_file()).unwrap_or_default(),
                )?;
            }
        }
        let mesh = crate::sim::SimConfig::new(case.now, self.seed, self.workloads.clamp(2, 16));
        invariants::simulates_clean(&p, &mesh)?;
        let mut report = ScenarioReport {
            planned: true,
            ..ScenarioReport::default()
        };
        let breaking = PlanMutation::all_for(&p);
        for &m in &self.mutations {
            let Some(bad) = m.apply(&p) else { continue };
            let findings = plan::check_plan(&bad, &opts);
            if !plan::has_errors(&findings) {
                if let Err(violation) = invariants::simulates_clean(&bad, &mesh) {
                    return Err(ScenarioFailure::CheckMissedOutage {
                        mutation: m,
                        violation,
                    });
                }
            }
            if !breaking.contains(&m) {
                report.mutations_unjudged += 1;
                continue;
            }
            if !findings.iter().any(|f| {
                f.severity == istio::Severity::Error
                    && m.expected_codes().contains(&f.code.as_str())
            }) {
                return Err(ScenarioFailure::MutationMissed {
                    mutation: m,
                    findings,
                });
            }
            report.mutations_caught += 1;
        }
        Ok(report)
    }
}
