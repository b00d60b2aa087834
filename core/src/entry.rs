//! Ledger entries: the versioned binary format of DESIGN §4.
//!
//! Flow: the ledger builds an [`EntryHeader`], seals the body under the epoch key
//! with the encoded header as associated data ([`Entry::seal_and_sign`]), and
//! signs `header ‖ nonce ‖ ciphertext` with the author's Ed25519 key. A receiver
//! calls [`Entry::decode`], then [`Entry::verify`] with the public key the MLS
//! roster gives for `(epoch, author)`, then [`Entry::open`] with the epoch key.
//! The entry id is SHA-256 of the whole encoding ([`Entry::id`]).
//!
//! Encoding (all integers big-endian, TLS presentation style):
//!
//! ```text
//! struct {
//!     uint8  version = 1;
//!     uint8  kind;                 // EntryKind
//!     opaque network<0..255>;      // MLS group id
//!     opaque author[32];           // SHA-256 of the author's Ed25519 public key
//!     uint64 seq;                  // 1, 2, 3 … per author and network
//!     opaque prev[32];             // id of the author's previous entry, zeros for seq 1
//!     uint64 epoch;                // MLS epoch whose key seals the body
//!     uint64 time_ms;              // author-claimed Unix time, milliseconds
//! } EntryHeader;
//! struct {
//!     EntryHeader header;
//!     opaque nonce[24];
//!     opaque ciphertext<0..2^32-1>; // XChaCha20-Poly1305(epoch key, aad = header)
//!     opaque signature[64];         // Ed25519 over everything before it
//! } Entry;
//! ```
//!
//! The header stays in the clear so relays can order and deduplicate without
//! learning which patient an entry is about; the record id is inside the body.
//! The format is hand-written rather than derived because decoding errors must
//! name the field that failed, and the layout is pinned by snapshot and
//! known-answer tests (`core/test_vectors/entry_v1.json`).
//!
//! ```
//! use careledger::entry::{AuthorId, Entry, EntryHeader, EntryId, EntryKind};
//! use careledger::keys::EpochKey;
//! use ed25519_dalek::SigningKey;
//! let signing = SigningKey::from_bytes(&[5; 32]);
//! let header = EntryHeader {
//!     kind: EntryKind::RecordChange,
//!     network: vec![1; 16],
//!     author: AuthorId::of_public_key(signing.verifying_key().as_bytes()),
//!     seq: 1,
//!     prev: EntryId::ZERO,
//!     epoch: 0,
//!     time_ms: 1_700_000_000_000,
//! };
//! let key = EpochKey::from_bytes([6; 32]);
//! let entry = Entry::seal_and_sign(header, &key, b"body", [7; 24], &signing).unwrap();
//! let decoded = Entry::decode(&entry.encode()).unwrap();
//! decoded.verify(signing.verifying_key().as_bytes()).unwrap();
//! assert_eq!(decoded.open(&key).unwrap(), b"body");
//! ```

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::codec::{CodecError, Reader};
use crate::keys::{open, seal, EpochKey, OpenSealedError, SealError, Sealed, NONCE_LEN};

/// The entry format version this library writes and reads.
pub const ENTRY_VERSION: u8 = 1;
/// Largest accepted ciphertext (16 MiB): bounds memory on hostile input.
pub const MAX_CIPHERTEXT_LEN: usize = 16 << 20;

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// All zeros.
            pub const ZERO: Self = Self([0; 32]);

            /// Lowercase hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parse 64 hex digits.
            pub fn from_hex(text: &str) -> Option<Self> {
                let bytes = hex::decode(text).ok()?;
                <[u8; 32]>::try_from(bytes.as_slice()).ok().map(Self)
            }

            /// Copy from a 32-byte slice.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 32]>::try_from(bytes).ok().map(Self)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), &self.to_hex()[..16])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }
    };
}

hash_id!(
    /// SHA-256 of an author's Ed25519 public key; also the Automerge actor id it writes with.
    AuthorId
);
hash_id!(
    /// SHA-256 of an encoded entry.
    EntryId
);

