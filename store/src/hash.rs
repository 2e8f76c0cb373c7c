//! Object and record identity: `blake3:<64 lowercase hex>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text prefix of every hash this crate prints or parses.
pub const PREFIX: &str = "blake3:";

/// A blake3 digest naming an object or a journal line.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

/// Why a string is not a hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashParseError {
    #[error("expected `blake3:` followed by 64 lowercase hex digits, found {0:?}")]
    Malformed(String),
}

impl Hash {
    /// Hash a byte string.
    pub fn of(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// The 64 lowercase hex digits without the prefix.
    pub fn hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(HEX[(b >> 4) as usize] as char);
            s.push(HEX[(b & 15) as usize] as char);
        }
        s
    }

    /// Parse 64 lowercase hex digits (no prefix).
    pub fn from_hex(hex: &str) -> Option<Hash> {
        let b = hex.as_bytes();
        if b.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(Hash(out))
    }

    /// A short form for human output: the prefix and the first 12 hex digits.
    pub fn short(&self) -> String {
        format!("{PREFIX}{}", &self.hex()[..12])
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// True when `s` is a non-empty run of lowercase hex digits (a possible hash prefix).
pub fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| nibble(c).is_some())
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash {
    type Err = HashParseError;
    fn from_str(s: &str) -> Result<Hash, HashParseError> {
        s.strip_prefix(PREFIX)
            .and_then(Hash::from_hex)
            .ok_or_else(|| HashParseError::Malformed(s.chars().take(80).collect()))
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher producing a [`Hash`].
#[derive(Default)]
pub struct Hasher(blake3::Hasher);

impl Hasher {
    pub fn new() -> Hasher {
        Hasher(blake3::Hasher::new())
    }
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    pub fn finish(&self) -> Hash {
        Hash(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_form() {
        let h = Hash::of(b"abc");
        let s = h.to_string();
        assert!(s.starts_with("blake3:"));
        assert_eq!(s.len(), 7 + 64);
        assert_eq!(s.parse::<Hash>().unwrap(), h);
        assert_eq!(h.hex(), blake3::hash(b"abc").to_hex().as_str());
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "blake3:",
            "sha256:00",
            "blake3:ABC",
            &format!("blake3:{}", "G".repeat(64)),
        ] {
            assert!(bad.parse::<Hash>().is_err(), "{bad}");
        }
        let upper = format!("blake3:{}", "A".repeat(64));
        assert!(upper.parse::<Hash>().is_err());
    }
}
