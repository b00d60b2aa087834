//! MLS networks: create, invite, join, remove, self-update, and Commit
//! processing in relay order (DESIGN §5).
//!
//! A node never merges its own Commit when it creates it. The Commit is stored
//! as pending and published; when the relay delivers the first Commit for the
//! current epoch, that one wins: if it is ours we merge our pending commit,
//! otherwise we discard ours, apply theirs, and re-propose our intent against
//! the new epoch. Every member thus applies the same Commit per epoch without
//! any compare-and-set on the relay.

use openmls::prelude::tls_codec::{self, Deserialize as _, Serialize as _};
use openmls::prelude::{
    BasicCredential, Ciphersuite, KeyPackage, KeyPackageIn, LeafNodeIndex, LeafNodeParameters,
    MlsGroup, MlsGroupCreateConfig, MlsGroupJoinConfig, MlsMessageBodyIn, MlsMessageIn,
    MlsMessageOut, ProcessedMessageContent, ProtocolVersion, StagedWelcome,
};
use openmls_traits::OpenMlsProvider as _;

use super::{MemberInfo, NetworkError, NetworkId, NetworkInfo, Node};
use std::collections::{BTreeMap, BTreeSet};

use crate::body::{EpochGrant, KeyGrantBody, MemberRemovedBody, MemberSpan};
use crate::codec::Reader;
use crate::entry::{AuthorId, EntryKind};
use crate::identity::fingerprint_of;
use crate::keys::{SecretKey, EPOCH_KEY_LABEL};
use crate::store::{PendingCommitRow, StoreError, OPEN_SPAN};
use crate::wire::WireMessage;

/// The one ciphersuite careledger networks use.
pub const CIPHERSUITE: Ciphersuite =
    Ciphersuite::MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519;

/// openmls keeps this many past epochs for late transport messages; content
/// keys persist separately, so transport forward secrecy can stay tight.
const MLS_PAST_EPOCHS: usize = 2;

/// What a pending commit was meant to do, kept to re-propose it if it loses.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Intent {
    Add(Vec<u8>),
    Remove(AuthorId),
    Update,
}

impl Intent {
    fn encode(&self) -> Vec<u8> {
        match self {
            Intent::Add(key_package) => [&[1u8][..], key_package].concat(),
            Intent::Remove(author) => [&[2u8][..], &author.0].concat(),
            Intent::Update => vec![3],
        }
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let mut r = Reader::new(bytes);
        let corrupt = |_| StoreError::Corrupt("pending_commit.intent");
        match r.u8("intent").map_err(corrupt)? {
            1 => Ok(Intent::Add(bytes[1..].to_vec())),
            2 => Ok(Intent::Remove(AuthorId(
                r.array("author").map_err(corrupt)?,
            ))),
            3 => Ok(Intent::Update),
            _ => Err(StoreError::Corrupt("pending_commit.intent")),
        }
    }
}

/// What processing one Commit did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommitOutcome {
    /// Our own pending commit won and was merged.
    MergedOurs,
    /// Another member's commit was applied.
    Applied,
    /// Another member's commit was applied and removed this node.
    RemovedUs,
    /// Applied theirs; our pending commit lost and was re-proposed.
    OursLostRetried,
    /// A Commit for an epoch already past (a loser, or a duplicate): ignored.
    Stale,
}

fn mls_error(error: impl std::fmt::Display) -> NetworkError {
    NetworkError::Mls(plain_mls_text(&error.to_string()))
}

/// Why bytes could not be decoded as an MLS message, as a sentence (the
/// decoder's own text is its `Debug` form, e.g. `EndOfStream`).
pub(crate) fn decode_failure(what: &str, error: &tls_codec::Error) -> String {
    match error {
        tls_codec::Error::EndOfStream => {
            format!("the {what} ends before it is complete (truncated, or cut off in transit)")
        }
        tls_codec::Error::TrailingData => {
            format!("the {what} has extra bytes after its end (pass exactly the bytes careledger produced)")
        }
        tls_codec::Error::UnknownValue(code) => format!(
            "the {what} holds a field value MLS (RFC 9420) does not define ({code}): \
             these bytes are not an MLS message, or they were damaged"
        ),
        _ => format!("the {what} is malformed: a length or field value is out of range"),
    }
}

