//! MLS: adding one member to a 100-member network and processing that
//! Commit, against raw openmls doing the same on the same ciphersuite.
//!
//! Setup (untimed): careledger builds its network through the API, 100
//! in-memory nodes, each invited by the founder and joined from the Welcome on
//! a [`MemoryRelay`]; the first joiner ("other") then catches up. The peer
//! builds a 100-member openmls group the same way (one add per epoch) with
//! `OpenMlsRustCrypto` (memory storage), ratchet-tree extension on, two past
//! epochs kept, like careledger.
//!
//! Timed, per added member (each with a fresh joiner key package):
//! - careledger: [`Node::invite`] + [`sync`] of the founder (the Commit comes
//!   back first in relay order and is merged; the Welcome and the history key
//!   grant go out) + [`sync`] of "other" (processes the Commit and the grant).
//!   Everything is persisted in SQLite (in-memory database) in transactions.
//! - openmls: key package validation, `add_members`, `merge_pending_commit`
//!   by the adder, then `process_message` + `merge_staged_commit` by one other
//!   member, messages serialized in between; state in memory only.
//!
//! The group grows by one member per measured add; the printed size is the
//! size at the start of measurement.

use std::hint::black_box;
use std::time::{Duration, Instant};

use careledger::keys::StorageKey;
use careledger::node::{NetworkId, Node};
use careledger::relay::MemoryRelay;
use careledger::store::Store;
use careledger::sync::sync;
use careledger::wire::WireMessage;
mod common;
use common::{median, ms, ratio_row, Goal, T0};
use criterion::{BatchSize, Criterion, SamplingMode};
use openmls::prelude::tls_codec::{Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Ciphersuite, CredentialWithKey, KeyPackage, KeyPackageIn, MlsGroup,
    MlsGroupCreateConfig, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn, MlsMessageOut,
    ProcessedMessageContent, ProtocolVersion, StagedWelcome,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use openmls_traits::types::SignatureScheme;
use openmls_traits::OpenMlsProvider as _;

const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;
const MEMBERS: usize = 100;
const PAST_EPOCHS: usize = 2;
const REPS: usize = 25;
const TARGET_RATIO: f64 = 1.10;

// ---- careledger ----

fn memory_node(name: &str) -> Node {
    let store = Store::open_in_memory(&StorageKey::from_bytes([7; 32])).expect("store");
    Node::create(store, name).expect("node")
}

struct Network {
    founder: Node,
    other: Node,
    /// Joined members that stay idle (they only have to exist).
    _rest: Vec<Node>,
    relay: MemoryRelay,
    id: NetworkId,
}

fn last_welcome(relay: &MemoryRelay, network: &NetworkId) -> Vec<u8> {
    relay
        .log(network)
        .iter()
        .rev()
        .find_map(|bytes| match WireMessage::decode(bytes) {
            Ok(WireMessage::Welcome(welcome)) => Some(welcome),
            _ => None,
        })
        .expect("a Welcome on the relay")
}

fn build_network() -> Network {
    let mut founder = memory_node("founder.example");
    let mut relay = MemoryRelay::new();
    let id = founder.create_network("bench").expect("network");
    let mut joined = Vec::with_capacity(MEMBERS - 1);
    for i in 1..MEMBERS {
        let mut node = memory_node(&format!("member-{i:03}.example"));
        founder
            .invite(&id, &node.key_package().expect("key package"))
            .expect("invite");
        sync(&mut founder, &mut relay, &id, T0).expect("sync founder");
        node.join(&last_welcome(&relay, &id), "bench")
            .expect("join");
        joined.push(node);
    }
    let mut other = joined.remove(0);
    sync(&mut other, &mut relay, &id, T0).expect("catch up other");
    assert_eq!(founder.members(&id).expect("members").len(), MEMBERS);
    assert_eq!(
        other.epoch(&id).expect("epoch"),
        founder.epoch(&id).expect("epoch")
    );
    Network {
        founder,
        other,
        _rest: joined,
        relay,
        id,
    }
}

fn careledger_key_package(count: &mut usize) -> Vec<u8> {
    *count += 1;
    memory_node(&format!("joiner-{count:03}.example"))
        .key_package()
        .expect("key package")
}

#[derive(Default)]
struct CareledgerSteps {
    invite: Vec<Duration>,
    sync_founder: Vec<Duration>,
    sync_other: Vec<Duration>,
}

fn add_careledger(network: &mut Network, key_package: &[u8], steps: Option<&mut CareledgerSteps>) {
    let id = &network.id;
    let start = Instant::now();
    network.founder.invite(id, key_package).expect("invite");
    let invited = Instant::now();
    let founder = sync(&mut network.founder, &mut network.relay, id, T0).expect("sync founder");
    let founder_synced = Instant::now();
    let other = sync(&mut network.other, &mut network.relay, id, T0).expect("sync other");
    let done = Instant::now();
    assert_eq!(founder.received.commits_applied, 1);
    assert_eq!(other.received.commits_applied, 1);
    if let Some(steps) = steps {
        steps.invite.push(invited - start);
        steps.sync_founder.push(founder_synced - invited);
        steps.sync_other.push(done - founder_synced);
    }
}

// ---- raw openmls ----

struct PeerMember {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    credential: CredentialWithKey,
}

impl PeerMember {
    fn new(name: &str) -> PeerMember {
        let signer = SignatureKeyPair::new(SignatureScheme::ED25519).expect("signer");
        let credential = CredentialWithKey {
            credential: BasicCredential::new(name.as_bytes().to_vec()).into(),
            signature_key: signer.public().into(),
        };
        PeerMember {
            provider: OpenMlsRustCrypto::default(),
            signer,
            credential,
        }
    }

    fn key_package(&self) -> Vec<u8> {
        let bundle = KeyPackage::builder()
            .build(
                CIPHERSUITE,
                &self.provider,
                &self.signer,
                self.credential.clone(),
            )
            .expect("key package");
        MlsMessageOut::from(bundle.key_package().clone())
            .tls_serialize_detached()
            .expect("serialize key package")
    }
}

struct PeerGroup {
    adder: PeerMember,
    adder_group: MlsGroup,
    other: PeerMember,
    other_group: MlsGroup,
}

fn validate_key_package(provider: &OpenMlsRustCrypto, bytes: &[u8]) -> KeyPackage {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).expect("key package message");
    let MlsMessageBodyIn::KeyPackage(key_package) = message.extract() else {
        panic!("not a key package");
    };
    let key_package: KeyPackageIn = key_package;
    key_package
        .validate(provider.crypto(), ProtocolVersion::Mls10)
        .expect("valid key package")
}

