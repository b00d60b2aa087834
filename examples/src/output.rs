//! Presenting results: tables and lines for people, JSON for scripts,
//! progress bars on stderr (hidden off a terminal and with `--quiet`).

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::{Context as _, Result};
use comfy_table::{CellAlignment, ContentArrangement, Table};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// `println!` that returns the write error instead of panicking, so a closed
/// pipe (`careledger patients care | head`) ends the program quietly.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)
    }};
}

/// Print a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode JSON output")?;
    outln!("{text}")?;
    Ok(())
}

/// Whether an error is stdout closing under us (a reader like `head` quit).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// No borders, a line under the header (comfy-table's component order).
const TABLE_STYLE: &str = "     ──            ";

/// A table with the house look: plain columns, a rule under the header.
pub fn table<const N: usize>(header: [&str; N]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(TABLE_STYLE)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    table
}

/// Right-align the numeric columns `columns` of `table`.
pub fn align_right(table: &mut Table, columns: &[usize]) {
    for &index in columns {
        if let Some(column) = table.column_mut(index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// Whether progress bars may be drawn.
pub fn progress_visible(quiet: bool) -> bool {
    !quiet && std::io::stderr().is_terminal()
}

/// A container for several bars (one per file, one per network).
pub fn multi_progress(quiet: bool) -> MultiProgress {
    let target = if progress_visible(quiet) {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    MultiProgress::with_draw_target(target)
}

/// A spinner that ticks by itself while a long core call runs.
pub fn spinner(multi: &MultiProgress, message: String) -> ProgressBar {
    ticking(multi, message, "{spinner:.cyan} {msg} [{elapsed}]")
}

/// A spinner that also shows a running count (`bar.set_position`) of `unit`.
pub fn counting_spinner(multi: &MultiProgress, message: String, unit: &'static str) -> ProgressBar {
    let bar = ticking(
        multi,
        message,
        "{spinner:.cyan} {msg} {pos} {prefix} [{elapsed}]",
    );
    bar.set_prefix(unit);
    bar
}

fn ticking(multi: &MultiProgress, message: String, template: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    if !multi.is_hidden() {
        bar.enable_steady_tick(Duration::from_millis(100));
    }
    bar
}

/// A bar over a known number of steps.
pub fn steps_bar(multi: &MultiProgress, len: u64, unit: &'static str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new(len));
    bar.set_style(
        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} {prefix} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_prefix(unit);
    bar
}

/// A spinner for work in named stages (the message names the stage); one
/// stage may count steps with [`stage_count`].
pub fn stage_bar(multi: &MultiProgress, unit: &'static str) -> ProgressBar {
    let bar = ticking(multi, String::new(), "{spinner:.cyan} {msg} [{elapsed}]");
    bar.set_prefix(unit);
    bar
}

/// Show `done` of `total` steps on a stage bar: from the first count on, it
/// draws a bar.
pub fn stage_count(bar: &ProgressBar, done: u64, total: u64) {
    if bar.length() != Some(total) {
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner:.cyan} {msg} {bar:30.cyan/blue} {pos}/{len} {prefix} [{elapsed}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_length(total);
    }
    bar.set_position(done);
}

/// Seconds with two decimals, for people.
pub fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// Items per second, rounded.
pub fn rate(count: usize, duration: Duration) -> u64 {
    let secs = duration.as_secs_f64();
    if secs > 0.0 {
        (count as f64 / secs).round() as u64
    } else {
        0
    }
}

/// The first `n` characters of a hex id, for tables.
pub fn short(hex: &str, n: usize) -> String {
    hex.chars().take(n).collect()
}
