//! `careledger`: the example command-line tool of the careledger library.
//!
//! It runs one node per home directory (`<home>/node.sqlite`, opened with a
//! 32-byte storage key) and moves messages through a relay shared by the
//! nodes (by default a SQLite file beside the home directories). Every
//! subcommand lives in its own module under [`commands`] and uses only the
//! public API of the `careledger` crate.
//!
//! Exit codes: 0 success, 1 error (the error and its causes are printed on
//! stderr; also a command line that does not parse), 2 the command ran but a
//! check it exists for failed (`ledger verify`, `verify`, `membership`,
//! `demo`).

#[macro_use]
mod output;
mod ai;
mod commands;
mod context;
mod dates;
mod exchange;
mod plots;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::commands::Commands;
use crate::context::Context;

/// Share FHIR R4 patient records between institutions over MLS networks, with
/// a sealed, signed, hash-chained ledger in one SQLite file per node.
///
/// The storage key that unlocks a node's store comes from --storage-key-file,
/// else from the environment variable CARELEDGER_STORAGE_KEY (64 hex
/// characters), else from <home>/storage.key, which `init` creates when no key
/// is given. A real deployment keeps this key in the OS keychain, not on disk.
///
/// Exit codes: 0 success, 1 error, 2 a verification or demo check failed.
#[derive(Debug, Parser)]
#[command(name = "careledger", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// Node home directory (holds node.sqlite and, by default, storage.key).
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_HOME",
        hide_env_values = true,
        default_value = "./careledger-home",
        value_name = "DIR"
    )]
    home: PathBuf,

    /// Relay: a local relay SQLite file shared by the nodes [default: <home>/../relay.sqlite].
    /// nats:// URLs are recognised but not built into this binary yet.
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_RELAY",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    relay: Option<String>,

    /// File holding the 32-byte storage key as 64 hex characters.
    #[arg(long, global = true, value_name = "FILE")]
    storage_key_file: Option<PathBuf>,

    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    json: bool,

    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Commands,
}

fn main() -> ExitCode {
    // clap exits 2 on a command line it does not understand; here 2 means a
    // check failed, so a script must not mistake a typo for a mismatch.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 1 } else { 0 };
            // Help or usage text that cannot be written has nowhere to go.
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    let context = Context::new(
        cli.home,
        cli.relay.as_deref(),
        cli.storage_key_file,
        cli.json,
        cli.quiet,
    );
    match cli.command.run(&context) {
        Ok(code) => code,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
