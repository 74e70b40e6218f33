//! [`PlanScenario`]: a whole rotation drawn from fuzz bytes (inputs, profile, mutation), run
//! through plan, check and simulate, and what it found.

use std::time::Duration;

use super::{
    PlanMutation, ProfileExpectation, RotationCase, ZTUNNEL_VERSIONS, build_case, case_expectation,
};
use crate::istio::{self, IstioProfile, IstioVersion};
use crate::plan::RotationKind;
use crate::testkit::{KeyType, TestkitError};

/// Istio releases a [`PlanScenario`] draws from.
const ISTIO_VERSIONS: [&str; 9] = [
    "1.22.0", "1.24.3", "1.24.6", "1.25.1", "1.26.2", "1.27.0", "1.28.0", "1.29.1", "1.30.0",
];

/// A whole planner scenario for structure-aware fuzzing: rotation kind, key types, depth,
/// clusters, a profile (mostly well-formed, now and then any [`IstioProfile`] at all) and
/// up to three plan mutations. [`PlanScenario::run`] plans it and checks everything that
/// must hold; [`crate::testkit::fuzz::plan_scenario`] feeds it from raw fuzzer bytes.
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
        /// What [`profile_expectation`](super::profile_expectation) says.
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
    Invariant(#[from] crate::testkit::invariants::Violation),
    /// A mutation the plan checks call safe breaks traffic (or does not run as written) in
    /// the simulated mesh.
    #[error("{mutation:?}: the plan checks find nothing, but the simulation does: {violation}")]
    CheckMissedOutage {
        /// The mutation.
        mutation: PlanMutation,
        /// What the simulation saw.
        violation: crate::testkit::invariants::Violation,
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
    /// [`profile_expectation`](super::profile_expectation) says; an emitted plan has the scenario's kind, passes every
    /// plan invariant, every root file round-trips byte for byte, and it simulates clean on a
    /// mesh of [`PlanScenario::workloads`] proxies; each mutation known to break the plan
    /// ([`PlanMutation::all_for`]) is caught with one of its codes; and a mutated plan the
    /// checks call safe simulates clean too (the checks never pass an outage).
    pub fn run(&self) -> Result<ScenarioReport, ScenarioFailure> {
        use crate::plan::{self, PlanError};
        use crate::testkit::invariants;
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
