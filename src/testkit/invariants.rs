//! Invariant checkers with typed verdicts: one per invariant of meshtrust's design, each
//! returning `Ok(())` or a [`Violation`] saying what broke (never a panic), so that your own
//! tests, fuzzers and tools can assert them on what *they* produce.
//!
//! | DESIGN.md | checker | level |
//! |---|---|---|
//! | 1. parse then render gives the original bytes | [`round_trip`], [`round_trip_bytes`] | bundle |
//! | 2. the deliberate duplicate keeps the trust set and changes the bytes | [`deliberate_duplicate`] (and [`Invariant::Trigger`] for plans) | bundle |
//! | 3. istiod accepts the change between consecutive root files | [`root_file_accepted`] (and [`Invariant::RootContainment`]) | bundle |
//! | 4. no phase signs with a CA its predecessor does not trust | [`signer_previously_trusted`] (and [`Invariant::SignerTrust`]) | transition |
//! | 5. leaves of a phase verify against the bundles of that phase and the next | [`transition_cross_matrix`] (and [`Invariant::CrossMatrix`]) | transition |
//! | 6. the old root leaves only after every leaf chaining to it expired | [`no_early_removal`] | plan |
//! | 7. every phase passes istiod's load checks | [`plan_invariant`] with [`Invariant::LoadChecks`] | plan |
//! | the plan keeps every connection up in a simulated mesh | [`simulates_clean`] | plan + mesh |
//!
//! The checkers reuse the library (bundle parsing, trust sets, [`crate::bundle::diff`],
//! [`check_invariants`]): they are the library's own rules, offered one at a time. A plan-level
//! checker reports a violation when [`check_invariants`] finds an error for that invariant.
//!
//! ```
//! use meshtrust::testkit::invariants::{self, Violation};
//! use meshtrust::Bundle;
//!
//! let a = Bundle::parse(&std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem"))?)?;
//! let b = Bundle::parse(&std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert-alt.pem"))?)?;
//! let ab = a.append(&b);
//! assert_eq!(invariants::deliberate_duplicate(&ab, &ab.with_last_duplicated()?), Ok(()));
//! // Appending another root is not a deliberate duplicate: the trust set changed.
//! assert!(matches!(invariants::deliberate_duplicate(&a, &ab), Err(Violation::DuplicateChangedTrust { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use time::OffsetDateTime;

use crate::bundle::{self, Bundle, BundleError};
use crate::cert::{Certificate, Fingerprint};
use crate::finding::{Finding, Severity};
use crate::istio::behaviour::{self, RootChange};
use crate::istio::{CaSecret, IstioProfile, IstioVersion};
use crate::plan::{
    CheckOptions, ClusterPhase, DEFAULT_CLUSTER, Invariant, Phase, Plan, RotationKind,
    check_invariants,
};

/// The result of a checker: `Ok(())` when the invariant holds.
///
/// ```
/// use meshtrust::testkit::invariants::{round_trip_bytes, Verdict};
/// let v: Verdict = round_trip_bytes(b"");
/// assert_eq!(v, Ok(())); // an empty file is an empty bundle, rendered as it was
/// ```
pub type Verdict = Result<(), Violation>;

/// Fingerprints, shown shortened in messages.
///
/// ```
/// use meshtrust::testkit::invariants::Fingerprints;
/// let f = Fingerprints(vec![meshtrust::Fingerprint::of(b"x")]);
/// assert!(f.to_string().starts_with('[') && f.to_string().len() < 40);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints(pub Vec<Fingerprint>);

impl fmt::Display for Fingerprints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(Fingerprint::short).collect();
        write!(f, "[{}]", v.join(", "))
    }
}