/// openmls's error texts, with the decoder's `Debug` words (`EndOfStream`,
/// `UnknownValue(772)`, ...) that some of them embed turned into words.
pub(crate) fn plain_mls_text(text: &str) -> String {
    let mut out = text
        .replace("EndOfStream", "the data ends early")
        .replace("TrailingData", "extra bytes after the end")
        .replace("InvalidVectorLength", "a length field is wrong")
        .replace("InvalidInput", "a field value is out of range")
        .replace("LibraryError", "an internal MLS library error");
    const UNKNOWN: &str = "UnknownValue(";
    while let Some(start) = out.find(UNKNOWN) {
        let digits = start + UNKNOWN.len();
        let tail = out.get(digits..).unwrap_or("");
        let code: String = tail.chars().take_while(char::is_ascii_digit).collect();
        let mut end = digits + code.len();
        if out.get(end..).is_some_and(|rest| rest.starts_with(')')) {
            end += 1;
        }
        out.replace_range(start..end, &format!("an unknown field value ({code})"));
    }
    out
}

/// Why a well-formed Welcome was refused, as a sentence.
fn welcome_refused(reason: &str) -> String {
    format!(
        "the Welcome cannot be opened by this node (it was made for another node's key package, \
         or that key package was already used): {}",
        plain_mls_text(reason)
    )
}

fn join_config() -> MlsGroupJoinConfig {
    MlsGroupJoinConfig::builder()
        .use_ratchet_tree_extension(true)
        .max_past_epochs(MLS_PAST_EPOCHS)
        .build()
}

impl Node {
    pub(crate) fn group(&mut self, network: &NetworkId) -> Result<&mut MlsGroup, NetworkError> {
        if !self.groups.contains_key(&network.0) {
            // openmls reads its rows unchecked: check them first.
            self.store.verify_mls_rows()?;
            let group_id = openmls::prelude::GroupId::from_slice(&network.0);
            let group = MlsGroup::load(self.store.provider().storage(), &group_id)
                .map_err(StoreError::Sqlite)?
                .ok_or(NetworkError::UnknownNetwork)?;
            self.groups.insert(network.0.clone(), group);
        }
        self.groups
            .get_mut(&network.0)
            .ok_or(NetworkError::UnknownNetwork)
    }

    /// The store and the network's group, borrowed together for openmls calls.
    fn store_and_group(
        &mut self,
        network: &NetworkId,
    ) -> Result<(&crate::store::Store, &mut MlsGroup), NetworkError> {
        self.group(network)?;
        let group = self
            .groups
            .get_mut(&network.0)
            .ok_or(NetworkError::UnknownNetwork)?;
        Ok((&self.store, group))
    }

    /// A fresh MLS KeyPackage (serialized `MlsMessageOut`) for another member to invite us.
    pub fn key_package(&mut self) -> Result<Vec<u8>, NetworkError> {
        let signer = self.identity.mls_signer();
        let credential = self.identity.credential_with_key();
        let store = &self.store;
        store.transaction(|| {
            let provider = store.provider();
            let bundle = KeyPackage::builder()
                .build(CIPHERSUITE, &provider, &signer, credential)
                .map_err(mls_error)?;
            MlsMessageOut::from(bundle.key_package().clone())
                .tls_serialize_detached()
                .map_err(mls_error)
        })
    }

