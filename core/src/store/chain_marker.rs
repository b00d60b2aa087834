//! How far this node's own chains got, kept beside the store file.
//!
//! A store put back from an older copy (a restored backup) no longer knows
//! the newest entries its node wrote. Writing at the same positions again
//! would fork the node's own chain, and every peer would flag it. So after
//! each transaction that appended entries of its own, the node raises a
//! small marker file next to the store (`<store>.chain`: per network, the
//! highest own `seq`, authenticated under a key derived from the storage
//! key). On open, a marker ahead of the store means the file was rolled
//! back: the node refuses to write in those networks until a sync has
//! caught its own chain up from the relay (see `Node::open`).
//!
//! The marker is written without fsync (a crash can only leave it behind the
//! store, never ahead of it), and one that does not authenticate is ignored.
//! A backup restored *together with* its marker cannot be told from the
//! current file here; syncing before writing catches the chain up anyway.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::seal::derive;
use super::Store;
use crate::entry::AuthorId;

const MAGIC: &[u8; 4] = b"CLCM";
const VERSION: u8 = 1;

/// Highest own `seq` per network (network id → seq).
pub type ChainMarks = BTreeMap<Vec<u8>, u64>;

fn marker_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_os_string();
    name.push(".chain");
    PathBuf::from(name)
}

fn mac(store: &Store) -> Hmac<Sha256> {
    let key = derive(store.storage_key(), b"careledger/v1/chain-marker");
    <Hmac<Sha256> as Mac>::new_from_slice(key.as_slice()).unwrap_or_else(|_| unreachable!())
}

fn encode(store: &Store, author: &AuthorId, marks: &ChainMarks) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.extend_from_slice(&author.0);
    out.extend_from_slice(&(marks.len() as u32).to_be_bytes());
    for (network, seq) in marks {
        out.push(network.len() as u8);
        out.extend_from_slice(network);
        out.extend_from_slice(&seq.to_be_bytes());
    }
    let mut mac = mac(store);
    mac.update(&out);
    out.extend_from_slice(&mac.finalize().into_bytes());
    out
}

fn decode(store: &Store, author: &AuthorId, bytes: &[u8]) -> Option<ChainMarks> {
    let (body, tag) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    let mut mac = mac(store);
    mac.update(body);
    mac.verify_slice(tag).ok()?;
    let rest = body.strip_prefix(MAGIC.as_slice())?;
    let (&version, rest) = rest.split_first()?;
    let (owner, rest) = rest.split_at_checked(32)?;
    if version != VERSION || owner != author.0.as_slice() {
        return None;
    }
    let (count, mut rest) = rest.split_at_checked(4)?;
    let count = u32::from_be_bytes(count.try_into().ok()?);
    let mut marks = ChainMarks::new();
    for _ in 0..count {
        let (&len, tail) = rest.split_first()?;
        let (network, tail) = tail.split_at_checked(usize::from(len))?;
        let (seq, tail) = tail.split_at_checked(8)?;
        marks.insert(network.to_vec(), u64::from_be_bytes(seq.try_into().ok()?));
        rest = tail;
    }
    rest.is_empty().then_some(marks)
}

/// The marker of a file store (what a missing or foreign file says: nothing).
pub(crate) fn read(store: &Store, author: &AuthorId) -> ChainMarks {
    store
        .path()
        .and_then(|path| std::fs::read(marker_path(path)).ok())
        .and_then(|bytes| decode(store, author, &bytes))
        .unwrap_or_default()
}

/// Replace the marker with `marks` (write a temporary file, rename it over).
pub(crate) fn write(store: &Store, author: &AuthorId, marks: &ChainMarks) {
    let Some(path) = store.path() else {
        return;
    };
    let target = marker_path(path);
    let mut temporary = target.clone().into_os_string();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let written = std::fs::File::create(&temporary)
        .and_then(|mut file| file.write_all(&encode(store, author, marks)))
        .and_then(|()| std::fs::rename(&temporary, &target));
    if written.is_err() {
        // Detection is best effort: a marker that cannot be written only
        // means a later rollback goes unnoticed until the next sync.
        let _ = std::fs::remove_file(&temporary);
    }
}
