//! `cocaine bench call TARGET`: load a task of a running node (native-server or
//! zeromq-server, an app in any language) and report throughput, latency, errors and the CPU
//! the node and its workers spent per request.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use super::cpu::{self, Sample, Used};
use super::load::{self, Figures, Load, Protocol};
use crate::manage::{self, lookup, CommandError, Target};
use cocaine_keys::UserKey;

#[derive(Debug, Args)]
pub struct CallArgs {
    /// An endpoint (`tcp://127.0.0.1:9110`), or the name of an app of the node at `--node`.
    target: String,
    /// The app's task to load (default: its first native-server or zeromq-server task).
    #[arg(long)]
    task: Option<String>,
    /// How the target speaks; found from the task's type when TARGET is an app name.
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// The event of native calls (default: the task's own).
    #[arg(long, default_value = "")]
    event: String,
    /// Client connections (one thread each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests each client keeps in flight.
    #[arg(long, default_value_t = 1)]
    depth: usize,
    /// Request body size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// How long the measurement lasts (after a short warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The node's pid, for its CPU and its workers' (default: the process listening on the
    /// target's TCP port).
    #[arg(long)]
    node_pid: Option<u32>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// With --user and --key, the app the signed calls are for when TARGET is an endpoint.
    #[arg(long, value_name = "NAME")]
    app: Option<String>,
    /// With --user and --key, also measure calls in a session (one signed session-open per
    /// client, then an HMAC per call), before the per-request signed ones.
    #[arg(long)]
    session: bool,
    /// With --user and --key: also measure the calls sealed (docs/security.md), after the
    /// unsigned and the signed runs, and compare.
    #[arg(long)]
    seal: bool,
    /// The node's public key to seal for [default: asked of --node's control endpoint].
    #[arg(long, value_name = "FILE", requires = "seal")]
    node_key: Option<std::path::PathBuf>,
    #[command(flatten)]
    node: Target,
}

/// What is loaded: where, how, and which process serves it.
struct Resolved {
    endpoint: String,
    protocol: Protocol,
    task: Option<String>,
}

pub fn run(args: &CallArgs) -> Result<(), String> {
    let target = resolve(args)?;
    let signer = signer(args, &target)?;
    let load = Load {
        protocol: target.protocol,
        event: args.event.clone(),
        clients: args.clients.max(1),
        depth: args.depth.max(1),
        size: args.size,
        duration: Duration::from_secs_f64(args.seconds.max(0.1)),
        progress: true,
        signer: None,
        session: false,
        seal: None,
    };
    let node_pid = args
        .node_pid
        .or_else(|| cpu::listener_pid(&target.endpoint));
    let (figures, used) = measure(args, &target, &load, node_pid)?;
    print_report(&target, &load, &figures, node_pid, used);
    let mut report = report_json(&target, &load, &figures, node_pid, used);
    if args.session && signer.is_none() {
        return Err("--session needs --user and --key".into());
    }
    if let Some(signer) = signer {
        let signer = Arc::new(signer);
        if args.session {
            // In a session, measured right after the unsigned run: its baseline.
            let session = Load {
                signer: Some(signer.clone()),
                session: true,
                ..load.clone()
            };
            let (figures_s, used_s) = measure(args, &target, &session, node_pid)?;
            println!("session:");
            print_report(&target, &session, &figures_s, node_pid, used_s);
            let ratio = figures_s.rps() / figures.rps().max(1e-9);
            let cpu_ratio = match (used, used_s) {
                (Some(u), Some(s)) => Some(
                    per_request_us(s.node, &figures_s) / per_request_us(u.node, &figures).max(1e-9),
                ),
                _ => None,
            };
            println!(
                "session / unsigned: throughput x{ratio:.2}{}",
                cpu_ratio
                    .map(|r| format!(", node CPU per request x{r:.2}"))
                    .unwrap_or_default()
            );
            report["session"] = report_json(&target, &session, &figures_s, node_pid, used_s);
            report["session_rps_ratio"] = json!(ratio);
            report["session_node_cpu_ratio"] = json!(cpu_ratio);
        }
        // The same load signed, measured right after: the unsigned run is its baseline.
        let signed = Load {
            signer: Some(signer),
            ..load.clone()
        };
        let (signed_figures, signed_used) = measure(args, &target, &signed, node_pid)?;
        println!("signed:");
        print_report(&target, &signed, &signed_figures, node_pid, signed_used);
        let ratio = signed_figures.rps() / figures.rps().max(1e-9);
        let cpu_ratio = match (used, signed_used) {
            (Some(u), Some(s)) => Some(
                per_request_us(s.node, &signed_figures)
                    / per_request_us(u.node, &figures).max(1e-9),
            ),
            _ => None,
        };
        println!(
            "signed / unsigned: throughput x{ratio:.2}{}",
            cpu_ratio
                .map(|r| format!(", node CPU per request x{r:.2}"))
                .unwrap_or_default()
        );
        report["signed"] = report_json(&target, &signed, &signed_figures, node_pid, signed_used);
        report["signed_rps_ratio"] = json!(ratio);
        report["signed_node_cpu_ratio"] = json!(cpu_ratio);
        if args.seal {
            let sealed = Load {
                seal: Some(Arc::new(node_key(args)?)),
                ..signed.clone()
            };
            let baselines = [
                ("unsigned", &figures, used),
                ("signed", &signed_figures, signed_used),
            ];
            report["sealed"] = measure_sealed(args, &target, &sealed, node_pid, &baselines)?;
        }
    } else if args.seal {
        return Err("--seal needs --user and --key: a sealed call is signed".into());
    }
    if args.json {
        println!("{report}");
    }
    Ok(())
}

