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

use super::{CertSpec, Issued, KeyAllocator, KeyType, TestKey, TestkitError};
use crate::istio::{self, CaSecret, DataPlane, IstioProfile, IstioVersion};
use crate::pem::{self, Label};
use crate::plan::{CheckOptions, ClusterInput, PlanOptions, RotationKind};

mod mutation;
mod scenario;

pub use mutation::PlanMutation;
pub use scenario::{PlanScenario, ScenarioFailure, ScenarioReport};

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
