//! `natter load`: synthetic participants of an SFU room of `natter
//! serve` (issue 13's load tool), many in one process, spread over
//! `--threads` threads (one current-thread tokio runtime each, so a
//! participant's socket and timers stay on its thread). Each publishes
//! VP8 (simulcast, or one layer with `--layers 1`) and Opus ([`media`]),
//! subscribes to everyone, and
//! reports what it receives ([`participant`]); this module prints the
//! reports, as text or JSON lines, and a summary.

mod janus;
mod media;
mod participant;

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use natter_client::ClientConfig;
use serde_json::{json, Value};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

/// `natter load --help`'s example.
pub const EXAMPLE: &str = "Examples:
  # 20 participants for 30 s in room demo of a local `natter serve --dev`, as JSON
  # lines (each participant's `stats` every second, then a `summary`)
  natter load http://127.0.0.1:8080 --room demo -n 20 --duration 30 --json";

/// Synthetic participants of an SFU room, for tests and benchmarks.
#[derive(clap::Args)]
pub struct LoadOptions {
    /// The server: http://HOST:PORT or ws://HOST:PORT/ws.
    url: String,
    /// The room.
    #[arg(long, default_value = "load")]
    room: String,
    /// How many participants.
    #[arg(short = 'n', long, default_value_t = 10)]
    participants: usize,
    /// Participants are called NAME-0, NAME-1, ...
    #[arg(long, default_value = "load")]
    name: String,
    /// Receive sections of each kind per participant (default: one per
    /// other participant of this process, at least one).
    #[arg(long)]
    slots: Option<usize>,
    /// Seconds to run, then leave; 0 runs until interrupted.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds between two reports of each participant.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// The local address of the participants' sockets.
    #[arg(long, default_value = "127.0.0.1")]
    address: IpAddr,
    /// A join token; not needed with `serve --dev`.
    #[arg(long, env = "NATTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Give up after the server has been unreachable this many seconds.
    #[arg(long, default_value_t = 30)]
    reconnect_timeout: u64,
    /// Print JSON lines (every event, every report) instead of text.
    #[arg(long)]
    json: bool,
    /// Only the first P participants publish; the others only subscribe.
    #[arg(long)]
    publishers: Option<usize>,
    /// The server is Janus VideoRoom, URL its REST API
    /// (http://HOST:PORT/janus), as bench/sfu-vs-janus runs it.
    #[arg(long)]
    janus: bool,
    /// Threads the participants are spread over, round robin (default:
    /// the cores this process may run on).
    #[arg(long)]
    threads: Option<NonZeroUsize>,
    /// Video layers each publisher sends: 3, VP8 simulcast (about 100,
    /// 250 and 700 kbit/s), or 1, one 1 Mbit/s VP8 layer without
    /// simulcast.
    #[arg(long, default_value_t = 3)]
    layers: usize,
}