    /// Create a network with this node as its only member.
    pub fn create_network(&mut self, label: &str) -> Result<NetworkId, NetworkError> {
        let signer = self.identity.mls_signer();
        let credential = self.identity.credential_with_key();
        let network = NetworkId(self.store.random::<16>()?.to_vec());
        self.atomically(|node| {
            let config = MlsGroupCreateConfig::builder()
                .ciphersuite(CIPHERSUITE)
                .use_ratchet_tree_extension(true)
                .max_past_epochs(MLS_PAST_EPOCHS)
                .build();
            let group = MlsGroup::new_with_group_id(
                &node.store.provider(),
                &signer,
                &config,
                openmls::prelude::GroupId::from_slice(&network.0),
                credential,
            )
            .map_err(mls_error)?;
            node.store.insert_network(&network.0, label, 0)?;
            node.groups.insert(network.0.clone(), group);
            node.record_epoch(&network, None)?;
            Ok(network.clone())
        })
    }

    /// Join a network from a Welcome made for one of our key packages: either
    /// the serialized MLS Welcome or the relay message that carries it (as
    /// taken from the inviter's outbox), so transports need not unwrap it.
    pub fn join(&mut self, welcome: &[u8], label: &str) -> Result<NetworkId, NetworkError> {
        let welcome = match WireMessage::decode(welcome) {
            Ok(WireMessage::Welcome(inner)) => inner,
            _ => welcome.to_vec(),
        };
        let message = MlsMessageIn::tls_deserialize_exact(&welcome)
            .map_err(|e| NetworkError::InvalidWelcome(decode_failure("Welcome", &e)))?;
        let MlsMessageBodyIn::Welcome(welcome) = message.extract() else {
            return Err(NetworkError::InvalidWelcome(
                "the bytes are an MLS message but not a Welcome (pass the message whose kind is Welcome)"
                    .into(),
            ));
        };
        self.atomically(|node| {
            node.store.verify_mls_rows()?;
            let provider = node.store.provider();
            let group = StagedWelcome::new_from_welcome(&provider, &join_config(), welcome, None)
                .map_err(|e| NetworkError::InvalidWelcome(welcome_refused(&e.to_string())))?
                .into_group(&provider)
                .map_err(|e| NetworkError::InvalidWelcome(welcome_refused(&e.to_string())))?;
            let network = NetworkId(group.group_id().as_slice().to_vec());
            if node.store.network(&network.0)?.is_some() {
                return Err(NetworkError::InvalidWelcome(
                    "already a member of this network".into(),
                ));
            }
            node.store
                .insert_network(&network.0, label, group.epoch().as_u64())?;
            node.groups.insert(network.0.clone(), group);
            node.record_epoch(&network, None)?;
            Ok(network)
        })
    }

    /// Propose adding the owner of `key_package`; takes effect when the Commit wins.
    pub fn invite(&mut self, network: &NetworkId, key_package: &[u8]) -> Result<(), NetworkError> {
        self.validate_key_package(key_package)?;
        self.atomically(|node| node.propose(network, Intent::Add(key_package.to_vec())))
    }

    /// Propose removing a member; takes effect when the Commit wins. Record keys
    /// are rotated then, so the removed node cannot read anything written later.
    pub fn remove(&mut self, network: &NetworkId, member: &AuthorId) -> Result<(), NetworkError> {
        if !self.members(network)?.iter().any(|m| m.author == *member) {
            return Err(NetworkError::UnknownMember);
        }
        self.atomically(|node| node.propose(network, Intent::Remove(*member)))
    }

    /// Propose a self-update (fresh leaf key material: post-compromise security).
    pub fn update_keys(&mut self, network: &NetworkId) -> Result<(), NetworkError> {
        self.atomically(|node| node.propose(network, Intent::Update))
    }

    /// Who a key package names, checked (signature, ciphersuite) before an
    /// invite, so an operator can compare the fingerprint out of band.
    pub fn inspect_key_package(&self, bytes: &[u8]) -> Result<MemberInfo, NetworkError> {
        let key_package = self.validate_key_package(bytes)?;
        let leaf = key_package.leaf_node();
        let author = AuthorId::of_public_key(leaf.signature_key().as_slice());
        Ok(MemberInfo {
            name: member_name(leaf.credential()),
            fingerprint: fingerprint_of(&author),
            author,
        })
    }

