//! A [`Relay`] on NATS JetStream, for networks that span machines (cargo
//! feature `nats`, off by default).
//!
//! The flow: a node (or the CLI) builds [`NatsOptions`] (server URLs, TLS CA
//! file, credentials file, a durable consumer name unique to the node) and
//! calls [`NatsRelay::connect`]; then hands the relay to
//! [`crate::sync::sync`] like any other relay. Inside:
//!
//! - **one stream per network**, `CARELEDGER_<network hex>`, on subject
//!   `careledger.net.<network hex>`, file storage, limits retention (nothing
//!   is deleted because it was read), `replicas` copies on a cluster;
//! - **publish** sends the message with `Nats-Msg-Id` = SHA-256 of its bytes
//!   and waits for the stream's acknowledgement, so a retried publish whose
//!   ack was lost is dropped by the server as a duplicate. A batch
//!   ([`Relay::publish_batch`]) is pipelined: every message is sent, then
//!   all acknowledgements are awaited together;
//! - **large messages** (above the server's `max_payload`, 1 MB by default)
//!   are cut into chunk frames ([`crate::relay::chunk`]) published on the
//!   network's chunk subject `careledger.net.<network hex>.chunks`, outside
//!   relay order; then a small manifest listing their stream sequences and
//!   hashes is published on the network subject, with the header
//!   `Careledger-Manifest: 1`. A reader reassembles the message when it meets
//!   the manifest, so it takes the manifest's place in relay order. A
//!   missing, reordered or forged chunk is detected: that message is skipped
//!   and reported by [`NatsRelay::take_chunk_problems`], never delivered;
//! - **fetch** reads through a **durable pull consumer** named after the node
//!   (filtered to the network subject, so chunk frames are never delivered);
//!   the stream sequence of each message is the relay position the node stores
//!   as its cursor. When the caller's cursor and the consumer disagree (a
//!   restart after a crash, a fresh join), the consumer is recreated to start
//!   right after the cursor: the node's own store stays the source of truth.
//!
//! The order of a network is the stream order; DESIGN §5 (first Commit for an
//! epoch in that order wins) needs nothing else from the server — no
//! expected-last-sequence checks. The server sees the wire messages (sealed
//! entries with clear headers, MLS ciphertext) and nothing more.
//!
//! The [`Relay`] trait is synchronous; the relay owns a small tokio runtime
//! (one worker thread, which also keeps the connection alive between calls)
//! and blocks on it. Transient failures (server down, leader election on a
//! cluster, timeouts) are retried with exponential backoff for up to
//! [`NatsOptions::retry_for`]; then the call fails with
//! [`RelayError::Unavailable`] and nothing is lost: the node's outbox keeps
//! what was not acknowledged, and its cursor what was not received.
//!
//! ```no_run
//! use careledger::relay::nats::{NatsOptions, NatsRelay};
//! use careledger::relay::Relay;
//! use careledger::node::NetworkId;
//! let options = NatsOptions::new("nats://127.0.0.1:4222", "hospital-a");
//! let mut relay = NatsRelay::connect(&options).unwrap();
//! let net = NetworkId(vec![1; 16]);
//! relay.publish(&net, b"sealed bytes").unwrap();
//! assert!(!relay.fetch(&net, 0, 10).unwrap().is_empty());
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::node::NetworkId;
use crate::relay::chunk::{self, ChunkError, Manifest, Reassembly, Split};
use crate::relay::{Relay, RelayError, RelayMessage};
use async_nats::jetstream::message::PublishMessage as Publish;
use async_nats::jetstream::stream::{RawMessageError, RawMessageErrorKind};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use openmls_traits::random::OpenMlsRand as _;
use sha2::{Digest, Sha256};

/// Environment variable naming the single test server (`nats://127.0.0.1:PORT`).
pub const TEST_SERVER_ENV: &str = "CARELEDGER_NATS_URL";
/// Environment variable naming the 3-node test cluster (comma-separated URLs).
pub const TEST_CLUSTER_ENV: &str = "CARELEDGER_NATS_CLUSTER";

