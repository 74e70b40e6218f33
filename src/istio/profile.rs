//! What a mesh runs: the Istio version and the flags that change how CA material is consumed.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An Istio (or ztunnel) release, `MAJOR.MINOR[.PATCH]`, with an optional leading `v`.
///
/// ```
/// use meshtrust::istio::IstioVersion;
/// let v: IstioVersion = "1.24.4".parse()?;
/// assert!(v >= "1.24".parse()?);
/// assert_eq!("v1.28".parse::<IstioVersion>()?.to_string(), "1.28.0");
/// # Ok::<(), meshtrust::istio::VersionParseError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub struct IstioVersion {
    /// Major (1).
    pub major: u16,
    /// Minor.
    pub minor: u16,
    /// Patch (0 when not given).
    pub patch: u16,
}

impl IstioVersion {
    /// A version from its parts.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        IstioVersion {
            major,
            minor,
            patch,
        }
    }

    /// The oldest release meshtrust models (1.22.0).
    pub const OLDEST: IstioVersion = IstioVersion::new(1, 22, 0);
    /// The newest release meshtrust models (1.31.0; 1.31.0-rc.0 is the newest tag read).
    pub const NEWEST: IstioVersion = IstioVersion::new(1, 31, 0);

    /// The known releases, for messages: `1.22.0 to 1.31.x`.
    pub fn known() -> String {
        format!(
            "{} to {}.{}.x",
            IstioVersion::OLDEST,
            IstioVersion::NEWEST.major,
            IstioVersion::NEWEST.minor
        )
    }

    /// True for a release newer than the newest minor line modelled: it is checked as
    /// [`IstioVersion::NEWEST`] (callers warn).
    pub fn is_newer_than_modelled(&self) -> bool {
        (self.major, self.minor) > (IstioVersion::NEWEST.major, IstioVersion::NEWEST.minor)
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A version string that is not `MAJOR.MINOR[.PATCH]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Istio version {0:?}: expected MAJOR.MINOR[.PATCH], e.g. 1.28 or 1.24.6")]
pub struct VersionParseError(pub String);

impl FromStr for IstioVersion {
    type Err = VersionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionParseError(s.chars().take(40).collect());
        let t = s.trim().strip_prefix('v').unwrap_or(s.trim());
        // Pre-release suffixes (1.29.0-beta.1) are read as the release they precede.
        let t = t.split(['-', '+']).next().unwrap_or(t);
        let parts: Vec<&str> = t.split('.').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(err());
        }
        let num = |p: &str| p.parse::<u16>().map_err(|_| err());
        Ok(IstioVersion {
            major: num(parts[0])?,
            minor: num(parts[1])?,
            patch: if parts.len() == 3 { num(parts[2])? } else { 0 },
        })
    }
}

impl Serialize for IstioVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IstioVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Which proxies carry workload traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub enum DataPlane {
    /// Envoy sidecars (and gateways).
    #[default]
    Sidecar,
    /// ztunnel on every node, with waypoints.
    Ambient,
    /// Both at once (a mesh migrating between them).
    Both,
}

impl DataPlane {
    /// True when ztunnel carries traffic.
    pub fn has_ztunnel(&self) -> bool {
        matches!(self, DataPlane::Ambient | DataPlane::Both)
    }

    /// True when Envoy sidecars carry traffic.
    pub fn has_sidecars(&self) -> bool {
        matches!(self, DataPlane::Sidecar | DataPlane::Both)
    }
}

impl FromStr for DataPlane {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sidecar" => Ok(DataPlane::Sidecar),
            "ambient" => Ok(DataPlane::Ambient),
            "both" => Ok(DataPlane::Both),
            _ => Err(format!(
                "invalid data plane {s:?}: expected sidecar, ambient or both"
            )),
        }
    }
}

impl fmt::Display for DataPlane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataPlane::Sidecar => "sidecar",
            DataPlane::Ambient => "ambient",
            DataPlane::Both => "both",
        })
    }
}

/// Everything about a mesh that changes how CA material is read and propagated.
///
/// ```
/// use meshtrust::istio::{IstioProfile, DataPlane};
/// let p = IstioProfile { multiroot: true, xds_agent: true, ..IstioProfile::default() };
/// assert_eq!(p.data_plane, DataPlane::Sidecar);
/// assert_eq!(p.leaf_ttl.as_secs(), 24 * 3600);
/// assert_eq!(p.rotation_after().as_secs(), 12 * 3600);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "testkit", derive(arbitrary::Arbitrary))]
pub struct IstioProfile {
    /// istiod's release.
    pub istio_version: IstioVersion,
    /// istiod env `ISTIO_MULTIROOT_MESH`: allows the root file to change at all.
    pub multiroot: bool,
    /// proxy metadata `PROXY_CONFIG_XDS_AGENT`: agents receive new roots by push (PCDS).
    pub xds_agent: bool,
    /// Sidecars, ambient (ztunnel + waypoints), or both.
    pub data_plane: DataPlane,
    /// ztunnel's release (defaults to istiod's).
    pub ztunnel_version: Option<IstioVersion>,
    /// Workload certificate lifetime (Istio's default 24 h).
    #[serde(with = "duration_secs")]
    pub leaf_ttl: Duration,
    /// SECRET_GRACE_PERIOD_RATIO: agents rotate when this fraction of the lifetime remains.
    pub grace_ratio: f64,
}

impl Default for IstioProfile {
    fn default() -> Self {
        IstioProfile {
            istio_version: IstioVersion::NEWEST,
            multiroot: false,
            xds_agent: false,
            data_plane: DataPlane::Sidecar,
            ztunnel_version: None,
            leaf_ttl: Duration::from_secs(24 * 3600),
            grace_ratio: 0.5,
        }
    }
}

impl IstioProfile {
    /// ztunnel's release: the one given, or istiod's.
    pub fn ztunnel(&self) -> IstioVersion {
        self.ztunnel_version.unwrap_or(self.istio_version)
    }

    /// How long after issuance the last data plane in use renews its leaf (no jitter):
    /// sidecars at `leaf_ttl * (1 - grace_ratio)`, ztunnel at `leaf_ttl / 2`
    /// ([`behaviour::renewal_after`](super::behaviour::renewal_after)).
    pub fn rotation_after(&self) -> Duration {
        use super::behaviour::{Proxy, renewal_after};
        let mut d = renewal_after(Proxy::Sidecar, self.leaf_ttl, self.grace_ratio);
        if self.data_plane.has_ztunnel() {
            d = d.max(renewal_after(
                Proxy::Ztunnel,
                self.leaf_ttl,
                self.grace_ratio,
            ));
        }
        d
    }

    /// Checks the profile itself (ratios in range, a TTL Istio accepts).
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.istio_version < IstioVersion::OLDEST
            || self.ztunnel().major != 1
            || self.ztunnel() < IstioVersion::OLDEST
        {
            return Err(ProfileError::UnmodelledVersion {
                istio: self.istio_version,
                ztunnel: self.ztunnel(),
            });
        }
        if !(0.0..1.0).contains(&self.grace_ratio) || self.grace_ratio.is_nan() {
            return Err(ProfileError::GraceRatio(self.grace_ratio));
        }
        if self.leaf_ttl < Duration::from_secs(1)
            || self.leaf_ttl > Duration::from_secs(90 * 24 * 3600)
        {
            return Err(ProfileError::LeafTtl(self.leaf_ttl));
        }
        Ok(())
    }
}

