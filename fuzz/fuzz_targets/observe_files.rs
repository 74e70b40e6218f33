//! Fuzz target: `meshtrust::testkit::fuzz::observe_files` (must never panic on any input).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| meshtrust::testkit::fuzz::observe_files(data));
