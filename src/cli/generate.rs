//! `meshtrust generate root|intermediate|leaf`: Istio-layout CA material, written atomically.

use std::path::{Path, PathBuf};

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use meshtrust::generate::{self, Attribute, IntermediateSpec, Issuer, KeyType, LeafSpec, RootSpec};
use meshtrust::{Certificate, Role, SpiffeId, fsio, istio};

use super::common::{self, CliError, Outcome};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// A self-signed root CA, as Istio's `make -f Makefile.selfsigned.mk root-ca`
    /// (O=Istio, CN=Root CA, RSA 4096, 3650 days): writes DIR/root-cert.pem and
    /// DIR/root-key.pem.
    Root {
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        ca: CaArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// An intermediate CA for cluster NAME signed by the root in --root DIR (reads
    /// DIR/root-cert.pem and DIR/root-key.pem), or by the intermediate in --ca DIR (a cacerts
    /// directory: the new cert-chain.pem is the new certificate followed by the parent's chain
    /// up to the root), as Istio's `<NAME>-cacerts` (O=Istio, CN=Intermediate CA, L=NAME,
    /// RSA 4096, 730 days, pathlen 0, never beyond the issuer chain): writes
    /// OUT/NAME/{ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem}. Refused when a
    /// pathLenConstraint above forbids another level (Istio's own intermediates have pathlen 0).
    Intermediate {
        /// Directory holding root-cert.pem and root-key.pem.
        #[arg(
            long,
            value_name = "DIR",
            required_unless_present = "parent_ca",
            conflicts_with = "parent_ca"
        )]
        root: Option<PathBuf>,
        /// Sign under an existing intermediate instead: a cacerts directory (ca-cert.pem,
        /// ca-key.pem, cert-chain.pem, root-cert.pem).
        #[arg(long = "ca", id = "parent_ca", value_name = "DIR")]
        parent: Option<PathBuf>,
        /// Cluster name: the subject's L= and the output subdirectory.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Output directory; files go to OUT/NAME/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        ca: CaArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A workload certificate as istiod signs it (empty subject, critical SPIFFE URI SAN,
    /// notBefore now - 2 min, TTL capped by the CA chain) from the CA in --ca DIR
    /// (ca-cert.pem + ca-key.pem [+ cert-chain.pem, root-cert.pem], or a root directory):
    /// writes DIR/{cert-chain.pem, key.pem, root-cert.pem, workload-cert.pem}.
    Leaf {
        /// CA directory: a cacerts directory, or a root directory.
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The workload identity, spiffe://TRUST-DOMAIN/ns/NS/sa/SA.
        #[arg(long, value_name = "SPIFFE-ID")]
        spiffe: String,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Lifetime, e.g. 24h, 90m, 7d, 1h30m (capped by the CA chain's notAfter).
        #[arg(long, default_value = "24h", value_name = "DURATION")]
        ttl: String,
        /// Key type: rsa2048 (istiod's default), rsa3072, rsa4096, ec-p256, ec-p384, ed25519.
        #[arg(long, default_value = "rsa2048", value_name = "TYPE")]
        key_type: KeyType,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// A cross-signed CA certificate (B'): the subject name and public key of the CA
    /// certificate in --subject-of CERT (e.g. the new root B), issued by the root in --issuer
    /// DIR (DIR/root-cert.pem and DIR/root-key.pem, e.g. the old root A), CA:true with the
    /// subject's pathLen, SKI the subject's, AKI the issuer's: writes
    /// OUT/cross-signed-cert.pem, for `meshtrust plan --kind cross-signed --cross-signed`.
    CrossSign {
        /// Directory holding root-cert.pem and root-key.pem of the issuing (old) root.
        #[arg(long, value_name = "DIR")]
        issuer: PathBuf,
        /// PEM file whose first certificate is the CA to cross-sign (e.g. rootB/root-cert.pem).
        #[arg(long, value_name = "CERT")]
        subject_of: PathBuf,
        /// Output directory (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        output: OutputArgs,
    },
}

/// Options of the CA commands.
#[derive(Debug, clap::Args)]
pub(crate) struct CaArgs {
    /// Key type: rsa4096 (Istio's default), rsa2048, rsa3072, ec-p256, ec-p384, ed25519.
    #[arg(long, default_value = "rsa4096", value_name = "TYPE")]
    key_type: KeyType,
    /// Validity in days (default: 3650 for a root, 730 for an intermediate).
    #[arg(long, value_name = "N")]
    days: Option<u32>,
    /// Organization (O=); an empty value removes it.
    #[arg(long, value_name = "O")]
    org: Option<String>,
    /// Common name (CN=); an empty value removes it.
    #[arg(long, value_name = "CN")]
    cn: Option<String>,
}

/// Options every generate command has.
#[derive(Debug, clap::Args)]
pub(crate) struct OutputArgs {
    /// Overwrite existing files (atomically; all or nothing).
    #[arg(long)]
    force: bool,
    /// Print a JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The JSON report; these keys are a contract for scripts: do not rename them.
#[derive(Debug, Serialize)]
struct Report {
    files: Vec<FileRow>,
    certificate: CertRow,
    clamped: Option<ClampRow>,
    warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
struct FileRow {
    path: String,
    mode: String,
    replaced: bool,
}

#[derive(Debug, Serialize)]
struct CertRow {
    role: Role,
    subject: String,
    issuer: String,
    serial: String,
    key: String,
    not_before: String,
    not_after: String,
    sha256: String,
    spiffe_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
struct ClampRow {
    requested_not_after: String,
    not_after: String,
    limited_by: String,
}

pub(crate) fn run(cmd: Command) -> Result<Outcome, CliError> {
    let now = OffsetDateTime::now_utc();
    let lib = |e: generate::GenerateError| CliError(e.to_string());
    let (generated, out_files, output, mut notes) = match cmd {
        Command::Root { out, ca, output } => {
            refuse_existing(&istio::root_paths(&out), output.force)?;
            let mut spec = RootSpec::istio();
            spec.key_type = ca.key_type;
            if let Some(d) = ca.days {
                spec.days = d;
            }
            apply_names(&mut spec.subject, &ca);
            let root = generate::root(&spec, now).map_err(lib)?;
            let out_files = istio::root_files(&out, &root);
            (root, out_files, output, Vec::new())
        }
        Command::Intermediate {
            root,
            parent,
            name,
            out,
            ca,
            output,
        } => {
            let targets = istio::intermediate_paths(&out, &name).map_err(lib)?;
            refuse_existing(&targets, output.force)?;
            let (issuer, notes) = match (&root, &parent) {
                (_, Some(dir)) => load_ca_dir(dir)?,
                (Some(dir), None) => load_root_dir(dir)?,
                (None, None) => return Err(CliError("--root or --ca is required".to_owned())),
            };
            let mut spec = IntermediateSpec::istio(&name);
            spec.key_type = ca.key_type;
            if let Some(d) = ca.days {
                spec.days = d;
            }
            apply_names(&mut spec.subject, &ca);
            let inter = generate::intermediate(&spec, &issuer, now).map_err(|e| match &parent {
                Some(dir) => CliError(format!("{}: {e}", dir.display())),
                None => lib(e),
            })?;
            let out_files = istio::intermediate_files(&out, &name, &inter).map_err(lib)?;
            (inter, out_files, output, notes)
        }
        Command::Leaf {
            ca,
            spiffe,
            out,
            ttl,
            key_type,
            output,
        } => {
            let id: SpiffeId = spiffe
                .parse()
                .map_err(|e| CliError(format!("--spiffe: {e}")))?;
            let ttl = parse_duration(&ttl).map_err(|e| CliError(format!("--ttl: {e}")))?;
            refuse_existing(&istio::leaf_paths(&out), output.force)?;
            let (issuer, notes) = load_ca_dir(&ca)?;
            let spec = LeafSpec {
                key_type,
                ttl,
                ..LeafSpec::istio(id)
            };
            let leaf = generate::leaf(&spec, &issuer, now).map_err(lib)?;
            let out_files = istio::leaf_files(&out, &leaf).map_err(lib)?;
            (leaf, out_files, output, notes)
        }
        Command::CrossSign {
            issuer,
            subject_of,
            out,
            output,
        } => return cross_sign(&issuer, &subject_of, &out, &output, now),
    };
    let written = write(&out_files, output.force)?;
    notes.extend(generated.warnings.iter().map(ToString::to_string));
    let c = &generated.certificate;
    report(c, generated.clamped.as_ref(), &written, &notes, output.json)?;
    Ok(Outcome::Success)
}

fn write(out_files: &[fsio::OutFile], force: bool) -> Result<Vec<fsio::Written>, CliError> {
    fsio::write_all(out_files, force).map_err(|e| match e {
        fsio::FsError::Exists { .. } => CliError(format!("{e} (use --force to replace it)")),
        other => CliError(other.to_string()),
    })
}

/// `generate cross-sign`: B' for the first certificate of `subject_of`, issued by the root of
/// `issuer_dir`.
fn cross_sign(
    issuer_dir: &Path,
    subject_of: &Path,
    out: &Path,
    output: &OutputArgs,
    now: OffsetDateTime,
) -> Result<Outcome, CliError> {
    refuse_existing(&[istio::cross_signed_path(out)], output.force)?;
    let bundle = common::read_bundle(subject_of)?;
    let subject = bundle
        .certificates()
        .next()
        .cloned()
        .ok_or_else(|| CliError::in_file(subject_of, "holds no certificate"))?;
    let (issuer, mut notes) = load_root_dir(issuer_dir)?;
    if bundle.len() > 1 {
        notes.push(format!(
            "{} holds {} certificates: cross-signing the first ({})",
            subject_of.display(),
            bundle.len(),
            subject.subject()
        ));
    }
    let cross = generate::cross_sign(&subject, &issuer, now)
        .map_err(|e| CliError::in_file(subject_of, e))?;
    let written = write(&istio::cross_signed_files(out, &cross), output.force)?;
    notes.extend(cross.warnings.iter().map(ToString::to_string));
    report(
        &cross.certificate,
        cross.clamped.as_ref(),
        &written,
        &notes,
        output.json,
    )?;
    Ok(Outcome::Success)
}

fn apply_names(subject: &mut generate::Name, ca: &CaArgs) {
    if let Some(o) = &ca.org {
        subject.set(Attribute::Organization, o.as_str());
    }
    if let Some(cn) = &ca.cn {
        subject.set(Attribute::CommonName, cn.as_str());
    }
}

/// Fails early (before an expensive key generation) when a target exists and --force is not
/// set. fsio checks again, atomically, when it writes.
fn refuse_existing(targets: &[PathBuf], force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    match targets
        .iter()
        .find(|p| std::fs::symlink_metadata(p).is_ok())
    {
        Some(p) => Err(CliError::in_file(
            p,
            "already exists; refusing to overwrite it (use --force to replace it)",
        )),
        None => Ok(()),
    }
}

/// The signer of `--root DIR` ([`istio::read_root_dir`]) with its notes.
fn load_root_dir(dir: &Path) -> Result<(Issuer, Vec<String>), CliError> {
    let d = istio::read_root_dir(dir).map_err(|e| CliError(e.to_string()))?;
    Ok((d.issuer, d.notes))
}

/// The signer of `--ca DIR` ([`istio::read_ca_dir`]) with its notes.
fn load_ca_dir(dir: &Path) -> Result<(Issuer, Vec<String>), CliError> {
    let d = istio::read_ca_dir(dir).map_err(|e| CliError(e.to_string()))?;
    Ok((d.issuer, d.notes))
}

/// `--ttl`: the library's duration syntax ([`meshtrust::istio::parse_duration`], as for
/// `--leaf-ttl`), but with a unit required (a bare `--ttl 24` more likely means hours than
/// seconds) and more than zero.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let err = || format!("{s:?} is not a duration like 24h, 90m, 7d or 1h30m");
    if s.trim().bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let d = istio::parse_duration(s).map_err(|e| e.to_string())?;
    match Duration::try_from(d) {
        Ok(d) if d > Duration::ZERO => Ok(d),
        _ => Err(err()),
    }
}

fn report(
    c: &Certificate,
    clamped: Option<&generate::Clamp>,
    written: &[fsio::Written],
    notes: &[String],
    json: bool,
) -> Result<(), CliError> {
    let rep = Report {
        files: written
            .iter()
            .map(|w| FileRow {
                path: common::display_path(&w.path),
                mode: format!("{:04o}", w.mode),
                replaced: w.replaced,
            })
            .collect(),
        certificate: CertRow {
            role: c.role(),
            subject: c.subject().to_owned(),
            issuer: c.issuer().to_owned(),
            serial: c.serial_hex(),
            key: c.key_algorithm().to_string(),
            not_before: common::rfc3339(c.not_before()),
            not_after: common::rfc3339(c.not_after()),
            sha256: c.fingerprint().to_string(),
            spiffe_ids: c.spiffe_ids().iter().map(ToString::to_string).collect(),
        },
        clamped: clamped.map(|cl| ClampRow {
            requested_not_after: common::rfc3339(cl.requested_not_after),
            not_after: common::rfc3339(cl.not_after),
            limited_by: cl.limited_by.clone(),
        }),
        warnings: notes.to_vec(),
    };
    if json {
        return common::print_json(&rep);
    }
    let mut s = String::new();
    for f in &rep.files {
        let verb = if f.replaced { "replaced" } else { "wrote" };
        s.push_str(&format!("{verb} {} ({})\n", f.path, f.mode));
    }
    let cr = &rep.certificate;
    let subject = if cr.subject.is_empty() {
        "(empty)"
    } else {
        &cr.subject
    };
    s.push_str(&format!("{} certificate:\n", cr.role));
    s.push_str(&format!("  subject     {subject}\n"));
    s.push_str(&format!("  issuer      {}\n", cr.issuer));
    for id in &cr.spiffe_ids {
        s.push_str(&format!("  spiffe id   {id}\n"));
    }
    s.push_str(&format!("  key         {}\n", cr.key));
    s.push_str(&format!("  serial      {}\n", cr.serial));
    s.push_str(&format!("  not before  {}\n", cr.not_before));
    s.push_str(&format!("  not after   {}\n", cr.not_after));
    s.push_str(&format!("  sha256      {}\n", cr.sha256));
    if let Some(cl) = clamped {
        s.push_str(&format!("  clamped     {cl}\n"));
    }
    for n in notes {
        s.push_str(&format!("note: {n}\n"));
    }
    common::write_stdout(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), Duration::hours(24));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::minutes(90));
        assert_eq!(parse_duration("7d").unwrap(), Duration::days(7));
        assert_eq!(parse_duration("45s").unwrap(), Duration::seconds(45));
        for bad in [
            "",
            "24",
            "h",
            "1x",
            "0h",
            "-1h",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
