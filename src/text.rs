//! Formatting shared by the library's messages and the command line: one way to write an
//! instant and a count.
//!
//! ```
//! use meshtrust::text;
//! let t = time::macros::datetime!(2026-11-22 04:47:52 +1);
//! assert_eq!(text::rfc3339(t), "2026-11-22T03:47:52Z");
//! assert_eq!(text::rfc3339_unix(0), "1970-01-01T00:00:00Z");
//! assert_eq!(text::thousands(1_234_567), "1,234,567");
//! ```

use time::OffsetDateTime;

/// An instant as RFC 3339 in UTC with a `Z` (`2026-11-22T04:47:52Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| format!("@{}", t.unix_timestamp()))
}

/// Unix seconds as [`rfc3339`], or `@SECONDS` when out of the representable range.
pub fn rfc3339_unix(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix).map_or_else(|_| format!("@{unix}"), rfc3339)
}

/// A count with thousands separators (`1,234,567`).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as lowercase hex, two digits each, no separators (serials, fingerprints, names
/// that cannot be decoded).
///
/// ```
/// assert_eq!(meshtrust::text::hex(&[0x00, 0xab, 0x10]), "00ab10");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}
