//! `--collect`: runs the operator's own kubectl and istioctl (a bounded number at a time, a
//! timeout per pod), lists the pods that fail to answer instead of failing, and with `--save
//! DIR` keeps the raw outputs so that `meshtrust status --plan P DIR` reproduces the verdict.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use meshtrust::fsio::{self, OutFile};

use super::super::common::CliError;

/// The `--collect` flags.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CollectArgs {
    /// Gather the inputs from the cluster with kubectl and istioctl.
    #[arg(long)]
    pub(crate) collect: bool,
    /// kubectl / istioctl context.
    #[arg(long, value_name = "CTX", requires = "collect")]
    context: Option<String>,
    /// Only this namespace's pods.
    #[arg(
        short = 'n',
        long,
        value_name = "NS",
        requires = "collect",
        conflicts_with = "all_namespaces"
    )]
    namespace: Option<String>,
    /// Pods of every namespace (the default).
    #[arg(short = 'A', long, requires = "collect")]
    all_namespaces: bool,
    /// Keep the raw outputs in DIR (one file per pod, plus configmaps.json), under
    /// DIR/CLUSTER/ with `--cluster CLUSTER`, else DIR/CONTEXT/ with `--context`, so that
    /// several clusters' collections share DIR.
    #[arg(long, value_name = "DIR", requires = "collect")]
    save: Option<PathBuf>,
    /// The kubectl to run (default: kubectl on PATH).
    #[arg(long, value_name = "PATH", default_value = "kubectl")]
    kubectl: PathBuf,
    /// The istioctl to run (default: istioctl on PATH).
    #[arg(long, value_name = "PATH", default_value = "istioctl")]
    istioctl: PathBuf,
    /// Pods queried at once.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    jobs: u16,
    /// Seconds one pod may take before it is listed as not answering.
    #[arg(long, value_name = "SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pod_timeout: u64,
}

/// A pod that did not answer.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Failure {
    /// `POD.NAMESPACE`.
    pub(crate) pod: String,
    /// Why.
    pub(crate) error: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Envoy,
    Ztunnel,
}

struct Pod {
    name: String,
    namespace: String,
    kind: Kind,
}

/// Runs a command with a timeout; its stdout, or why not.
fn run(mut cmd: Command, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut b);
        }
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(64 << 10).read_to_end(&mut b);
        }
        b
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {} s (killed)", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        let msg = String::from_utf8_lossy(&err);
        return Err(format!(
            "exit {}: {}",
            status.code().map_or("signal".to_owned(), |c| c.to_string()),
            msg.trim().lines().next().unwrap_or("")
        ));
    }
    Ok(out)
}

impl CollectArgs {
    /// The context given with `--context`.
    pub(crate) fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    fn tool(&self, program: &PathBuf) -> Command {
        let mut c = Command::new(program);
        if let Some(ctx) = &self.context {
            c.arg("--context").arg(ctx);
        }
        c
    }

    fn scope(&self, c: &mut Command) {
        match &self.namespace {
            Some(ns) => c.arg("-n").arg(ns),
            None => c.arg("-A"),
        };
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.pod_timeout)
    }
}

