//! JSON known-answer vectors for the persisted and wire formats
//! (`core/test_vectors/*.json`). Each vector must decode, verify and open with
//! its fixed keys, and encoding its fields must give back the exact bytes.
//! Regenerate (only when the format version changes) with
//! `CARELEDGER_WRITE_VECTORS=1 cargo test -p careledger --test vectors`.

use careledger::body::{EpochGrant, KeyGrantBody, MemberSpan, RecordChangeBody, RecordKeyGrant};
use careledger::entry::{AuthorId, Entry, EntryHeader, EntryId, EntryKind};
use careledger::keys::{open, seal, EpochKey, Sealed, SecretKey};
use careledger::relay::chunk::{reassemble, split, Manifest};
use careledger::wire::WireMessage;
use ed25519_dalek::SigningKey;
use serde_json::{json, Value};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test_vectors");

fn h(value: &Value, field: &str) -> Vec<u8> {
    hex::decode(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("field {field}")),
    )
    .unwrap()
}

fn arr<const N: usize>(value: &Value, field: &str) -> [u8; N] {
    h(value, field).try_into().unwrap()
}

/// Build the record-change vector from its inputs.
fn record_change_vector() -> Value {
    let signing = SigningKey::from_bytes(&[0x11; 32]);
    let epoch_key = EpochKey::from_bytes([0x22; 32]);
    let record_key = SecretKey::from_bytes([0x33; 32]);
    let change = b"automerge change bytes".to_vec();
    let header = EntryHeader {
        kind: EntryKind::RecordChange,
        network: vec![0x44; 16],
        author: AuthorId::of_public_key(signing.verifying_key().as_bytes()),
        seq: 3,
        prev: EntryId([0x55; 32]),
        epoch: 2,
        time_ms: 1_764_000_000_000,
    };
    let record = "patient-0001".to_string();
    let aad = RecordChangeBody::inner_aad(&header.encode(), &record);
    let inner = seal(&record_key, &aad, &change, [0x66; 24]).unwrap();
    let body = RecordChangeBody {
        record: record.clone(),
        key_id: [0x77; 16],
        change: inner.to_bytes(),
    };
    let entry = Entry::seal_and_sign(
        header.clone(),
        &epoch_key,
        &body.encode(),
        [0x88; 24],
        &signing,
    )
    .unwrap();
    json!({
        "description": "entry format v1, kind record-change: header in clear, body sealed under the epoch key, Automerge change sealed again under the record key",
        "signing_key_seed": hex::encode([0x11; 32]),
        "public_key": hex::encode(signing.verifying_key().as_bytes()),
        "epoch_key": hex::encode([0x22; 32]),
        "record_key": hex::encode([0x33; 32]),
        "record_key_id": hex::encode([0x77; 16]),
        "record": record,
        "network": hex::encode(&header.network),
        "author": header.author.to_hex(),
        "seq": header.seq,
        "prev": header.prev.to_hex(),
        "epoch": header.epoch,
        "time_ms": header.time_ms,
        "inner_nonce": hex::encode([0x66; 24]),
        "outer_nonce": hex::encode([0x88; 24]),
        "change": hex::encode(&change),
        "body": hex::encode(body.encode()),
        "encoded": hex::encode(entry.encode()),
        "id": entry.id().to_hex(),
        "wire_message": hex::encode(WireMessage::Entry(entry.encode()).encode()),
    })
}

fn key_grant_vector() -> Value {
    let signing = SigningKey::from_bytes(&[0x12; 32]);
    let epoch_key = EpochKey::from_bytes([0x23; 32]);
    let grant = KeyGrantBody {
        epochs: vec![EpochGrant {
            epoch: 0,
            key: SecretKey::from_bytes([0x34; 32]),
        }],
        members: vec![MemberSpan {
            public_key: signing.verifying_key().to_bytes().to_vec(),
            name: "hospital-a.example".into(),
            from_epoch: 0,
            to_epoch: 1,
        }],
        record_keys: vec![RecordKeyGrant {
            record: "patient-0001".into(),
            key_id: [0x45; 16],
            key: SecretKey::from_bytes([0x56; 32]),
        }],
    };
    let header = EntryHeader {
        kind: EntryKind::KeyGrant,
        network: vec![0x44; 16],
        author: AuthorId::of_public_key(signing.verifying_key().as_bytes()),
        seq: 1,
        prev: EntryId::ZERO,
        epoch: 1,
        time_ms: 1_764_000_000_001,
    };
    let entry = Entry::seal_and_sign(
        header.clone(),
        &epoch_key,
        &grant.encode(),
        [0x67; 24],
        &signing,
    )
    .unwrap();
    json!({
        "description": "entry format v1, kind key-grant: one past epoch key, one membership span and one record key, sealed under the current epoch key",
        "signing_key_seed": hex::encode([0x12; 32]),
        "public_key": hex::encode(signing.verifying_key().as_bytes()),
        "epoch_key": hex::encode([0x23; 32]),
        "network": hex::encode(&header.network),
        "author": header.author.to_hex(),
        "seq": header.seq,
        "prev": header.prev.to_hex(),
        "epoch": header.epoch,
        "time_ms": header.time_ms,
        "outer_nonce": hex::encode([0x67; 24]),
        "body": hex::encode(grant.encode()),
        "encoded": hex::encode(entry.encode()),
        "id": entry.id().to_hex(),
    })
}

