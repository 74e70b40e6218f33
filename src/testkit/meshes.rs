//! Random meshes for the simulator ([`crate::sim`]): a rotation (CA material of any kind and
//! key type, one to three clusters, a profile with any data plane) and the mesh to run it on
//! (proxy count, proxies per node, seed, jitter).
//!
//! ```
//! use meshtrust::testkit::{invariants, meshes};
//! use proptest::prelude::*;
//! proptest!(ProptestConfig::with_cases(2), |(case in meshes::mesh_case())| {
//!     let plan = case.plan().unwrap();
//!     prop_assert_eq!(invariants::simulates_clean(&plan, &case.config), Ok(()));
//! });
//! ```

use proptest::prelude::*;
use time::OffsetDateTime;

use super::plans::{self, RotationCase};
use crate::istio::IstioProfile;
use crate::plan::{Plan, PlanError};
use crate::sim::SimConfig;

/// Simulation settings starting at `start`: 2 to 40 proxies, 1 to 8 ambient workloads per
/// node, any seed, and Istio's default jitter or one from 0 to 5 %.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let start = meshtrust::testkit::plans::test_now();
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let c = meshtrust::testkit::meshes::sim_config(start).new_tree(&mut runner).unwrap().current();
/// assert!((2..=40).contains(&c.workloads) && c.start == start);
/// ```
pub fn sim_config(start: OffsetDateTime) -> impl Strategy<Value = SimConfig> {
    (
        2usize..=40,
        1usize..=8,
        any::<u64>(),
        prop_oneof![1 => Just(None), 3 => (0.0f64..0.05).prop_map(Some)],
    )
        .prop_map(move |(workloads, per_node, seed, jitter)| {
            let mut c = SimConfig::new(start, seed, workloads);
            c.workloads_per_node = per_node;
            c.jitter = jitter;
            c
        })
}

/// A rotation and the mesh to simulate it on.
#[derive(Debug, Clone)]
pub struct MeshCase {
    /// The rotation (inputs, profile, options, instant).
    pub rotation: RotationCase,
    /// The simulated mesh, starting at the rotation's instant.
    pub config: SimConfig,
}

impl MeshCase {
    /// The plan meshtrust makes for the rotation.
    ///
    /// ```
    /// use proptest::strategy::{Strategy, ValueTree};
    /// let mut runner = proptest::test_runner::TestRunner::deterministic();
    /// let case = meshtrust::testkit::meshes::mesh_case().new_tree(&mut runner).unwrap().current();
    /// assert!(case.plan().unwrap().phases.len() >= 2);
    /// ```
    pub fn plan(&self) -> Result<Plan, PlanError> {
        let r = &self.rotation;
        crate::plan::plan(&r.inputs, &r.profile, &r.options, r.now)
    }
}

/// Meshes for rotations that can be made safely ([`plans::rotation_case`]: every kind, one
/// to three clusters, any data plane with a ztunnel that trusts every root) with
/// [`sim_config`] settings.
///
/// ```
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let case = meshtrust::testkit::meshes::mesh_case().new_tree(&mut runner).unwrap().current();
/// assert_eq!(case.config.start, case.rotation.now);
/// ```
pub fn mesh_case() -> impl Strategy<Value = MeshCase> {
    mesh_case_with(plans::safe_profile())
}

/// [`mesh_case`] with profiles from `profiles` (e.g. [`plans::any_profile`]).
///
/// ```
/// use meshtrust::testkit::{meshes, plans};
/// use proptest::strategy::{Strategy, ValueTree};
/// let mut runner = proptest::test_runner::TestRunner::deterministic();
/// let case = meshes::mesh_case_with(plans::any_profile()).new_tree(&mut runner).unwrap().current();
/// println!("{:?} on {} proxies", case.rotation.profile.data_plane, case.config.workloads);
/// ```
pub fn mesh_case_with(
    profiles: impl Strategy<Value = IstioProfile>,
) -> impl Strategy<Value = MeshCase> {
    plans::rotation_case_with(profiles).prop_flat_map(|rotation| {
        let start = rotation.now;
        sim_config(start).prop_map(move |config| MeshCase {
            rotation: rotation.clone(),
            config,
        })
    })
}
