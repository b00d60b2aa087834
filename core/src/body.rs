//! What a sealed entry body holds, by [`EntryKind`](crate::entry::EntryKind).
//!
//! A record change is sealed twice: the outer seal (epoch key) hides which
//! record it touches from anyone outside the epoch; the inner seal (record key)
//! lets a record key be rotated or shredded independently of MLS epochs.
//!
//! ```text
//! struct {                              // RecordChange
//!     opaque record<0..255>;            // patient record id (UTF-8)
//!     opaque key_id[16];                // which record key seals `change`
//!     opaque change<0..2^32-1>;         // Sealed(record key, aad = header ‖ record) of one Automerge change chunk
//! } RecordChangeBody;
//! struct {                              // KeyGrant
//!     uint16 epoch_count; EpochGrant epochs[epoch_count];
//!     uint32 member_count; MemberSpan members[member_count];
//!     uint32 record_key_count; RecordKeyGrant record_keys[record_key_count];
//! } KeyGrantBody;
//! struct { uint64 epoch; opaque key[32]; } EpochGrant;
//! struct {                              // a member of every epoch in [from, to]
//!     opaque public_key<0..255>; opaque name<0..255>; uint64 from_epoch; uint64 to_epoch;
//! } MemberSpan;
//! struct { opaque record<0..255>; opaque key_id[16]; opaque key[32]; } RecordKeyGrant;
//! struct {                              // KeyWithheld
//!     opaque record<0..255>;            // the record whose new key is withheld
//!     opaque key_id[16];                // the withheld key: never granted to this network
//!     uint8 reason;                     // 1 consent denies, 2 expired, 3 no consent, 4 revoked
//!     opaque consent<0..255>;           // the consent id that decided (empty for 3)
//! } KeyWithheldBody;
//! struct {                              // Erase (crypto-shredding)
//!     opaque record<0..255>;            // the chart erased
//!     uint8 scope;                      // 1 the whole chart, 2 the resources listed
//!     uint16 count; ResourceRef resources[count];        // scope 2: what goes
//!     uint16 key_count; opaque key_ids[key_count][16];   // every key of the record the writer held
//!     uint8 source;                     // 1 written by the patient's node, 2 on the patient's behalf
//! } EraseBody;
//! struct { opaque type<0..255>; opaque id<0..255>; } ResourceRef;
//! struct {                              // MemberRemoved
//!     opaque author[32];                // the member removed
//!     uint64 removed_epoch;             // first epoch without it
//!     uint64 last_seq;                  // its last entry that came before the removal
//! } MemberRemovedBody;
//! struct { opaque card<0..2^32-1>; opaque model<0..2^32-1>; } ModelCardBody;   // JSON card, model bytes
//! struct { opaque json<0..2^32-1>; } DecisionBody;                             // JSON decision
//! struct { opaque json<0..2^32-1>; opaque update<0..2^32-1>; } ModelUpdateBody; // JSON facts, update bytes
//! ```
//!
//! The change chunk is written as Automerge stores changes: compressed
//! (chunk type 2, DEFLATE) above 256 bytes, which makes FHIR changes about
//! ten times smaller; its hash is that of the uncompressed change. Readers
//! take either form, so entries written before compression still apply.
//!
//! Rosters travel as membership spans rather than one list per epoch, so a
//! history grant grows with epochs plus members, not epochs times members.
//! A span in a grant ends at the grant's epoch at the latest; members of
//! that epoch are members until a later epoch says otherwise.

use zeroize::Zeroize;

use crate::codec::{put_vec32, put_vec8, CodecError, Reader};
use crate::keys::{SecretKey, KEY_LEN};

/// Identifies one record key among the keys of one record.
pub type RecordKeyId = [u8; 16];

/// The body of a record-change entry.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordChangeBody {
    /// The record (patient id) changed.
    pub record: String,
    /// The record key that seals `change`.
    pub key_id: RecordKeyId,
    /// `Sealed` bytes of the Automerge change.
    pub change: Vec<u8>,
}

impl std::fmt::Debug for RecordChangeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordChangeBody")
            .field("change_len", &self.change.len())
            .finish_non_exhaustive()
    }
}

impl RecordChangeBody {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.record.len() + self.change.len() + 24);
        put_vec8(&mut out, self.record.as_bytes());
        out.extend_from_slice(&self.key_id);
        put_vec32(&mut out, &self.change);
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let body = Self {
            record: r.string8("record")?,
            key_id: r.array("key_id")?,
            change: r.vec32("change")?.to_vec(),
        };
        r.finish()?;
        Ok(body)
    }

    /// Associated data of the inner seal: binds the change to its entry and record.
    pub fn inner_aad(header: &[u8], record: &str) -> Vec<u8> {
        let mut aad = header.to_vec();
        aad.extend_from_slice(record.as_bytes());
        aad
    }
}

