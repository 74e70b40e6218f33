//! ztunnel's certificates: the admin `/config_dump` (key `certificates`) and
//! `istioctl ztunnel-config certificates -o json` (the array alone).
//!
//! Before 1.26 each entry is `{identity, state, certChain: [{pem, serialNumber, validFrom,
//! expirationTime}]}` with plain PEM and the root as the last element of `certChain`; from
//! 1.26 entries also carry `rootCerts`, `pem` holds base64 of the PEM text and serials are
//! decimal. Each identity becomes one [`ProxyReport`] named `POD/IDENTITY`; identities in
//! state `Initializing` or `Unavailable: ...` are reported as such, without certificates.

use crate::cert::Certificate;

use super::json::At;
use super::{
    CertRef, IdentityStatus, ObserveError, ProxyKind, ProxyReport, Reader, name_from_file,
};

pub(super) fn read(
    r: &mut Reader,
    file: &str,
    at: At<'_>,
) -> Result<Vec<ProxyReport>, ObserveError> {
    let pod = name_from_file(file);
    let mut out = Vec::new();
    let mut each = |list: At<'_>| list.each(|e| entry(r, &pod, e).map(|p| out.push(p)));
    if at.value.is_array() {
        each(at)?;
    } else {
        at.member(&["certificates"], &mut each)?;
    }
    Ok(out)
}

fn entry(r: &mut Reader, pod: &str, e: At<'_>) -> Result<ProxyReport, ObserveError> {
    let identity = e
        .opt_str(&["identity"])?
        .ok_or_else(|| e.error("an entry without identity"))?;
    let state = e.opt_str(&["state"])?.unwrap_or_default();
    let status = status(&state);
    let mut chain = e
        .member(&["certChain", "cert_chain"], |c| certs(r, c))?
        .unwrap_or_default();
    let roots = match e.member(&["rootCerts", "root_certs"], |c| certs(r, c))? {
        Some(roots) => roots,
        // Before 1.26 the root is the last element of certChain.
        None if chain.len() >= 2 => chain.pop().into_iter().collect(),
        None => Vec::new(),
    };
    if status == IdentityStatus::Active && chain.is_empty() {
        return Err(e.error("state Available but certChain is empty"));
    }
    let leaf = (!chain.is_empty()).then(|| chain.remove(0));
    Ok(ProxyReport {
        name: format!("{pod}/{identity}"),
        kind: ProxyKind::Ztunnel,
        identity: Some(identity),
        status,
        leaf: leaf.map(CertRef::Cert),
        chain: chain.into_iter().map(CertRef::Cert).collect(),
        roots: roots.into_iter().map(CertRef::Cert).collect(),
        cluster_id: None,
        cluster: None,
    })
}

/// `Available`, `Initializing`, `Unavailable: reason` (anything else counts as unavailable).
pub(super) fn status(state: &str) -> IdentityStatus {
    match state.trim() {
        "Available" | "" => IdentityStatus::Active,
        "Initializing" => IdentityStatus::Initializing,
        other => IdentityStatus::Unavailable(
            other
                .strip_prefix("Unavailable")
                .map(|s| s.trim_start_matches(':').trim())
                .unwrap_or(other)
                .to_owned(),
        ),
    }
}

/// One certificate per element; its `pem` is PEM text or base64 of it (1.26+). A decimal
/// (1.26+) or hex `serialNumber` must agree with the certificate.
fn certs(r: &mut Reader, list: At<'_>) -> Result<Vec<Certificate>, ObserveError> {
    let mut out = Vec::new();
    list.each(|el| {
        let pem = el
            .member(&["pem"], |p| {
                let text = p.str()?;
                if text.trim_start().starts_with("-----BEGIN") {
                    r.certs(text.as_bytes(), &p)
                } else {
                    r.certs_b64(text.trim(), &p)
                }
            })?
            .ok_or_else(|| el.error("an element without pem"))?;
        if let Some(serial) = el.member(&["serialNumber", "serial_number"], |s| {
            s.str().map(str::to_owned)
        })? {
            let want = pem[0].serial_hex();
            if !serial_matches(&serial, &want) {
                return Err(el.error(format!(
                    "serialNumber {serial} does not match the certificate's serial (hex {want})"
                )));
            }
        }
        out.extend(pem);
        Ok(())
    })?;
    Ok(out)
}

/// True when `shown` (decimal, or hex with or without `0x`) is the serial `hex`.
fn serial_matches(shown: &str, hex: &str) -> bool {
    let want = super::normalize_serial(hex);
    let shown = shown.trim();
    if shown.bytes().all(|b| b.is_ascii_digit()) {
        if let Some(h) = decimal_to_hex(shown) {
            if h == want {
                return true;
            }
        }
    }
    super::normalize_serial(shown) == want
}

/// A decimal number of any length as lowercase hex without leading zeros.
pub(super) fn decimal_to_hex(dec: &str) -> Option<String> {
    if dec.is_empty() || dec.len() > 200 || !dec.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Big-endian base-256 digits, multiplied by 10 and added to per decimal digit.
    let mut bytes: Vec<u8> = Vec::new();
    for d in dec.bytes() {
        let mut carry = u32::from(d - b'0');
        for b in bytes.iter_mut().rev() {
            let v = u32::from(*b) * 10 + carry;
            *b = (v & 0xff) as u8;
            carry = v >> 8;
        }
        while carry > 0 {
            bytes.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let hex = crate::text::hex(&bytes);
    Some(super::normalize_serial(&hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_serials() {
        assert_eq!(decimal_to_hex("0").as_deref(), Some("0"));
        assert_eq!(decimal_to_hex("255").as_deref(), Some("ff"));
        assert_eq!(decimal_to_hex("256").as_deref(), Some("100"));
        // The fixture's leaf: 0xe5dfb59150b2ba7f108d93dcec5aa613.
        assert_eq!(
            decimal_to_hex("305554775863395697262503895661564044819").as_deref(),
            Some("e5dfb59150b2ba7f108d93dcec5aa613")
        );
        assert_eq!(decimal_to_hex("12a"), None);
    }

    #[test]
    fn states() {
        assert_eq!(status("Available"), IdentityStatus::Active);
        assert_eq!(status("Initializing"), IdentityStatus::Initializing);
        assert_eq!(
            status("Unavailable: the identity is no longer needed"),
            IdentityStatus::Unavailable("the identity is no longer needed".to_owned())
        );
    }
}
