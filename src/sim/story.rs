//! The human account of a simulation: per phase, what istiod and the operator did, how the
//! proxies moved, and whether traffic held.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::{Outcome, PhaseReport, ProxyKind};
use crate::istio::format_duration;

pub(crate) use crate::text::rfc3339;

/// `+1d2h3m` from the start of the run.
fn offset(start: OffsetDateTime, t: OffsetDateTime) -> String {
    let secs = (t - start).whole_seconds();
    if secs < 0 {
        format!(
            "-{}",
            format_duration(std::time::Duration::from_secs(secs.unsigned_abs()))
        )
    } else {
        format!(
            "+{}",
            format_duration(std::time::Duration::from_secs(secs.unsigned_abs()))
        )
    }
}

pub(crate) use crate::text::thousands;

fn plural_of(word: &str, n: u64) -> String {
    if n == 1 {
        format!("{} {word}", thousands(n))
    } else {
        format!("{} {word}s", thousands(n))
    }
}

fn plural(kind: ProxyKind, n: usize) -> String {
    if n == 1 {
        kind.to_string()
    } else {
        format!("{kind}s")
    }
}

fn census_lines(out: &mut String, r: &PhaseReport, multi: bool) {
    for row in &r.census {
        let _ = writeln!(
            out,
            "    {:>6} {}{} trust {{{}}}, leaves from {}",
            row.proxies,
            plural(row.kind, row.proxies),
            if multi {
                format!(" in {}", row.cluster)
            } else {
                String::new()
            },
            row.trusts.join(", "),
            row.signer
        );
    }
}

pub(super) fn render(o: &Outcome) -> String {
    let mut s = String::new();
    let multi = o
        .phases
        .iter()
        .flat_map(|p| p.census.iter().map(|c| c.cluster.as_str()))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    legend(&mut s, o);
    for r in &o.phases {
        phase(&mut s, o, r, multi);
    }
    verdict(&mut s, o, multi);
    s
}

/// The run's settings, and the roots and signers with their labels.
fn legend(s: &mut String, o: &Outcome) {
    let _ = writeln!(
        s,
        "Simulated {} proxies from {} for {} (seed {}).",
        o.proxies,
        rfc3339(o.start),
        format_duration(std::time::Duration::from_secs(
            (o.end - o.start).whole_seconds().unsigned_abs()
        )),
        o.seed
    );
    for r in &o.roots {
        let _ = writeln!(
            s,
            "  root {} = \"{}\" sha256:{}",
            r.label,
            r.subject,
            r.fingerprint.short()
        );
    }
    for r in &o.signers {
        let _ = writeln!(
            s,
            "  signer {} = \"{}\" sha256:{}",
            r.label,
            r.subject,
            r.fingerprint.short()
        );
    }
}

/// Phase `r`: its log, its leaves, the census at its end and its traffic.
fn phase(s: &mut String, o: &Outcome, r: &PhaseReport, multi: bool) {
    let _ = writeln!(
        s,
        "\n{} [{} .. {}]{}",
        r.name,
        offset(o.start, r.started),
        offset(o.start, r.ended),
        if r.title.is_empty() {
            String::new()
        } else {
            format!(": {}", r.title)
        }
    );
    let lines: Vec<_> = o.log.iter().filter(|l| l.phase == r.name).collect();
    for l in lines.iter().take(12) {
        let _ = writeln!(
            s,
            "  {} {}{}",
            offset(o.start, l.time),
            if l.cluster.is_empty() || !multi {
                String::new()
            } else {
                format!("[{}] ", l.cluster)
            },
            l.message
        );
    }
    if lines.len() > 12 {
        let _ = writeln!(s, "  ... and {} more log lines", lines.len() - 12);
    }
    let _ = writeln!(
        s,
        "  leaves: {} rotated, {} re-issued on a new trust bundle, {} after restarts; {} pushes",
        r.rotations, r.reissued_on_push, r.restarts, r.pushes
    );
    let _ = writeln!(s, "  at the end:");
    census_lines(s, r, multi);
    traffic(s, o, r);
}

/// Phase `r`'s traffic, and its first failure.
fn traffic(s: &mut String, o: &Outcome, r: &PhaseReport) {
    if r.failed_connections == 0 {
        let _ = writeln!(
            s,
            "  traffic: {} checked at {}, none failed",
            plural_of("connection", r.connections),
            plural_of("event", r.events)
        );
        return;
    }
    let _ = writeln!(
        s,
        "  traffic: {} checked at {}, {} FAILED",
        plural_of("connection", r.connections),
        plural_of("event", r.events),
        thousands(r.failed_connections)
    );
    if let Some(f) = o.failures.iter().find(|f| f.phase == r.name) {
        let _ = writeln!(
            s,
            "    first: {} {} -> {}: {} (a leaf from {}; it trusts {{{}}}, verifies as {}): {}",
            offset(o.start, f.time),
            f.from,
            f.to,
            f.direction,
            f.signer,
            f.trusts.join(", "),
            f.verifier,
            f.reason
        );
    }
}

/// The totals, the deviations and the result.
fn verdict(s: &mut String, o: &Outcome, multi: bool) {
    let _ = writeln!(
        s,
        "\n{} events, {} connections checked, {} failed.",
        thousands(o.events),
        thousands(o.connections),
        thousands(o.failed_connections)
    );
    if !o.deviations.is_empty() {
        let _ = writeln!(s, "The plan did not run as written:");
        for d in &o.deviations {
            let _ = writeln!(
                s,
                "  {} {}{}: {}",
                offset(o.start, d.time),
                d.phase,
                if d.cluster.is_empty() || !multi {
                    String::new()
                } else {
                    format!(" [{}]", d.cluster)
                },
                d.message
            );
        }
    }
    if o.ran_as_planned() {
        let _ = writeln!(
            s,
            "Result: OK, no connection failed and the mesh ended in the plan's final state."
        );
    } else if o.ok() {
        let _ = writeln!(
            s,
            "Result: no connection failed, but the plan did not run as written."
        );
    } else {
        let _ = writeln!(
            s,
            "Result: FAILED, {} connection checks failed ({} distinct failures recorded{}).",
            thousands(o.failed_connections),
            o.failures.len(),
            if o.failures_truncated {
                ", more not recorded"
            } else {
                ""
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let t = time::macros::datetime!(2026-01-01 0:00 UTC);
        assert_eq!(offset(t, t + time::Duration::hours(25)), "+1d1h");
        assert_eq!(offset(t, t), "+0s");
        assert_eq!(rfc3339(t), "2026-01-01T00:00:00Z");
    }
}