/// A member of a network over a contiguous range of epochs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSpan {
    /// Ed25519 public key (its SHA-256 is the author id).
    pub public_key: Vec<u8>,
    /// The name in the member's MLS credential.
    pub name: String,
    /// First epoch of the span.
    pub from_epoch: u64,
    /// Last epoch of the span (inclusive).
    pub to_epoch: u64,
}

/// An epoch's network key.
#[derive(Clone, PartialEq, Eq)]
pub struct EpochGrant {
    /// The epoch.
    pub epoch: u64,
    /// Its network key.
    pub key: SecretKey,
}

/// A record key.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordKeyGrant {
    /// The record.
    pub record: String,
    /// Key id.
    pub key_id: RecordKeyId,
    /// The key.
    pub key: SecretKey,
}

/// The body of a key-grant entry.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KeyGrantBody {
    /// Past epochs' keys, for members who joined later.
    pub epochs: Vec<EpochGrant>,
    /// Who was a member when, for checking the authors of past entries.
    pub members: Vec<MemberSpan>,
    /// Record keys.
    pub record_keys: Vec<RecordKeyGrant>,
}

impl std::fmt::Debug for KeyGrantBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyGrantBody")
            .field("epochs", &self.epochs.len())
            .field("members", &self.members.len())
            .field("record_keys", &self.record_keys.len())
            .finish()
    }
}

impl KeyGrantBody {
    /// Encode; the buffer is wiped by the caller after sealing.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.epochs.len().min(u16::MAX as usize) as u16).to_be_bytes());
        for grant in self.epochs.iter().take(u16::MAX as usize) {
            out.extend_from_slice(&grant.epoch.to_be_bytes());
            out.extend_from_slice(grant.key.as_bytes());
        }
        out.extend_from_slice(&(self.members.len() as u32).to_be_bytes());
        for member in &self.members {
            put_vec8(&mut out, &member.public_key);
            put_vec8(&mut out, member.name.as_bytes());
            out.extend_from_slice(&member.from_epoch.to_be_bytes());
            out.extend_from_slice(&member.to_epoch.to_be_bytes());
        }
        out.extend_from_slice(&(self.record_keys.len() as u32).to_be_bytes());
        for grant in &self.record_keys {
            put_vec8(&mut out, grant.record.as_bytes());
            out.extend_from_slice(&grant.key_id);
            out.extend_from_slice(grant.key.as_bytes());
        }
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let mut body = KeyGrantBody::default();
        for _ in 0..r.u16("epoch_count")? {
            let epoch = r.u64("epoch")?;
            let mut key: [u8; KEY_LEN] = r.array("epoch_key")?;
            body.epochs.push(EpochGrant {
                epoch,
                key: SecretKey::from_bytes(key),
            });
            key.zeroize();
        }
        for _ in 0..r.u32("member_count")? {
            let member = MemberSpan {
                public_key: r.vec8("public_key")?.to_vec(),
                name: r.string8("name")?,
                from_epoch: r.u64("from_epoch")?,
                to_epoch: r.u64("to_epoch")?,
            };
            if member.from_epoch > member.to_epoch {
                return Err(CodecError::Invalid("member span"));
            }
            body.members.push(member);
        }
        let count = r.u32("record_key_count")?;
        for _ in 0..count {
            let record = r.string8("record")?;
            let key_id = r.array("key_id")?;
            let mut key: [u8; KEY_LEN] = r.array("record_key")?;
            body.record_keys.push(RecordKeyGrant {
                record,
                key_id,
                key: SecretKey::from_bytes(key),
            });
            key.zeroize();
        }
        r.finish()?;
        Ok(body)
    }
}

/// Why a record key is withheld from a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum WithholdReason {
    /// An active consent denies the use (revoked grants fall back to this or to 3).
    Denied = 1,
    /// The consent that covered the use has expired.
    Expired = 2,
    /// No consent covers the use and the network default denies it.
    NoConsent = 3,
    /// The consent that covered the use was revoked (and nothing else covers it).
    Revoked = 4,
}

impl WithholdReason {
    /// Decode.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Denied),
            2 => Some(Self::Expired),
            3 => Some(Self::NoConsent),
            4 => Some(Self::Revoked),
            _ => None,
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Denied => "consent denies",
            Self::Expired => "consent expired",
            Self::NoConsent => "no consent",
            Self::Revoked => "consent revoked",
        }
    }
}

