//! Fuzz target: `meshtrust::testkit::fuzz::plan_scenario`, structure-aware: the bytes draw a
//! `PlanScenario` (rotation kind, keys, profile, mutations) that must hold.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtrust::testkit::fuzz::plan_scenario(data));
