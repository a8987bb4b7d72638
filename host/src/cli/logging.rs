//! Where the process's log lines go and in what shape: readable text for a person at a
//! terminal, or one JSON object per line for a log shipper. Either way every line of a job
//! carries the spans it was logged in (the job's id and slug, the stage and the attempt).

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// The shape of log lines on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `LEVEL job{job=..}:stage{stage=run attempt=1}: target: message fields`.
    #[default]
    Text,
    /// One JSON object per line, with the event's fields and its spans (`spans`, outermost
    /// first, and `span`, the innermost).
    Json,
}

/// The format [`init`] installed, for the lines the command line prints itself.
static FORMAT: OnceLock<LogFormat> = OnceLock::new();

/// Whether log lines are JSON (then progress is plain lines too, never a spinner).
pub(crate) fn is_json() -> bool {
    FORMAT.get() == Some(&LogFormat::Json)
}

/// Prints one of the command line's own progress lines on stderr: `kaggle-solver: ...`, or,
/// under `--log-format json`, a JSON object shaped like the log lines, so that stderr stays
/// one JSON object per line for a shipper.
pub(crate) fn progress_line(message: &str) {
    match FORMAT.get() {
        Some(LogFormat::Json) => {
            let line = serde_json::json!({
                "timestamp": humantime::format_rfc3339_micros(std::time::SystemTime::now())
                    .to_string(),
                "level": "INFO",
                "fields": {"message": message},
                "target": "kaggle_solver::cli",
            });
            eprintln!("{line}");
        }
        _ => eprintln!("kaggle-solver: {message}"),
    }
}

/// Installs the process's subscriber: `KS_LOG` filters (default `warn`), lines go to stderr.
// Only the binary calls this, once; a second subscriber would panic in `init`.
pub fn init(format: LogFormat) {
    let _ = FORMAT.set(format);
    let filter = EnvFilter::try_from_env("KS_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a person at a terminal: a log file gets no escape codes.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}
