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
//! check it exists for failed (`ledger verify`, `verify`, `rules verify`,
//! `membership`, `demo`).

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

    /// Relay: a local relay SQLite file shared by the nodes [default: <home>/../relay.sqlite],
    /// or NATS JetStream servers: nats://HOST:PORT (tls://HOST:PORT for TLS), comma-separated
    /// for a cluster.
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_RELAY",
        hide_env_values = true,
        value_name = "PATH|URL"
    )]
    relay: Option<String>,

    /// NATS: PEM file of the CA that signed the servers' certificates (turns TLS on).
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_NATS_CA",
        hide_env_values = true,
        value_name = "FILE"
    )]
    nats_ca: Option<PathBuf>,

    /// NATS: client certificate PEM file, for servers that verify clients (with --nats-key).
    #[arg(long, global = true, requires = "nats_key", value_name = "FILE")]
    nats_cert: Option<PathBuf>,

    /// NATS: client private key PEM file (with --nats-cert).
    #[arg(long, global = true, requires = "nats_cert", value_name = "FILE")]
    nats_key: Option<PathBuf>,

    /// NATS: credentials file (.creds: user JWT and nkey seed).
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_NATS_CREDS",
        hide_env_values = true,
        value_name = "FILE"
    )]
    nats_creds: Option<PathBuf>,

    /// NATS: copies of each network's stream; 3 on a 3-node cluster.
    #[arg(
        long,
        global = true,
        env = "CARELEDGER_NATS_REPLICAS",
        hide_env_values = true,
        default_value_t = 1,
        value_name = "N"
    )]
    nats_replicas: usize,

    /// NATS: seconds to keep retrying (with backoff) an unreachable server before failing.
    #[arg(long, global = true, default_value_t = 30, value_name = "SECONDS")]
    nats_retry: u64,

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
    let mut context = Context::new(
        cli.home,
        cli.relay.as_deref(),
        cli.storage_key_file,
        cli.json,
        cli.quiet,
    );
    context.nats = context::NatsSettings {
        ca_file: cli.nats_ca,
        client_cert: cli.nats_cert.zip(cli.nats_key),
        credentials_file: cli.nats_creds,
        replicas: cli.nats_replicas,
        retry_seconds: cli.nats_retry,
    };
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
