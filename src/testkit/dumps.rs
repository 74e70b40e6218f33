//! What operators' tools print about a proxy, written from certificates: Envoy's secrets dump
//! (snake_case as the admin endpoint serves it, or camelCase as `istioctl proxy-config secret
//! -o json` prints it), ztunnel's certificates (pre-1.26 and 1.26+ forms) and the
//! `istio-ca-root-cert` ConfigMap list. Tests, benches and fuzz seeds build mesh observations
//! with these and read them back with [`crate::observe`].
//!
//! ```
//! use meshtrust::{testkit::dumps, observe};
//! let certs = meshtrust::testkit::bundles::sample_certificates();
//! let json = dumps::envoy(&certs[..2], &certs[2..3], false);
//! let observe::Observation::Proxies(p) = observe::read("pod-a.json", json.as_bytes()).unwrap() else { panic!() };
//! assert_eq!(p[0].roots.len(), 1);
//! ```

use crate::cert::Certificate;

fn pem(certs: &[Certificate]) -> String {
    certs.iter().map(Certificate::to_pem).collect()
}

fn b64(s: &str) -> String {
    crate::b64::encode(s.as_bytes())
}

/// An Envoy secrets dump: secret `default` holds `chain` (leaf first, then what the proxy
/// presents), `ROOTCA` holds `roots`. `camel` spells keys as istioctl `-o json` does.
pub fn envoy(chain: &[Certificate], roots: &[Certificate], camel: bool) -> String {
    let k = |snake: &'static str, camel_k: &'static str| if camel { camel_k } else { snake };
    let v = serde_json::json!({
        "configs": [{
            "@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
            k("dynamic_active_secrets", "dynamicActiveSecrets"): [
                {
                    "name": "default",
                    "secret": {
                        "name": "default",
                        k("tls_certificate", "tlsCertificate"): {
                            k("certificate_chain", "certificateChain"): {
                                k("inline_bytes", "inlineBytes"): b64(&pem(chain))
                            },
                            k("private_key", "privateKey"): {
                                k("inline_bytes", "inlineBytes"): "W3JlZGFjdGVkXQ=="
                            }
                        }
                    }
                },
                {
                    "name": "ROOTCA",
                    "secret": {
                        "name": "ROOTCA",
                        k("validation_context", "validationContext"): {
                            k("trusted_ca", "trustedCa"): {
                                k("inline_bytes", "inlineBytes"): b64(&pem(roots))
                            }
                        }
                    }
                }
            ]
        }]
    });
    v.to_string()
}

/// An Envoy `config_dump` as [`envoy`] writes it, preceded by a BootstrapConfigDump whose node
/// has `id` (`sidecar~IP~POD.NAMESPACE~DOMAIN`) and, when given, `metadata.CLUSTER_ID`.
pub fn envoy_on_node(
    chain: &[Certificate],
    roots: &[Certificate],
    camel: bool,
    node_id: &str,
    cluster_id: Option<&str>,
) -> String {
    let mut v: serde_json::Value =
        serde_json::from_str(&envoy(chain, roots, camel)).unwrap_or_default();
    let mut node = serde_json::json!({ "id": node_id, "cluster": "app.default" });
    if let Some(c) = cluster_id {
        node["metadata"] = serde_json::json!({ "CLUSTER_ID": c });
    }
    let bootstrap = serde_json::json!({
        "@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
        "bootstrap": { "node": node }
    });
    if let Some(configs) = v["configs"].as_array_mut() {
        configs.insert(0, bootstrap);
    }
    v.to_string()
}

/// One ztunnel identity: its chain (leaf first) and the roots it holds.
#[derive(Debug, Clone)]
pub struct ZtunnelIdentity {
    /// The SPIFFE ID.
    pub identity: String,
    /// Leaf, then intermediates.
    pub chain: Vec<Certificate>,
    /// Its roots.
    pub roots: Vec<Certificate>,
}

