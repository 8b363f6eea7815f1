//! Who signed a message: the EIP-191 `personal_sign` hash, secp256k1 public-key recovery (k256)
//! and the Ethereum address of a key (Keccak-256, sha3), plus the EIP-55 checksum.

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use sha3::{Digest, Keccak256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature must be 0x and 130 hex digits (r, s, v)")]
    Malformed,
    #[error("the signature does not recover to a public key")]
    Unrecoverable,
    #[error("the address is not EIP-55 checksummed")]
    Checksum,
}

/// The hash a wallet signs for `personal_sign` (EIP-191, version 0x45).
pub fn eip191_hash(message: &str) -> [u8; 32] {
    let mut hasher = Keccak256::new();
    hasher.update(format!("\x19Ethereum Signed Message:\n{}", message.len()).as_bytes());
    hasher.update(message.as_bytes());
    hasher.finalize().into()
}

/// The address of a public key: the last 20 bytes of Keccak-256 of its uncompressed point.
pub fn address_of(key: &VerifyingKey) -> [u8; 20] {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut address = [0u8; 20];
    address.copy_from_slice(&hash[12..]);
    address
}

/// The address that signed `message` with the 65-byte `signature` (`0x` r‖s‖v, v 27/28 or 0/1).
pub fn recover(message: &str, signature: &str) -> Result<[u8; 20], SignatureError> {
    let hex = signature
        .strip_prefix("0x")
        .ok_or(SignatureError::Malformed)?;
    if hex.len() != 130 {
        return Err(SignatureError::Malformed);
    }
    let bytes = hex::decode(hex).map_err(|_| SignatureError::Malformed)?;
    let v = match bytes[64] {
        27 | 28 => bytes[64] - 27,
        0 | 1 => bytes[64],
        _ => return Err(SignatureError::Malformed),
    };
    let mut sig = Signature::from_slice(&bytes[..64]).map_err(|_| SignatureError::Malformed)?;
    let mut recovery = RecoveryId::from_byte(v).ok_or(SignatureError::Malformed)?;
    // A high-s signature is the same signature mirrored; normalise it and flip the parity.
    if let Some(low) = sig.normalize_s() {
        sig = low;
        recovery = RecoveryId::new(!recovery.is_y_odd(), recovery.is_x_reduced());
    }
    let key = VerifyingKey::recover_from_prehash(&eip191_hash(message), &sig, recovery)
        .map_err(|_| SignatureError::Unrecoverable)?;
    Ok(address_of(&key))
}

/// `address` (0x and 40 hex digits) as EIP-55 mixed case.
pub fn checksummed(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

/// The 20 bytes of an address written with a valid EIP-55 checksum (all-lower or all-upper
/// hex carries no checksum and is refused, as the EIP-4361 grammar asks for the mixed case).
pub fn parse_checksummed(address: &str) -> Result<[u8; 20], SignatureError> {
    let hex = address.strip_prefix("0x").ok_or(SignatureError::Checksum)?;
    let bytes = hex::decode(hex).map_err(|_| SignatureError::Checksum)?;
    let bytes: [u8; 20] = bytes.try_into().map_err(|_| SignatureError::Checksum)?;
    if checksummed(&bytes) != address {
        return Err(SignatureError::Checksum);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    #[test]
    fn eip55_examples_from_the_eip() {
        for address in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let bytes = parse_checksummed(address).unwrap();
            assert_eq!(checksummed(&bytes), address);
            assert!(parse_checksummed(&address.to_lowercase()).is_err());
        }
    }

    #[test]
    fn the_key_of_private_key_one_has_its_known_address() {
        // The generator point's address, as every Ethereum tool computes it.
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = SigningKey::from_slice(&one).unwrap();
        assert_eq!(
            checksummed(&address_of(key.verifying_key())),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
    }

    #[test]
    fn a_personal_sign_signature_recovers_its_signer() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let message = "hello";
        let (sig, recid) = key.sign_prehash_recoverable(&eip191_hash(message)).unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(27 + recid.to_byte());
        let signature = format!("0x{}", hex::encode(&bytes));
        assert_eq!(
            recover(message, &signature).unwrap(),
            address_of(key.verifying_key())
        );
        assert_ne!(
            recover("hello!", &signature).ok(),
            Some(address_of(key.verifying_key()))
        );
        for garbage in [
            "",
            "0x",
            "0xzz",
            &signature[..100],
            &format!("{signature}00"),
        ] {
            assert_eq!(recover(message, garbage), Err(SignatureError::Malformed));
        }
    }
}
