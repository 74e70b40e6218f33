//! The profile flags shared by `check`, `plan`, `plan check` and `simulate`.

use std::time::Duration;

use meshtrust::istio::{DataPlane, IstioProfile, IstioVersion, parse_duration};

/// What the mesh runs. Flags given override the base profile (the defaults, or a plan's).
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ProfileArgs {
    /// istiod's version (default: the newest meshtrust models, 1.30).
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
    /// ztunnel's version (default: istiod's).
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
    /// The defaults with these flags applied.
    pub(crate) fn profile(&self) -> Result<IstioProfile, String> {
        self.over(IstioProfile::default())
    }

    /// `base` with the flags that were given applied on top.
    pub(crate) fn over(&self, mut base: IstioProfile) -> Result<IstioProfile, String> {
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
        base.validate()?;
        Ok(base)
    }
}
