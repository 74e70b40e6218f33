//! Test support for embedders (feature `testkit`): proptest strategies, invariant checkers
//! and fuzz entry points. meshtrust's own property tests and fuzz targets use exactly these.
//!
//! ```
//! use meshtrust::testkit::bundles;
//! use proptest::prelude::*;
//!
//! proptest!(ProptestConfig::with_cases(8), |(case in bundles::bundle_text(bundles::sample_certificates()))| {
//!     let parsed = meshtrust::Bundle::parse(&case.bytes).unwrap();
//!     prop_assert_eq!(parsed.bytes(), &case.bytes[..]);
//! });
//! ```

pub mod bundles;
pub mod fuzz;