/// How to reach the JetStream servers.
#[derive(Clone, Debug)]
pub struct NatsOptions {
    /// Server URLs (`nats://host:port`, `tls://host:port`); any one will do,
    /// the client also learns the rest of a cluster from the server.
    pub servers: Vec<String>,
    /// PEM file of the CA that signed the servers' certificates (requires TLS).
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key PEM files, for servers that verify clients.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// A NATS `.creds` file (user JWT and nkey seed).
    pub credentials_file: Option<PathBuf>,
    /// Durable consumer name: unique per node (per node and network is derived).
    pub consumer: String,
    /// Copies of each network's stream (3 on a 3-node cluster, 1 on one server).
    pub replicas: usize,
    /// How long to keep retrying an operation before reporting the relay unavailable.
    pub retry_for: Duration,
    /// How long one JetStream request may take before it is retried.
    pub request_timeout: Duration,
}

impl NatsOptions {
    /// Options for `servers` (comma-separated URLs) and a node-unique consumer name.
    pub fn new(servers: &str, consumer: &str) -> Self {
        NatsOptions {
            servers: servers
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            ca_file: None,
            client_cert: None,
            credentials_file: None,
            consumer: consumer.to_owned(),
            replicas: 1,
            retry_for: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
        }
    }

    fn describe(&self) -> String {
        self.servers.join(",")
    }
}

/// The header that marks a manifest of a chunked message.
pub const MANIFEST_HEADER: &str = "Careledger-Manifest";
/// Room left in each NATS message for headers and framing.
const PAYLOAD_HEADROOM: usize = 1_024;

struct ConsumerState {
    consumer: consumer::PullConsumer,
    /// Stream sequence of the last message delivered to the caller (its cursor).
    position: u64,
}

/// A chunked message on the stream that could not be reassembled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkProblem {
    /// Stream sequence of its manifest.
    pub sequence: u64,
    /// What is wrong.
    pub error: ChunkError,
}

/// One message of a batch, ready to publish: split once, so every retry
/// sends the same frames and the server deduplicates them.
enum Prepared<'a> {
    Whole(&'a [u8]),
    Chunked(Split),
}

/// A relay on NATS JetStream. One per node: its durable consumers carry the node's name.
pub struct NatsRelay {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    options: NatsOptions,
    streams: HashMap<Vec<u8>, stream::Stream>,
    consumers: HashMap<Vec<u8>, ConsumerState>,
    chunk_problems: Vec<ChunkProblem>,
}

impl std::fmt::Debug for NatsRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsRelay")
            .field("servers", &self.options.servers)
            .finish_non_exhaustive()
    }
}

/// Subject of a network's messages.
pub fn subject_of(network: &NetworkId) -> String {
    format!("careledger.net.{}", network.to_hex())
}

/// Subject of a network's chunk frames (stored in the network's stream, never in relay order).
pub fn chunk_subject_of(network: &NetworkId) -> String {
    format!("careledger.net.{}.chunks", network.to_hex())
}

/// Stream of a network.
pub fn stream_of(network: &NetworkId) -> String {
    format!("CARELEDGER_{}", network.to_hex())
}

/// The `Nats-Msg-Id` of a message: SHA-256 of its bytes, so a resend of the
/// same entry (same bytes, same entry id) is deduplicated by the server.
pub fn message_id(message: &[u8]) -> String {
    hex::encode(Sha256::digest(message))
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn boxed<E: std::error::Error + Send + Sync + 'static>(error: E) -> BoxError {
    Box::new(error)
}

