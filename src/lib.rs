//! # meshtrust
//!
//! Replace the root CA of an Istio service mesh without downtime, exactly and checked.
//!
//! Istio signs workload certificates with the CA in the `cacerts` secret. Replacing its root
//! takes phases (trust A; trust A+B; sign with B's intermediate while the root file reads
//! A+B+B; trust B only), and one wrong byte or order breaks traffic. meshtrust models the
//! material byte-exactly and as trust sets, verifies chains, and checks every phase.
//!
//! Data flows one way: bytes -> [`pem`] blocks -> [`cert`] certificates and [`key`] keys ->
//! [`bundle`] bundles -> [`verify`] verified paths -> [`plan`] rotation plans -> [`sim`]
//! simulated meshes. Nothing in these modules touches the file system or reads the clock.
//! [`generate`] makes new CA material shaped like Istio's own tools (its only source of
//! randomness; the instant is a parameter; the simulator's schedule comes from a seed), and
//! [`fsio`] is the file-system edge that writes it atomically.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod b64;
pub mod bundle;
pub mod cert;
mod derwalk;
pub mod finding;
#[cfg(test)]
mod fixtures;
pub mod fsio;
pub mod generate;
pub mod istio;
pub mod key;
pub mod observe;
mod oid;
pub mod pem;
pub mod plan;
pub mod signature;
pub mod sim;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod text;
pub mod verify;

pub use bundle::{Bundle, BundleDiff, TrustSet};
pub use cert::{Certificate, Fingerprint, Role, SpiffeId};
pub use finding::{Code, Finding, Severity};
pub use key::PrivateKey;

/// The README's Rust examples, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