fn ztunnel_cert(c: &Certificate, modern: bool) -> serde_json::Value {
    let serial = crate::observe::normalize_serial(&c.serial_hex());
    serde_json::json!({
        "pem": if modern { b64(&c.to_pem()) } else { c.to_pem() },
        "serialNumber": if modern { hex_to_decimal(&serial) } else { serial },
        "validFrom": crate::observe::format_instant(c.not_before()),
        "expirationTime": crate::observe::format_instant(c.not_after()),
    })
}

/// A ztunnel `/config_dump` (`{"certificates": [...]}`). `modern` writes the 1.26+ form
/// (`rootCerts`, base64 PEM, decimal serials); otherwise the pre-1.26 form, where the root
/// (the first of `roots`) is the last element of `certChain`.
pub fn ztunnel(identities: &[ZtunnelIdentity], modern: bool) -> String {
    let certs: Vec<serde_json::Value> = identities
        .iter()
        .map(|i| {
            let mut chain: Vec<serde_json::Value> =
                i.chain.iter().map(|c| ztunnel_cert(c, modern)).collect();
            let mut e = serde_json::json!({"identity": i.identity, "state": "Available"});
            if modern {
                e["rootCerts"] = i.roots.iter().map(|c| ztunnel_cert(c, true)).collect();
            } else if let Some(r) = i.roots.first() {
                chain.push(ztunnel_cert(r, false));
            }
            e["certChain"] = serde_json::Value::Array(chain);
            e
        })
        .collect();
    serde_json::json!({ "certificates": certs }).to_string()
}