fn check_entry(v: &Value) -> (Entry, Vec<u8>) {
    let encoded = h(v, "encoded");
    let entry = Entry::decode(&encoded).expect("vector decodes");
    assert_eq!(entry.id().to_hex(), v["id"].as_str().unwrap());
    assert_eq!(entry.header.author.to_hex(), v["author"].as_str().unwrap());
    assert_eq!(entry.header.seq, v["seq"].as_u64().unwrap());
    assert_eq!(entry.header.epoch, v["epoch"].as_u64().unwrap());
    assert_eq!(entry.header.time_ms, v["time_ms"].as_u64().unwrap());
    assert_eq!(entry.header.prev.to_hex(), v["prev"].as_str().unwrap());
    assert_eq!(entry.header.network, h(v, "network"));
    entry.verify(&h(v, "public_key")).expect("vector verifies");
    let body = entry
        .open(&EpochKey::from_bytes(arr(v, "epoch_key")))
        .expect("vector opens");
    assert_eq!(body, h(v, "body"));
    // Re-encoding from the fields and fixed keys gives the same bytes.
    let signing = SigningKey::from_bytes(&arr(v, "signing_key_seed"));
    let rebuilt = Entry::seal_and_sign(
        entry.header.clone(),
        &EpochKey::from_bytes(arr(v, "epoch_key")),
        &body,
        arr(v, "outer_nonce"),
        &signing,
    )
    .unwrap();
    assert_eq!(rebuilt.encode(), encoded);
    (entry, body)
}

#[test]
fn known_answer_vectors() {
    let vectors = [
        ("entry_v1_record_change.json", record_change_vector()),
        ("entry_v1_key_grant.json", key_grant_vector()),
    ];
    if std::env::var("CARELEDGER_WRITE_VECTORS").is_ok() {
        for (name, vector) in &vectors {
            std::fs::write(
                format!("{DIR}/{name}"),
                serde_json::to_string_pretty(vector).unwrap() + "\n",
            )
            .unwrap();
        }
    }
    for (name, fresh) in &vectors {
        let text = std::fs::read_to_string(format!("{DIR}/{name}")).expect("vector file present");
        let stored: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            &stored, fresh,
            "{name}: the encoder no longer produces the pinned bytes"
        );
    }

    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}/entry_v1_record_change.json")).unwrap(),
    )
    .unwrap();
    let (entry, body) = check_entry(&v);
    let body = RecordChangeBody::decode(&body).unwrap();
    assert_eq!(body.record, v["record"].as_str().unwrap());
    assert_eq!(body.key_id.to_vec(), h(&v, "record_key_id"));
    let aad = RecordChangeBody::inner_aad(&entry.header.encode(), &body.record);
    let change = open(
        &SecretKey::from_bytes(arr(&v, "record_key")),
        &aad,
        &Sealed::from_bytes(&body.change).unwrap(),
    )
    .unwrap();
    assert_eq!(change, h(&v, "change"));
    let WireMessage::Entry(bytes) = WireMessage::decode(&h(&v, "wire_message")).unwrap() else {
        panic!("wire vector is not an entry");
    };
    assert_eq!(bytes, h(&v, "encoded"));

    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}/entry_v1_key_grant.json")).unwrap(),
    )
    .unwrap();
    let (_, body) = check_entry(&v);
    let grant = KeyGrantBody::decode(&body).unwrap();
    assert_eq!(grant.epochs.len(), 1);
    assert_eq!(grant.members[0].name, "hospital-a.example");
    assert_eq!(
        (grant.members[0].from_epoch, grant.members[0].to_epoch),
        (0, 1)
    );
    assert_eq!(grant.record_keys[0].key.as_bytes(), &[0x56; 32]);
}

/// A wire message cut into NATS chunk frames and its manifest (`relay::chunk`).
fn chunk_vector() -> Value {
    let message: Vec<u8> = (0..2_100u32).map(|i| (i * 7 % 256) as u8).collect();
    let parts = split(&message, 1_024, [0x5A; 16]).unwrap();
    let positions = [41u64, 43, 47];
    let manifest = parts.manifest(&positions).unwrap();
    json!({
        "description": "chunk frames v1 and manifest v1: a 2,100-byte message in frames of at most 1,024 bytes, stored at positions 41, 43 and 47",
        "message": hex::encode(&message),
        "max_frame": 1_024,
        "transfer": hex::encode([0x5A; 16]),
        "positions": positions,
        "frames": parts.frames.iter().map(hex::encode).collect::<Vec<_>>(),
        "manifest": hex::encode(manifest.encode()),
    })
}

#[test]
fn chunk_known_answer_vector() {
    let name = "chunk_v1.json";
    let fresh = chunk_vector();
    if std::env::var("CARELEDGER_WRITE_VECTORS").is_ok() {
        std::fs::write(
            format!("{DIR}/{name}"),
            serde_json::to_string_pretty(&fresh).unwrap() + "\n",
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(format!("{DIR}/{name}")).expect("vector file present");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        v, fresh,
        "{name}: the encoder no longer produces the pinned bytes"
    );
    let manifest = Manifest::decode(&h(&v, "manifest")).expect("manifest decodes");
    let frames: Vec<Vec<u8>> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| hex::decode(f.as_str().unwrap()).unwrap())
        .collect();
    let positions: Vec<u64> = v["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    let joined = reassemble(&manifest, |position| {
        Ok::<_, ()>(
            positions
                .iter()
                .position(|p| *p == position)
                .map(|i| frames[i].clone()),
        )
    })
    .unwrap()
    .expect("the frames join");
    assert_eq!(joined, h(&v, "message"));
}