/// The body of a key-withheld entry: the writer rotated the record's key
/// and keeps the new one to itself, so members of this network cannot read
/// what it writes to the record from now on.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyWithheldBody {
    /// The record.
    pub record: String,
    /// The withheld key's id.
    pub key_id: RecordKeyId,
    /// Why.
    pub reason: WithholdReason,
    /// The consent that decided, if any.
    pub consent: String,
}

impl std::fmt::Debug for KeyWithheldBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWithheldBody")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl KeyWithheldBody {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.record.len() + self.consent.len() + 20);
        put_vec8(&mut out, self.record.as_bytes());
        out.extend_from_slice(&self.key_id);
        out.push(self.reason as u8);
        put_vec8(&mut out, self.consent.as_bytes());
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let body = Self {
            record: r.string8("record")?,
            key_id: r.array("key_id")?,
            reason: WithholdReason::from_code(r.u8("reason")?)
                .ok_or(CodecError::Invalid("withhold reason"))?,
            consent: r.string8("consent")?,
        };
        r.finish()?;
        Ok(body)
    }
}

/// What an erase entry shreds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EraseScope {
    /// The whole chart.
    Chart,
    /// These resources `(resource type, id)`; the rest of the chart is
    /// written again under a fresh key by the erasing node.
    Resources(Vec<(String, String)>),
}

/// Who asked for an erasure, as its writer states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EraseSource {
    /// One of the patient's own nodes (their phone) wrote it.
    PatientNode = 1,
    /// A member institution recorded it on the patient's behalf.
    OnBehalf = 2,
}

/// The body of an erase entry: every honest node deletes the record's keys
/// and its materialised copy; the record's ciphertext stays in the ledger.
#[derive(Clone, PartialEq, Eq)]
pub struct EraseBody {
    /// The chart.
    pub record: String,
    /// What is erased.
    pub scope: EraseScope,
    /// Every key of the record the writer held: changes sealed under them
    /// are accepted into the ledger unread, by members who never had them too.
    pub key_ids: Vec<RecordKeyId>,
    /// Who asked.
    pub source: EraseSource,
}

impl std::fmt::Debug for EraseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resources = match &self.scope {
            EraseScope::Chart => None,
            EraseScope::Resources(list) => Some(list.len()),
        };
        f.debug_struct("EraseBody")
            .field("resources", &resources)
            .field("keys", &self.key_ids.len())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl EraseBody {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_vec8(&mut out, self.record.as_bytes());
        match &self.scope {
            EraseScope::Chart => {
                out.push(1);
                out.extend_from_slice(&0u16.to_be_bytes());
            }
            EraseScope::Resources(list) => {
                out.push(2);
                out.extend_from_slice(&(list.len().min(u16::MAX as usize) as u16).to_be_bytes());
                for (resource_type, id) in list.iter().take(u16::MAX as usize) {
                    put_vec8(&mut out, resource_type.as_bytes());
                    put_vec8(&mut out, id.as_bytes());
                }
            }
        }
        out.extend_from_slice(&(self.key_ids.len().min(u16::MAX as usize) as u16).to_be_bytes());
        for key_id in self.key_ids.iter().take(u16::MAX as usize) {
            out.extend_from_slice(key_id);
        }
        out.push(self.source as u8);
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let record = r.string8("record")?;
        let scope_code = r.u8("scope")?;
        let mut resources = Vec::new();
        for _ in 0..r.u16("resource_count")? {
            resources.push((r.string8("resource_type")?, r.string8("resource_id")?));
        }
        let scope = match scope_code {
            1 if resources.is_empty() => EraseScope::Chart,
            2 if !resources.is_empty() => EraseScope::Resources(resources),
            _ => return Err(CodecError::Invalid("erase scope")),
        };
        let mut key_ids = Vec::new();
        for _ in 0..r.u16("key_count")? {
            key_ids.push(r.array("key_id")?);
        }
        let source = match r.u8("source")? {
            1 => EraseSource::PatientNode,
            2 => EraseSource::OnBehalf,
            _ => return Err(CodecError::Invalid("erase source")),
        };
        r.finish()?;
        Ok(Self {
            record,
            scope,
            key_ids,
            source,
        })
    }
}

/// The body of a member-removed entry: the remover states where the removed
/// member's chain ended when its removal took effect in relay order, so
/// members who did not see that commit (joiners) refuse the same entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberRemovedBody {
    /// The removed member.
    pub author: [u8; 32],
    /// The first epoch it was no longer a member of.
    pub removed_epoch: u64,
    /// Its last entry that arrived before the removal (0: none).
    pub last_seq: u64,
}

