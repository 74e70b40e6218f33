//! The two istioctl tables: `istioctl proxy-config secret POD` and `istioctl ztunnel-config
//! certificates POD`. They carry serials, not certificates: the evaluation matches the serials
//! against the certificates it knows (the plan's, the secrets', other dumps') and says when a
//! row cannot be matched.

use super::{
    CertRef, IdentityStatus, ObserveError, ProxyKind, ProxyReport, kind_from_name, name_from_file,
};

/// Column start offsets of `titles` in the header line.
fn columns(input: &str, header: &str, titles: &[&str]) -> Result<Vec<usize>, ObserveError> {
    let mut out = Vec::with_capacity(titles.len());
    for t in titles {
        let pos = header.find(t).ok_or_else(|| {
            ObserveError::new(input, "line 1", format!("header has no column {t:?}"))
        })?;
        out.push(pos);
    }
    if out.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ObserveError::new(
            input,
            "line 1",
            "header columns out of order",
        ));
    }
    Ok(out)
}

/// The cells of a row, cut at the header's column offsets.
fn cells<'a>(line: &'a str, cols: &[usize]) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(cols.len());
    for (i, &start) in cols.iter().enumerate() {
        let end = cols
            .get(i + 1)
            .copied()
            .unwrap_or(line.len())
            .min(line.len());
        let start = start.min(line.len());
        out.push(line.get(start..end).map(str::trim).unwrap_or(""));
    }
    out
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')))
        .filter(|(_, l)| !l.trim().is_empty())
}

fn serial_cell(input: &str, line: usize, s: &str) -> Result<Option<CertRef>, ObserveError> {
    if s.is_empty() || s == "NA" {
        return Ok(None);
    }
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ObserveError::new(
            input,
            format!("line {line}"),
            format!("serial {s:?} is not hex"),
        ));
    }
    Ok(Some(CertRef::Serial(super::normalize_serial(s))))
}

/// `istioctl proxy-config secret POD`: rows `default` (the leaf's serial) and `ROOTCA` (the
/// first root's serial); only the first PEM block of each secret is shown.
pub(super) fn proxy_secret(input: &str, text: &str) -> Result<ProxyReport, ObserveError> {
    let mut it = lines(text);
    let (_, header) = it
        .next()
        .ok_or_else(|| ObserveError::new(input, "line 1", "empty table"))?;
    let cols = columns(
        input,
        header,
        &[
            "RESOURCE NAME",
            "TYPE",
            "STATUS",
            "VALID CERT",
            "SERIAL NUMBER",
            "NOT AFTER",
        ],
    )?;
    let name = name_from_file(input);
    let mut report = ProxyReport {
        kind: kind_from_name(&name),
        name,
        identity: None,
        status: IdentityStatus::Warming,
        leaf: None,
        chain: Vec::new(),
        roots: Vec::new(),
        cluster_id: None,
        cluster: None,
    };
    for (n, line) in it {
        let c = cells(line, &cols);
        let active = c[2] == "ACTIVE";
        match c[0] {
            "default" => {
                report.leaf = serial_cell(input, n, c[4])?;
                if active {
                    report.status = IdentityStatus::Active;
                }
            }
            "ROOTCA" => report.roots.extend(serial_cell(input, n, c[4])?),
            _ => {}
        }
    }
    Ok(report)
}

/// `istioctl ztunnel-config certificates POD`: per identity a `Leaf` row, any `Intermediate`
/// rows and `Root` rows; `NA` rows for identities without certificates.
pub(super) fn ztunnel_certificates(
    input: &str,
    text: &str,
) -> Result<Vec<ProxyReport>, ObserveError> {
    let mut it = lines(text);
    let (_, header) = it
        .next()
        .ok_or_else(|| ObserveError::new(input, "line 1", "empty table"))?;
    let cols = columns(
        input,
        header,
        &[
            "CERTIFICATE NAME",
            "TYPE",
            "STATUS",
            "VALID CERT",
            "SERIAL NUMBER",
            "NOT AFTER",
        ],
    )?;
    let pod = name_from_file(input);
    let mut out: Vec<ProxyReport> = Vec::new();
    for (n, line) in it {
        let c = cells(line, &cols);
        let (identity, kind, state) = (c[0], c[1], c[2]);
        if identity.is_empty() {
            return Err(ObserveError::new(
                input,
                format!("line {n}"),
                "a row without certificate name",
            ));
        }
        let starts = matches!(kind, "Leaf" | "NA")
            || out
                .last()
                .is_none_or(|p| p.identity.as_deref() != Some(identity));
        if starts {
            out.push(ProxyReport {
                name: format!("{pod}/{identity}"),
                kind: ProxyKind::Ztunnel,
                identity: Some(identity.to_owned()),
                status: super::ztunnel::status(state),
                leaf: None,
                chain: Vec::new(),
                roots: Vec::new(),
                cluster_id: None,
                cluster: None,
            });
        }
        let serial = serial_cell(input, n, c[4])?;
        let Some(p) = out.last_mut() else { continue };
        match kind {
            "Leaf" => p.leaf = serial,
            "Root" => p.roots.extend(serial),
            "NA" => {}
            _ => p.chain.extend(serial),
        }
    }
    Ok(out)
}
