//! Fuzz target: `meshtrust::testkit::fuzz::cacerts_manifest` (must never panic on any input).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtrust::testkit::fuzz::cacerts_manifest(data));
