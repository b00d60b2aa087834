//! `careledger init`: create the node of a home directory.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::{
    create_node, generate_storage_key, read_storage_key, write_storage_key_file, Context,
    STORAGE_KEY_FILE,
};
use crate::output::print_json;

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node's name in its MLS credential, e.g. a DNS name such as hospital-a.example.
    #[arg(long)]
    name: String,
}

#[derive(Serialize)]
struct Created {
    name: String,
    author: String,
    fingerprint: String,
    home: String,
    /// Where the storage key was written, when `init` generated it.
    storage_key_file: Option<String>,
}

/// Create the node: with the supplied storage key, or a fresh one written to
/// `<home>/storage.key` (mode 0600).
pub fn run(context: &Context, args: Args) -> Result<ExitCode> {
    if context.node_path().exists() {
        anyhow::bail!("a node already exists at {}", context.node_path().display());
    }
    // Check the name before anything is written to disk.
    careledger::identity::Identity::from_secret(&args.name, [0; 32])
        .with_context(|| format!("cannot use `{}` as a node name", args.name))?;
    let (key, generated) = match context.key_source() {
        Some(source) => (read_storage_key(&source)?, None),
        None => {
            let (key, text) = generate_storage_key();
            (key, Some(text))
        }
    };
    std::fs::create_dir_all(&context.home)
        .with_context(|| format!("cannot create {}", context.home.display()))?;
    let key_file = context.home.join(STORAGE_KEY_FILE);
    if let Some(text) = &generated {
        write_storage_key_file(&key_file, text)?;
    }
    let node = create_node(&context.home, &args.name, &key)?;
    let identity = node.identity();
    let created = Created {
        name: identity.name().to_owned(),
        author: identity.author_id().to_hex(),
        fingerprint: identity.fingerprint(),
        home: context.home.display().to_string(),
        storage_key_file: generated.map(|_| key_file.display().to_string()),
    };
    if context.json {
        print_json(&created)?;
    } else {
        outln!("created node {}", created.name)?;
        outln!("  author id    {}", created.author)?;
        outln!("  fingerprint  {}", created.fingerprint)?;
        outln!("  store        {}", context.node_path().display())?;
        if let Some(path) = &created.storage_key_file {
            outln!("  storage key  generated into {path} (mode 0600)")?;
            outln!(
                "               a real deployment keeps it in the OS keychain and passes it \
                 with --storage-key-file or CARELEDGER_STORAGE_KEY"
            )?;
        }
        outln!("Compare the fingerprint out of band before a peer invites this node.")?;
    }
    Ok(ExitCode::SUCCESS)
}