/// `kubectl get configmap istio-ca-root-cert -A -o json`: one ConfigMap per (namespace,
/// root-cert.pem bytes).
pub fn configmaps(namespaces: &[(&str, &[u8])]) -> String {
    let items: Vec<serde_json::Value> = namespaces
        .iter()
        .map(|(ns, bytes)| {
            serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "istio-ca-root-cert", "namespace": ns},
                "data": {"root-cert.pem": String::from_utf8_lossy(bytes)},
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// A hex number as decimal (ztunnel 1.26+ prints serials in decimal).
pub fn hex_to_decimal(hex: &str) -> String {
    let mut digits: Vec<u8> = vec![0]; // little-endian decimal digits
    for h in hex.chars().filter_map(|c| c.to_digit(16)) {
        let mut carry = h;
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 16 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    while digits.len() > 1 && digits.last() == Some(&0) {
        digits.pop();
    }
    digits.iter().rev().map(|d| char::from(b'0' + d)).collect()
}

/// Certificates of one phase's cluster secret (the first cluster's, or `cluster`'s):
/// (signer issuer, root-file certificates, root-file bytes).
fn phase_issuer(
    plan: &crate::plan::Plan,
    phase: usize,
    cluster: Option<&str>,
) -> Result<(crate::generate::Issuer, Vec<Certificate>, Vec<u8>), crate::generate::GenerateError> {
    use crate::generate::{GenerateError, Issuer};
    let bad = |what: &str| GenerateError::InvalidSpec {
        field: "plan",
        reason: what.to_owned(),
    };
    let secret = plan
        .phases
        .get(phase)
        .and_then(|p| match cluster {
            Some(name) => p.clusters.iter().find(|c| c.cluster == name),
            None => p.clusters.first(),
        })
        .map(|c| &c.secret)
        .ok_or_else(|| bad("no such phase"))?;
    let cert = secret.ca_cert().map_err(|e| bad(&e.to_string()))?;
    let key = secret.ca_key().map_err(|e| bad(&e.to_string()))?;
    let chain: Vec<Certificate> = secret
        .cert_chain()
        .map(|b| b.certificates().filter(|c| **c != cert).cloned().collect())
        .unwrap_or_default();
    let roots = secret.root_bundle().map_err(|e| bad(&e.to_string()))?;
    let root_certs: Vec<Certificate> = roots.certificates().cloned().collect();
    let issuer = Issuer::new(cert, key)?.with_chain(chain)?;
    Ok((issuer, root_certs, roots.bytes().to_vec()))
}

/// A mesh in the state of `plan`'s phase `phase` (its first cluster): `sidecars` Envoy dumps
/// (leaf signed by the phase's signer with an ECDSA P-256 key, presenting leaf + chain + the
/// root file; trusting every root of the root file) and `ztunnels` ztunnel dumps (1.26+ form,
/// one identity each, trusting every root), plus the ConfigMap of namespace `istio-system`.
/// Returns (file name, contents) pairs, as `--save` writes them.
pub fn phase_mesh(
    plan: &crate::plan::Plan,
    phase: usize,
    sidecars: usize,
    ztunnels: usize,
    now: time::OffsetDateTime,
) -> Result<Vec<(String, String)>, crate::generate::GenerateError> {
    mesh_of(plan, phase, None, sidecars, ztunnels, now)
}

/// [`phase_mesh`] for cluster `cluster` of a multi-cluster plan: its phase secret's signer
/// and root file; file names start with `CLUSTER-` (`cluster2-app-0.default.json`).
pub fn phase_mesh_in(
    plan: &crate::plan::Plan,
    phase: usize,
    cluster: &str,
    sidecars: usize,
    ztunnels: usize,
    now: time::OffsetDateTime,
) -> Result<Vec<(String, String)>, crate::generate::GenerateError> {
    let mut files = mesh_of(plan, phase, Some(cluster), sidecars, ztunnels, now)?;
    for (name, _) in &mut files {
        *name = format!("{cluster}-{name}");
    }
    Ok(files)
}

fn mesh_of(
    plan: &crate::plan::Plan,
    phase: usize,
    cluster: Option<&str>,
    sidecars: usize,
    ztunnels: usize,
    now: time::OffsetDateTime,
) -> Result<Vec<(String, String)>, crate::generate::GenerateError> {
    use crate::cert::SpiffeId;
    use crate::generate::{self, KeyType, LeafSpec};
    let (issuer, root_file, root_bytes) = phase_issuer(plan, phase, cluster)?;
    let mut roots = root_file.clone();
    let mut seen = std::collections::HashSet::new();
    roots.retain(|c| seen.insert(c.fingerprint()));
    let mut out = Vec::with_capacity(sidecars + ztunnels + 1);
    let leaf = |sa: &str| -> Result<Vec<Certificate>, generate::GenerateError> {
        let id = SpiffeId::istio("cluster.local", "default", sa).map_err(|e| {
            generate::GenerateError::InvalidSpec {
                field: "spiffe_id",
                reason: e.to_string(),
            }
        })?;
        let spec = LeafSpec {
            key_type: KeyType::EcP256,
            ..LeafSpec::istio(id)
        };
        let g = generate::leaf(&spec, &issuer, now)?;
        let mut chain = vec![g.certificate.clone()];
        chain.extend(g.chain.iter().cloned());
        Ok(chain)
    };
    for i in 0..sidecars {
        let mut chain = leaf(&format!("app-{i}"))?;
        chain.retain(|c| !c.is_self_issued());
        chain.extend(root_file.iter().cloned());
        out.push((
            format!("app-{i}.default.json"),
            envoy(&chain, &roots, i % 2 == 1),
        ));
    }
    for i in 0..ztunnels {
        let mut chain = leaf(&format!("zt-{i}"))?;
        chain.retain(|c| !c.is_self_issued());
        let id = ZtunnelIdentity {
            identity: format!("spiffe://cluster.local/ns/default/sa/zt-{i}"),
            chain,
            roots: roots.clone(),
        };
        out.push((
            format!("ztunnel-{i}.istio-system.json"),
            ztunnel(&[id], true),
        ));
    }
    out.push((
        "configmaps.json".to_owned(),
        configmaps(&[("istio-system", &root_bytes)]),
    ));
    Ok(out)
}