/// What broke, and where.
///
/// ```
/// use meshtrust::testkit::invariants::{root_file_accepted, Violation};
/// use meshtrust::istio::IstioVersion;
/// let v = root_file_accepted(b"AB", b"BA", IstioVersion::new(1, 29, 0)).unwrap_err();
/// assert!(matches!(v, Violation::RootFileRefused { .. }));
/// assert_eq!(v.to_string(), "istiod 1.29.0 refuses the new root file: neither file's bytes contain the other's (byte containment, 1.22.0 to 1.29.x)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The input is not a bundle at all (the invariant cannot be checked).
    #[error("not a bundle: {0}")]
    NotABundle(BundleError),
    /// Invariant 1: the bundle's bytes are not the original text.
    #[error(
        "the bundle renders {rendered} bytes that differ from the {original} original bytes from byte {offset} on"
    )]
    NotByteExact {
        /// First differing byte.
        offset: usize,
        /// Length of the original text.
        original: usize,
        /// Length of the rendering.
        rendered: usize,
    },
    /// Invariant 1: the bundle holds other certificates (or another order) than its text.
    #[error("the text holds certificates {text} but the bundle {bundle}")]
    CertificatesDiffer {
        /// Certificates of the text, in order.
        text: Fingerprints,
        /// Certificates of the bundle, in order.
        bundle: Fingerprints,
    },
    /// Invariant 2: the duplicate changed the trust set.
    #[error("the deliberate duplicate changed the trust set: added {added}, removed {removed}")]
    DuplicateChangedTrust {
        /// Roots only in the new file.
        added: Fingerprints,
        /// Roots only in the old file.
        removed: Fingerprints,
    },
    /// Invariant 2: the duplicate left the bytes as they were, so nothing re-issues leaves.
    #[error("the deliberate duplicate left the bytes unchanged: no proxy re-issues its leaf")]
    DuplicateKeptBytes,
    /// Invariant 3: istiod refuses the change of root file.
    #[error("istiod {version} refuses the new root file: {reason}")]
    RootFileRefused {
        /// The istiod release whose rule was applied.
        version: IstioVersion,
        /// Which rule.
        reason: &'static str,
    },
    /// The simulated mesh lost connections, or the plan did not run as written.
    #[error(
        "{failed_connections} connection(s) failed{}{}",
        .failures.first().map(|f| format!(" (first: {} at {}: {} -> {}: {})", f.phase, f.time, f.from, f.to, f.reason)).unwrap_or_default(),
        .deviations.first().map(|d| format!("; {} deviation(s), first: {}: {}", .deviations.len(), d.phase, d.message)).unwrap_or_default()
    )]
    Simulation {
        /// Connections that failed.
        failed_connections: u64,
        /// The first recorded failures (at most 5).
        failures: Vec<crate::sim::Failure>,
        /// The first deviations from the plan (at most 5).
        deviations: Vec<crate::sim::LogEntry>,
    },
    /// The simulation could not run.
    #[error("the simulation could not run: {0}")]
    SimulationError(crate::sim::SimError),
    /// A plan-level invariant (4-7, trigger, final state): the plan checks' errors for it.
    #[error("{invariant:?}: {}", .findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Plan {
        /// The invariant.
        invariant: Invariant,
        /// The error findings of [`check_invariants`] for it.
        findings: Vec<Finding>,
    },
}

fn fps(b: &Bundle) -> Vec<Fingerprint> {
    b.certificates().map(Certificate::fingerprint).collect()
}

/// Invariant 1 on a bundle you hold: `parsed` renders exactly `original`, and holds the
/// certificates of `original`'s text in order. Use it on whatever your code parsed, edited
/// and wrote back.
///
/// ```
/// use meshtrust::testkit::invariants::{round_trip, Violation};
/// use meshtrust::Bundle;
/// let lf = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert.pem"))?;
/// let crlf = lf.replace('\n', "\r\n").into_bytes();     // as a Windows editor saves it
/// assert_eq!(round_trip(&crlf, &Bundle::parse(&crlf)?), Ok(()));
/// // A tool that normalised the line ends did not keep the bytes.
/// assert!(matches!(round_trip(&crlf, &Bundle::parse(lf.as_bytes())?), Err(Violation::NotByteExact { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn round_trip(original: &[u8], parsed: &Bundle) -> Verdict {
    let rendered = parsed.bytes();
    if rendered != original {
        let offset = rendered
            .iter()
            .zip(original)
            .position(|(a, b)| a != b)
            .unwrap_or(rendered.len().min(original.len()));
        return Err(Violation::NotByteExact {
            offset,
            original: original.len(),
            rendered: rendered.len(),
        });
    }
    let text = Bundle::parse(original).map_err(Violation::NotABundle)?;
    let (t, b) = (fps(&text), fps(parsed));
    if t != b {
        return Err(Violation::CertificatesDiffer {
            text: Fingerprints(t),
            bundle: Fingerprints(b),
        });
    }
    Ok(())
}

