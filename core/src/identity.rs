//! A node's identity: an Ed25519 signing key and the MLS basic credential naming it.
//!
//! Flow: [`Node::create`](crate::node::Node::create) makes an [`Identity`] for
//! a name such as `hospital-a.example` and stores its key wrapped under the
//! storage key. The same key signs the node's MLS leaf and its ledger entries;
//! its SHA-256 is the node's [`AuthorId`] and Automerge actor id. People
//! compare [`Identity::fingerprint`] out of band before inviting a node.
//!
//! ```
//! use careledger::identity::Identity;
//! let id = Identity::from_secret("lab.example", [3; 32]).unwrap();
//! assert_eq!(id.fingerprint().split(' ').count(), 8);
//! assert_eq!(id.fingerprint(), Identity::from_secret("lab.example", [3; 32]).unwrap().fingerprint());
//! ```

use ed25519_dalek::SigningKey;
use openmls::prelude::{BasicCredential, CredentialWithKey, SignatureScheme};
use openmls_basic_credential::SignatureKeyPair;

use crate::entry::AuthorId;

/// Longest node name accepted (it travels in a one-byte-length field).
pub const MAX_NAME_LEN: usize = 255;

/// A node name was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CreateIdentityError {
    /// Names are 1–255 bytes of printable ASCII without spaces (e.g. a DNS name).
    #[error("node name must be 1-255 printable ASCII characters without spaces")]
    InvalidName,
}

/// A node's signing identity. The secret key is wiped on drop and never printed.
pub struct Identity {
    name: String,
    signing: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("author", &self.author_id())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Build an identity from a name and 32 secret bytes (an Ed25519 seed).
    pub fn from_secret(name: &str, secret: [u8; 32]) -> Result<Self, CreateIdentityError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_graphic());
        if !valid {
            return Err(CreateIdentityError::InvalidName);
        }
        Ok(Self {
            name: name.to_owned(),
            signing: SigningKey::from_bytes(&secret),
        })
    }

    /// The name in the MLS credential.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// SHA-256 of the public key.
    pub fn author_id(&self) -> AuthorId {
        AuthorId::of_public_key(&self.public_key())
    }

    /// A human-checkable fingerprint: the first 16 bytes of the author id as
    /// eight groups of four hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint_of(&self.author_id())
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub(crate) fn secret_bytes(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The openmls signer for this identity.
    pub(crate) fn mls_signer(&self) -> SignatureKeyPair {
        SignatureKeyPair::from_raw(
            SignatureScheme::ED25519,
            self.signing.to_bytes().to_vec(),
            self.public_key().to_vec(),
        )
    }

    pub(crate) fn credential_with_key(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(self.name.as_bytes().to_vec()).into(),
            signature_key: self.public_key().to_vec().into(),
        }
    }
}

/// The fingerprint of any author id (see [`Identity::fingerprint`]).
pub fn fingerprint_of(author: &AuthorId) -> String {
    let hex = hex::encode(&author.0[..16]);
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