impl NatsRelay {
    /// Connect, retrying with backoff for up to `options.retry_for`.
    pub fn connect(options: &NatsOptions) -> Result<Self, RelayError> {
        if options.servers.is_empty() {
            return Err(RelayError::Unavailable("no NATS server URL given".into()));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("careledger-nats")
            .enable_all()
            .build()
            .map_err(|e| RelayError::Unavailable(format!("cannot start the NATS runtime: {e}")))?;
        let deadline = Instant::now() + options.retry_for;
        let mut delay = Duration::from_millis(100);
        let mut attempts = 0u32;
        let client = loop {
            attempts += 1;
            match runtime.block_on(Self::connect_once(options)) {
                Ok(client) => break client,
                Err(error) if Instant::now() + delay < deadline => {
                    let _ = error;
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    return Err(RelayError::Unavailable(format!(
                        "cannot reach the NATS server at {} ({attempts} attempts over {:.0} s): {error}",
                        options.describe(),
                        options.retry_for.as_secs_f64()
                    )))
                }
            }
        };
        let mut jetstream = {
            let _inside = runtime.enter();
            jetstream::new(client.clone())
        };
        jetstream.set_timeout(options.request_timeout);
        Ok(NatsRelay {
            runtime,
            client,
            jetstream,
            options: options.clone(),
            streams: HashMap::new(),
            consumers: HashMap::new(),
            chunk_problems: Vec::new(),
        })
    }

    async fn connect_once(options: &NatsOptions) -> Result<async_nats::Client, BoxError> {
        let mut connect = async_nats::ConnectOptions::new()
            .name(format!("careledger {}", options.consumer))
            .connection_timeout(options.request_timeout)
            .request_timeout(Some(options.request_timeout))
            .max_reconnects(None);
        if let Some(path) = &options.credentials_file {
            connect = connect
                .credentials_file(path)
                .await
                .map_err(|e| format!("cannot read the credentials file {}: {e}", path.display()))?;
        }
        if let Some(ca) = &options.ca_file {
            connect = connect.add_root_certificates(ca.clone()).require_tls(true);
        }
        if let Some((cert, key)) = &options.client_cert {
            connect = connect.add_client_certificate(cert.clone(), key.clone());
        }
        Ok(connect.connect(options.servers.as_slice()).await?)
    }

    /// Run `op` until it succeeds or `retry_for` has passed, backing off between tries.
    fn retrying<T, F>(&mut self, what: &str, mut op: F) -> Result<T, RelayError>
    where
        F: FnMut(&mut Self) -> Result<T, BoxError>,
    {
        let deadline = Instant::now() + self.options.retry_for;
        let mut delay = Duration::from_millis(50);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match op(self) {
                Ok(value) => return Ok(value),
                Err(error) => {
                    // Whatever we cached may belong to a failed server or leader.
                    self.consumers.clear();
                    if Instant::now() + delay >= deadline {
                        return Err(RelayError::Unavailable(format!(
                            "NATS relay at {} failed to {what} ({attempts} attempts over {:.0} s): {error}",
                            self.options.describe(),
                            self.options.retry_for.as_secs_f64()
                        )));
                    }
                    std::thread::sleep(delay);
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Chunked messages skipped since the last call because they could not be
    /// reassembled (missing, reordered or forged chunks), oldest first.
    pub fn take_chunk_problems(&mut self) -> Vec<ChunkProblem> {
        std::mem::take(&mut self.chunk_problems)
    }

    /// The largest message the server takes (`max_payload`), 0 if it did not say.
    pub fn max_payload(&self) -> usize {
        self.client.server_info().max_payload
    }

    /// Publish raw bytes on the network subject (or, with `to_chunks`, its
    /// chunk subject), optionally marked as a manifest: lets tests play a
    /// forger on the relay (feature `test-hooks`). Returns the stream sequence.
    #[cfg(feature = "test-hooks")]
    pub fn publish_raw_for_testing(
        &mut self,
        network: &NetworkId,
        to_chunks: bool,
        manifest: bool,
        payload: &[u8],
    ) -> Result<u64, RelayError> {
        self.stream_for(network)?;
        let subject = if to_chunks {
            chunk_subject_of(network)
        } else {
            subject_of(network)
        };
        let context = self.jetstream.clone();
        let payload = bytes_of(payload);
        self.runtime
            .block_on(async move {
                let mut publish = Publish::build().payload(payload);
                if manifest {
                    publish = publish.header(MANIFEST_HEADER, "1");
                }
                let ack = context.send_publish(subject, publish).await?;
                Ok::<_, BoxError>(ack.await?.sequence)
            })
            .map_err(|e| RelayError::Io(e.to_string()))
    }

    /// The connection state, for diagnostics.
    pub fn connection_state(&self) -> String {
        format!("{:?}", self.client.connection_state())
    }

    /// Stream sequence of the last message stored for `network` (0 if none).
    pub fn last_sequence(&mut self, network: &NetworkId) -> Result<u64, RelayError> {
        let network = network.clone();
        self.retrying("read the stream state", move |relay| {
            let network = network.clone();
            let context = relay.jetstream.clone();
            let cached = relay.streams.get(&network.0).cloned();
            let replicas = relay.options.replicas;
            relay.runtime.block_on(async move {
                let mut stream = match cached {
                    Some(stream) => stream,
                    None => ensure_stream(&context, &network, replicas).await?,
                };
                Ok(stream.info().await.map_err(boxed)?.state.last_sequence)
            })
        })
    }

    fn stream_for(&mut self, network: &NetworkId) -> Result<stream::Stream, RelayError> {
        if let Some(stream) = self.streams.get(&network.0) {
            return Ok(stream.clone());
        }
        let network_owned = network.clone();
        let stream = self.retrying("create the network's stream", move |relay| {
            let context = relay.jetstream.clone();
            let network = network_owned.clone();
            let replicas = relay.options.replicas;
            relay
                .runtime
                .block_on(async move { ensure_stream(&context, &network, replicas).await })
        })?;
        self.streams.insert(network.0.clone(), stream.clone());
        Ok(stream)
    }

    fn durable_name(&self, network: &NetworkId) -> String {
        let clean: String = self
            .options
            .consumer
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "{clean}_{}",
            &network.to_hex()[..8.min(network.to_hex().len())]
        )
    }
}

async fn ensure_stream(
    context: &jetstream::Context,
    network: &NetworkId,
    replicas: usize,
) -> Result<stream::Stream, BoxError> {
    let config = stream::Config {
        name: stream_of(network),
        subjects: vec![subject_of(network), chunk_subject_of(network)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        num_replicas: replicas.max(1),
        // Long enough to cover an outbox retried across a server restart.
        duplicate_window: Duration::from_secs(10 * 60),
        ..Default::default()
    };
    let mut stream = context.get_or_create_stream(config).await.map_err(boxed)?;
    let info = stream.info().await.map_err(boxed)?.config.clone();
    let chunks = chunk_subject_of(network);
    if !info.subjects.contains(&chunks) {
        // A stream made before chunking: let it take chunk frames too.
        let mut config = info;
        config.subjects.push(chunks);
        context.update_stream(config).await.map_err(boxed)?;
        stream = context
            .get_stream(stream_of(network))
            .await
            .map_err(boxed)?;
    }
    Ok(stream)
}

/// Open the durable consumer positioned right after `after`, reusing the one
/// on the server when its position matches.
async fn position_consumer(
    stream: &stream::Stream,
    durable: &str,
    filter: &str,
    after: u64,
) -> Result<ConsumerState, BoxError> {
    if let Ok(mut existing) = stream.get_consumer::<consumer::pull::Config>(durable).await {
        let info = existing.info().await.map_err(boxed)?;
        if info.delivered.stream_sequence == after
            && info.ack_floor.stream_sequence == after
            && info.num_ack_pending == 0
            && info.config.filter_subject == filter
        {
            return Ok(ConsumerState {
                consumer: existing,
                position: after,
            });
        }
        stream.delete_consumer(durable).await.map_err(boxed)?;
    }
    let deliver_policy = if after == 0 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        }
    };
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable.to_owned()),
            filter_subject: filter.to_owned(),
            deliver_policy,
            ack_policy: consumer::AckPolicy::All,
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 10_000,
            ..Default::default()
        })
        .await
        .map_err(boxed)?;
    Ok(ConsumerState {
        consumer,
        position: after,
    })
}

