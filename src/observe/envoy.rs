//! Envoy's secrets config dump, as the admin endpoint serves it (snake_case) and as
//! `istioctl proxy-config secret POD -o json` prints it (camelCase).
//!
//! Shapes read: `{configs: [{@type: ...SecretsConfigDump, dynamic_active_secrets: [...],
//! dynamic_warming_secrets: [...]}, ...]}` (a full `config_dump` also holds a
//! BootstrapConfigDump, whose `node.id` names the pod and its kind and
//! `node.metadata.CLUSTER_ID` its cluster) or the SecretsConfigDump object alone. Secret `default` holds the workload chain (leaf, chain,
//! then the roots istiod sent); `ROOTCA` the trust bundle, as `trusted_ca` or as SPIFFE trust
//! domains (`custom_validator_config.typed_config.trust_domains[].trust_bundle`).

use crate::cert::Certificate;

use super::json::At;
use super::{
    CertRef, IdentityStatus, ObserveError, ProxyKind, ProxyReport, Reader, kind_from_name,
    name_from_file,
};

#[derive(Default)]
struct Found {
    chain: Option<(Vec<Certificate>, bool)>,
    roots: Option<Vec<Certificate>>,
    name: Option<String>,
    kind: Option<ProxyKind>,
    cluster_id: Option<String>,
    seen_secrets: bool,
}

pub(super) fn read(r: &mut Reader, file: &str, at: At<'_>) -> Result<ProxyReport, ObserveError> {
    let mut found = Found::default();
    let wrapped = at.member(&["configs"], |configs| {
        configs.each(|cfg| dump(r, cfg, &mut found))
    })?;
    if wrapped.is_none() {
        dump(r, at, &mut found)?;
    }
    if !found.seen_secrets {
        return Err(at.error(
            "not a secrets dump: no dynamic_active_secrets / dynamicActiveSecrets (nor a ztunnel dump's certificates)",
        ));
    }
    let name = found.name.unwrap_or_else(|| name_from_file(file));
    let kind = found.kind.unwrap_or_else(|| kind_from_name(&name));
    let (status, leaf, chain) = match found.chain {
        Some((mut certs, active)) => {
            let leaf = certs.remove(0);
            let status = if active {
                IdentityStatus::Active
            } else {
                IdentityStatus::Warming
            };
            (status, Some(leaf), certs)
        }
        None => (IdentityStatus::Warming, None, Vec::new()),
    };
    // Without ROOTCA, the roots are the self-issued certificates istiod sent after the chain.
    let roots = found.roots.unwrap_or_else(|| {
        chain
            .iter()
            .filter(|c| c.is_self_issued())
            .cloned()
            .collect()
    });
    Ok(ProxyReport {
        identity: leaf.as_ref().and_then(|l| {
            l.san_uris()
                .iter()
                .find(|u| u.starts_with("spiffe://"))
                .cloned()
        }),
        name,
        kind,
        status,
        leaf: leaf.map(CertRef::Cert),
        chain: chain.into_iter().map(CertRef::Cert).collect(),
        roots: roots.into_iter().map(CertRef::Cert).collect(),
        cluster_id: found.cluster_id,
        cluster: None,
    })
}

/// One element of `configs` (or the unwrapped SecretsConfigDump).
fn dump(r: &mut Reader, cfg: At<'_>, found: &mut Found) -> Result<(), ObserveError> {
    if !cfg.value.is_object() {
        return Err(cfg.error("expected an object"));
    }
    cfg.member(&["bootstrap"], |b| {
        b.member(&["node"], |n| node(n, found)).map(|_| ())
    })?;
    for (keys, active) in [
        (["dynamic_active_secrets", "dynamicActiveSecrets"], true),
        (["dynamic_warming_secrets", "dynamicWarmingSecrets"], false),
    ] {
        cfg.member(&keys, |list| {
            found.seen_secrets = true;
            list.each(|s| secret(r, s, active, found))
        })?;
    }
    cfg.member(&["static_secrets", "staticSecrets"], |_| {
        found.seen_secrets = true;
        Ok(())
    })?;
    Ok(())
}