/// A warm-up, then the measurement with the node's CPU sampled around it.
fn measure(
    args: &CallArgs,
    target: &Resolved,
    load: &Load,
    node_pid: Option<u32>,
) -> Result<(Figures, Option<Used>), String> {
    // A warm-up, so that workers a pool starts on demand are up before the clock runs.
    let warm_up = Load {
        duration: Duration::from_secs_f64((args.seconds / 10.0).clamp(0.2, 1.0)),
        progress: false,
        ..load.clone()
    };
    load::run(&target.endpoint, &warm_up, || {})?;

    let mut samples = Vec::new();
    let figures = load::run(&target.endpoint, load, || {
        samples.push(node_pid.and_then(Sample::take));
    })?;
    let used = match (samples.first(), samples.get(1)) {
        (Some(Some(before)), Some(Some(after))) => Some(before.until(after)),
        _ => None,
    };
    Ok((figures, used))
}

/// The sealed run, printed and compared with each baseline of the same run.
fn measure_sealed(
    args: &CallArgs,
    target: &Resolved,
    sealed: &Load,
    node_pid: Option<u32>,
    baselines: &[(&str, &Figures, Option<Used>)],
) -> Result<Value, String> {
    let (figures, used) = measure(args, target, sealed, node_pid)?;
    println!("sealed:");
    print_report(target, sealed, &figures, node_pid, used);
    let mut report = report_json(target, sealed, &figures, node_pid, used);
    for (name, base, base_used) in baselines {
        let ratio = figures.rps() / base.rps().max(1e-9);
        let cpu_ratio = match (base_used, used) {
            (Some(b), Some(s)) => {
                Some(per_request_us(s.node, &figures) / per_request_us(b.node, base).max(1e-9))
            }
            _ => None,
        };
        println!(
            "sealed / {name}: throughput x{ratio:.2}{}",
            cpu_ratio
                .map(|r| format!(", node CPU per request x{r:.2}"))
                .unwrap_or_default()
        );
        report[format!("rps_ratio_vs_{name}")] = json!(ratio);
        report[format!("node_cpu_ratio_vs_{name}")] = json!(cpu_ratio);
    }
    Ok(report)
}

/// The node's public key for --seal: --node-key, or control `pubkey`.
fn node_key(args: &CallArgs) -> Result<cocaine_core::auth::PublicKey, String> {
    let pem = match &args.node_key {
        Some(path) => {
            std::fs::read(path).map_err(|e| format!("--node-key {}: {e}", path.display()))?
        }
        None => {
            let reply = manage::node_public_key(&args.node).map_err(|e| match e {
                CommandError::Control(failure) => failure.to_string(),
                CommandError::Usage(why) | CommandError::Failed(why) => why,
            })?;
            let pem = reply.get("pem").and_then(Value::as_str);
            pem.ok_or("the node's pubkey reply has no pem")?
                .as_bytes()
                .to_vec()
        }
    };
    cocaine_core::auth::PublicKey::from_pem(&pem).map_err(|e| format!("the node's key: {e}"))
}

/// With --user and --key: the key and the app the calls are signed for.
fn signer(args: &CallArgs, target: &Resolved) -> Result<Option<(String, UserKey)>, String> {
    let Some(key) = args.node.identity.load()? else {
        return Ok(None);
    };
    if target.protocol != Protocol::Native {
        return Err("only native calls can be signed (--user, --key)".into());
    }
    let app = match &args.app {
        Some(app) => app.clone(),
        None if !args.target.contains("://") => args.target.clone(),
        None => return Err("signed calls to an endpoint need --app NAME".into()),
    };
    Ok(Some((app, key)))
}

