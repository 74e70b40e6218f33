//! my-rotation-tool: what a platform team's own rotation tool looks like on top of meshtrust.
//!
//! The tool wraps meshtrust's planner with the team's policy (leaf certificates live at most
//! 24 h; PROXY_CONFIG_XDS_AGENT must be on, so that no workload is ever restarted for a
//! rotation) and refuses any plan that breaks one of meshtrust's invariants or loses a
//! connection in a simulated mesh. Its `main`
//! property-tests that policy with meshtrust's testkit (random CA topologies, every Istio
//! profile including unsafe ones, every way operators break a plan) and exits non-zero on a
//! failure, so CI can run it:
//!
//! ```sh
//! cargo run --example my-rotation-tool --features testkit
//! ```

use std::process::ExitCode;
use std::time::Duration;

use meshtrust::istio::IstioProfile;
use meshtrust::plan::{self, Action, CheckOptions, ClusterInput, Plan, PlanError, PlanOptions};
use meshtrust::sim::SimConfig;
use meshtrust::testkit::invariants::{self, Violation};
use meshtrust::testkit::plans::{self, PlanMutation, ProfileExpectation};
use meshtrust::testkit::proptest::prelude::*;
use meshtrust::testkit::proptest::test_runner::{Config, TestRunner};
use time::OffsetDateTime;

// ---------------------------------------------------------------------------------------
// The tool.

/// The team's policy, on top of meshtrust's safety checks.
#[derive(Debug, Clone)]
struct Policy {
    /// Longest workload certificate lifetime allowed.
    max_leaf_ttl: Duration,
    /// PROXY_CONFIG_XDS_AGENT must be on (proxies get new roots by push, no restarts).
    require_xds_agent: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_leaf_ttl: Duration::from_secs(24 * 3600),
            require_xds_agent: true,
        }
    }
}

/// Why the tool refuses.
#[derive(Debug)]
enum ToolError {
    /// The mesh's leaf TTL is over the policy's maximum.
    LeafTtlTooLong(Duration),
    /// PROXY_CONFIG_XDS_AGENT is off.
    XdsAgentRequired,
    /// meshtrust refuses the rotation (unsafe profile or inputs).
    Refused(PlanError),
    /// The plan breaks meshtrust's invariants (a hand-edited plan, say).
    Unsafe(Vec<Violation>),
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToolError::LeafTtlTooLong(d) => {
                write!(f, "policy: leaf TTL {}s is over 24h", d.as_secs())
            }
            ToolError::XdsAgentRequired => f.write_str("policy: PROXY_CONFIG_XDS_AGENT must be on"),
            ToolError::Refused(e) => write!(f, "meshtrust: {e}"),
            ToolError::Unsafe(v) => write!(
                f,
                "unsafe plan: {}",
                v.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }
}

struct Tool {
    policy: Policy,
}

impl Tool {
    /// Plans a rotation under the policy.
    fn plan(
        &self,
        inputs: &[ClusterInput],
        profile: &IstioProfile,
        options: &PlanOptions,
        now: OffsetDateTime,
    ) -> Result<Plan, ToolError> {
        if profile.leaf_ttl > self.policy.max_leaf_ttl {
            return Err(ToolError::LeafTtlTooLong(profile.leaf_ttl));
        }
        if self.policy.require_xds_agent && !profile.xds_agent {
            return Err(ToolError::XdsAgentRequired);
        }
        let p = plan::plan(inputs, profile, options, now).map_err(ToolError::Refused)?;
        self.check(&p, now)?;
        // Before handing a plan to an operator, run it on a simulated mesh of 12 proxies.
        invariants::simulates_clean(&p, &SimConfig::new(now, 1, 12))
            .map_err(|v| ToolError::Unsafe(vec![v]))?;
        Ok(p)
    }

    /// Checks a plan (one the tool made, or one an operator edited) with meshtrust's
    /// invariant checkers.
    fn check(&self, p: &Plan, now: OffsetDateTime) -> Result<(), ToolError> {
        let opts = CheckOptions {
            now,
            margin: PlanOptions::default().margin,
            waits_known: true,
        };
        let v = invariants::plan_violations(p, &opts);
        if v.is_empty() {
            Ok(())
        } else {
            Err(ToolError::Unsafe(v))
        }
    }
}

// ---------------------------------------------------------------------------------------
// The tool's property test, with meshtrust's testkit.

fn policy_holds(tool: &Tool, case: &plans::RotationCase) -> Result<(), TestCaseError> {
    let profile = &case.profile;
    let result = tool.plan(&case.inputs, profile, &case.options, case.now);
    let breaks_policy = profile.leaf_ttl > tool.policy.max_leaf_ttl || !profile.xds_agent;
    let expected = plans::case_expectation(case);
    match result {
        // 1. The policy refuses first, whatever meshtrust would say.
        Err(ToolError::LeafTtlTooLong(_) | ToolError::XdsAgentRequired) => {
            prop_assert!(
                breaks_policy,
                "policy refusal without cause under {profile:?}"
            )
        }
        // 2. Within the policy, meshtrust decides: it refuses exactly the unsafe meshes.
        Err(ToolError::Refused(e)) => prop_assert!(
            !breaks_policy && expected != ProfileExpectation::Plannable,
            "refused a plannable mesh: {e}"
        ),
        Err(e @ ToolError::Unsafe(_)) => {
            prop_assert!(false, "meshtrust emitted an unsafe plan: {e}")
        }
        Ok(p) => {
            prop_assert!(!breaks_policy && expected == ProfileExpectation::Plannable);
            // 3. What the policy buys: with the XDS agent on, no workload restart.
            let restarts = p
                .phases
                .iter()
                .flat_map(|ph| &ph.actions)
                .any(|a| matches!(a, Action::RestartSidecars { .. }));
            prop_assert!(!restarts, "a plan restarts workloads under {profile:?}");
            // 4. The tool refuses every hand edit that breaks the plan.
            for m in PlanMutation::all_for(&p) {
                if let Some(edited) = m.apply(&p) {
                    prop_assert!(
                        matches!(tool.check(&edited, case.now), Err(ToolError::Unsafe(_))),
                        "{m:?} not refused"
                    );
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let tool = Tool {
        policy: Policy::default(),
    };

    // Property test: random CA topologies and rotations, every kind of Istio profile.
    let cases = std::env::var("CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    if let Err(e) = runner.run(&plans::rotation_case_with(plans::any_profile()), |case| {
        policy_holds(&tool, &case)
    }) {
        eprintln!("my-rotation-tool: policy property FAILED: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "my-rotation-tool: policy holds on {cases} random rotations ({:.1}s)",
        started.elapsed().as_secs_f64()
    );

    // And the tool at work on Istio's samples.
    let samples = plans::istio_samples_case();
    match tool.plan(
        &samples.inputs,
        &samples.profile,
        &samples.options,
        samples.now,
    ) {
        Ok(p) => {
            for ph in &p.phases {
                let wait = ph.gate.as_ref().map_or(0, |g| g.min_wait.as_secs());
                println!("  {:<22} {} (then wait {}s)", ph.name, ph.title, wait);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("my-rotation-tool: {e}");
            ExitCode::FAILURE
        }
    }
}
