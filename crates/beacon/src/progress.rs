//! Progress of long work the binary hands to a library (a bulk load of reports): a bar
//! with count, rate and ETA when stderr is a terminal, plain periodic lines when it is not
//! (logs, CI, pipes). The libraries know nothing of this: the binary counts the items as
//! the library consumes the iterator it was given.
//!
//! `BEACON_PROGRESS_EVERY` (a duration such as `5s` or `200ms`, default 5 s) sets how often
//! the plain lines are printed.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often plain lines are printed unless `BEACON_PROGRESS_EVERY` says otherwise.
const DEFAULT_EVERY: Duration = Duration::from_secs(5);
/// How often the bar takes the count: smooth enough for a person, cheap for the load.
const BAR_EVERY: Duration = Duration::from_millis(100);

/// Progress of one piece of work of `total` items, shown until [`Progress::finish`].
pub struct Progress {
    counted: Arc<AtomicU64>,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Dropping it stops the thread that shows the count.
    stop: mpsc::Sender<()>,
    shower: JoinHandle<()>,
}

impl Progress {
    /// Starts showing progress on stderr; `label` begins each line, e.g.
    /// `beacon collector: seeded`, and `unit` names the items, e.g. `reports`.
    pub fn start(label: &'static str, unit: &'static str, total: u64) -> Self {
        let counted = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| bar(label, unit, total));
        let (stop, stopped) = mpsc::channel();
        let show = Show {
            counted: Arc::clone(&counted),
            started,
            label,
            unit,
            total,
            bar: bar.clone(),
        };
        let every = if bar.is_some() { BAR_EVERY } else { every() };
        let shower = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                show.once();
            }
        });
        Self {
            counted,
            started,
            bar,
            stop,
            shower,
        }
    }

    /// `items`, counted as they are consumed.
    pub fn count<I>(&self, items: I) -> impl Iterator<Item = I::Item> + Send + 'static
    where
        I: Iterator + Send + 'static,
    {
        let counted = Arc::clone(&self.counted);
        items.inspect(move |_| {
            counted.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Stops showing progress (the bar is cleared) and answers how long the work took.
    pub fn finish(self) -> Elapsed {
        drop(self.stop);
        // The thread only prints; if it panicked, there is nothing left to stop.
        let _ = self.shower.join();
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        Elapsed(self.started.elapsed())
    }
}

/// How long finished work took; shown as `in 12.3 s (8100/s)` for a number of items.
#[derive(Debug, Clone, Copy)]
pub struct Elapsed(Duration);

impl Elapsed {
    /// `in SECONDS s (RATE/s)` for `items` done in this time.
    pub fn with_rate(self, items: u64) -> String {
        format!(
            "in {:.1} s ({}/s)",
            self.0.as_secs_f64(),
            rate(items, self.0)
        )
    }
}

/// What the showing thread needs.
struct Show {
    counted: Arc<AtomicU64>,
    started: Instant,
    label: &'static str,
    unit: &'static str,
    total: u64,
    bar: Option<ProgressBar>,
}

impl Show {
    fn once(&self) {
        let done = self.counted.load(Ordering::Relaxed);
        let tail = self.tail(done);
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(tail);
            }
            None => {
                let (label, unit, total) = (self.label, self.unit, self.total);
                eprintln!("{label} {done}/{total} {unit}{tail}");
            }
        }
    }

    /// ` (RATE/s, ETA SECONDS s)`; once every item is handed over, the library still
    /// commits and counts the last ones, and a falling rate with an ETA of 0 would look
    /// stuck: `, finishing (SECONDS s so far)` then.
    fn tail(&self, done: u64) -> String {
        let elapsed = self.started.elapsed();
        let Some(left) = self.total.checked_sub(done).filter(|left| *left > 0) else {
            return format!(", finishing ({:.0} s so far)", elapsed.as_secs_f64());
        };
        match rate(done, elapsed) {
            0 => " (ETA unknown)".to_owned(),
            per_second => format!(" ({per_second}/s, ETA {} s)", left.div_ceil(per_second)),
        }
    }
}

fn bar(label: &str, unit: &str, total: u64) -> ProgressBar {
    let template = format!("{label} [{{wide_bar}}] {{pos}}/{{len}} {unit}{{msg}}");
    let style = ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
}

/// Whole items per second, 0 before any time has passed.
fn rate(items: u64, elapsed: Duration) -> u64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        (items as f64 / seconds) as u64
    } else {
        0
    }
}

/// `BEACON_PROGRESS_EVERY`, else [`DEFAULT_EVERY`]; a value that is not a positive
/// duration is named on stderr and the default used.
fn every() -> Duration {
    let Ok(value) = std::env::var("BEACON_PROGRESS_EVERY") else {
        return DEFAULT_EVERY;
    };
    match humantime::parse_duration(value.trim()) {
        Ok(every) if !every.is_zero() => every,
        _ => {
            eprintln!(
                "BEACON_PROGRESS_EVERY={value:?} is not a positive duration (e.g. 5s, 200ms); \
                 using {}",
                humantime::format_duration(DEFAULT_EVERY)
            );
            DEFAULT_EVERY
        }
    }
}