    fn validate_key_package(&self, bytes: &[u8]) -> Result<KeyPackage, NetworkError> {
        let message = MlsMessageIn::tls_deserialize_exact(bytes)
            .map_err(|e| NetworkError::InvalidKeyPackage(decode_failure("key package", &e)))?;
        let MlsMessageBodyIn::KeyPackage(key_package) = message.extract() else {
            return Err(NetworkError::InvalidKeyPackage(
                "the bytes are an MLS message but not a key package (pass what the invitee's key-package call produced)"
                    .into(),
            ));
        };
        let key_package: KeyPackageIn = key_package;
        let key_package = key_package
            .validate(self.store.crypto(), ProtocolVersion::Mls10)
            .map_err(|e| {
                NetworkError::InvalidKeyPackage(format!(
                    "the key package does not verify (its signature or contents were altered): {}",
                    plain_mls_text(&e.to_string())
                ))
            })?;
        if key_package.ciphersuite() != CIPHERSUITE {
            return Err(NetworkError::InvalidKeyPackage(
                "the key package uses another MLS ciphersuite than careledger's".into(),
            ));
        }
        Ok(key_package)
    }

    /// Create the commit for `intent`, store it as pending and queue it for the relay.
    fn propose(&mut self, network: &NetworkId, intent: Intent) -> Result<(), NetworkError> {
        if self.store.pending_commit(&network.0)?.is_some() {
            return Err(NetworkError::CommitPending);
        }
        if self.network_row(network)?.state != "active" {
            return Err(NetworkError::NotAMember);
        }
        let signer = self.identity.mls_signer();
        let key_package = match &intent {
            Intent::Add(bytes) => Some(self.validate_key_package(bytes)?),
            _ => None,
        };
        let leaf = match &intent {
            Intent::Remove(author) => Some(self.leaf_of(network, author)?),
            _ => None,
        };
        let (store, group) = self.store_and_group(network)?;
        let provider = store.provider();
        let epoch = group.epoch().as_u64();
        let (commit, welcome) = match (&intent, key_package, leaf) {
            (Intent::Add(_), Some(key_package), _) => {
                let (commit, welcome, _) = group
                    .add_members(&provider, &signer, &[key_package])
                    .map_err(mls_error)?;
                (commit, Some(welcome))
            }
            (Intent::Remove(_), _, Some(leaf)) => {
                let (commit, _, _) = group
                    .remove_members(&provider, &signer, &[leaf])
                    .map_err(mls_error)?;
                (commit, None)
            }
            _ => {
                let bundle = group
                    .self_update(&provider, &signer, LeafNodeParameters::default())
                    .map_err(mls_error)?;
                (bundle.commit().clone(), None)
            }
        };
        let commit = commit.tls_serialize_detached().map_err(mls_error)?;
        let welcome = welcome
            .map(|w| w.tls_serialize_detached())
            .transpose()
            .map_err(mls_error)?;
        store.set_pending_commit(
            &network.0,
            &PendingCommitRow {
                epoch,
                commit: commit.clone(),
                welcome,
                intent: intent.encode(),
            },
        )?;
        store.push_outbox(&network.0, &WireMessage::Commit(commit).encode())?;
        Ok(())
    }

    fn leaf_of(
        &mut self,
        network: &NetworkId,
        author: &AuthorId,
    ) -> Result<LeafNodeIndex, NetworkError> {
        self.group(network)?
            .members()
            .find(|m| AuthorId::of_public_key(&m.signature_key) == *author)
            .map(|m| m.index)
            .ok_or(NetworkError::UnknownMember)
    }

