//! Every invariant checker of `meshtrust::testkit::invariants` accepts known-good input and
//! rejects known-bad input with the right violation (a checker that cannot fail is a defect):
//! on Istio's samples, on generated bundle files and on random rotation plans.
#![cfg(feature = "testkit")]

use meshtrust::Bundle;
use meshtrust::istio::IstioVersion;
use meshtrust::plan::{self, Invariant, RotationKind};
use meshtrust::testkit::invariants::{self, Violation};
use meshtrust::testkit::{bundles, plans};
use proptest::prelude::*;

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/istio-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const V1_29: IstioVersion = IstioVersion::new(1, 29, 0);
const V1_30: IstioVersion = IstioVersion::new(1, 30, 0);

#[test]
fn round_trip_on_istio_files() {
    for f in [
        "root-cert-combined.pem",
        "root-cert-combined-2.pem",
        "cert-chain-alt-2.pem",
        "workload-foo-cert.pem",
    ] {
        let bytes = sample(f);
        assert_eq!(invariants::round_trip_bytes(&bytes), Ok(()), "{f}");
        // Known bad: a bundle rendered from other bytes (a tool that re-encoded the file).
        let canonical = Bundle::from_certificates(Bundle::parse(&bytes).unwrap().certificates());
        if canonical.bytes() != bytes {
            assert!(matches!(
                invariants::round_trip(&bytes, &canonical),
                Err(Violation::NotByteExact { .. })
            ));
        }
    }
    // Istio's combined file has no final newline: the canonical rendering differs at its end.
    let ab = sample("root-cert-combined.pem");
    let canonical = Bundle::from_certificates(Bundle::parse(&ab).unwrap().certificates());
    assert_eq!(
        invariants::round_trip(&ab, &canonical),
        Err(Violation::NotByteExact {
            offset: ab.len(),
            original: ab.len(),
            rendered: ab.len() + 1
        })
    );
    // Not a bundle at all.
    assert!(matches!(
        invariants::round_trip_bytes(b"-----BEGIN CERTIFICATE-----\nMAA=\n"),
        Err(Violation::NotABundle(_))
    ));
}

#[test]
fn deliberate_duplicate_on_istio_files() {
    let a = Bundle::parse(&sample("root-cert.pem")).unwrap();
    let b = Bundle::parse(&sample("root-cert-alt.pem")).unwrap();
    let ab = Bundle::parse(&sample("root-cert-combined.pem")).unwrap();
    let abb = Bundle::parse(&sample("root-cert-combined-2.pem")).unwrap();
    assert_eq!(invariants::deliberate_duplicate(&ab, &abb), Ok(()));
    assert_eq!(
        invariants::deliberate_duplicate(&ab, &ab),
        Err(Violation::DuplicateKeptBytes)
    );
    let Err(Violation::DuplicateChangedTrust { added, removed }) =
        invariants::deliberate_duplicate(&a, &ab)
    else {
        panic!("A -> A+B changes the trust set");
    };
    assert_eq!(
        added.0,
        vec![b.certificates().next().unwrap().fingerprint()]
    );
    assert!(removed.0.is_empty());
    let Err(Violation::DuplicateChangedTrust { removed, .. }) =
        invariants::deliberate_duplicate(&abb, &b)
    else {
        panic!("A+B+B -> B drops A");
    };
    assert_eq!(
        removed.0,
        vec![a.certificates().next().unwrap().fingerprint()]
    );
}

#[test]
fn root_file_accepted_on_istio_files() {
    let a = sample("root-cert.pem");
    let b = sample("root-cert-alt.pem");
    let ab = sample("root-cert-combined.pem");
    let abb = sample("root-cert-combined-2.pem");
    for v in [V1_29, V1_30] {
        for (x, y) in [(&a, &ab), (&ab, &abb), (&abb, &b), (&a, &a)] {
            assert_eq!(invariants::root_file_accepted(x, y, v), Ok(()), "{v}");
        }
        // B -> A: neither contains the other, by bytes or by sets.
        assert!(matches!(
            invariants::root_file_accepted(&b, &a, v),
            Err(Violation::RootFileRefused { version, .. }) if version == v
        ));
    }
    // B+A instead of A+B: the same set, other bytes: refused to 1.29, accepted from 1.30.
    let ba = Bundle::parse(&b)
        .unwrap()
        .append(&Bundle::parse(&a).unwrap());
    assert!(invariants::root_file_accepted(&ab, ba.bytes(), V1_29).is_err());
    assert_eq!(
        invariants::root_file_accepted(&ab, ba.bytes(), V1_30),
        Ok(())
    );
}