/// Invariant 1 on bytes: parsing them and rendering the result gives them back, and each
/// entry's own text parses to its certificate.
///
/// ```
/// let text = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert-combined-2.pem"))?;
/// assert_eq!(meshtrust::testkit::invariants::round_trip_bytes(&text), Ok(()));
/// assert!(meshtrust::testkit::invariants::round_trip_bytes(b"-----BEGIN CERTIFICATE-----\n").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn round_trip_bytes(bytes: &[u8]) -> Verdict {
    let b = Bundle::parse(bytes).map_err(Violation::NotABundle)?;
    round_trip(bytes, &b)?;
    for (i, e) in b.entries().iter().enumerate() {
        let own = b.entry_text(i).unwrap_or_default();
        let again = Bundle::parse(own).map_err(Violation::NotABundle)?;
        let got = fps(&again);
        if got != [e.cert.fingerprint()] {
            return Err(Violation::CertificatesDiffer {
                text: Fingerprints(got),
                bundle: Fingerprints(vec![e.cert.fingerprint()]),
            });
        }
    }
    Ok(())
}

/// Invariant 2: `after` is `before` with a deliberate duplicate: the same trust set, other
/// bytes (what makes every proxy re-issue its leaf at once).
///
/// ```
/// use meshtrust::testkit::invariants::{deliberate_duplicate, Violation};
/// use meshtrust::Bundle;
/// let ab = Bundle::parse(&std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert-combined.pem"))?)?;
/// let abb = Bundle::parse(&std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/istio-samples/root-cert-combined-2.pem"))?)?;
/// assert_eq!(deliberate_duplicate(&ab, &abb), Ok(()));          // Istio's own A+B -> A+B+B
/// assert_eq!(deliberate_duplicate(&ab, &ab), Err(Violation::DuplicateKeptBytes));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn deliberate_duplicate(before: &Bundle, after: &Bundle) -> Verdict {
    let d = bundle::diff(before, after);
    if d.trust_set_changed {
        return Err(Violation::DuplicateChangedTrust {
            added: Fingerprints(d.added.iter().map(|c| c.sha256).collect()),
            removed: Fingerprints(d.removed.iter().map(|c| c.sha256).collect()),
        });
    }
    if !d.bytes_changed {
        return Err(Violation::DuplicateKeptBytes);
    }
    Ok(())
}

/// Invariant 3: istiod of `version` accepts the change of `root-cert.pem` from `prev` to
/// `next`: up to 1.29 one file's raw bytes contain the other's; from 1.30 one trust set
/// contains the other and the new one is not empty. (Whether istiod looks at a change at all
/// depends on ISTIO_MULTIROOT_MESH: [`Invariant::RootContainment`] checks that on plans.)
///
/// ```
/// use meshtrust::testkit::invariants::root_file_accepted;
/// use meshtrust::istio::IstioVersion;
/// let read = |f: &str| std::fs::read(format!("{}/tests/fixtures/istio-samples/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
/// let (a, ab) = (read("root-cert.pem"), read("root-cert-combined.pem"));
/// let v129 = IstioVersion::new(1, 29, 0);
/// assert!(root_file_accepted(&a, &ab, v129).is_ok());
/// assert!(root_file_accepted(&read("root-cert-alt.pem"), &a, v129).is_err()); // B -> A
/// ```
pub fn root_file_accepted(prev: &[u8], next: &[u8], version: IstioVersion) -> Verdict {
    // ISTIO_MULTIROOT_MESH on: the rule itself is the model's.
    match behaviour::root_change(version, true, prev, next) {
        RootChange::Refused { rule } => Err(Violation::RootFileRefused {
            version,
            reason: rule.refusal(),
        }),
        RootChange::Accepted | RootChange::Unchanged | RootChange::IgnoredMultirootOff => Ok(()),
    }
}

