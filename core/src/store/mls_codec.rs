//! MLS state sealed at rest: the codec `openmls_sqlite_storage` encodes every
//! key and value with.
//!
//! openmls keeps transport secrets in its storage (HPKE leaf private keys,
//! epoch secrets, the secret tree). `openmls_sqlite_storage` writes whatever
//! its [`Codec`] returns, for the columns it looks rows up by as well as for
//! the values, so the codec must be deterministic: the same key must encode
//! to the same bytes. [`MlsCodec`] serialises with serde JSON, then seals
//! with XChaCha20-Poly1305 under a key derived from the storage key, with a
//! synthetic nonce (HMAC-SHA256 of the plaintext under a second derived key,
//! as in SIV): `{version 1, nonce, ciphertext}`. Equal plaintexts give equal
//! ciphertexts (lookups keep working); nothing else is revealed, and a
//! changed byte fails authentication on decode.
//!
//! The codec has no instance (openmls calls it through its type), so the
//! keys reach it through a thread-local scope that the store's
//! [`Provider`](super::Provider) enters for as long as it lives. Encoding
//! outside a scope is an error, never a value sealed under a wrong key.

use std::cell::RefCell;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use openmls_sqlite_storage::Codec;
use sha2::Sha256;

use super::seal::{derive, SealKey};
use crate::keys::{self, Sealed, SecretKey, StorageKey, NONCE_LEN, SEALED_VERSION};

const AAD: &[u8] = b"careledger/v1/mls-storage";

/// The two keys the codec uses, derived from the storage key.
pub(super) struct MlsKeys {
    cipher: SecretKey,
    nonce: SealKey,
}

impl MlsKeys {
    /// Derive them.
    pub(super) fn new(storage_key: &StorageKey) -> Arc<Self> {
        Arc::new(MlsKeys {
            cipher: SecretKey::from_bytes(*derive(
                storage_key,
                b"careledger/v1/mls-storage-cipher",
            )),
            nonce: derive(storage_key, b"careledger/v1/mls-storage-nonce"),
        })
    }

    /// Seal `plain` deterministically.
    pub(super) fn seal(&self, plain: &[u8]) -> Result<Vec<u8>, MlsCodecError> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.nonce.as_slice())
            .map_err(|_| MlsCodecError::Seal)?;
        mac.update(plain);
        let tag = mac.finalize().into_bytes();
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&tag[..NONCE_LEN]);
        let sealed = keys::seal(&self.cipher, AAD, plain, nonce)
            .map_err(|_| MlsCodecError::Seal)?
            .ciphertext;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(SEALED_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Open what [`MlsKeys::seal`] produced.
    pub(super) fn open(&self, bytes: &[u8]) -> Result<Vec<u8>, MlsCodecError> {
        let (&version, rest) = bytes.split_first().ok_or(MlsCodecError::Malformed)?;
        if version != SEALED_VERSION || rest.len() < NONCE_LEN + 16 {
            return Err(MlsCodecError::Malformed);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let sealed = Sealed {
            nonce: <[u8; NONCE_LEN]>::try_from(nonce).map_err(|_| MlsCodecError::Malformed)?,
            ciphertext: sealed.to_vec(),
        };
        keys::open(&self.cipher, AAD, &sealed).map_err(|_| MlsCodecError::Altered)
    }
}

thread_local! {
    static SCOPE: RefCell<Vec<Arc<MlsKeys>>> = const { RefCell::new(Vec::new()) };
}

/// While alive, [`MlsCodec`] on this thread seals under these keys.
pub(super) struct CodecScope(());

impl CodecScope {
    pub(super) fn enter(keys: &Arc<MlsKeys>) -> Self {
        SCOPE.with(|scope| scope.borrow_mut().push(Arc::clone(keys)));
        CodecScope(())
    }
}

impl Drop for CodecScope {
    fn drop(&mut self) {
        SCOPE.with(|scope| {
            scope.borrow_mut().pop();
        });
    }
}

fn with_keys<T>(f: impl FnOnce(&MlsKeys) -> Result<T, MlsCodecError>) -> Result<T, MlsCodecError> {
    SCOPE.with(|scope| match scope.borrow().last() {
        Some(keys) => f(keys),
        None => Err(MlsCodecError::NoScope),
    })
}

/// Encoding or decoding MLS state failed.
#[derive(Debug, thiserror::Error)]
pub enum MlsCodecError {
    /// The value could not be serialised or parsed.
    #[error("MLS state encoding: {0}")]
    Json(#[from] serde_json::Error),
    /// The stored bytes are not a sealed value.
    #[error("MLS state in the store is malformed (tampered or corrupt)")]
    Malformed,
    /// The stored bytes fail authentication under the storage key.
    #[error("MLS state in the store failed authentication (tampered or corrupt)")]
    Altered,
    /// Sealing failed.
    #[error("MLS state could not be sealed")]
    Seal,
    /// The codec was used outside a store's provider.
    #[error("MLS state accessed without the store's keys")]
    NoScope,
}

/// JSON sealed under the storage key, deterministically (see the module docs).
#[derive(Default)]
pub struct MlsCodec;

impl Codec for MlsCodec {
    type Error = MlsCodecError;

    fn to_vec<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, Self::Error> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(value)?);
        with_keys(|keys| keys.seal(&plain))
    }

    fn from_slice<T: serde::de::DeserializeOwned>(slice: &[u8]) -> Result<T, Self::Error> {
        let plain = zeroize::Zeroizing::new(with_keys(|keys| keys.open(slice))?);
        Ok(serde_json::from_slice(&plain)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_authenticated_and_scoped() {
        let keys = MlsKeys::new(&StorageKey::from_bytes([5; 32]));
        assert!(matches!(
            MlsCodec::to_vec(&"group"),
            Err(MlsCodecError::NoScope)
        ));
        let _scope = CodecScope::enter(&keys);
        let a = MlsCodec::to_vec(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(a, MlsCodec::to_vec(&vec![1u8, 2, 3]).unwrap());
        assert_ne!(a, MlsCodec::to_vec(&vec![1u8, 2, 4]).unwrap());
        assert!(!a.windows(7).any(|w| w == b"[1,2,3]"));
        assert_eq!(MlsCodec::from_slice::<Vec<u8>>(&a).unwrap(), vec![1, 2, 3]);
        for i in 0..a.len() {
            let mut bad = a.clone();
            bad[i] ^= 1;
            assert!(
                MlsCodec::from_slice::<Vec<u8>>(&bad).is_err(),
                "flip at {i}"
            );
        }
        let other = MlsKeys::new(&StorageKey::from_bytes([6; 32]));
        let inner = CodecScope::enter(&other);
        assert!(matches!(
            MlsCodec::from_slice::<Vec<u8>>(&a),
            Err(MlsCodecError::Altered)
        ));
        drop(inner);
        assert!(MlsCodec::from_slice::<Vec<u8>>(&a).is_ok());
    }
}
