//! What every subcommand needs: where the node and the relay live, how to get
//! the storage key, and how to find a network or member by what a person types.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use careledger::entry::AuthorId;
use careledger::keys::StorageKey;
use careledger::node::{MemberInfo, NetworkInfo, Node};
use careledger::relay::{LocalRelay, Relay};
use careledger::store::{OpenStoreError, Store};
use zeroize::Zeroizing;

/// Environment variable holding the storage key as 64 hex characters.
pub const STORAGE_KEY_ENV: &str = "CARELEDGER_STORAGE_KEY";
/// The node's store inside its home directory.
pub const NODE_FILE: &str = "node.sqlite";
/// The storage key `init` generates when the host supplies none.
pub const STORAGE_KEY_FILE: &str = "storage.key";
/// The default local relay file, beside the home directories.
pub const RELAY_FILE: &str = "relay.sqlite";

/// Where a relay is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayLocation {
    /// A local relay SQLite file.
    File(PathBuf),
    /// NATS JetStream server URLs (comma-separated: any server of a cluster).
    Nats(String),
}

impl RelayLocation {
    fn parse(text: &str) -> Self {
        if text.starts_with("nats://") || text.starts_with("tls://") {
            RelayLocation::Nats(text.to_owned())
        } else {
            RelayLocation::File(PathBuf::from(text))
        }
    }
}

/// Where the storage key comes from, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--storage-key-file`.
    File(PathBuf),
    /// The `CARELEDGER_STORAGE_KEY` environment variable.
    Environment,
    /// `<home>/storage.key`, written by `init`.
    HomeFile(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "--storage-key-file {}", path.display()),
            KeySource::Environment => write!(f, "environment variable {STORAGE_KEY_ENV}"),
            KeySource::HomeFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// How to connect to a NATS relay (ignored for a relay file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsSettings {
    /// PEM file of the CA that signed the servers' certificates (turns TLS on).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key PEM files.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// NATS `.creds` file.
    pub credentials_file: Option<PathBuf>,
    /// Copies of each network's stream (3 on a 3-node cluster).
    pub replicas: usize,
    /// Seconds to keep retrying an unreachable server before giving up.
    pub retry_seconds: u64,
}

/// Global options, resolved.
#[derive(Debug, Clone)]
pub struct Context {
    /// Node home directory.
    pub home: PathBuf,
    /// The relay.
    pub relay: RelayLocation,
    /// NATS connection settings.
    pub nats: NatsSettings,
    /// `--storage-key-file`.
    pub storage_key_file: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
    /// `--quiet`.
    pub quiet: bool,
}

impl Context {
    /// Resolve the global options; the relay defaults to `<home>/../relay.sqlite`.
    pub fn new(
        home: PathBuf,
        relay: Option<&str>,
        storage_key_file: Option<PathBuf>,
        json: bool,
        quiet: bool,
    ) -> Self {
        let relay = match relay.filter(|text| !text.is_empty()) {
            Some(text) => RelayLocation::parse(text),
            None => RelayLocation::File(default_relay_path(&home)),
        };
        Context {
            home,
            relay,
            nats: NatsSettings::default(),
            storage_key_file,
            json,
            quiet,
        }
    }

    /// `<home>/node.sqlite`.
    pub fn node_path(&self) -> PathBuf {
        self.home.join(NODE_FILE)
    }

    /// Where the storage key comes from, if anywhere.
    pub fn key_source(&self) -> Option<KeySource> {
        if let Some(path) = &self.storage_key_file {
            return Some(KeySource::File(path.clone()));
        }
        if std::env::var_os(STORAGE_KEY_ENV).is_some_and(|v| !v.is_empty()) {
            return Some(KeySource::Environment);
        }
        let home_file = self.home.join(STORAGE_KEY_FILE);
        home_file.exists().then_some(KeySource::HomeFile(home_file))
    }

    /// The storage key, from the first source that has one.
    pub fn storage_key(&self) -> Result<StorageKey> {
        match self.key_source() {
            Some(source) => read_storage_key(&source),
            None => bail!(
                "no storage key: pass --storage-key-file, set {STORAGE_KEY_ENV}, \
                 or keep {STORAGE_KEY_FILE} in the home directory {}",
                self.home.display()
            ),
        }
    }