/// The error findings of [`check_invariants`] for one invariant, as a verdict.
///
/// ```
/// use meshtrust::plan::Invariant;
/// use meshtrust::testkit::invariants::{plan_invariant, Violation};
/// use meshtrust::testkit::plans::{self, PlanMutation};
/// let case = plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// assert_eq!(plan_invariant(&plan, &case.check_options(), Invariant::LoadChecks), Ok(()));
/// let bad = PlanMutation::MismatchKey(2).apply(&plan).unwrap(); // ca-key.pem of another CA
/// let v = plan_invariant(&bad, &case.check_options(), Invariant::LoadChecks).unwrap_err();
/// assert!(matches!(v, Violation::Plan { invariant: Invariant::LoadChecks, ref findings } if findings[0].code == meshtrust::finding::Code::CaKeyMismatch));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_invariant(plan: &Plan, opts: &CheckOptions, invariant: Invariant) -> Verdict {
    let findings: Vec<Finding> = check_invariants(plan, opts, &[invariant])
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    if findings.is_empty() {
        Ok(())
    } else {
        Err(Violation::Plan {
            invariant,
            findings,
        })
    }
}

/// Every plan-level invariant ([`Invariant::ALL`]): the violations, one per broken
/// invariant (empty when the plan is safe).
///
/// ```
/// use meshtrust::testkit::invariants::plan_violations;
/// use meshtrust::testkit::plans::{self, PlanMutation};
/// let case = plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// assert!(plan_violations(&plan, &case.check_options()).is_empty());
/// let bad = PlanMutation::DropTrigger.apply(&plan).unwrap(); // switch signer without re-issue
/// assert!(!plan_violations(&bad, &case.check_options()).is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn plan_violations(plan: &Plan, opts: &CheckOptions) -> Vec<Violation> {
    Invariant::ALL
        .iter()
        .filter_map(|&i| plan_invariant(plan, opts, i).err())
        .collect()
}

/// Invariant 6: no root leaves the bundle while leaves chaining to it can still be valid
/// (the waits recorded in the plan's gates are checked against the leaf lifetime when
/// `opts.waits_known`).
///
/// ```
/// use meshtrust::testkit::invariants::no_early_removal;
/// use meshtrust::testkit::plans::{self, PlanMutation};
/// let case = plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// assert_eq!(no_early_removal(&plan, &case.check_options()), Ok(()));
/// let hasty = PlanMutation::ShortenRemovalWait.apply(&plan).unwrap(); // half a leaf lifetime
/// assert!(no_early_removal(&hasty, &case.check_options()).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn no_early_removal(plan: &Plan, opts: &CheckOptions) -> Verdict {
    plan_invariant(plan, opts, Invariant::NoEarlyRemoval)
}

/// A two-phase plan `00-before` -> `01-after` of one cluster, to check a transition your
/// own tool produced with the library's plan checks.
fn transition(before: &CaSecret, after: &CaSecret, profile: &IstioProfile) -> Plan {
    let phase = |name: &str, s: &CaSecret| Phase {
        name: name.to_owned(),
        title: String::new(),
        clusters: vec![ClusterPhase {
            cluster: DEFAULT_CLUSTER.to_owned(),
            secret: s.clone(),
        }],
        trigger: false,
        actions: Vec::new(),
        gate: None,
    };
    Plan {
        kind: RotationKind::RootRotation,
        profile: profile.clone(),
        clusters: vec![DEFAULT_CLUSTER.to_owned()],
        phases: vec![phase("00-before", before), phase("01-after", after)],
        old_roots: Vec::new(),
        new_roots: Vec::new(),
    }
}