impl AuthorId {
    /// The author id of a public signature key.
    pub fn of_public_key(public_key: &[u8]) -> Self {
        Self(Sha256::digest(public_key).into())
    }
}

/// What an entry carries. Codes are stable and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// An Automerge change to one patient record, sealed again under the record key.
    RecordChange = 1,
    /// Record keys, epoch keys and rosters wrapped under the current epoch key.
    KeyGrant = 2,
    /// A model card: what was trained on which data, and the model itself.
    ModelCard = 3,
    /// One prediction made through the library.
    Decision = 4,
    /// One site's model update for a federated round.
    ModelUpdate = 5,
    /// Notice that a record's new key is withheld from this network (consent
    /// revoked or expired): later changes under that key are out of reach.
    KeyWithheld = 6,
    /// A rule set document (CEL rules, their triggers and executors).
    RuleSet = 10,
    /// An outcome a rule wrote by itself (a FHIR `ClaimResponse` in substance).
    RuleOutcome = 11,
    /// A network policy: the governance quorum.
    Policy = 12,
    /// An endorsement (or its withdrawal) of a rule set, model card or policy.
    Endorsement = 13,
    /// A member's privacy-budget policy for federated tasks.
    FlPolicy = 30,
    /// A federated task's plan (secure aggregation, DP parameters, budget).
    FlPlan = 31,
    /// A site's channel key and dataset facts for a federated task.
    FlKeys = 32,
    /// A site's Feldman commitments and sealed share envelopes.
    FlShares = 33,
    /// A site's masked input for one round.
    FlMasked = 34,
    /// The coordinator's survivor list for one round.
    FlSurvivors = 35,
    /// A survivor's revealed shares for one round.
    FlUnmask = 36,
    /// The coordinator's round card: the exact sum, parameters, budget.
    FlRound = 37,
    /// Crypto-shredding: every honest node deletes the record's keys and
    /// materialised copy; the ciphertext stays in the ledger, unreadable.
    Erase = 20,
    /// The remover's statement of where a removed member's chain ended.
    MemberRemoved = 21,
}

impl EntryKind {
    /// Decode a kind code.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::RecordChange),
            2 => Some(Self::KeyGrant),
            3 => Some(Self::ModelCard),
            4 => Some(Self::Decision),
            5 => Some(Self::ModelUpdate),
            6 => Some(Self::KeyWithheld),
            10 => Some(Self::RuleSet),
            11 => Some(Self::RuleOutcome),
            12 => Some(Self::Policy),
            13 => Some(Self::Endorsement),
            30 => Some(Self::FlPolicy),
            31 => Some(Self::FlPlan),
            32 => Some(Self::FlKeys),
            33 => Some(Self::FlShares),
            34 => Some(Self::FlMasked),
            35 => Some(Self::FlSurvivors),
            36 => Some(Self::FlUnmask),
            37 => Some(Self::FlRound),
            20 => Some(Self::Erase),
            21 => Some(Self::MemberRemoved),
            _ => None,
        }
    }

    /// Human-readable name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RecordChange => "record-change",
            Self::KeyGrant => "key-grant",
            Self::ModelCard => "model-card",
            Self::Decision => "decision",
            Self::ModelUpdate => "model-update",
            Self::KeyWithheld => "key-withheld",
            Self::RuleSet => "rule-set",
            Self::RuleOutcome => "rule-outcome",
            Self::Policy => "policy",
            Self::Endorsement => "endorsement",
            Self::FlPolicy => "fl-policy",
            Self::FlPlan => "fl-plan",
            Self::FlKeys => "fl-keys",
            Self::FlShares => "fl-shares",
            Self::FlMasked => "fl-masked",
            Self::FlSurvivors => "fl-survivors",
            Self::FlUnmask => "fl-unmask",
            Self::FlRound => "fl-round",
            Self::Erase => "erase",
            Self::MemberRemoved => "member-removed",
        }
    }
}