/// Why a profile cannot be used ([`IstioProfile::validate`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// An istiod or ztunnel release older than the oldest modelled one.
    #[error(
        "Istio {istio} / ztunnel {ztunnel}: meshtrust models Istio {} and newer (newer releases than {} are treated as {})",
        IstioVersion::OLDEST,
        IstioVersion::NEWEST,
        IstioVersion::NEWEST
    )]
    UnmodelledVersion {
        /// istiod's release.
        istio: IstioVersion,
        /// ztunnel's release.
        ztunnel: IstioVersion,
    },
    /// A grace ratio outside [0, 1).
    #[error("grace ratio {0} must be in [0, 1)")]
    GraceRatio(f64),
    /// A leaf TTL Istio refuses.
    #[error("leaf TTL must be between 1 s and 90 days (Istio's maximum), not {}", format_duration(*.0))]
    LeafTtl(Duration),
}

/// Equal when the same variant holds the same values (a ratio compared by its bits, so that a
/// NaN ratio equals itself).
impl PartialEq for ProfileError {
    fn eq(&self, other: &Self) -> bool {
        use ProfileError as E;
        match (self, other) {
            (
                E::UnmodelledVersion { istio, ztunnel },
                E::UnmodelledVersion {
                    istio: i,
                    ztunnel: z,
                },
            ) => istio == i && ztunnel == z,
            (E::GraceRatio(a), E::GraceRatio(b)) => a.to_bits() == b.to_bits(),
            (E::LeafTtl(a), E::LeafTtl(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for ProfileError {}

/// A duration [`parse_duration`] cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: expected e.g. 24h, 90m, 1h30m, 2d or seconds")]
pub struct DurationError {
    /// The text given.
    pub input: String,
}

/// Parses durations like `24h`, `90m`, `30s`, `2d`, `1h30m`, or plain seconds.
///
/// ```
/// use meshtrust::istio::parse_duration;
/// assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
/// assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
/// assert!(parse_duration("soon").is_err());
/// ```
pub fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        input: s.to_owned(),
    };
    let t = s.trim();
    if t.is_empty() {
        return Err(err());
    }
    if let Ok(n) = t.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| err())?;
        num.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(err()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
    }
    if !num.is_empty() {
        return Err(err());
    }
    Ok(Duration::from_secs(total))
}

/// Formats a duration the way [`parse_duration`] reads it (`1d2h`, `30m`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if s >= unit {
            out.push_str(&format!("{}{name}", s / unit));
            s %= unit;
        }
    }
    out
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> IstioVersion {
        s.parse().unwrap()
    }

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(v("1.29.0-beta.1"), v("1.29.0"));
        assert_eq!(v("1.31.0-rc.0"), IstioVersion::NEWEST);
        assert!(!v("1.31.9").is_newer_than_modelled());
        assert!(v("1.32.0").is_newer_than_modelled());
        assert_eq!(IstioVersion::known(), "1.22.0 to 1.31.x");
        assert!("1".parse::<IstioVersion>().is_err());
        assert!("1.x".parse::<IstioVersion>().is_err());
        assert!("1.2.3.4".parse::<IstioVersion>().is_err());
    }

    #[test]
    fn durations_round_trip() {
        for s in ["24h", "1d2h", "90m", "1h30m", "45s", "0s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(parse_duration(&format_duration(d)).unwrap(), d, "{s}");
        }
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn profile_validation() {
        assert!(IstioProfile::default().validate().is_ok());
        let old = IstioProfile {
            istio_version: "1.21.6".parse().unwrap(),
            ..IstioProfile::default()
        };
        assert!(old.validate().unwrap_err().to_string().contains("1.22.0"));
        let newer = IstioProfile {
            istio_version: "1.32.0".parse().unwrap(),
            ..IstioProfile::default()
        };
        assert!(newer.validate().is_ok());
        assert!(
            IstioProfile {
                grace_ratio: 1.0,
                ..IstioProfile::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            IstioProfile {
                leaf_ttl: Duration::ZERO,
                ..IstioProfile::default()
            }
            .validate()
            .is_err()
        );
        // Below one second no leaf can be issued (certificate times are whole seconds).
        for (ttl, ok) in [
            (Duration::from_millis(20), false),
            (Duration::from_secs(1), true),
        ] {
            let p = IstioProfile {
                leaf_ttl: ttl,
                ..IstioProfile::default()
            };
            assert_eq!(p.validate().is_ok(), ok, "{ttl:?}");
        }
    }

    #[test]
    fn rotation_after_never_panics() {
        let p = |ttl: Duration, grace_ratio: f64| IstioProfile {
            leaf_ttl: ttl,
            grace_ratio,
            ..IstioProfile::default()
        };
        let day = Duration::from_secs(86_400);
        assert_eq!(p(day, 0.25).rotation_after(), day * 3 / 4);
        assert_eq!(p(day, f64::NAN).rotation_after(), day);
        assert_eq!(p(day, -3.0).rotation_after(), day);
        assert_eq!(p(Duration::MAX, 0.0).rotation_after(), Duration::MAX);
    }
}
