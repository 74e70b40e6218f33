//! Shared helpers of the commands: reading inputs with errors that name file and line,
//! writing to stdout, and the outcome/error types.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use meshtrust::Bundle;

/// What a command concluded (errors go through [`CliError`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the command ran and a check it performs failed.
    CheckFailed,
}

impl Outcome {
    /// Success when `ok`, else CheckFailed.
    pub(crate) fn from_ok(ok: bool) -> Outcome {
        if ok {
            Outcome::Success
        } else {
            Outcome::CheckFailed
        }
    }
}

/// An error that ends the command with exit code 2, printed as one line.
#[derive(Debug)]
pub(crate) struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CliError {
    /// `FILE: message`.
    pub(crate) fn in_file(path: &Path, msg: impl fmt::Display) -> CliError {
        CliError(format!("{}: {msg}", path.display()))
    }
}

/// Reads a file, or standard input for `-`.
pub(crate) fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| CliError::in_file(path, e))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| CliError::in_file(path, e))
}

/// Reads and parses a bundle file; errors name the file and the line.
pub(crate) fn read_bundle(path: &Path) -> Result<Bundle, CliError> {
    let bytes = read_input(path)?;
    // Errors from the library already say "line N: ..."; put the file in front.
    Bundle::parse_strict(&bytes).map_err(|e| CliError::in_file(path, e))
}

/// Notes on stderr every non-certificate block of a bundle file (a private key is named, never
/// shown).
pub(crate) fn note_other_blocks(path: &Path, bundle: &Bundle) {
    for other in bundle.other_blocks() {
        let what = if other.is_private_key() {
            "a private key (ignored, not shown)"
        } else {
            "not a certificate (ignored)"
        };
        eprintln!(
            "{}:{}: block {} ({}) is {what}",
            path.display(),
            other.begin_line,
            other.block,
            other.label
        );
    }
}

/// Writes raw bytes to standard output.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| CliError(format!("writing to stdout: {e}")))
}

/// Prints a value as pretty JSON on standard output.
pub(crate) fn print_json(value: &impl serde::Serialize) -> Result<(), CliError> {
    let mut text =
        serde_json::to_string_pretty(value).map_err(|e| CliError(format!("JSON output: {e}")))?;
    text.push('\n');
    write_stdout(text.as_bytes())
}

pub(crate) use meshtrust::text::{rfc3339, thousands};

/// A path as shown in output.
pub(crate) fn display_path(p: &Path) -> String {
    p.display().to_string()
}

/// Prints rows as a left-aligned table with a header.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), CliError> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let mut first = true;
        for (i, c) in cells.enumerate() {
            if !first {
                out.push_str("  ");
            }
            first = false;
            out.push_str(c);
            let pad = widths[i].saturating_sub(c.chars().count());
            if i + 1 < widths.len() {
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
    };
    line(&mut header.iter().copied(), &mut out);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    write_stdout(out.as_bytes())
}

/// Reads a CA secret from a directory, a kubectl YAML/JSON file, or standard input for `-`
/// (`kubectl get secret cacerts -n istio-system -o yaml | meshtrust check -`). Errors name the
/// path once, after the option it came from when there is one (`--current cur.yaml: line 3:
/// ...`).
pub(crate) fn read_secret(
    option: Option<&str>,
    path: &Path,
) -> Result<meshtrust::istio::CaSecret, CliError> {
    use meshtrust::istio::{self, ReadError};
    let shown = match option {
        Some(o) => format!("{o} {}", path.display()),
        None => path.display().to_string(),
    };
    let result = if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| CliError(format!("{shown}: {e}")))?;
        istio::parse_manifest(&bytes)
    } else {
        istio::read_path(path)
    };
    result.map_err(|e| match e {
        // The library's I/O error already names the path: do not repeat it.
        ReadError::Io { message, .. } => CliError(format!("{shown}: {message}")),
        ReadError::NotASecret { line: 1, message } => {
            let p = format!("{}: ", path.display());
            CliError(format!(
                "{shown}: {}",
                message.strip_prefix(&p).unwrap_or(&message)
            ))
        }
        other => CliError(format!("{shown}: {other}")),
    })
}

/// Like [`print_table`], but cells are cut (ending in `…`) so that no line is wider than
/// `width` columns: the widest column loses a character at a time, down to 6.
pub(crate) fn print_table_fitted(
    width: usize,
    header: &[&str],
    rows: &[Vec<String>],
) -> Result<(), CliError> {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    while total(&widths) > width {
        let Some((i, _)) = widths
            .iter()
            .enumerate()
            .filter(|(i, w)| **w > 6 && **w > header[*i].chars().count())
            .max_by_key(|(_, w)| **w)
        else {
            break;
        };
        widths[i] -= 1;
    }
    let cut = |s: &str, w: usize| -> String {
        if s.chars().count() <= w {
            s.to_owned()
        } else {
            let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
            t.push('…');
            t
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| cut(c, widths.get(i).copied().unwrap_or(usize::MAX)))
                .collect()
        })
        .collect();
    print_table(header, &rows)
}