/// The clear, authenticated part of an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    /// What the body holds.
    pub kind: EntryKind,
    /// The network (MLS group id) the entry belongs to.
    pub network: Vec<u8>,
    /// Who wrote it.
    pub author: AuthorId,
    /// Position in the author's chain, starting at 1.
    pub seq: u64,
    /// Id of the author's entry `seq - 1`, or zeros for `seq == 1`.
    pub prev: EntryId,
    /// MLS epoch whose key seals the body.
    pub epoch: u64,
    /// Author-claimed time, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// A complete entry as it travels and as it is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The clear header.
    pub header: EntryHeader,
    /// The sealed body.
    pub body: Sealed,
    /// Ed25519 signature over the encoding up to the signature.
    pub signature: [u8; 64],
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("header", &self.header)
            .field("body", &self.body)
            .finish_non_exhaustive()
    }
}

/// Decoding an entry failed; the variant names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeEntryError {
    /// The bytes end before the named field is complete.
    #[error("entry truncated in field `{0}`")]
    Truncated(&'static str),
    /// The version byte is not one this library reads.
    #[error("entry format version {0} is not supported (this library reads version 1)")]
    UnsupportedVersion(u8),
    /// The kind code is unknown.
    #[error("entry kind code {0} is unknown")]
    UnknownKind(u8),
    /// A length prefix exceeds the format's limit.
    #[error("entry field `{0}` is longer than allowed")]
    TooLong(&'static str),
    /// Bytes remain after the signature.
    #[error("entry has {0} trailing bytes")]
    TrailingBytes(usize),
}

impl From<CodecError> for DecodeEntryError {
    fn from(error: CodecError) -> Self {
        match error {
            CodecError::Truncated(field) => Self::Truncated(field),
            CodecError::TooLong(field) | CodecError::Invalid(field) => Self::TooLong(field),
            CodecError::Trailing(n) => Self::TrailingBytes(n),
        }
    }
}

fn check_signature(
    author: &AuthorId,
    public_key: &[u8],
    signed: &[u8],
    signature: &[u8; 64],
) -> Result<(), VerifyEntryError> {
    if AuthorId::of_public_key(public_key) != *author {
        return Err(VerifyEntryError::AuthorMismatch);
    }
    let key_bytes: [u8; 32] = public_key
        .try_into()
        .map_err(|_| VerifyEntryError::BadPublicKey)?;
    let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| VerifyEntryError::BadPublicKey)?;
    key.verify(signed, &Signature::from_bytes(signature))
        .map_err(|_| VerifyEntryError::BadSignature)
}

/// Checking an entry's signature failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyEntryError {
    /// The public key given is not a valid Ed25519 key.
    #[error("author public key is not a valid Ed25519 key")]
    BadPublicKey,
    /// The public key does not hash to the header's author id.
    #[error("public key does not belong to the entry's author")]
    AuthorMismatch,
    /// The signature does not verify.
    #[error("entry signature is invalid")]
    BadSignature,
}

/// Building an entry failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealEntryError {
    /// The network id is longer than 255 bytes.
    #[error("network id longer than 255 bytes")]
    NetworkIdTooLong,
    /// The body could not be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// The body is larger than [`MAX_CIPHERTEXT_LEN`].
    #[error("entry body too large")]
    BodyTooLarge,
}

impl EntryHeader {
    /// The header's encoding, used as the body's associated data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + 1 + self.network.len() + 32 + 8 + 32 + 8 + 8);
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(ENTRY_VERSION);
        out.push(self.kind as u8);
        // Length fits: constructors reject networks longer than 255 bytes.
        out.push(self.network.len().min(255) as u8);
        out.extend_from_slice(&self.network[..self.network.len().min(255)]);
        out.extend_from_slice(&self.author.0);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.prev.0);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
    }
}

