//! `careledger import`: FHIR R4 files into a network's records.
//!
//! The core validates a whole batch before it stores anything, so one invalid
//! resource rejects its batch whole. With several files, every file is
//! validated first (with the core's parser), so one bad file rejects them all.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use careledger::node::{ImportError, ImportReport};
use careledger::record::fhir::{group_by_patient, parse_auto, ImportFhirError};
use serde::Serialize;

use crate::context::{now_ms, resolve_network, Context};
use crate::output::{
    align_right, multi_progress, print_json, rate, seconds, spinner, steps_bar, table,
};

/// Problems listed in an error message beyond the core's first one.
const LISTED_PROBLEMS: usize = 20;

/// Arguments of `import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Network: hex id or unique label.
    network: String,
    /// FHIR R4 files: Bulk Data NDJSON or a Bundle (detected from the content).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

/// What importing one file (or all of them) did.
#[derive(Debug, Default, Serialize)]
pub struct FileReport {
    /// The file as given.
    pub file: String,
    /// Resources parsed.
    pub resources: usize,
    /// Patients (records) touched.
    pub patients: usize,
    /// Records whose content changed.
    pub changes: usize,
    /// Ledger entries written.
    pub entries: usize,
    /// Wall time.
    pub seconds: f64,
    /// Resources per second.
    pub resources_per_second: u64,
}

impl FileReport {
    fn new(file: String, report: &ImportReport, elapsed: Duration) -> Self {
        FileReport {
            file,
            resources: report.resources,
            patients: report.patients,
            changes: report.changes,
            entries: report.entries,
            seconds: elapsed.as_secs_f64(),
            resources_per_second: rate(report.resources, elapsed),
        }
    }
}

#[derive(Serialize)]
struct Imported {
    network: String,
    files: Vec<FileReport>,
    /// Patients across all files (a patient in two files counts once).
    total: FileReport,
}

/// Explain a rejected batch: the core's error stays the cause; further
/// problems are listed.
pub fn rejected(error: ImportFhirError, what: &str) -> anyhow::Error {
    let mut message =
        format!("invalid FHIR in {what}: the batch was rejected whole, nothing was stored");
    for problem in error.problems.iter().skip(1).take(LISTED_PROBLEMS) {
        message.push_str(&format!("\n  also: {problem}"));
    }
    let listed = error.problems.len().min(LISTED_PROBLEMS + 1);
    if error.total > listed {
        message.push_str(&format!(
            "\n  … and {} more problem(s)",
            error.total - listed
        ));
    }
    anyhow::Error::new(error).context(message)
}

/// Import every file, one batch per file.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    let mut inputs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        inputs.push((path.display().to_string(), bytes));
    }
    // Patients across files, known only when several files are validated up front.
    let mut patients = std::collections::BTreeSet::new();
    if inputs.len() > 1 {
        for (name, bytes) in &inputs {
            match parse_auto(name, bytes).and_then(group_by_patient) {
                Ok(groups) => patients.extend(groups.into_keys()),
                Err(error) => {
                    let what = format!("{name} (one of {} files; none was imported)", inputs.len());
                    return Err(rejected(error, &what));
                }
            }
        }
    }
    let mut node = context.open_node()?;
    let info = resolve_network(&mut node, &args.network)?;
    let progress = multi_progress(context.quiet);
    let files_bar = (inputs.len() > 1).then(|| steps_bar(&progress, inputs.len() as u64, "files"));
    let started = Instant::now();
    let mut reports = Vec::with_capacity(inputs.len());
    for (name, bytes) in &inputs {
        let bar = spinner(&progress, format!("importing {name}"));
        let file_started = Instant::now();
        let result = node.import_fhir(&info.id, name, bytes, now_ms());
        bar.finish_and_clear();
        let report = match result {
            Ok(report) => report,
            Err(ImportError::Fhir(error)) => return Err(rejected(error, name)),
            Err(error) => {
                return Err(anyhow::Error::new(error).context(format!("import of {name} failed")))
            }
        };
        reports.push(FileReport::new(
            name.clone(),
            &report,
            file_started.elapsed(),
        ));
        if let Some(bar) = &files_bar {
            bar.inc(1);
        }
    }
    if let Some(bar) = files_bar {
        bar.finish_and_clear();
    }
    let elapsed = started.elapsed();
    let mut total = FileReport {
        file: "total".into(),
        patients: if inputs.len() > 1 {
            patients.len()
        } else {
            reports.iter().map(|r| r.patients).sum()
        },
        seconds: elapsed.as_secs_f64(),
        ..FileReport::default()
    };
    for r in &reports {
        total.resources += r.resources;
        total.changes += r.changes;
        total.entries += r.entries;
    }
    total.resources_per_second = rate(total.resources, elapsed);
    let imported = Imported {
        network: info.id.to_hex(),
        files: reports,
        total,
    };
    if context.json {
        print_json(&imported)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = table([
        "file",
        "resources",
        "patients",
        "entries",
        "time",
        "resources/s",
    ]);
    for r in imported
        .files
        .iter()
        .chain(std::iter::once(&imported.total))
    {
        table.add_row([
            r.file.clone(),
            r.resources.to_string(),
            r.patients.to_string(),
            r.entries.to_string(),
            seconds(Duration::from_secs_f64(r.seconds)),
            r.resources_per_second.to_string(),
        ]);
    }
    align_right(&mut table, &[1, 2, 3, 4, 5]);
    outln!("{table}")?;
    outln!(
        "imported into {}; run `careledger sync` to share",
        info.label
    )?;
    Ok(ExitCode::SUCCESS)
}