#[test]
fn plan_checkers_on_istio_samples() {
    let case = plans::istio_samples_case();
    let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
    let opts = case.check_options();
    let phase = |k: usize| &p.phases[k].clusters[0].secret;
    assert!(invariants::plan_violations(&p, &opts).is_empty());
    for k in 1..p.phases.len() {
        let (a, b) = (phase(k - 1), phase(k));
        assert_eq!(
            invariants::signer_previously_trusted(a, b, &case.profile, case.now),
            Ok(())
        );
        assert_eq!(
            invariants::transition_cross_matrix(a, b, &case.profile, case.now),
            Ok(())
        );
    }
    let code_of = |v: Violation| match v {
        Violation::Plan {
            invariant,
            findings,
        } => (invariant, findings[0].code.as_str()),
        other => panic!("{other}"),
    };
    assert_eq!(
        code_of(
            invariants::signer_previously_trusted(phase(0), phase(2), &case.profile, case.now)
                .unwrap_err()
        ),
        (Invariant::SignerTrust, "signer-not-trusted")
    );
    assert_eq!(
        code_of(
            invariants::transition_cross_matrix(phase(0), phase(3), &case.profile, case.now)
                .unwrap_err()
        ),
        (Invariant::CrossMatrix, "cross-matrix")
    );
    // istiod 1.30 compares sets, and a reordered file keeps the set: judge as 1.29 does.
    let mut p129 = p.clone();
    p129.profile.istio_version = V1_29;
    let mutated =
        |m: plans::PlanMutation| m.apply(&p129).unwrap_or_else(|| panic!("{m:?} applies"));
    assert_eq!(
        code_of(
            invariants::no_early_removal(&mutated(plans::PlanMutation::ShortenRemovalWait), &opts)
                .unwrap_err()
        ),
        (Invariant::NoEarlyRemoval, "early-root-removal")
    );
    for (m, inv, code) in [
        (
            plans::PlanMutation::MismatchKey(1),
            Invariant::LoadChecks,
            "ca-key-mismatch",
        ),
        (
            plans::PlanMutation::DropTrigger,
            Invariant::Trigger,
            "missing-trigger",
        ),
        (
            plans::PlanMutation::ReorderRoots(2),
            Invariant::RootContainment,
            "root-containment",
        ),
        (
            plans::PlanMutation::DropPhase(3),
            Invariant::FinalState,
            "final-trust",
        ),
    ] {
        let bad = mutated(m);
        assert_eq!(
            code_of(invariants::plan_invariant(&bad, &opts, inv).unwrap_err()),
            (inv, code),
            "{m:?}"
        );
        assert!(
            invariants::plan_violations(&bad, &opts)
                .iter()
                .any(|v| matches!(v, Violation::Plan { invariant, .. } if *invariant == inv))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Invariants 1-3 on generated files: they hold for what the library makes, and fail for
    /// a known-bad counterpart.
    #[test]
    fn bundle_checkers_on_generated_files(
        case in bundles::bundle_text(bundles::sample_certificates()),
        extra in 0usize..6,
    ) {
        prop_assert_eq!(invariants::round_trip_bytes(&case.bytes), Ok(()));
        let b = Bundle::parse(&case.bytes).unwrap();
        // Known bad for 1: the canonical rendering of a file that is not canonical.
        let canonical = Bundle::from_certificates(b.certificates());
        prop_assert_eq!(invariants::round_trip(&case.bytes, &canonical).is_ok(), canonical.bytes() == case.bytes.as_slice());
        prop_assume!(!b.is_empty());
        let t = b.with_last_duplicated().unwrap();
        prop_assert_eq!(invariants::deliberate_duplicate(&b, &t), Ok(()));
        prop_assert_eq!(invariants::deliberate_duplicate(&b, &b), Err(Violation::DuplicateKeptBytes));
        let pool = bundles::sample_certificates();
        let new = &pool[extra];
        let grown = b.append_certificate(new);
        let is_new = !b.trust_set().contains(&new.fingerprint());
        prop_assert_eq!(
            matches!(invariants::deliberate_duplicate(&b, &grown), Err(Violation::DuplicateChangedTrust { .. })),
            is_new
        );
        for v in [V1_29, V1_30] {
            prop_assert_eq!(invariants::root_file_accepted(&case.bytes, grown.bytes(), v), Ok(()));
            prop_assert_eq!(invariants::root_file_accepted(t.bytes(), &case.bytes, v), Ok(()));
        }
        // Known bad for 3: a root file made of one other root, by bytes and by sets.
        if let Some(other) = pool.iter().find(|c| !b.trust_set().contains(&c.fingerprint())) {
            let lone = Bundle::from_certificates([other]);
            for v in [V1_29, V1_30] {
                let refused = matches!(invariants::root_file_accepted(&case.bytes, lone.bytes(), v), Err(Violation::RootFileRefused { .. }));
                prop_assert!(refused);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Invariants 4-7 on random rotations: every checker accepts the emitted plan and its
    /// transitions; root rotations skipped or rushed are rejected by the right checker.
    #[test]
    fn plan_checkers_on_random_rotations(case in plans::rotation_case()) {
        let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
        let opts = case.check_options();
        prop_assert!(invariants::plan_violations(&p, &opts).is_empty());
        prop_assert_eq!(invariants::no_early_removal(&p, &opts), Ok(()));
        let single = p.clusters.len() == 1;
        let phase = |k: usize| &p.phases[k].clusters[0].secret;
        if single {
            for k in 1..p.phases.len() {
                prop_assert_eq!(invariants::signer_previously_trusted(phase(k - 1), phase(k), &case.profile, case.now), Ok(()));
                prop_assert_eq!(invariants::transition_cross_matrix(phase(k - 1), phase(k), &case.profile, case.now), Ok(()));
            }
        }
        if p.kind != RotationKind::IntermediateRotation {
            let last = p.phases.len() - 1;
            let switch = p.phases.iter().position(|ph| ph.trigger).unwrap();
            if single {
                prop_assert!(invariants::signer_previously_trusted(phase(0), phase(switch), &case.profile, case.now).is_err());
            }
            if single {
                prop_assert!(invariants::transition_cross_matrix(phase(0), phase(last), &case.profile, case.now).is_err());
            }
            let hasty = plans::PlanMutation::ShortenRemovalWait.apply(&p).unwrap();
            prop_assert!(invariants::no_early_removal(&hasty, &opts).is_err());
        }
    }
}

#[test]
fn simulates_clean_on_istio_samples() {
    use meshtrust::sim::SimConfig;
    let case = plans::istio_samples_case();
    let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
    let mesh = SimConfig::new(case.now, 11, 10);
    assert_eq!(invariants::simulates_clean(&p, &mesh), Ok(()));
    // Known bad: the old root dropped while the old intermediate still signs.
    let early = plans::PlanMutation::DropOldRootEarly.apply(&p).unwrap();
    let Err(Violation::Simulation {
        failed_connections,
        failures,
        ..
    }) = invariants::simulates_clean(&early, &mesh)
    else {
        panic!("dropping the old root early must break traffic");
    };
    assert!(failed_connections > 0 && !failures.is_empty());
    // Known bad: ISTIO_MULTIROOT_MESH off: istiod ignores the new secrets (a deviation).
    let mut off = p.clone();
    off.profile.multiroot = false;
    assert!(matches!(
        invariants::simulates_clean(&off, &mesh),
        Err(Violation::Simulation { .. })
    ));
    // Not runnable at all.
    let mut none = p.clone();
    none.phases.clear();
    assert!(matches!(
        invariants::simulates_clean(&none, &mesh),
        Err(Violation::SimulationError(_))
    ));
}

/// `ztunnel-ca-channel` across ztunnel's boundary (1.28.5 vs 1.28.6, 1.29.1 vs 1.29.2): the
/// planner's ambient plan restarts ztunnel before the signer switch and passes; without the
/// restarts an older ztunnel cannot reach istiod and the check names it; one that re-reads
/// its roots needs no restart, so the mutation does not apply and the check stays quiet.
#[test]
fn ztunnel_ca_channel_across_the_boundary() {
    use meshtrust::istio::DataPlane;
    for (z, needs_restart) in [
        ("1.28.5", true),
        ("1.28.6", false),
        ("1.29.1", true),
        ("1.29.2", false),
    ] {
        let mut case = plans::istio_samples_case();
        case.profile.istio_version = z.parse().unwrap();
        case.profile.data_plane = DataPlane::Ambient;
        case.profile.ztunnel_version = Some(z.parse().unwrap());
        let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now).unwrap();
        let opts = case.check_options();
        assert_eq!(
            invariants::plan_invariant(&p, &opts, Invariant::ZtunnelCaChannel),
            Ok(()),
            "{z}"
        );
        let m = plans::PlanMutation::DropZtunnelRestarts;
        assert_eq!(
            plans::PlanMutation::all_for(&p).contains(&m),
            needs_restart,
            "{z}"
        );
        let mut bare = p.clone();
        for ph in &mut bare.phases {
            ph.actions
                .retain(|a| !matches!(a, plan::Action::RestartZtunnel { .. }));
        }
        let r = invariants::plan_invariant(&bare, &opts, Invariant::ZtunnelCaChannel);
        if needs_restart {
            let Err(Violation::Plan { findings, .. }) = r else {
                panic!("{z}: {r:?}")
            };
            assert_eq!(findings[0].code.as_str(), "ztunnel-ca-channel", "{z}");
            assert_eq!(
                findings[0].phase.as_deref(),
                Some(p.phases[2].name.as_str()),
                "the signer switch, {z}"
            );
            assert!(findings[0].message.contains(z), "{}", findings[0].message);
            let applied = m.apply(&p).expect("applies");
            let actions = |p: &plan::Plan| {
                p.phases
                    .iter()
                    .map(|ph| ph.actions.clone())
                    .collect::<Vec<_>>()
            };
            assert_eq!(actions(&applied), actions(&bare), "{z}");
        } else {
            assert_eq!(r, Ok(()), "{z}");
        }
    }
}