impl NatsRelay {
    /// Cut what exceeds the server's `max_payload` into chunk frames.
    fn prepare<'a>(&self, messages: &[&'a [u8]]) -> Result<Vec<Prepared<'a>>, RelayError> {
        let max_payload = self.max_payload();
        messages
            .iter()
            .map(|message| {
                if max_payload == 0 || message.len() + PAYLOAD_HEADROOM <= max_payload {
                    return Ok(Prepared::Whole(message));
                }
                let transfer = openmls_rust_crypto::RustCrypto::default()
                    .random_array::<16>()
                    .map_err(|_| RelayError::Io("randomness source failed".into()))?;
                chunk::split(
                    message,
                    max_payload.saturating_sub(PAYLOAD_HEADROOM),
                    transfer,
                )
                .map(Prepared::Chunked)
                .map_err(|e| {
                    RelayError::Io(format!(
                        "cannot publish under the NATS server's max_payload of {max_payload} bytes: {e}"
                    ))
                })
            })
            .collect()
    }
}

/// Publish `prepared` in order: whole messages pipelined; for a chunked one,
/// its frames, then (once their sequences are known) its manifest.
async fn publish_prepared(
    context: &jetstream::Context,
    network: &NetworkId,
    prepared: &[Prepared<'_>],
) -> Result<(), BoxError> {
    let subject = subject_of(network);
    let chunks = chunk_subject_of(network);
    let mut acks = Vec::with_capacity(prepared.len());
    for item in prepared {
        match item {
            Prepared::Whole(message) => {
                let publish = Publish::build()
                    .payload(bytes_of(message))
                    .message_id(message_id(message));
                acks.push(context.send_publish(subject.clone(), publish).await?);
            }
            Prepared::Chunked(split) => {
                let mut frame_acks = Vec::with_capacity(split.frames.len());
                for frame in &split.frames {
                    let publish = Publish::build()
                        .payload(bytes_of(frame))
                        .message_id(message_id(frame));
                    frame_acks.push(context.send_publish(chunks.clone(), publish).await?);
                }
                let mut positions = Vec::with_capacity(frame_acks.len());
                for ack in frame_acks {
                    // A duplicate (a retried publish) is acknowledged with the
                    // original's sequence, so the manifest points at stored frames.
                    positions.push(ack.await?.sequence);
                }
                let manifest = split.manifest(&positions)?.encode();
                let publish = Publish::build()
                    .payload(bytes_of(&manifest))
                    .message_id(message_id(&manifest))
                    .header(MANIFEST_HEADER, "1");
                acks.push(context.send_publish(subject.clone(), publish).await?);
            }
        }
    }
    // Only the stream's acknowledgements mean the messages are stored (on a
    // quorum of a cluster); until then the outbox keeps them.
    for ack in acks {
        ack.await?;
    }
    Ok(())
}

/// The frame stored at `sequence`, `None` if there is none.
async fn frame_at(stream: &stream::Stream, sequence: u64) -> Result<Option<Vec<u8>>, BoxError> {
    match stream.get_raw_message(sequence).await {
        Ok(message) => Ok(Some(message.payload.to_vec())),
        Err(error) if is_not_found(&error) => Ok(None),
        Err(error) => Err(boxed(error)),
    }
}

fn is_not_found(error: &RawMessageError) -> bool {
    matches!(error.kind(), RawMessageErrorKind::NoMessageFound)
}

/// Reassemble the chunked message a manifest names; `Ok(Err)` when it cannot be.
async fn reassemble(
    stream: &stream::Stream,
    manifest: &[u8],
) -> Result<Result<Vec<u8>, ChunkError>, BoxError> {
    let manifest = match Manifest::decode(manifest) {
        Ok(manifest) => manifest,
        Err(error) => return Ok(Err(error)),
    };
    let mut joining = match Reassembly::new(&manifest) {
        Ok(joining) => joining,
        Err(error) => return Ok(Err(error)),
    };
    while let Some(position) = joining.next_position() {
        let frame = frame_at(stream, position).await?;
        if let Err(error) = joining.push(frame.as_deref()) {
            return Ok(Err(error));
        }
    }
    Ok(joining.finish())
}

fn is_manifest(headers: Option<&async_nats::HeaderMap>) -> bool {
    headers
        .and_then(|h| h.get(MANIFEST_HEADER))
        .is_some_and(|v| v.as_str() == "1")
}

impl Relay for NatsRelay {
    fn publish(&mut self, network: &NetworkId, message: &[u8]) -> Result<(), RelayError> {
        self.publish_batch(network, &[message])
    }

    fn publish_batch(&mut self, network: &NetworkId, messages: &[&[u8]]) -> Result<(), RelayError> {
        if messages.is_empty() {
            return Ok(());
        }
        let prepared = self.prepare(messages)?;
        self.stream_for(network)?;
        let bytes: usize = messages.iter().map(|m| m.len()).sum();
        // Bounded, so a server that dies mid-batch is retried on a live one.
        let bound = self.options.request_timeout * 2
            + Duration::from_millis(10) * messages.len() as u32
            + Duration::from_secs((bytes >> 20) as u64);
        let network = network.clone();
        self.retrying("publish", move |relay| {
            let context = relay.jetstream.clone();
            relay.runtime.block_on(async {
                tokio::time::timeout(bound, publish_prepared(&context, &network, &prepared))
                    .await
                    .map_err(|_| -> BoxError {
                        format!(
                            "no acknowledgement of a publish within {:.0} s",
                            bound.as_secs_f64()
                        )
                        .into()
                    })?
            })
        })
    }

    fn fetch(
        &mut self,
        network: &NetworkId,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RelayMessage>, RelayError> {
        let stream = self.stream_for(network)?;
        let durable = self.durable_name(network);
        let filter = subject_of(network);
        let key = network.0.clone();
        let limit = limit.max(1);
        let (page, problems) = self.retrying("fetch", move |relay| {
            let state = relay
                .consumers
                .remove(&key)
                .filter(|state| state.position == after);
            // A pull whose server dies mid-request may never end: bound it,
            // so the retry recreates the consumer on a live server.
            let bound = relay.options.request_timeout * 2;
            let (page, problems, state) = relay.runtime.block_on(async {
                tokio::time::timeout(bound, async {
                    let mut state = match state {
                        Some(state) => state,
                        None => position_consumer(&stream, &durable, &filter, after).await?,
                    };
                    let mut page = Vec::new();
                    let mut problems = Vec::new();
                    // Skipped (unreassemblable) messages deliver nothing: keep
                    // pulling, so an empty page still means the end of the stream.
                    loop {
                        let mut batch = state
                            .consumer
                            .fetch()
                            .max_messages(limit)
                            .messages()
                            .await
                            .map_err(boxed)?;
                        let mut last = None;
                        while let Some(message) = batch.next().await {
                            let message = message?;
                            let sequence = message.info()?.stream_sequence;
                            if is_manifest(message.headers.as_ref()) {
                                match reassemble(&stream, &message.payload).await? {
                                    Ok(bytes) => page.push(RelayMessage {
                                        seq: sequence,
                                        bytes,
                                    }),
                                    Err(error) => problems.push(ChunkProblem { sequence, error }),
                                }
                            } else {
                                page.push(RelayMessage {
                                    seq: sequence,
                                    bytes: message.payload.to_vec(),
                                });
                            }
                            last = Some(message);
                        }
                        let Some(message) = last else {
                            break;
                        };
                        // AckAll: one acknowledgement covers the whole page.
                        message.ack().await?;
                        if !page.is_empty() {
                            break;
                        }
                    }
                    state.position = page.last().map_or(after, |m: &RelayMessage| m.seq);
                    Ok::<_, BoxError>((page, problems, state))
                })
                .await
                .map_err(|_| -> BoxError {
                    format!("no answer to a fetch within {:.0} s", bound.as_secs_f64()).into()
                })?
            })?;
            relay.consumers.insert(key.clone(), state);
            Ok((page, problems))
        })?;
        self.chunk_problems.extend(problems);
        Ok(page)
    }
}

fn bytes_of(message: &[u8]) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(message)
}