/// The adder adds one member; returns (Commit, Welcome) as sent on the wire.
fn peer_add(adder: &PeerMember, group: &mut MlsGroup, key_package: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key_package = validate_key_package(&adder.provider, key_package);
    let (commit, welcome, _) = group
        .add_members(&adder.provider, &adder.signer, &[key_package])
        .expect("add members");
    let commit = commit.tls_serialize_detached().expect("serialize commit");
    let welcome = welcome.tls_serialize_detached().expect("serialize welcome");
    group
        .merge_pending_commit(&adder.provider)
        .expect("merge pending commit");
    (commit, welcome)
}

fn build_peer_group() -> PeerGroup {
    let adder = PeerMember::new("founder.example");
    let config = MlsGroupCreateConfig::builder()
        .ciphersuite(CIPHERSUITE)
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .build();
    let mut adder_group = MlsGroup::new(
        &adder.provider,
        &adder.signer,
        &config,
        adder.credential.clone(),
    )
    .expect("group");
    let other = PeerMember::new("member-001.example");
    let (_, welcome) = peer_add(&adder, &mut adder_group, &other.key_package());
    let welcome = MlsMessageIn::tls_deserialize_exact(&welcome).expect("welcome message");
    let MlsMessageBodyIn::Welcome(welcome) = welcome.extract() else {
        panic!("not a welcome");
    };
    let join_config = MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(PAST_EPOCHS)
        .build();
    let other_group = StagedWelcome::new_from_welcome(&other.provider, &join_config, welcome, None)
        .expect("staged welcome")
        .into_group(&other.provider)
        .expect("join");
    let mut group = PeerGroup {
        adder,
        adder_group,
        other,
        other_group,
    };
    for i in 2..MEMBERS {
        let key_package = PeerMember::new(&format!("member-{i:03}.example")).key_package();
        let (commit, _) = peer_add(&group.adder, &mut group.adder_group, &key_package);
        peer_process(&mut group, &commit);
    }
    assert_eq!(group.adder_group.members().count(), MEMBERS);
    group
}