pub fn run(options: LoadOptions) -> anyhow::Result<()> {
    let valid = |s: f64| s.is_finite() && s >= 0.0;
    anyhow::ensure!(options.participants >= 1, "--participants: at least 1");
    anyhow::ensure!(valid(options.duration), "--duration: seconds, 0 or more");
    anyhow::ensure!(
        valid(options.interval) && options.interval > 0.0,
        "--interval: seconds, more than 0"
    );
    media::layers(options.layers).map_err(|e| anyhow::anyhow!("--layers: {e}"))?;
    let runtime = current_thread()?;
    let result = runtime.block_on(load(options));
    // Tasks still joining would hold the runtime's drop.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

fn current_thread() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// Runs `participants` on a thread of their own until they are done or
/// `stop` is dropped.
fn spawn_thread(
    index: usize,
    participants: Vec<(String, participant::Params)>,
    reports: &mpsc::UnboundedSender<Value>,
) -> anyhow::Result<(oneshot::Sender<()>, JoinHandle<()>)> {
    let runtime = current_thread()?;
    let reports = reports.clone();
    let (stop_tx, stop) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name(format!("load-{index}"));
    let thread = thread.spawn(move || {
        runtime.block_on(async move {
            let mut running = JoinSet::new();
            for (name, params) in participants {
                running.spawn(participant::run(name, params, reports.clone()));
            }
            drop(reports);
            tokio::select! {
                () = async { while running.join_next().await.is_some() {} } => {}
                _ = stop => {}
            }
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
    })?;
    Ok((stop_tx, thread))
}

async fn load(options: LoadOptions) -> anyhow::Result<()> {
    let (reports_tx, mut reports) = mpsc::unbounded_channel();
    let started = Instant::now();
    let until = (options.duration > 0.0).then(|| started + Duration::from_secs_f64(options.duration));
    let slots = options.slots.unwrap_or(options.participants - 1).max(1);
    let publishers = options
        .publishers
        .unwrap_or(options.participants)
        .min(options.participants);
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = options.threads.map_or(cores, NonZeroUsize::get);
    let threads = threads.min(options.participants);
    let layers = media::layers(options.layers).map_err(anyhow::Error::msg)?;
    let mut groups: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    let mut names = Vec::new();
    for i in 0..options.participants {
        let name = format!("{}-{i}", options.name);
        let mut config = ClientConfig::new(options.url.clone(), name.clone());
        config.room = Some(options.room.clone());
        config.token = options.token.clone();
        config.reconnect_timeout = Duration::from_secs(options.reconnect_timeout);
        let params = participant::Params {
            config,
            address: options.address,
            slots,
            interval: Duration::from_secs_f64(options.interval),
            until,
            publish: i < publishers,
            layers,
            janus: options.janus.then_some(publishers),
        };
        groups[i % threads].push((name.clone(), params));
        names.push(name);
    }
    let mut workers = Vec::new();
    for (index, group) in groups.into_iter().enumerate() {
        workers.push(spawn_thread(index, group, &reports_tx)?);
    }
    drop(reports_tx);
    let mut summary = Summary::default();
    // One listener for the whole run: a signal that came while a fresh
    // one per turn of the loop was not yet made would be lost.
    let shutdown = crate::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            report = reports.recv() => {
                let Some(report) = report else { break };
                summary.note(&report);
                print(&report, options.json);
            }
            () = &mut shutdown => break,
        }
    }
    let summary = summary.finish(&names, started.elapsed());
    print(&summary, options.json);
    // Each thread ends within its runtime's 2 s shutdown timeout.
    let (stops, threads): (Vec<_>, Vec<_>) = workers.into_iter().unzip();
    drop(stops);
    for thread in threads {
        let _ = thread.join();
    }
    let failed = summary["failed"].as_u64().unwrap_or(0);
    anyhow::ensure!(failed == 0, "{failed} participant(s) failed");
    Ok(())
}

/// Per participant: video frames received per second from each
/// publisher, averaged over the reports after its first media.
#[derive(Default)]
struct Summary {
    /// Participant -> (sum of mean per-publisher fps, reports counted,
    /// packets per second summed, loss percent summed, misrouted).
    receive: HashMap<String, (f64, u32, f64, f64, u64)>,
    keyframe_ms: Vec<f64>,
    failed: u64,
}

impl Summary {
    fn note(&mut self, report: &Value) {
        let participant = report["participant"].as_str().unwrap_or_default().to_owned();
        match report["event"].as_str() {
            Some("stats") => {
                let fps: Vec<f64> = (report["video_fps"].as_object().into_iter())
                    .flat_map(|m| m.values().filter_map(Value::as_f64))
                    .collect();
                if fps.is_empty() || fps.iter().all(|f| *f == 0.0) {
                    return;
                }
                let entry = self.receive.entry(participant).or_default();
                entry.0 += fps.iter().sum::<f64>() / fps.len() as f64;
                entry.1 += 1;
                entry.2 += report["packets_per_second"].as_f64().unwrap_or(0.0);
                entry.3 += report["loss_percent"].as_f64().unwrap_or(0.0);
                entry.4 = report["misrouted"].as_u64().unwrap_or(0);
            }
            Some("keyframe") => self.keyframe_ms.extend(report["after_ms"].as_f64()),
            Some("closed") => self.failed += 1,
            _ => {}
        }
    }

    fn finish(mut self, names: &[String], elapsed: Duration) -> Value {
        let mut fps = Vec::new();
        let (mut packets, mut loss, mut misrouted) = (0.0, 0.0, 0);
        for name in names {
            if let Some((sum, n, pps, lossp, bad)) = self.receive.get(name) {
                let n = f64::from(*n);
                fps.push(sum / n);
                packets += pps / n;
                loss += lossp / n;
                misrouted += bad;
            }
        }
        let receiving = fps.len();
        fps.sort_by(f64::total_cmp);
        self.keyframe_ms.sort_by(f64::total_cmp);
        let median = |v: &[f64]| if v.is_empty() { 0.0 } else { v[v.len() / 2] };
        let round = |x: f64| (x * 10.0).round() / 10.0;
        json!({
            "event": "summary",
            "participants": names.len(),
            "receiving": receiving,
            "seconds": round(elapsed.as_secs_f64()),
            "video_fps_per_publisher": {"min": round(fps.first().copied().unwrap_or(0.0)), "median": round(median(&fps))},
            "packets_per_second_received": packets.round(),
            "loss_percent": round(loss / receiving.max(1) as f64),
            "keyframe_ms": {"median": round(median(&self.keyframe_ms)), "max": round(self.keyframe_ms.last().copied().unwrap_or(0.0))},
            "misrouted": misrouted,
            "failed": self.failed,
        })
    }
}

/// One report, as a JSON line or as `event participant key=value ...`.
fn print(report: &Value, json: bool) {
    if json {
        println!("{report}");
        return;
    }
    let Some(map) = report.as_object() else { return };
    let mut line = String::new();
    for key in ["event", "participant"] {
        if let Some(Value::String(s)) = map.get(key) {
            line.push_str(s);
            line.push(' ');
        }
    }
    for (key, value) in map {
        match (key.as_str(), value) {
            ("event" | "participant", _) | (_, Value::Null) => continue,
            (key, Value::String(s)) => line.push_str(&format!("{key}={s}")),
            (key, value) => line.push_str(&format!("{key}={value}")),
        }
        line.push(' ');
    }
    println!("{}", line.trim_end());
}