impl MemberRemovedBody {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.author.to_vec();
        out.extend_from_slice(&self.removed_epoch.to_be_bytes());
        out.extend_from_slice(&self.last_seq.to_be_bytes());
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let body = Self {
            author: r.array("author")?,
            removed_epoch: r.u64("removed_epoch")?,
            last_seq: r.u64("last_seq")?,
        };
        r.finish()?;
        Ok(body)
    }
}

/// Two length-prefixed byte strings: the shape of the model-card and
/// model-update bodies (JSON facts, then model bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairBody {
    /// The JSON part.
    pub json: Vec<u8>,
    /// The binary part (may be empty).
    pub bytes: Vec<u8>,
}

impl PairBody {
    /// Encode.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json.len() + self.bytes.len() + 8);
        put_vec32(&mut out, &self.json);
        put_vec32(&mut out, &self.bytes);
        out
    }

    /// Decode.
    pub fn decode(bytes: &[u8]) -> Result<Self, CodecError> {
        let mut r = Reader::new(bytes);
        let body = Self {
            json: r.vec32("json")?.to_vec(),
            bytes: r.vec32("bytes")?.to_vec(),
        };
        r.finish()?;
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_grant_round_trip_and_redacted_debug() {
        let body = KeyGrantBody {
            epochs: vec![EpochGrant {
                epoch: 3,
                key: SecretKey::from_bytes([1; 32]),
            }],
            members: vec![MemberSpan {
                public_key: vec![2; 32],
                name: "hospital-a.example".into(),
                from_epoch: 0,
                to_epoch: 3,
            }],
            record_keys: vec![RecordKeyGrant {
                record: "patient-1".into(),
                key_id: [3; 16],
                key: SecretKey::from_bytes([4; 32]),
            }],
        };
        let decoded = KeyGrantBody::decode(&body.encode()).unwrap();
        assert!(decoded == body);
        let shown = format!("{decoded:?}");
        assert!(!shown.contains("patient-1"));
        let mut backwards = body.clone();
        backwards.members[0].from_epoch = 4;
        assert_eq!(
            KeyGrantBody::decode(&backwards.encode()),
            Err(CodecError::Invalid("member span"))
        );
    }

    #[test]
    fn withheld_and_pair_round_trip() {
        let body = KeyWithheldBody {
            record: "patient-1".into(),
            key_id: [7; 16],
            reason: WithholdReason::Expired,
            consent: "consent-1".into(),
        };
        assert_eq!(KeyWithheldBody::decode(&body.encode()), Ok(body.clone()));
        assert!(!format!("{body:?}").contains("patient-1"));
        let mut bad = body.encode();
        bad[1 + 9 + 16] = 9;
        assert_eq!(
            KeyWithheldBody::decode(&bad),
            Err(CodecError::Invalid("withhold reason"))
        );
        let pair = PairBody {
            json: b"{}".to_vec(),
            bytes: vec![1, 2, 3],
        };
        assert_eq!(PairBody::decode(&pair.encode()), Ok(pair));
    }

    #[test]
    fn erase_and_member_removed_round_trip() {
        for scope in [
            EraseScope::Chart,
            EraseScope::Resources(vec![("Observation".into(), "o-1".into())]),
        ] {
            let body = EraseBody {
                record: "patient-1".into(),
                scope,
                key_ids: vec![[1; 16], [2; 16]],
                source: EraseSource::OnBehalf,
            };
            assert_eq!(EraseBody::decode(&body.encode()), Ok(body.clone()));
            assert!(!format!("{body:?}").contains("patient-1"));
        }
        let mut bad = EraseBody {
            record: "p".into(),
            scope: EraseScope::Chart,
            key_ids: vec![],
            source: EraseSource::PatientNode,
        }
        .encode();
        bad[2] = 2; // scope 2 with no resources
        assert_eq!(
            EraseBody::decode(&bad),
            Err(CodecError::Invalid("erase scope"))
        );
        let removed = MemberRemovedBody {
            author: [9; 32],
            removed_epoch: 4,
            last_seq: 17,
        };
        assert_eq!(MemberRemovedBody::decode(&removed.encode()), Ok(removed));
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = KeyGrantBody::decode(&bytes);
            let _ = RecordChangeBody::decode(&bytes);
            let _ = KeyWithheldBody::decode(&bytes);
            let _ = PairBody::decode(&bytes);
            let _ = EraseBody::decode(&bytes);
            let _ = MemberRemovedBody::decode(&bytes);
        }
    }
}