fn peer_process(group: &mut PeerGroup, commit: &[u8]) {
    let message = MlsMessageIn::tls_deserialize_exact(commit)
        .expect("commit message")
        .try_into_protocol_message()
        .expect("protocol message");
    let processed = group
        .other_group
        .process_message(&group.other.provider, message)
        .expect("process commit");
    let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
        panic!("not a commit");
    };
    group
        .other_group
        .merge_staged_commit(&group.other.provider, *staged)
        .expect("merge staged commit");
}

#[derive(Default)]
struct OpenmlsSteps {
    adder: Vec<Duration>,
    other: Vec<Duration>,
}

fn add_openmls(group: &mut PeerGroup, key_package: &[u8], steps: Option<&mut OpenmlsSteps>) {
    let start = Instant::now();
    let (commit, welcome) = peer_add(&group.adder, &mut group.adder_group, key_package);
    black_box(welcome);
    let added = Instant::now();
    peer_process(group, &commit);
    let done = Instant::now();
    assert_eq!(group.other_group.epoch(), group.adder_group.epoch());
    if let Some(steps) = steps {
        steps.adder.push(added - start);
        steps.other.push(done - added);
    }
}

fn peer_key_package(count: &mut usize) -> Vec<u8> {
    *count += 1;
    PeerMember::new(&format!("joiner-{count:03}.example")).key_package()
}

// ---- measurement ----

fn main() {
    let started = Instant::now();
    let mut network = build_network();
    let built_network = started.elapsed();
    let mut peer = build_peer_group();
    let built_peer = started.elapsed() - built_network;

    let mut careledger = Vec::with_capacity(REPS);
    let mut openmls = Vec::with_capacity(REPS);
    let mut steps = CareledgerSteps::default();
    let mut peer_steps = OpenmlsSteps::default();
    let mut careledger_joiners = 0;
    let mut peer_joiners = 0;
    for _ in 0..REPS {
        let key_package = careledger_key_package(&mut careledger_joiners);
        let start = Instant::now();
        add_careledger(&mut network, &key_package, Some(&mut steps));
        careledger.push(start.elapsed());

        let key_package = peer_key_package(&mut peer_joiners);
        let start = Instant::now();
        add_openmls(&mut peer, &key_package, Some(&mut peer_steps));
        openmls.push(start.elapsed());
    }
    let (careledger, openmls) = (median(careledger), median(openmls));

    let mut criterion = Criterion::default().configure_from_args();
    {
        let mut group = criterion.benchmark_group("mls_add_member");
        // One add per sample, so the group stays near 100 members.
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(1));
        group.measurement_time(careledger * 9);
        group.bench_function("careledger_invite_sync_sync", |b| {
            b.iter_batched(
                || careledger_key_package(&mut careledger_joiners),
                |key_package| add_careledger(&mut network, &key_package, None),
                BatchSize::PerIteration,
            )
        });
        group.measurement_time(openmls * 9);
        group.bench_function("openmls_add_merge_process_merge", |b| {
            b.iter_batched(
                || peer_key_package(&mut peer_joiners),
                |key_package| add_openmls(&mut peer, &key_package, None),
                BatchSize::PerIteration,
            )
        });
        group.finish();
    }
    criterion.final_summary();

    let ratio = careledger.as_secs_f64() / openmls.as_secs_f64();
    eprintln!();
    eprintln!(
        "MLS (add 1 member to a {MEMBERS}-member network + process the Commit at the adder and one other member, median of {REPS}): \
         careledger {:.1} ms (invite {:.1} + founder sync {:.1} + other sync {:.1}; persisted to SQLite), \
         raw openmls {:.1} ms (adder {:.1} + other {:.1}; OpenMlsRustCrypto, in-memory storage), ratio {ratio:.2} (target <= {TARGET_RATIO:.2})",
        ms(careledger),
        ms(median(steps.invite)),
        ms(median(steps.sync_founder)),
        ms(median(steps.sync_other)),
        ms(openmls),
        ms(median(peer_steps.adder)),
        ms(median(peer_steps.other)),
    );
    ratio_row(
        "mls",
        &format!("MLS: add one member to a {MEMBERS}-member network and process the Commit vs raw openmls"),
        &format!("{:.1} ms", ms(careledger)),
        &format!("{:.1} ms", ms(openmls)),
        ratio,
        Goal::AtMost(TARGET_RATIO),
    );
    eprintln!(
        "MLS setup: careledger {MEMBERS}-node network built in {:.1} s, openmls group in {:.1} s; bench took {:.1} s",
        built_network.as_secs_f64(),
        built_peer.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
}