fn transition_options(now: OffsetDateTime) -> CheckOptions {
    CheckOptions {
        now,
        margin: std::time::Duration::ZERO,
        waits_known: false,
    }
}

/// Invariant 4 on one transition: if `after` signs with another CA than `before`, the
/// bundle of `before` already trusts it (its chain verifies against `before`'s root file).
///
/// ```
/// use meshtrust::testkit::invariants::signer_previously_trusted;
/// let case = meshtrust::testkit::plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// let phase = |k: usize| &plan.phases[k].clusters[0].secret;
/// // 01-trust-both -> 02-switch-signer: B's intermediate signs, and A+B already trusted B.
/// assert_eq!(signer_previously_trusted(phase(1), phase(2), &case.profile, case.now), Ok(()));
/// // Skipping 01-trust-both: B signs while the mesh trusts only A.
/// assert!(signer_previously_trusted(phase(0), phase(2), &case.profile, case.now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn signer_previously_trusted(
    before: &CaSecret,
    after: &CaSecret,
    profile: &IstioProfile,
    now: OffsetDateTime,
) -> Verdict {
    plan_invariant(
        &transition(before, after, profile),
        &transition_options(now),
        Invariant::SignerTrust,
    )
}

/// Invariant 5 on one transition: a leaf issued by each side's signer (a throwaway leaf
/// made with its key) verifies against the bundles of both sides.
///
/// ```
/// use meshtrust::testkit::invariants::transition_cross_matrix;
/// let case = meshtrust::testkit::plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// let phase = |k: usize| &plan.phases[k].clusters[0].secret;
/// assert_eq!(transition_cross_matrix(phase(2), phase(3), &case.profile, case.now), Ok(()));
/// // Straight from A to B: A's leaves fail against B's bundle and B's against A's.
/// assert!(transition_cross_matrix(phase(0), phase(3), &case.profile, case.now).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn transition_cross_matrix(
    before: &CaSecret,
    after: &CaSecret,
    profile: &IstioProfile,
    now: OffsetDateTime,
) -> Verdict {
    plan_invariant(
        &transition(before, after, profile),
        &transition_options(now),
        Invariant::CrossMatrix,
    )
}

/// The plan keeps every mTLS connection of the simulated mesh up at every event, and runs as
/// written ([`crate::sim::Outcome::ran_as_planned`]: no secret ignored or refused, the mesh
/// ends in the last phase's state).
///
/// ```
/// use meshtrust::sim::SimConfig;
/// use meshtrust::testkit::invariants::{simulates_clean, Violation};
/// use meshtrust::testkit::plans::{self, PlanMutation};
/// let case = plans::istio_samples_case();
/// let plan = meshtrust::plan::plan(&case.inputs, &case.profile, &case.options, case.now)?;
/// let mesh = SimConfig::new(case.now, 7, 12);                  // 12 proxies, seed 7
/// assert_eq!(simulates_clean(&plan, &mesh), Ok(()));
/// let skipped = PlanMutation::DropPhase(1).apply(&plan).unwrap(); // no "trust both" phase
/// assert!(matches!(simulates_clean(&skipped, &mesh), Err(Violation::Simulation { failed_connections, .. }) if failed_connections > 0));
/// # Ok::<(), meshtrust::plan::PlanError>(())
/// ```
pub fn simulates_clean(plan: &Plan, config: &crate::sim::SimConfig) -> Verdict {
    let o = crate::sim::simulate(plan, config).map_err(Violation::SimulationError)?;
    if o.ran_as_planned() {
        return Ok(());
    }
    Err(Violation::Simulation {
        failed_connections: o.failed_connections,
        failures: o.failures.into_iter().take(5).collect(),
        deviations: o.deviations.into_iter().take(5).collect(),
    })
}
