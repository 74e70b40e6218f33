//! Test-only package: `tests/` here runs BoringSSL (through the `boring` crate) next to
//! `meshtrust::verify::Policy::Envoy` on the same inputs. It has no library code.
#![forbid(unsafe_code)]