/// The pods running a proxy: an `istio-proxy` container (sidecars, gateways, waypoints) or
/// ztunnel.
fn pods(a: &CollectArgs) -> Result<Vec<Pod>, CliError> {
    let mut c = a.tool(&a.kubectl);
    c.args(["get", "pods"]);
    a.scope(&mut c);
    c.args(["-o", "json"]);
    let out = run(c, a.timeout() * 3).map_err(|e| CliError(format!("kubectl get pods: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&out)
        .map_err(|e| CliError(format!("kubectl get pods: not JSON: {e}")))?;
    let mut pods = Vec::new();
    for item in v["items"].as_array().into_iter().flatten() {
        let (Some(name), Some(ns)) = (
            item["metadata"]["name"].as_str(),
            item["metadata"]["namespace"].as_str(),
        ) else {
            continue;
        };
        let containers = item["spec"]["containers"].as_array().into_iter().flatten();
        let names: Vec<&str> = containers.filter_map(|c| c["name"].as_str()).collect();
        let app = item["metadata"]["labels"]["app"].as_str();
        let kind = if app == Some("ztunnel")
            || names.contains(&"istio-proxy") && name.starts_with("ztunnel")
        {
            Kind::Ztunnel
        } else if names.contains(&"istio-proxy") {
            Kind::Envoy
        } else {
            continue;
        };
        pods.push(Pod {
            name: name.to_owned(),
            namespace: ns.to_owned(),
            kind,
        });
    }
    Ok(pods)
}

/// Named raw outputs: (file name, bytes).
pub(crate) type Files = Vec<(String, Vec<u8>)>;

/// One pod's answer: its index and its output, or why it has none.
type Answer = (usize, Result<Vec<u8>, String>);

/// Gathers every input: (name, bytes) per pod and the ConfigMaps, plus the pods that failed.
/// `cluster` (the `--cluster` given) names the directory `--save` writes under.
pub(crate) fn collect(
    a: &CollectArgs,
    cluster: Option<&str>,
) -> Result<(Files, Vec<Failure>), CliError> {
    let pods = pods(a)?;
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<Answer>> = Mutex::new(Vec::new());
    let progress = std::io::stderr().is_terminal() || pods.len() > 100;
    std::thread::scope(|s| {
        for _ in 0..usize::from(a.jobs).min(pods.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = pods.get(i) else { break };
                    let r = query(a, p);
                    if let Ok(mut v) = results.lock() {
                        v.push((i, r));
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if progress && (n % 10 == 0 || n == pods.len()) {
                        eprint!("\rmeshtrust: collected {n}/{} pods", pods.len());
                        if n == pods.len() {
                            eprintln!();
                        }
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    let mut files = Vec::new();
    let mut failed = Vec::new();
    for (i, r) in results {
        let p = &pods[i];
        let id = format!("{}.{}", p.name, p.namespace);
        // Only outputs that parse are kept: garbage is a pod that failed to answer.
        match r.and_then(|bytes| {
            meshtrust::observe::read(&format!("{id}.json"), &bytes)
                .map(|_| bytes)
                .map_err(|e| format!("unreadable output: {}: {}", e.location, e.message))
        }) {
            Ok(bytes) => files.push((format!("{id}.json"), bytes)),
            Err(error) => failed.push(Failure { pod: id, error }),
        }
    }
    let mut c = a.tool(&a.kubectl);
    c.args(["get", "configmap", meshtrust::observe::ROOT_CONFIGMAP]);
    a.scope(&mut c);
    c.args(["-o", "json"]);
    match run(c, a.timeout()) {
        Ok(bytes) => files.push(("configmaps.json".to_owned(), bytes)),
        Err(error) => failed.push(Failure {
            pod: format!("configmap/{}", meshtrust::observe::ROOT_CONFIGMAP),
            error,
        }),
    }
    if let Some(dir) = &a.save {
        let dir = match cluster.or(a.context.as_deref()) {
            Some(sub) if !sub.is_empty() && !sub.contains(['/', '\\']) && sub != ".." => {
                dir.join(sub)
            }
            _ => dir.clone(),
        };
        let out: Vec<OutFile> = files
            .iter()
            .map(|(name, bytes)| OutFile::public(dir.join(name), bytes.clone()))
            .collect();
        fsio::write_all(&out, true).map_err(|e| CliError(format!("--save: {e}")))?;
    }
    Ok((files, failed))
}

fn query(a: &CollectArgs, p: &Pod) -> Result<Vec<u8>, String> {
    let mut c = a.tool(&a.istioctl);
    match p.kind {
        Kind::Envoy => c.args(["proxy-config", "secret"]),
        Kind::Ztunnel => c.args(["ztunnel-config", "certificates"]),
    };
    c.arg(format!("{}.{}", p.name, p.namespace));
    c.args(["-o", "json"]);
    run(c, a.timeout())
}
