//! The profile flags shared by `check`, `plan`, `plan check` and `simulate`.

use std::time::Duration;

use meshtrust::istio::{DataPlane, IstioProfile, IstioVersion, parse_duration};

/// What the mesh runs. Flags given override the base profile (the defaults, or a plan's).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ProfileArgs {
    /// istiod's version, e.g. 1.28.7 (required unless a plan.json records it; known: 1.22.0
    /// to 1.31.x).
    #[arg(long, value_name = "V")]
    istio_version: Option<IstioVersion>,
    /// ISTIO_MULTIROOT_MESH is on (`--multiroot=false` to override a plan's profile).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    multiroot: Option<bool>,
    /// PROXY_CONFIG_XDS_AGENT is on (`--xds-agent=false` to override).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    xds_agent: Option<bool>,
    /// Ambient mode (ztunnel + waypoints); same as `--data-plane ambient`.
    #[arg(long)]
    ambient: bool,
    /// sidecar, ambient or both.
    #[arg(long, value_name = "MODE", conflicts_with = "ambient")]
    data_plane: Option<DataPlane>,
    /// ztunnel's version (required for an ambient mesh unless a plan.json records it).
    #[arg(long, value_name = "V")]
    ztunnel_version: Option<IstioVersion>,
    /// Workload certificate lifetime, e.g. 24h (default 24h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    leaf_ttl: Option<Duration>,
    /// SECRET_GRACE_PERIOD_RATIO (default 0.5).
    #[arg(long, value_name = "R")]
    grace_ratio: Option<f64>,
}

impl ProfileArgs {
    /// The defaults with these flags applied; the versions must be given (no command assumes
    /// one): `--istio-version`, and `--ztunnel-version` for a mesh with ztunnel.
    pub(crate) fn profile(&self) -> Result<IstioProfile, String> {
        self.explicit(None)
    }

    /// `base` (a plan.json's profile, whose versions are explicit) with the flags that were
    /// given applied on top; without a recorded profile, the versions must be flags.
    pub(crate) fn over_recorded(&self, base: Option<IstioProfile>) -> Result<IstioProfile, String> {
        self.explicit(base)
    }

    fn explicit(&self, base: Option<IstioProfile>) -> Result<IstioProfile, String> {
        let recorded = base.is_some();
        if !recorded && self.istio_version.is_none() {
            return Err(format!(
                "--istio-version is required (istiod's version; known: {}); meshtrust no longer assumes one",
                IstioVersion::known()
            ));
        }
        let p = self.over(base.unwrap_or_default())?;
        if p.data_plane.has_ztunnel() && p.ztunnel_version.is_none() && !recorded {
            return Err(format!(
                "--ztunnel-version is required for a mesh with ztunnel (known: {})",
                IstioVersion::known()
            ));
        }
        for (what, v) in [("Istio", p.istio_version), ("ztunnel", p.ztunnel())] {
            if v.is_newer_than_modelled() {
                eprintln!(
                    "meshtrust: warning: {what} {v} is newer than the newest modelled ({}): it is checked as {}",
                    IstioVersion::known(),
                    IstioVersion::NEWEST
                );
            }
        }
        Ok(p)
    }

    /// `base` with the flags that were given applied on top.
    fn over(&self, mut base: IstioProfile) -> Result<IstioProfile, String> {
        if let Some(v) = self.istio_version {
            base.istio_version = v;
        }
        if let Some(b) = self.multiroot {
            base.multiroot = b;
        }
        if let Some(b) = self.xds_agent {
            base.xds_agent = b;
        }
        if self.ambient {
            base.data_plane = DataPlane::Ambient;
        }
        if let Some(d) = self.data_plane {
            base.data_plane = d;
        }
        if let Some(z) = self.ztunnel_version {
            base.ztunnel_version = Some(z);
        }
        if let Some(t) = self.leaf_ttl {
            base.leaf_ttl = t;
        }
        if let Some(r) = self.grace_ratio {
            base.grace_ratio = r;
        }
        base.validate().map_err(|e| e.to_string())?;
        Ok(base)
    }
}
