//! Property tests of the planner (DESIGN.md invariants 3-7): for random CA topologies, key
//! types, depths, cluster counts and profiles, every emitted plan passes its own checks, and
//! every mutation of it is caught with the right code.

use meshtrust::bundle::Bundle;
use meshtrust::istio::IstioVersion;
use meshtrust::istio::behaviour::{RootChange, root_change};
use meshtrust::plan::{self, PlanError, RotationKind};
use meshtrust::testkit::plans::{self, PlanMutation, ProfileExpectation};
use proptest::prelude::*;

/// istiod's byte containment (1.22.0 to 1.29.x, the strictest rule), from the one model.
fn accepted_by_bytes(old: &[u8], new: &[u8]) -> bool {
    matches!(
        root_change(IstioVersion::new(1, 29, 0), true, old, new),
        RootChange::Accepted | RootChange::Unchanged
    )
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn emitted_plans_pass_their_checks_and_mutations_fail(case in plans::rotation_case()) {
        let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now)
            .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", case.kind)))?;
        let expected_kind = case.kind;
        prop_assert_eq!(p.kind, expected_kind);
        let findings = plan::check_plan(&p, &case.check_options());
        prop_assert!(!plan::has_errors(&findings), "{findings:#?}");

        // Invariant 3: consecutive root files pass istiod's byte containment (every version).
        for w in p.phases.windows(2) {
            for (a, b) in w[0].clusters.iter().zip(&w[1].clusters) {
                let (ra, rb) = (a.secret.file("root-cert.pem").unwrap(), b.secret.file("root-cert.pem").unwrap());
                let mode_switch = a.secret.kind != b.secret.kind;
                prop_assert!(mode_switch || accepted_by_bytes(ra, rb), "{} -> {}", w[0].name, w[1].name);
            }
        }
        // The trigger keeps the trust set and changes the bytes (invariant 2).
        for (i, ph) in p.phases.iter().enumerate().filter(|(_, ph)| ph.trigger) {
            for (a, b) in p.phases[i - 1].clusters.iter().zip(&ph.clusters) {
                let (ra, rb) = (a.roots().unwrap(), b.roots().unwrap());
                prop_assert_eq!(ra.trust_set(), rb.trust_set());
                prop_assert_ne!(ra.bytes(), rb.bytes());
            }
        }
        // Root plans: the final root file is byte-identical text to B in the earlier phases.
        if p.kind != RotationKind::IntermediateRotation {
            let last = p.phases.last().unwrap();
            for c in &last.clusters {
                let fin = c.secret.file("root-cert.pem").unwrap();
                for ph in &p.phases[1..] {
                    let earlier = ph.secret(&c.cluster).unwrap().file("root-cert.pem").unwrap();
                    prop_assert!(accepted_by_bytes(earlier, fin));
                    prop_assert!(earlier.windows(fin.len()).any(|w| w == fin), "{}", ph.name);
                }
                prop_assert_eq!(Bundle::parse(fin).unwrap().trust_set().len(), 1);
            }
        }

        // Every mutation is caught with one of its codes.
        for m in PlanMutation::all_for(&p) {
            let Some(bad) = m.apply(&p) else { continue };
            let f = plan::check_plan(&bad, &case.check_options());
            prop_assert!(
                f.iter().any(|x| m.expected_codes().contains(&x.code.as_str()) && x.severity == meshtrust::istio::Severity::Error),
                "{:?} on a {} plan not caught; findings: {:#?}", m, p.kind, f
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() * 2, ..ProptestConfig::default() })]

    /// Any profile, the unsafe and invalid ones included: the planner refuses exactly with
    /// the codes Istio's behaviour calls for, rejects invalid profiles as bad input, and
    /// plans the rest into plans that pass their checks.
    #[test]
    fn refusals_follow_the_profile(case in plans::rotation_case_with(plans::any_profile())) {
        let expected = plans::case_expectation(&case);
        match (plan::plan(&case.inputs, &case.profile, &case.options, case.now), &expected) {
            (Ok(p), ProfileExpectation::Plannable) => {
                let f = plan::check_plan(&p, &case.check_options());
                prop_assert!(!plan::has_errors(&f), "{f:#?}");
            }
            (Err(PlanError::Refused(findings)), ProfileExpectation::Refused(codes)) => {
                let mut got: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
                got.sort_unstable();
                got.dedup();
                let mut want = codes.clone();
                want.sort_unstable();
                prop_assert_eq!(got, want);
            }
            (Err(PlanError::Profile(_)), ProfileExpectation::Invalid) => {}
            (r, e) => prop_assert!(false, "{:?} under {:?}: expected {:?}, got {:?}", case.kind, case.profile, e, r.map(|p| p.kind)),
        }
    }

    /// Whole scenarios as the structure-aware fuzz target draws them (profiles, mutations).
    #[test]
    fn scenarios_hold(bytes in proptest::collection::vec(any::<u8>(), 16..96)) {
        use arbitrary::{Arbitrary, Unstructured};
        if let Ok(s) = plans::PlanScenario::arbitrary(&mut Unstructured::new(&bytes)) {
            if let Err(e) = s.run() {
                prop_assert!(false, "{s:?}: {e}");
            }
        }
    }
}
