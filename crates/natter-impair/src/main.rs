//! `natter-impair`: a UDP proxy that impairs what it relays.
//!
//! ```text
//! natter-impair --listen 127.0.0.1:0 --upstream 127.0.0.1:5000 \
//!     --delay 50ms --jitter 10ms --loss 2% --rate 2mbit --queue 100ms \
//!     --down rate=500kbit --stats-interval 1s
//! ```
//!
//! The flags set both directions; `--up KEY=VALUE` (clients to the
//! upstream) and `--down KEY=VALUE` (back) set one, over the flags. It
//! prints `listening on ADDRESS` once bound, counter lines starting
//! with `up` and `down` every `--stats-interval` and when it ends
//! (SIGINT or SIGTERM).

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use natter_impair::{parse_duration, relay, LinkConfig, ProxyConfig, ProxyStats};
use tokio::net::UdpSocket;
use tokio::sync::watch;

/// A UDP proxy with delay, jitter, loss, reordering, duplication and a
/// rate-limited drop-tail queue, each direction set on its own.
#[derive(Parser, Debug)]
#[command(name = "natter-impair")]
struct Args {
    /// Where clients send to (port 0 picks a port; it is printed).
    #[arg(long)]
    listen: SocketAddr,
    /// Where their datagrams go.
    #[arg(long)]
    upstream: SocketAddr,
    /// Propagation delay, e.g. 50ms.
    #[arg(long)]
    delay: Option<String>,
    /// Each packet's delay is uniform in delay ± jitter; at most the delay.
    #[arg(long)]
    jitter: Option<String>,
    /// Random loss, e.g. 2%.
    #[arg(long)]
    loss: Option<String>,
    /// Gilbert-Elliott loss: p,r (good to bad, bad to good) or p,r,bad_loss,good_loss.
    #[arg(long)]
    burst_loss: Option<String>,
    /// The share of packets held back so that later ones overtake them.
    #[arg(long)]
    reorder: Option<String>,
    /// How long a reordered packet is held back (default 10ms).
    #[arg(long)]
    reorder_delay: Option<String>,
    /// The share of packets that arrive twice.
    #[arg(long)]
    duplicate: Option<String>,
    /// The bottleneck's rate, e.g. 2mbit, or a schedule: 1mbit,40s:2.5mbit,60s:600kbit.
    #[arg(long)]
    rate: Option<String>,
    /// The bottleneck's drop-tail queue: a time at the rate (100ms, the default) or a size (64kb).
    #[arg(long)]
    queue: Option<String>,
    /// The bottleneck as a token bucket of this size, as tc's tbf (e.g. 3kb): bursts up to it pass at once.
    #[arg(long)]
    burst: Option<String>,
    /// A setting for clients to the upstream only, e.g. --up loss=5% (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    up: Vec<String>,
    /// A setting for the upstream to clients only, e.g. --down rate=1mbit (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    down: Vec<String>,
    /// Seeds the randomness of both directions.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the counters this often, e.g. 1s.
    #[arg(long)]
    stats_interval: Option<String>,
}

impl Args {
    fn config(&self) -> Result<ProxyConfig, Box<dyn Error>> {
        let flags = [
            ("delay", &self.delay),
            ("jitter", &self.jitter),
            ("loss", &self.loss),
            ("burst-loss", &self.burst_loss),
            ("reorder", &self.reorder),
            ("reorder-delay", &self.reorder_delay),
            ("duplicate", &self.duplicate),
            ("rate", &self.rate),
            ("queue", &self.queue),
            ("burst", &self.burst),
        ];
        let mut both = LinkConfig::default();
        for (key, value) in flags {
            if let Some(value) = value {
                both.set(key, value)?;
            }
        }
        let direction = |settings: &[String]| -> Result<LinkConfig, Box<dyn Error>> {
            let mut config = both.clone();
            for setting in settings {
                config.apply(setting)?;
            }
            config.validate()?;
            Ok(config)
        };
        Ok(ProxyConfig {
            listen: self.listen,
            upstream: self.upstream,
            up: direction(&self.up)?,
            down: direction(&self.down)?,
            seed: self.seed,
        })
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natter-impair: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let config = args.config()?;
    let interval = args
        .stats_interval
        .as_deref()
        .map(|text| parse_duration("stats-interval", text))
        .transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let socket = UdpSocket::bind(config.listen).await?;
        println!("listening on {}", socket.local_addr()?);
        let (publish, stats) = watch::channel(ProxyStats::default());
        let printer = async {
            let Some(interval) = interval else {
                return std::future::pending().await;
            };
            let mut ticks = tokio::time::interval(interval);
            loop {
                ticks.tick().await;
                print_stats(&stats.borrow());
            }
        };
        tokio::select! {
            result = relay(socket, config, publish, terminated()) => result?,
            () = printer => {}
        }
        print_stats(&stats.borrow());
        Ok(())
    })
}

fn print_stats(stats: &ProxyStats) {
    println!("up {}", stats.up);
    println!(
        "down {} clients={} socket_errors={}",
        stats.down, stats.clients, stats.socket_errors
    );
}

/// Completes on SIGINT or SIGTERM.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        // Without a SIGTERM handler, SIGINT still stops the proxy.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