impl Entry {
    /// Seal `body` under `key` and sign the result with the author's key.
    pub fn seal_and_sign(
        header: EntryHeader,
        key: &EpochKey,
        body: &[u8],
        nonce: [u8; NONCE_LEN],
        signing_key: &SigningKey,
    ) -> Result<Entry, SealEntryError> {
        if header.network.len() > 255 {
            return Err(SealEntryError::NetworkIdTooLong);
        }
        let sealed = seal(key.secret(), &header.encode(), body, nonce)?;
        if sealed.ciphertext.len() > MAX_CIPHERTEXT_LEN {
            return Err(SealEntryError::BodyTooLarge);
        }
        let mut entry = Entry {
            header,
            body: sealed,
            signature: [0; 64],
        };
        entry.signature = signing_key.sign(&entry.signed_bytes()).to_bytes();
        Ok(entry)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.ciphertext.len());
        self.header.encode_into(&mut out);
        out.extend_from_slice(&self.body.nonce);
        out.extend_from_slice(&(self.body.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.body.ciphertext);
        out
    }

    /// The full encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.signed_bytes();
        out.extend_from_slice(&self.signature);
        out
    }

    /// SHA-256 of the encoding.
    pub fn id(&self) -> EntryId {
        Self::id_of(&self.encode())
    }

    /// The id of already encoded entry bytes. The encoding is canonical
    /// (every entry has exactly one), so for bytes that [`Entry::decode`]
    /// accepts this equals `decode(bytes)?.id()` without re-encoding.
    pub fn id_of(encoded: &[u8]) -> EntryId {
        EntryId(Sha256::digest(encoded).into())
    }

    /// Decode an entry; never panics on any input.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeEntryError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("version")?;
        if version != ENTRY_VERSION {
            return Err(DecodeEntryError::UnsupportedVersion(version));
        }
        let kind_code = r.u8("kind")?;
        let kind =
            EntryKind::from_code(kind_code).ok_or(DecodeEntryError::UnknownKind(kind_code))?;
        let network_len = r.u8("network")? as usize;
        let network = r.take(network_len, "network")?.to_vec();
        let author = AuthorId(r.array("author")?);
        let seq = r.u64("seq")?;
        let prev = EntryId(r.array("prev")?);
        let epoch = r.u64("epoch")?;
        let time_ms = r.u64("time_ms")?;
        let nonce = r.array("nonce")?;
        let ct_len = r.u32("ciphertext")? as usize;
        if ct_len > MAX_CIPHERTEXT_LEN {
            return Err(DecodeEntryError::TooLong("ciphertext"));
        }
        let ciphertext = r.take(ct_len, "ciphertext")?.to_vec();
        let signature = r.array("signature")?;
        if r.position() != bytes.len() {
            return Err(DecodeEntryError::TrailingBytes(bytes.len() - r.position()));
        }
        Ok(Entry {
            header: EntryHeader {
                kind,
                network,
                author,
                seq,
                prev,
                epoch,
                time_ms,
            },
            body: Sealed { nonce, ciphertext },
            signature,
        })
    }

    /// Check the signature against the author's public key (from the MLS roster).
    pub fn verify(&self, public_key: &[u8]) -> Result<(), VerifyEntryError> {
        check_signature(
            &self.header.author,
            public_key,
            &self.signed_bytes(),
            &self.signature,
        )
    }

    /// Check the signature of entry bytes exactly as received, without
    /// re-encoding: because the encoding is canonical, the signed part is
    /// everything but the last 64 bytes. `author` is the decoded header's.
    pub fn verify_encoded(
        encoded: &[u8],
        author: &AuthorId,
        public_key: &[u8],
    ) -> Result<(), VerifyEntryError> {
        let split = encoded
            .len()
            .checked_sub(64)
            .ok_or(VerifyEntryError::BadSignature)?;
        let (signed, signature) = encoded.split_at(split);
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| VerifyEntryError::BadSignature)?;
        check_signature(author, public_key, signed, &signature)
    }

    /// Open the body with the epoch key of `header.epoch`.
    pub fn open(&self, key: &EpochKey) -> Result<Vec<u8>, OpenSealedError> {
        open(key.secret(), &self.header.encode(), &self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fixed() -> (SigningKey, EpochKey, Entry) {
        let signing = SigningKey::from_bytes(&[0x11; 32]);
        let header = EntryHeader {
            kind: EntryKind::RecordChange,
            network: vec![0x22; 16],
            author: AuthorId::of_public_key(signing.verifying_key().as_bytes()),
            seq: 2,
            prev: EntryId([0x33; 32]),
            epoch: 7,
            time_ms: 1_764_000_000_000,
        };
        let key = EpochKey::from_bytes([0x44; 32]);
        let entry =
            Entry::seal_and_sign(header, &key, b"sealed body", [0x55; 24], &signing).unwrap();
        (signing, key, entry)
    }

    #[test]
    fn encoding_is_pinned() {
        let (_, _, entry) = fixed();
        insta::assert_snapshot!("entry_v1_hex", hex::encode(entry.encode()));
        insta::assert_snapshot!("entry_v1_id", entry.id().to_hex());
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let (_, _, entry) = fixed();
        let bytes = entry.encode();
        for len in 0..bytes.len() {
            assert!(matches!(
                Entry::decode(&bytes[..len]),
                Err(DecodeEntryError::Truncated(_))
            ));
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Entry::decode(&longer),
            Err(DecodeEntryError::TrailingBytes(1))
        );
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert_eq!(
            Entry::decode(&other_version),
            Err(DecodeEntryError::UnsupportedVersion(2))
        );
    }

    #[test]
    fn any_flipped_bit_fails_verification_or_opening() {
        let (signing, key, entry) = fixed();
        let public = signing.verifying_key().to_bytes();
        let bytes = entry.encode();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x80;
            let accepted = Entry::decode(&tampered)
                .ok()
                .filter(|e| e.verify(&public).is_ok())
                .filter(|e| e.open(&key).is_ok());
            assert!(accepted.is_none(), "flip at byte {i} was accepted");
        }
    }

    #[test]
    fn id_of_bytes_equals_id_of_decoded_entry() {
        let (_, _, entry) = fixed();
        let bytes = entry.encode();
        assert_eq!(Entry::id_of(&bytes), entry.id());
        assert_eq!(
            Entry::decode(&bytes).unwrap().encode(),
            bytes,
            "encoding is canonical"
        );
    }

    #[test]
    fn verifying_bytes_agrees_with_verifying_the_entry() {
        let (signing, _, entry) = fixed();
        let public = signing.verifying_key().to_bytes();
        let bytes = entry.encode();
        assert!(Entry::verify_encoded(&bytes, &entry.header.author, &public).is_ok());
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1;
            let by_bytes = Entry::verify_encoded(&tampered, &entry.header.author, &public).is_ok();
            let by_entry = Entry::decode(&tampered).is_ok_and(|e| e.verify(&public).is_ok());
            assert!(!by_bytes && !by_entry, "flip at {i} verified");
        }
        assert!(Entry::verify_encoded(&bytes[..10], &entry.header.author, &public).is_err());
    }

    #[test]
    fn wrong_author_key_is_rejected() {
        let (_, _, entry) = fixed();
        let other = SigningKey::from_bytes(&[0x66; 32]);
        assert_eq!(
            entry.verify(other.verifying_key().as_bytes()),
            Err(VerifyEntryError::AuthorMismatch)
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Entry::decode(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(
            network in proptest::collection::vec(any::<u8>(), 0..255),
            seq in any::<u64>(), epoch in any::<u64>(), time_ms in any::<u64>(),
            body in proptest::collection::vec(any::<u8>(), 0..512),
            kind in prop_oneof![Just(EntryKind::RecordChange), Just(EntryKind::KeyGrant)],
        ) {
            let signing = SigningKey::from_bytes(&[9; 32]);
            let header = EntryHeader {
                kind, network, author: AuthorId::of_public_key(signing.verifying_key().as_bytes()),
                seq, prev: EntryId([1; 32]), epoch, time_ms,
            };
            let key = EpochKey::from_bytes([2; 32]);
            let entry = Entry::seal_and_sign(header, &key, &body, [3; 24], &signing).unwrap();
            let decoded = Entry::decode(&entry.encode()).unwrap();
            prop_assert_eq!(&decoded, &entry);
            prop_assert!(decoded.verify(signing.verifying_key().as_bytes()).is_ok());
            prop_assert_eq!(decoded.open(&key).unwrap(), body);
        }
    }
}