fn resolve(args: &CallArgs) -> Result<Resolved, String> {
    if args.target.contains("://") {
        let protocol = args
            .protocol
            .ok_or("with an endpoint as TARGET, say how it speaks: --protocol native or zeromq")?;
        return Ok(Resolved {
            endpoint: cocaine_os::endpoint::resolve(&args.target).map_err(|e| e.to_string())?,
            protocol,
            task: args.task.clone(),
        });
    }
    let info = manage::app_info(&args.node, &args.target).map_err(|e| match e {
        CommandError::Control(failure) => failure.to_string(),
        CommandError::Usage(why) | CommandError::Failed(why) => why,
    })?;
    let (task, kind, bound) =
        pick_task(&info, args.task.as_deref()).ok_or_else(|| match &args.task {
            Some(t) => format!(
                "app {} has no native-server or zeromq-server task {t:?}",
                args.target
            ),
            None => format!(
                "app {} has no native-server or zeromq-server task",
                args.target
            ),
        })?;
    let protocol = if kind == "native-server" {
        Protocol::Native
    } else {
        Protocol::Zeromq
    };
    Ok(Resolved {
        endpoint: lookup::connect_address(&bound, &args.node.node),
        protocol: args.protocol.unwrap_or(protocol),
        task: Some(task),
    })
}

/// `(task, type, endpoint)` of the named task, or of the first one that takes calls.
fn pick_task(info: &Value, wanted: Option<&str>) -> Option<(String, String, String)> {
    info.get("tasks")?
        .as_object()?
        .iter()
        .find_map(|(name, task)| {
            let kind = task.get("type")?.as_str()?;
            let endpoint = task.get("endpoint")?.as_str()?;
            let callable = matches!(kind, "native-server" | "zeromq-server");
            (callable && wanted.is_none_or(|w| w == name))
                .then(|| (name.clone(), kind.to_owned(), endpoint.to_owned()))
        })
}

fn per_request_us(cpu: Duration, figures: &Figures) -> f64 {
    cpu.as_secs_f64() * 1e6 / figures.completed.max(1) as f64
}

fn print_report(
    target: &Resolved,
    load: &Load,
    figures: &Figures,
    node_pid: Option<u32>,
    used: Option<Used>,
) {
    println!(
        "{} ({:?}{}), {} clients x {} in flight, {} B: {:.0} requests/s, p50 {} us, p99 {} us, {} errors",
        target.endpoint,
        target.protocol,
        target.task.as_deref().map(|t| format!(", task {t}")).unwrap_or_default(),
        load.clients,
        load.depth,
        load.size,
        figures.rps(),
        figures.us(0.5),
        figures.us(0.99),
        figures.failed,
    );
    if let Some(why) = &figures.first_failure {
        println!("first error: {why}");
    }
    match (node_pid, used) {
        (Some(pid), Some(u)) => println!(
            "CPU per request: node (pid {pid}) {:.1} us, {} workers {:.1} us, together {:.1} us",
            per_request_us(u.node, figures),
            u.worker_count,
            per_request_us(u.workers, figures),
            per_request_us(u.node + u.workers, figures),
        ),
        _ => println!("CPU per request: unknown (no node process found; pass --node-pid)"),
    }
}

fn report_json(
    target: &Resolved,
    load: &Load,
    figures: &Figures,
    node_pid: Option<u32>,
    used: Option<Used>,
) -> Value {
    let cpu = |f: fn(&Used) -> Duration| used.map(|u| per_request_us(f(&u), figures));
    json!({
        "endpoint": target.endpoint,
        "protocol": format!("{:?}", target.protocol).to_lowercase(),
        "task": target.task,
        "clients": load.clients,
        "depth": load.depth,
        "size": load.size,
        "seconds": figures.elapsed.as_secs_f64(),
        "requests": figures.completed,
        "errors": figures.failed,
        "first_error": figures.first_failure,
        "rps": figures.rps(),
        "p50_us": figures.us(0.5),
        "p99_us": figures.us(0.99),
        "node_pid": node_pid,
        "workers": used.map(|u| u.worker_count),
        "node_cpu_us": cpu(|u| u.node),
        "workers_cpu_us": cpu(|u| u.workers),
        "cpu_us": cpu(|u| u.node + u.workers),
    })
}
