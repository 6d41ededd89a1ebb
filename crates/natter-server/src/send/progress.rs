//! Progress of one transfer: a line redrawn on stderr when it is a
//! terminal (bytes, rate, ETA), and JSON lines on stdout for scripts
//! (`start`, `progress` each MiB, `done`).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Route;

/// JSON progress lines come at most once per this many bytes ...
const JSON_STEP: u64 = 1024 * 1024;
/// ... and the terminal line is redrawn at most this often.
const REDRAW: Duration = Duration::from_millis(100);

/// What the command prints.
pub struct Output {
    json: bool,
    bar: bool,
    /// The current attempt: its start, first byte, file size.
    start: Instant,
    from: u64,
    size: u64,
    bytes: u64,
    last_json: u64,
    last_draw: Option<Instant>,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            bar: std::io::stderr().is_terminal(),
            start: Instant::now(),
            from: 0,
            size: 0,
            bytes: 0,
            last_json: 0,
            last_draw: None,
        }
    }

    /// A note: a JSON line of `event` and `fields`, or `text` on stdout.
    pub fn note(&self, event: &str, mut fields: Value, text: &str) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            fields["event"] = json!(event);
            let _ = writeln!(stdout, "{fields}");
        } else {
            let _ = writeln!(stdout, "{text}");
        }
        let _ = stdout.flush();
    }

    /// A transfer of `size` bytes starts at byte `offset`, on `route`.
    pub fn start(&mut self, name: &str, size: u64, offset: u64, route: &Route) {
        self.start = Instant::now();
        (self.from, self.size, self.bytes, self.last_json) = (offset, size, offset, offset);
        let resumed = if offset > 0 {
            format!(", resuming at {}", bytes(offset))
        } else {
            String::new()
        };
        let path = match (route.path, &route.pair) {
            (Some(path), Some((local, remote))) => format!(" ({path}: {local} to {remote})"),
            _ => String::new(),
        };
        self.note(
            "start",
            json!({"file": name, "size": size, "offset": offset, "path": route.path, "pair": route.pair}),
            &format!("{name}: {}{resumed}{path}", bytes(size)),
        );
    }

    /// `done` bytes of the file are through.
    pub fn update(&mut self, done: u64) {
        self.bytes = done;
        if self.json && done >= self.last_json + JSON_STEP {
            self.last_json = done;
            let (rate, eta) = self.rate_eta();
            self.note(
                "progress",
                json!({"bytes": done, "size": self.size, "rate": rate.round(), "eta": eta.map(|e| e.as_secs_f64())}),
                "",
            );
        }
        if self.bar && self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            self.last_draw = Some(Instant::now());
            self.draw();
        }
    }

    /// The transfer ended (well or not): end the terminal line.
    pub fn finish_line(&mut self) {
        if self.bar && self.last_draw.take().is_some() {
            self.draw();
            eprintln!();
        }
    }

    /// Bytes per second over this attempt, and the time left at that rate.
    pub fn rate_eta(&self) -> (f64, Option<Duration>) {
        let seconds = self.start.elapsed().as_secs_f64();
        let rate = if seconds > 0.0 {
            (self.bytes - self.from) as f64 / seconds
        } else {
            0.0
        };
        let eta = (rate > 0.0).then(|| Duration::from_secs_f64((self.size - self.bytes) as f64 / rate));
        (rate, eta)
    }

    fn draw(&self) {
        let (rate, eta) = self.rate_eta();
        let percent = (self.bytes * 100).checked_div(self.size).unwrap_or(100);
        let eta = eta.map_or("?".to_owned(), |e| format!("{} s", e.as_secs()));
        eprint!(
            "\r\x1b[2K{percent:3}% {} / {}  {}/s  ETA {eta}",
            bytes(self.bytes),
            bytes(self.size),
            bytes(rate as u64)
        );
    }
}

/// `n` bytes for people: B, KiB, MiB or GiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(20 * 1024 * 1024), "20.0 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
    }
}