/// The bootstrap's node: `id` is `TYPE~IP~POD.NAMESPACE~DOMAIN` (`sidecar` or `router`);
/// `metadata.CLUSTER_ID` names the Kubernetes cluster (Istio's `--clusterID`).
fn node(n: At<'_>, found: &mut Found) -> Result<(), ObserveError> {
    // Evidence only: metadata of another shape is ignored, as it was before it was read.
    found.cluster_id = n
        .value
        .get("metadata")
        .and_then(|m| m.get("CLUSTER_ID"))
        .and_then(|c| c.as_str())
        .filter(|c| !c.trim().is_empty())
        .map(str::to_owned);
    if let Some(id) = n.opt_str(&["id"])? {
        let parts: Vec<&str> = id.split('~').collect();
        if parts.len() == 4 {
            found.name = Some(parts[2].to_owned());
            found.kind = Some(match parts[0] {
                "router" => kind_from_name(parts[2]).max(ProxyKind::Gateway),
                _ => ProxyKind::Sidecar,
            });
        }
    }
    Ok(())
}

fn secret(r: &mut Reader, s: At<'_>, active: bool, found: &mut Found) -> Result<(), ObserveError> {
    let Some(name) = s.opt_str(&["name"])? else {
        return Err(s.error("a secret without a name"));
    };
    match name.as_str() {
        "default" => {
            let certs = s.member(&["secret"], |sec| {
                sec.member(&["tls_certificate", "tlsCertificate"], |tls| {
                    tls.member(&["certificate_chain", "certificateChain"], |cc| {
                        inline_bytes(r, cc)
                    })
                })
            })?;
            let certs = certs.flatten().flatten();
            // An active `default` wins over a warming one.
            if let Some(c) = certs {
                if active || found.chain.is_none() {
                    found.chain = Some((c, active));
                }
            }
        }
        "ROOTCA" => {
            let roots = s.member(&["secret"], |sec| {
                sec.member(&["validation_context", "validationContext"], |vc| {
                    validation_context(r, vc)
                })
            })?;
            if let Some(Some(roots)) = roots {
                if active || found.roots.is_none() {
                    found.roots = Some(roots);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A validation context's roots: `trusted_ca`, then every SPIFFE trust domain's bundle.
fn validation_context(r: &mut Reader, vc: At<'_>) -> Result<Vec<Certificate>, ObserveError> {
    let mut roots = vc
        .member(&["trusted_ca", "trustedCa"], |t| inline_bytes(r, t))?
        .unwrap_or_default();
    vc.member(&["custom_validator_config", "customValidatorConfig"], |c| {
        c.member(&["typed_config", "typedConfig"], |t| {
            t.member(&["trust_domains", "trustDomains"], |tds| {
                tds.each(|td| {
                    let b = td.member(&["trust_bundle", "trustBundle"], |b| inline_bytes(r, b))?;
                    roots.extend(b.unwrap_or_default());
                    Ok(())
                })
            })
        })
    })?;
    Ok(roots)
}

/// A DataSource: `inline_bytes` (base64 of PEM) or `inline_string` (PEM).
fn inline_bytes(r: &mut Reader, ds: At<'_>) -> Result<Vec<Certificate>, ObserveError> {
    if let Some(certs) = ds.member(&["inline_bytes", "inlineBytes"], |b| {
        let text = b.str()?;
        r.certs_b64(text, &b)
    })? {
        return Ok(certs);
    }
    if let Some(certs) = ds.member(&["inline_string", "inlineString"], |b| {
        let text = b.str()?;
        r.certs(text.as_bytes(), &b)
    })? {
        return Ok(certs);
    }
    Err(ds.error("no inline_bytes or inline_string"))
}