    /// Open this home's node.
    pub fn open_node(&self) -> Result<Node> {
        let path = self.node_path();
        if !path.exists() {
            bail!(
                "no node at {}: run `careledger --home {} init --name <name>` first",
                self.home.display(),
                self.home.display()
            );
        }
        let key = self.storage_key()?;
        let store = open_store(&path, &key).with_context(|| {
            format!(
                "cannot open the node store {} (storage key from {})",
                path.display(),
                self.key_source().map(|s| s.to_string()).unwrap_or_default()
            )
        })?;
        let mut node = Node::open(store).context("cannot load the node's identity")?;
        // Nothing runs in the background: every command that opens the node
        // first takes the consent decisions that are due (grants that ended).
        node.tick(now_ms())
            .context("cannot take the consent decisions that are due")?;
        Ok(node)
    }

    /// Open the relay for `node` (a NATS relay names its durable consumers after the node).
    pub fn open_relay(&self, node: &Node) -> Result<Box<dyn Relay>> {
        match &self.relay {
            RelayLocation::Nats(urls) => open_nats_relay(urls, &self.nats, node),
            RelayLocation::File(path) => Ok(Box::new(open_local_relay(path)?)),
        }
    }
}

/// `<home>/../relay.sqlite`, computed on the absolute path so a relative home works.
pub fn default_relay_path(home: &Path) -> PathBuf {
    let absolute = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    absolute
        .parent()
        .map(|parent| parent.join(RELAY_FILE))
        .unwrap_or_else(|| PathBuf::from(RELAY_FILE))
}

/// Open a local relay file, creating it.
pub fn open_local_relay(path: &Path) -> Result<LocalRelay> {
    LocalRelay::open(path).with_context(|| format!("cannot open the relay file {}", path.display()))
}

#[cfg(feature = "nats")]
fn open_nats_relay(urls: &str, settings: &NatsSettings, node: &Node) -> Result<Box<dyn Relay>> {
    use careledger::relay::nats::{NatsOptions, NatsRelay};
    let identity = node.identity();
    let consumer = format!(
        "{}-{}",
        identity.name(),
        &identity.author_id().to_hex()[..12]
    );
    let mut options = NatsOptions::new(urls, &consumer);
    options.ca_file = settings.ca_file.clone();
    options.client_cert = settings.client_cert.clone();
    options.credentials_file = settings.credentials_file.clone();
    options.replicas = settings.replicas.max(1);
    options.retry_for = std::time::Duration::from_secs(settings.retry_seconds);
    let relay = NatsRelay::connect(&options).with_context(|| {
        format!(
            "cannot use the NATS relay {urls}: is nats-server running there with JetStream (-js)? \
             Nothing was lost; run the command again when it is reachable"
        )
    })?;
    Ok(Box::new(relay))
}

#[cfg(not(feature = "nats"))]
fn open_nats_relay(_: &str, _: &NatsSettings, _: &Node) -> Result<Box<dyn Relay>> {
    bail!("NATS relay not built into this binary (build with `--features nats`); use a local relay file (--relay PATH)")
}

/// Open a store and explain a wrong storage key.
pub fn open_store(path: &Path, key: &StorageKey) -> Result<Store> {
    match Store::open(path, key) {
        Ok(store) => Ok(store),
        Err(OpenStoreError::WrongStorageKey) => Err(anyhow::Error::new(
            OpenStoreError::WrongStorageKey,
        )
        .context("the storage key does not unlock this store (wrong key, or the store belongs to another key)")),
        Err(error) => Err(error.into()),
    }
}

/// Read a storage key: 64 hex characters, surrounding whitespace ignored.
/// The key text never appears in an error.
pub fn read_storage_key(source: &KeySource) -> Result<StorageKey> {
    let text = Zeroizing::new(match source {
        KeySource::File(path) | KeySource::HomeFile(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the storage key file {}", path.display()))?,
        KeySource::Environment => std::env::var(STORAGE_KEY_ENV)
            .with_context(|| format!("{STORAGE_KEY_ENV} is not valid UTF-8"))?,
    });
    parse_storage_key(text.trim()).with_context(|| format!("bad storage key in {source}"))
}

fn parse_storage_key(text: &str) -> Result<StorageKey> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    if text.len() != 64 || hex::decode_to_slice(text, bytes.as_mut()).is_err() {
        bail!("a storage key must be exactly 64 hex characters (32 bytes)");
    }
    Ok(StorageKey::from_bytes(*bytes))
}