    /// Re-publish a pending commit that may have been lost in transit.
    pub(crate) fn republish_pending_commit(
        &mut self,
        network: &NetworkId,
    ) -> Result<bool, StoreError> {
        match self.store.pending_commit(&network.0)? {
            Some(row) => {
                self.store
                    .push_outbox(&network.0, &WireMessage::Commit(row.commit).encode())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Handle one Commit in relay order. Caller holds the transaction.
    pub(crate) fn handle_commit(
        &mut self,
        network: &NetworkId,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<CommitOutcome, NetworkError> {
        if self.network_row(network)?.state != "active" {
            return Ok(CommitOutcome::Stale);
        }
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(mls_error)?;
        let protocol = message.try_into_protocol_message().map_err(mls_error)?;
        if protocol.group_id().as_slice() != network.0.as_slice() {
            return Err(NetworkError::Mls("commit for another group".into()));
        }
        let current = self.group(network)?.epoch().as_u64();
        let epoch = protocol.epoch().as_u64();
        if epoch != current {
            // Older: a loser or duplicate of an applied epoch. Newer: cannot come
            // first in relay order; ignoring it keeps every member on one history.
            return Ok(CommitOutcome::Stale);
        }
        let before = self.member_ids(network)?;
        let pending = self.store.pending_commit(&network.0)?;
        if let Some(row) = pending.as_ref().filter(|row| row.commit == bytes) {
            let row = row.clone();
            let (store, group) = self.store_and_group(network)?;
            group
                .merge_pending_commit(&store.provider())
                .map_err(mls_error)?;
            store.clear_pending_commit(&network.0)?;
            self.record_epoch(network, Some(&before))?;
            let removed = self.note_removals(network, &before)?;
            if let Some(welcome) = row.welcome {
                self.store
                    .push_outbox(&network.0, &WireMessage::Welcome(welcome).encode())?;
            }
            // A store restored from an older copy re-merges its commit but
            // writes nothing: the entries it wrote after it come back from
            // the relay (writing them again would fork its chain).
            if !self.behind.contains_key(&network.0) {
                match Intent::decode(&row.intent)? {
                    Intent::Add(_) => self.grant_history(network, now_ms)?,
                    Intent::Remove(_) => {
                        for removed in &removed {
                            self.append_entry(
                                network,
                                EntryKind::MemberRemoved,
                                &removed.encode(),
                                now_ms,
                            )?;
                        }
                        self.rotate_record_keys(network, now_ms)?
                    }
                    Intent::Update => {}
                }
            }
            return Ok(CommitOutcome::MergedOurs);
        }
        // Someone else's commit won this epoch.
        let (store, group) = self.store_and_group(network)?;
        let provider = store.provider();
        if pending.is_some() {
            group
                .clear_pending_commit(provider.storage())
                .map_err(mls_error)?;
            store.clear_pending_commit(&network.0)?;
        }
        let processed = group
            .process_message(&provider, protocol)
            .map_err(mls_error)?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Err(NetworkError::Mls("expected a Commit".into()));
        };
        let removed = staged.self_removed();
        group
            .merge_staged_commit(&provider, *staged)
            .map_err(mls_error)?;
        if removed {
            store.set_network_state(&network.0, "removed")?;
            store.clear_pending_commit(&network.0)?;
            return Ok(CommitOutcome::RemovedUs);
        }
        self.record_epoch(network, Some(&before))?;
        self.note_removals(network, &before)?;
        if let Some(row) = pending {
            let intent = Intent::decode(&row.intent)?;
            // The winning commit may have done what ours meant to (another
            // member removed or added the same node): then ours is dropped.
            let still_wanted = match &intent {
                Intent::Remove(author) => self.leaf_of(network, author).is_ok(),
                Intent::Add(key_package) => match self.inspect_key_package(key_package) {
                    Ok(joiner) => self.leaf_of(network, &joiner.author).is_err(),
                    Err(_) => false,
                },
                Intent::Update => true,
            };
            if still_wanted {
                self.propose(network, intent)?;
            }
            return Ok(CommitOutcome::OursLostRetried);
        }
        Ok(CommitOutcome::Applied)
    }

    fn member_ids(&mut self, network: &NetworkId) -> Result<BTreeSet<AuthorId>, NetworkError> {
        Ok(self
            .group(network)?
            .members()
            .map(|m| AuthorId::of_public_key(&m.signature_key))
            .collect())
    }

    /// After a commit: members it removed get their chain closed where it
    /// stands now in relay order (the last entry of theirs accepted or
    /// waiting), so entries they sign later, claiming an epoch before the
    /// removal, are refused (see `ledger`).
    fn note_removals(
        &mut self,
        network: &NetworkId,
        before: &BTreeSet<AuthorId>,
    ) -> Result<Vec<MemberRemovedBody>, NetworkError> {
        let after = self.member_ids(network)?;
        let epoch = self.epoch(network)?;
        let me = self.identity.author_id();
        let mut out = Vec::new();
        for author in before.difference(&after).filter(|a| **a != me) {
            let head = self
                .store
                .head_of(&network.0, author)?
                .map_or(0, |(seq, _)| seq);
            let held = self
                .store
                .pending_seqs(&network.0, author)?
                .first()
                .map_or(0, |(seq, _, _)| *seq);
            let last_seq = head.max(held);
            self.store
                .put_removed_member(&network.0, author, epoch, last_seq)?;
            out.push(MemberRemovedBody {
                author: author.0,
                removed_epoch: epoch,
                last_seq,
            });
        }
        Ok(out)
    }

    /// Export the epoch key of the group's current epoch and store it with the
    /// roster. `before`: the members of the epoch before, when this node was in it.
    fn record_epoch(
        &mut self,
        network: &NetworkId,
        before: Option<&BTreeSet<AuthorId>>,
    ) -> Result<(), NetworkError> {
        let (store, group) = self.store_and_group(network)?;
        let epoch = group.epoch().as_u64();
        let mut context = network.0.clone();
        context.extend_from_slice(&epoch.to_be_bytes());
        let secret = group
            .export_secret(store.crypto(), EPOCH_KEY_LABEL, &context, 32)
            .map_err(mls_error)?;
        let key =
            SecretKey::from_slice(&secret).ok_or(NetworkError::Mls("exporter length".into()))?;
        store.put_epoch_key(&network.0, &EpochGrant { epoch, key })?;
        // Only who joined or left changes the members table: current
        // members' spans stay open (`store::OPEN_SPAN`).
        let mut joined: BTreeMap<Vec<u8>, String> = group
            .members()
            .map(|m| (m.signature_key, member_name(&m.credential)))
            .collect();
        let now: BTreeSet<AuthorId> = joined.keys().map(|k| AuthorId::of_public_key(k)).collect();
        // A store written before spans stayed open has none: it (and a new
        // member's store) compares the whole roster once.
        let known = match before {
            Some(before) if store.has_open_member_span(&network.0)? => Some(before),
            _ => None,
        };
        if known.is_none_or(|before| !before.is_subset(&now)) {
            for span in store.open_member_spans(&network.0)? {
                if !now.contains(&AuthorId::of_public_key(&span.public_key)) {
                    store.close_member_span(&network.0, &span, epoch.saturating_sub(1))?;
                } else if known.is_none() {
                    joined.remove(&span.public_key);
                }
            }
        }
        if let Some(before) = known {
            joined.retain(|key, _| !before.contains(&AuthorId::of_public_key(key)));
        }
        for (public_key, name) in joined {
            store.add_member_span(
                &network.0,
                &MemberSpan {
                    name,
                    public_key,
                    from_epoch: epoch,
                    to_epoch: OPEN_SPAN,
                },
            )?;
        }
        Ok(())
    }

    /// After adding members: grant every past epoch key, membership span and record key
    /// under the new epoch key, so late joiners can read the whole history.
    fn grant_history(&mut self, network: &NetworkId, now_ms: u64) -> Result<(), NetworkError> {
        let body = self.history_grant(network)?;
        self.append_entry(network, EntryKind::KeyGrant, &body.encode(), now_ms)?;
        Ok(())
    }

    /// Every epoch key, membership span and record key this node holds (keys
    /// withheld from the network or shredded by an erasure excluded).
    fn history_grant(&mut self, network: &NetworkId) -> Result<KeyGrantBody, NetworkError> {
        let through = self.epoch(network)?;
        Ok(KeyGrantBody {
            epochs: self.store.epoch_grants(&network.0)?,
            members: self.store.member_spans(&network.0, through)?,
            record_keys: self.store.record_key_grants(&network.0)?,
        })
    }

    /// After removing members: a fresh key for every record, granted to the
    /// remaining members only (under the new epoch key), together with the
    /// history again. A joiner whose history grant came from the member just
    /// removed, and reached the relay after the removal, has that grant refused
    /// (`RejectEntryError::AfterRemoval`): this one gives it the history instead.
    fn rotate_record_keys(&mut self, network: &NetworkId, now_ms: u64) -> Result<(), NetworkError> {
        let records: std::collections::BTreeSet<String> = self
            .store
            .record_key_grants(&network.0)?
            .into_iter()
            .map(|g| g.record)
            .collect();
        for record in records {
            let grant = self.fresh_record_key(&record)?;
            self.store.put_record_key(&network.0, &grant)?;
        }
        let body = self.history_grant(network)?;
        self.append_entry(network, EntryKind::KeyGrant, &body.encode(), now_ms)?;
        Ok(())
    }

    /// Members of the network's current epoch.
    pub fn members(&mut self, network: &NetworkId) -> Result<Vec<MemberInfo>, NetworkError> {
        let mut members: Vec<MemberInfo> = self
            .group(network)?
            .members()
            .map(|m| {
                let author = AuthorId::of_public_key(&m.signature_key);
                MemberInfo {
                    name: member_name(&m.credential),
                    fingerprint: fingerprint_of(&author),
                    author,
                }
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name).then(a.author.cmp(&b.author)));
        Ok(members)
    }

    /// The network's current MLS epoch.
    pub fn epoch(&mut self, network: &NetworkId) -> Result<u64, NetworkError> {
        Ok(self.group(network)?.epoch().as_u64())
    }

    /// The MLS epoch authenticator of the current epoch: members that agree on
    /// it share the same group state (a fork would make them differ).
    pub fn epoch_authenticator(&mut self, network: &NetworkId) -> Result<Vec<u8>, NetworkError> {
        Ok(self
            .group(network)?
            .epoch_authenticator()
            .as_slice()
            .to_vec())
    }

    /// Every network in this store.
    pub fn networks(&mut self) -> Result<Vec<NetworkInfo>, NetworkError> {
        let rows = self.store.networks()?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = NetworkId(row.id.clone());
            out.push(NetworkInfo {
                epoch: self.epoch(&id)?,
                active: row.state == "active",
                commit_pending: self.store.pending_commit(&row.id)?.is_some(),
                label: row.label,
                id,
            });
        }
        Ok(out)
    }

    /// Whether a commit of ours awaits its turn.
    pub fn commit_pending(&self, network: &NetworkId) -> Result<bool, NetworkError> {
        Ok(self.store.pending_commit(&network.0)?.is_some())
    }

    /// Whether this node is (still) a member.
    pub fn is_member(&self, network: &NetworkId) -> Result<bool, NetworkError> {
        Ok(self.network_row(network)?.state == "active")
    }
}

fn member_name(credential: &openmls::prelude::Credential) -> String {
    BasicCredential::try_from(credential.clone())
        .ok()
        .and_then(|c| String::from_utf8(c.identity().to_vec()).ok())
        .unwrap_or_else(|| "<unnamed>".to_owned())
}

#[cfg(test)]
mod plain_text_tests {
    use super::*;

    #[test]
    fn decoder_words_become_sentences() {
        assert_eq!(
            plain_mls_text("bad: UnknownValue(772), then EndOfStream"),
            "bad: an unknown field value (772), then the data ends early"
        );
        assert_eq!(
            plain_mls_text("cut UnknownValue("),
            "cut an unknown field value ()"
        );
        let shown = decode_failure("key package", &tls_codec::Error::UnknownValue(772));
        assert!(
            shown.contains("772") && !shown.contains("UnknownValue"),
            "{shown}"
        );
        let shown = decode_failure("Welcome", &tls_codec::Error::EndOfStream);
        assert!(
            shown.starts_with("the Welcome ends before it is complete"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod span_tests {
    use super::*;
    use crate::keys::StorageKey;
    use crate::relay::MemoryRelay;
    use crate::store::Store;
    use crate::sync::{join_from_relay, sync};

    fn node(name: &str) -> Node {
        let store = Store::open_in_memory(&StorageKey::from_bytes([3; 32])).unwrap();
        Node::create(store, name).unwrap()
    }

    fn open(node: &Node, network: &NetworkId) -> BTreeSet<AuthorId> {
        node.store
            .open_member_spans(&network.0)
            .unwrap()
            .iter()
            .map(|span| AuthorId::of_public_key(&span.public_key))
            .collect()
    }

    /// `(author, from, to)` of every span, as a grant written at `through` gives them.
    fn spans(node: &Node, network: &NetworkId, through: u64) -> Vec<(AuthorId, u64, u64)> {
        let mut out: Vec<_> = node
            .store
            .member_spans(&network.0, through)
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    AuthorId::of_public_key(&s.public_key),
                    s.from_epoch,
                    s.to_epoch,
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn spans_follow_joins_and_leaves_and_a_store_of_closed_spans_catches_up() {
        let mut relay = MemoryRelay::new();
        let (mut a, mut b, mut c, mut d) = (node("a"), node("b"), node("c"), node("d"));
        let id = |n: &Node| n.identity.author_id();
        let (ia, ib, ic, id_) = (id(&a), id(&b), id(&c), id(&d));
        let network = a.create_network("care").unwrap();
        for joiner in [&mut b, &mut c] {
            a.invite(&network, &joiner.key_package().unwrap()).unwrap();
            sync(&mut a, &mut relay, &network, 1).unwrap();
            join_from_relay(joiner, &mut relay, &network, "care", 1).unwrap();
        }
        sync(&mut b, &mut relay, &network, 1).unwrap();
        assert_eq!(a.epoch(&network).unwrap(), 2);
        assert_eq!(open(&a, &network), BTreeSet::from([ia, ib, ic]));
        let mut expected = vec![(ia, 0, 2), (ib, 1, 2), (ic, 2, 2)];
        expected.sort();
        assert_eq!(spans(&a, &network, 2), expected);
        assert_eq!(spans(&b, &network, 2), expected, "b has a's history");

        // b's store as a release before open spans left it: every span closed.
        for span in b.store.open_member_spans(&network.0).unwrap() {
            b.store.close_member_span(&network.0, &span, 2).unwrap();
        }
        assert!(!b.store.has_open_member_span(&network.0).unwrap());

        a.remove(&network, &ic).unwrap();
        sync(&mut a, &mut relay, &network, 2).unwrap();
        sync(&mut b, &mut relay, &network, 2).unwrap();
        for n in [&a, &b] {
            assert_eq!(open(n, &network), BTreeSet::from([ia, ib]));
            let mut expected = vec![(ia, 0, 3), (ib, 1, 3), (ic, 2, 2)];
            expected.sort();
            assert_eq!(spans(n, &network, 3), expected);
            assert!(n
                .store
                .roster_public_key(&network.0, 3, &ic)
                .unwrap()
                .is_none());
            assert!(n
                .store
                .roster_public_key(&network.0, 2, &ic)
                .unwrap()
                .is_some());
        }

        // A joiner takes the history from a's grant, with c's end.
        a.invite(&network, &d.key_package().unwrap()).unwrap();
        sync(&mut a, &mut relay, &network, 3).unwrap();
        join_from_relay(&mut d, &mut relay, &network, "care", 3).unwrap();
        sync(&mut b, &mut relay, &network, 3).unwrap();
        let mut expected = vec![(ia, 0, 4), (ib, 1, 4), (ic, 2, 2), (id_, 4, 4)];
        expected.sort();
        for n in [&a, &b, &d] {
            assert_eq!(spans(n, &network, 4), expected);
            assert_eq!(open(n, &network), BTreeSet::from([ia, ib, id_]));
        }
    }
}
