//! Receipt signing keys: ed25519 key generation, the text forms of the public key
//! (`ed25519:<hex>`) and of the private key file, signing and verification.

use ed25519_dalek::{Signer, SigningKey};

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no randomness available to generate a key: {0}")]
    Random(String),
    #[error("not an aos receipt key file (expected `{SECRET_PREFIX}` and 64 hex digits)")]
    BadSecret,
    #[error("{0:?} is not a public key (expected `{PUBLIC_PREFIX}` and 64 hex digits)")]
    BadPublic(String),
    #[error("signature does not verify")]
    BadSignature,
}

/// A world's receipt signing key.
pub struct ReceiptSigner {
    key: SigningKey,
}

impl ReceiptSigner {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Result<ReceiptSigner, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok(ReceiptSigner {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parse the content of a private key file.
    pub fn from_file_bytes(bytes: &[u8]) -> Result<ReceiptSigner, KeyError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| KeyError::BadSecret)?
            .trim();
        let hex = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(KeyError::BadSecret)?;
        let seed = decode32(hex).ok_or(KeyError::BadSecret)?;
        Ok(ReceiptSigner {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The private key file's content.
    pub fn to_file_bytes(&self) -> Vec<u8> {
        format!("{SECRET_PREFIX}{}\n", encode(self.key.as_bytes())).into_bytes()
    }

    /// The public key as `ed25519:<hex>`.
    pub fn public_key(&self) -> String {
        format!(
            "{PUBLIC_PREFIX}{}",
            encode(self.key.verifying_key().as_bytes())
        )
    }

    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode32(hex: &str) -> Option<[u8; 32]> {
    aos_store::Hash::from_hex(hex).map(|h| h.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_file_round_trip() {
        let k = ReceiptSigner::generate().unwrap();
        let again = ReceiptSigner::from_file_bytes(&k.to_file_bytes()).unwrap();
        assert_eq!(k.public_key(), again.public_key());
        let sig = k.sign(b"receipt");
        use aos_store::receipt::{parse_public_key, verify_signature};
        verify_signature(&k.public_key(), b"receipt", &sig).unwrap();
        assert!(verify_signature(&k.public_key(), b"receipt!", &sig).is_err());
        let other = ReceiptSigner::generate().unwrap();
        assert!(verify_signature(&other.public_key(), b"receipt", &sig).is_err());
        assert!(ReceiptSigner::from_file_bytes(b"nope").is_err());
        parse_public_key(&k.public_key()).unwrap();
        assert!(parse_public_key("ed25519:zz").is_err());
    }
}
