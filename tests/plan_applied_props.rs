//! Property tests of issue 15's invariants on random plans (every kind, key type, cluster
//! count): a plan as written reads back with no applied-artifact finding and every rollback
//! step checks safe; any changed byte of any key of any phase's secret.yaml is refused, naming
//! that phase and key; and sealing a plan after such a change restores what was planned.
#![cfg(feature = "testkit")]

use meshtrust::istio;
use meshtrust::plan::{self, DEFAULT_CLUSTER};
use meshtrust::testkit::plans;
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_applied_secret_yaml_is_the_checked_artifact(
        case in plans::rotation_case(),
        pick in any::<(prop::sample::Index, prop::sample::Index, prop::sample::Index, u8)>(),
    ) {
        let p = plan::plan(&case.inputs, &case.profile, &case.options, case.now)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let opts = case.check_options();
        let rollback = plan::check_rollback(&p, &opts);
        prop_assert!(!plan::has_errors(&rollback), "{rollback:#?}");
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plan");
        plan::write_plan_dir(&p, &dir).unwrap();
        let findings = plan::read_plan_dir(&dir).unwrap().findings;
        prop_assert!(findings.is_empty(), "{findings:#?}");

        // Change one byte of one key of one phase's secret.yaml (what kubectl would apply).
        let (pi, ci, ki, flip) = pick;
        let phase = &p.phases[pi.index(p.phases.len())];
        let cluster = &phase.clusters[ci.index(phase.clusters.len())];
        let names: Vec<&str> = cluster.secret.file_names().collect();
        let key = names[ki.index(names.len())];
        let cdir = if p.is_multi_cluster() {
            dir.join(&phase.name).join(&cluster.cluster)
        } else {
            dir.join(&phase.name)
        };
        let yaml = cdir.join("secret.yaml");
        let mut applied = istio::parse_manifest(&std::fs::read(&yaml).unwrap()).unwrap();
        let mut bytes = applied.file(key).unwrap().to_vec();
        if bytes.is_empty() {
            bytes.push(flip);
        } else {
            let i = usize::from(flip) % bytes.len();
            bytes[i] ^= flip.max(1);
        }
        applied.set_file(key, bytes);
        std::fs::write(&yaml, applied.to_manifest_yaml().as_bytes()).unwrap();
        let findings = plan::read_plan_dir(&dir).unwrap().findings;
        let hit = findings.iter().find(|f| f.code.as_str() == "secret-yaml-mismatch");
        prop_assert!(hit.is_some(), "{findings:#?}");
        let hit = hit.unwrap();
        prop_assert_eq!(hit.phase.as_deref(), Some(phase.name.as_str()));
        let named = format!("{key}: ");
        prop_assert!(hit.message.contains(&named), "{}", hit.message);
        prop_assert_eq!(
            hit.cluster.as_deref(),
            (cluster.cluster != DEFAULT_CLUSTER).then_some(cluster.cluster.as_str())
        );
        // No key material in the finding.
        if key == "ca-key.pem" {
            prop_assert!(!hit.message.contains("PRIVATE KEY"));
        }

        // Sealing (the PEM files are the truth) restores exactly what was planned.
        let report = plan::seal_plan_dir(&dir, None, &opts).unwrap();
        prop_assert!(report.sealed(), "{:#?}", report.findings);
        let findings = plan::read_plan_dir(&dir).unwrap().findings;
        prop_assert!(findings.is_empty(), "{findings:#?}");
        let sealed = istio::parse_manifest(&std::fs::read(&yaml).unwrap()).unwrap();
        prop_assert_eq!(sealed.file(key), cluster.secret.file(key));
    }
}
