//! Progress of the long command-line steps on stderr: at a terminal, a spinner with the
//! elapsed time per step (and a byte bar for downloads); anywhere else (CI, a log file, a
//! pipe), plain lines, one when a step starts and one when it ends, with no escape codes.
//!
//! stdout stays free of both, for the JSON some commands print there.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a spinner redraws.
const TICK: Duration = Duration::from_millis(120);
/// A step without a count.
const SPINNER: &str = "{spinner} {msg} ({elapsed})";
/// A download of known size.
const BYTES_BAR: &str =
    "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ({elapsed})";
/// A download of unknown size.
const BYTES_SPINNER: &str = "{spinner} {msg} {bytes} {bytes_per_sec} ({elapsed})";
/// In plain mode, a download prints a line at most this often.
const PLAIN_BYTES_EVERY: Duration = Duration::from_secs(5);

use super::progress as plain;

/// The step in flight.
#[derive(Debug)]
struct Step {
    message: String,
    started: Instant,
    bar: Option<ProgressBar>,
    /// Whether the bar shows bytes yet (a step becomes a download when bytes first arrive).
    counting: bool,
    /// Plain mode: when a download last printed its count.
    printed: Instant,
}

/// The progress display of one command. Cheap to share (`Arc`).
#[derive(Debug)]
pub(crate) struct Progress {
    terminal: bool,
    current: Mutex<Option<Step>>,
}

impl Progress {
    /// Spinners when stderr is a terminal (and `TERM` is not `dumb`, and logs are not JSON),
    /// plain lines otherwise.
    pub(crate) fn new() -> Arc<Self> {
        let terminal = std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |term| term != "dumb")
            && !super::logging::is_json();
        Arc::new(Self {
            terminal,
            current: Mutex::new(None),
        })
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Step>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends the step in flight (if any) as done and starts `message`.
    pub(crate) fn step(&self, message: impl Into<String>) {
        let message = message.into();
        let mut current = self.current();
        if let Some(step) = current.take() {
            self.end(step);
        }
        let bar = self.terminal.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(style(SPINNER));
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_message(message.clone());
            bar.enable_steady_tick(TICK);
            bar
        });
        if bar.is_none() {
            plain(format!("{message} ..."));
        }
        *current = Some(Step {
            message,
            started: Instant::now(),
            bar,
            counting: false,
            printed: Instant::now(),
        });
    }

    /// A download in flight has `bytes` so far (of `total`, if known).
    pub(crate) fn position(&self, bytes: u64, total: Option<u64>) {
        let mut current = self.current();
        let Some(step) = current.as_mut() else {
            return;
        };
        match step.bar.clone() {
            Some(bar) => {
                if !step.counting {
                    step.counting = true;
                    bar.set_style(match total {
                        Some(_) => style(BYTES_BAR),
                        None => style(BYTES_SPINNER),
                    });
                }
                if let Some(total) = total {
                    bar.set_length(total);
                }
                bar.set_position(bytes);
            }
            None if step.printed.elapsed() >= PLAIN_BYTES_EVERY => {
                step.printed = Instant::now();
                match total {
                    Some(total) => plain(format!("  {}: {bytes} of {total} bytes", step.message)),
                    None => plain(format!("  {}: {bytes} bytes", step.message)),
                }
            }
            None => {}
        }
    }

    /// Ends the step in flight as done.
    pub(crate) fn done(&self) {
        if let Some(step) = self.current().take() {
            self.end(step);
        }
    }

    /// Ends the step in flight as done with `message` instead of its own.
    pub(crate) fn done_with(&self, message: impl Into<String>) {
        if let Some(mut step) = self.current().take() {
            step.message = message.into();
            self.end(step);
        }
    }

    /// Drops the step in flight without a line (it failed; the error says why).
    pub(crate) fn abandon(&self) {
        if let Some(step) = self.current().take()
            && let Some(bar) = step.bar
        {
            bar.finish_and_clear();
        }
    }

    /// A line of its own, above the spinner.
    pub(crate) fn line(&self, message: impl std::fmt::Display) {
        let current = self.current();
        match current.as_ref().and_then(|step| step.bar.as_ref()) {
            Some(bar) => bar.suspend(|| plain(&message)),
            None => plain(message),
        }
    }

    fn end(&self, step: Step) {
        let line = format!(
            "  {} done in {:.1}s",
            step.message,
            step.started.elapsed().as_secs_f64()
        );
        match step.bar {
            Some(bar) => {
                bar.finish_and_clear();
                plain(line);
            }
            None => plain(line),
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}