/// A fresh random storage key and its hex text (both wiped on drop).
pub fn generate_storage_key() -> (StorageKey, Zeroizing<String>) {
    use rand::RngCore as _;
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rng().fill_bytes(bytes.as_mut());
    let text = Zeroizing::new(hex::encode(bytes.as_ref()));
    (StorageKey::from_bytes(*bytes), text)
}

/// Write a storage key file readable by its owner only (mode 0600 on Unix).
pub fn write_storage_key_file(path: &Path, hex_text: &str) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the storage key file {}", path.display()))?;
    writeln!(file, "{hex_text}")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the storage key file {}", path.display()))
}

/// Create a node in `home` (which must not hold one yet).
pub fn create_node(home: &Path, name: &str, key: &StorageKey) -> Result<Node> {
    let path = home.join(NODE_FILE);
    if path.exists() {
        bail!("a node already exists at {}", path.display());
    }
    std::fs::create_dir_all(home)
        .with_context(|| format!("cannot create the home directory {}", home.display()))?;
    let store = open_store(&path, key)?;
    Node::create(store, name).with_context(|| format!("cannot create the node `{name}`"))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Find a network by full hex id, unique label, or unique hex prefix.
pub fn resolve_network(node: &mut Node, text: &str) -> Result<NetworkInfo> {
    let networks = node.networks().context("cannot list networks")?;
    let wanted = text.trim();
    let lower = wanted.to_ascii_lowercase();
    if let Some(network) = networks.iter().find(|n| n.id.to_hex() == lower) {
        return Ok(network.clone());
    }
    let by_label: Vec<&NetworkInfo> = networks.iter().filter(|n| n.label == wanted).collect();
    match by_label.as_slice() {
        [one] => return Ok((*one).clone()),
        [] => {}
        many => bail!(
            "{} networks are labelled `{wanted}`; name one by its hex id (`careledger network list`)",
            many.len()
        ),
    }
    let is_hex = lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        let by_prefix: Vec<&NetworkInfo> = networks
            .iter()
            .filter(|n| n.id.to_hex().starts_with(&lower))
            .collect();
        match by_prefix.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            many => bail!(
                "{} networks start with `{lower}`; give more hex digits",
                many.len()
            ),
        }
    }
    bail!("this node has no network `{wanted}` (by hex id or label); see `careledger network list`")
}

/// Find a member by exact name or unique author-id hex prefix.
pub fn resolve_member(members: &[MemberInfo], text: &str) -> Result<AuthorId> {
    let wanted = text.trim();
    let by_name: Vec<&MemberInfo> = members.iter().filter(|m| m.name == wanted).collect();
    match by_name.as_slice() {
        [one] => return Ok(one.author),
        [] => {}
        many => bail!(
            "{} members are named `{wanted}`; name one by its author id",
            many.len()
        ),
    }
    let lower = wanted.to_ascii_lowercase().replace(' ', "");
    if lower.len() >= 4 && lower.bytes().all(|b| b.is_ascii_hexdigit()) {
        let by_prefix: Vec<&MemberInfo> = members
            .iter()
            .filter(|m| m.author.to_hex().starts_with(&lower))
            .collect();
        match by_prefix.as_slice() {
            [one] => return Ok(one.author),
            [] => {}
            many => bail!("{} members' author ids start with `{lower}`", many.len()),
        }
    }
    bail!("no member `{wanted}` in this network (by name or author id); see `careledger network members`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_defaults_beside_the_home() {
        let context = Context::new(PathBuf::from("/srv/nodes/a"), None, None, false, false);
        assert_eq!(
            context.relay,
            RelayLocation::File(PathBuf::from("/srv/nodes/relay.sqlite"))
        );
        let nats = Context::new(
            PathBuf::from("a"),
            Some("nats://relay:4222"),
            None,
            false,
            false,
        );
        assert_eq!(nats.relay, RelayLocation::Nats("nats://relay:4222".into()));
    }

    #[test]
    fn storage_keys_are_64_hex_characters() {
        assert!(parse_storage_key(&"ab".repeat(32)).is_ok());
        assert!(parse_storage_key(&"ab".repeat(31)).is_err());
        let error = parse_storage_key(&"zz".repeat(32))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("a storage key must be exactly 64 hex characters (32 bytes)")
        );
    }
}
