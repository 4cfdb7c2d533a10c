//! WireGuard keys: Curve25519, base64 on the wire and in the config.

use base64::{Engine, engine::general_purpose::STANDARD};
use x25519_dalek::{PublicKey, StaticSecret};

/// The public key of a private one, remembered for the process's life: config
/// validation, every desired state and the diff all ask, and an x25519 scalar
/// multiplication per client per ask adds up for hundreds of clients.
pub fn public_from_private(private: &[u8; 32]) -> [u8; 32] {
    use std::{collections::HashMap, sync::Mutex};
    static CACHE: Mutex<Option<HashMap<[u8; 32], [u8; 32]>>> = Mutex::new(None);
    let mut guard = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    *guard
        .get_or_insert_with(HashMap::new)
        .entry(*private)
        .or_insert_with(|| PublicKey::from(&StaticSecret::from(*private)).to_bytes())
}

/// A fresh private key from the OS random source.
pub fn generate_private() -> [u8; 32] {
    StaticSecret::random_from_rng(rand_core::OsRng).to_bytes()
}

/// 32 random bytes, for a preshared key.
pub fn generate_preshared() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut key);
    key
}

pub fn encode(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // RFC 7748 section 6.1: Alice's key pair.
        let private: [u8; 32] = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ];
        assert_eq!(
            encode(&public_from_private(&private)),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
        assert_ne!(generate_private(), generate_private());
    }
}
