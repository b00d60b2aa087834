//! `careledger key-package`: a fresh MLS key package for an inviter.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::output::print_json;

/// Arguments of `key-package`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the key package here [default: stdout, refused when it is a terminal].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Written {
    name: String,
    fingerprint: String,
    path: String,
    bytes: usize,
}

/// Make a key package; each one is for a single invitation.
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    if args.out.is_none() && std::io::stdout().is_terminal() {
        bail!("a key package is binary: pass --out FILE or redirect stdout");
    }
    let mut node = context.open_node()?;
    let key_package = node.key_package().context("cannot make a key package")?;
    let Some(path) = args.out else {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&key_package)?;
        stdout.flush()?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::write(&path, &key_package)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let written = Written {
        name: node.identity().name().to_owned(),
        fingerprint: node.identity().fingerprint(),
        path: path.display().to_string(),
        bytes: key_package.len(),
    };
    if context.json {
        print_json(&written)?;
    } else {
        outln!(
            "key package of {} ({} bytes) written to {}",
            written.name,
            written.bytes,
            written.path
        )?;
        outln!("fingerprint {}", written.fingerprint)?;
    }
    Ok(ExitCode::SUCCESS)
}
