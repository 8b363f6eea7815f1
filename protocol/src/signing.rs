//! Vote signing (protocol extension): a node that registered an Ed25519 public key signs each
//! result it returns, over a canonical encoding of (battle id, node id, the aggregator's
//! assignment nonce, SHA-256 of the exact response body). A vote from such a node counts only
//! with a valid signature, so a result cannot be forged or replayed for another assignment.

use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Response header carrying the node's signature (hex).
pub const SIGNATURE_HEADER: &str = "x-node-signature";
/// Request header: the node id the aggregator calls this node by.
pub const NODE_ID_HEADER: &str = "x-hero-node-id";
/// Request header: a fresh nonce for this one call.
pub const ASSIGNMENT_HEADER: &str = "x-hero-assignment";
/// Registration header: when the registration was signed (Unix milliseconds).
pub const TIMESTAMP_HEADER: &str = "x-hero-timestamp";

/// The bytes a node signs to register: the exact request body and the time of signing, so a
/// registration cannot be altered, and a captured one goes stale within a minute.
pub fn registration_message(timestamp_ms: i64, body: &[u8]) -> Vec<u8> {
    let body_hash = hex::encode(digest(&SHA256, body));
    format!("hero-register-v1\n{timestamp_ms}\n{body_hash}").into_bytes()
}

/// The bytes that are signed.
pub fn vote_message(battle_id: &str, node_id: &str, nonce: &str, body: &[u8]) -> Vec<u8> {
    let body_hash = hex::encode(digest(&SHA256, body));
    format!("hero-vote-v1\n{battle_id}\n{node_id}\n{nonce}\n{body_hash}").into_bytes()
}

/// A node's signing key, generated at start.
pub struct VoteSigner {
    key: SigningKey,
}

impl VoteSigner {
    pub fn generate() -> Result<Self, String> {
        Self::generate_pkcs8().map(|(signer, _)| signer)
    }

    /// A new key and its PKCS#8 document (what a node keeps on disk to stay the same node).
    pub fn generate_pkcs8() -> Result<(Self, Vec<u8>), String> {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| "cannot generate a signing key".to_string())?;
        let key = SigningKey::from_bytes(&seed);
        let pkcs8 = key
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode the signing key: {e}"))?;
        Ok((Self { key }, pkcs8.as_bytes().to_vec()))
    }

    /// Loads a key from its PKCS#8 document (v1, or v2 with the public key as earlier
    /// releases wrote it; a v2 document whose public key is not the private key's is refused).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let key = SigningKey::from_pkcs8_der(pkcs8)
            .map_err(|_| "not an Ed25519 PKCS#8 key".to_string())?;
        Ok(Self { key })
    }

    /// The public key to register (hex, 32 bytes).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The signature of `message` (hex, 64 bytes).
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.key.sign(message).to_bytes())
    }
}

impl std::fmt::Debug for VoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoteSigner")
            .field("public_key", &self.public_key_hex())
            .finish_non_exhaustive()
    }
}

/// Whether `public_key_hex` is a well-formed Ed25519 public key.
pub fn is_public_key(public_key_hex: &str) -> bool {
    // Lowercase only: one key, one spelling, one identity.
    public_key_hex.len() == 64
        && public_key_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A node's public key, decoded (decoding a point costs about a tenth of a verification; the
/// aggregator decodes a node's key on its first vote and keeps it, 192 bytes).
#[derive(Clone, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The key `public_key_hex` names, if it is a point of the curve not of small order (no
    /// signature by such a key ever verifies strictly).
    pub fn parse(public_key_hex: &str) -> Option<PublicKey> {
        let bytes: [u8; 32] = hex::decode(public_key_hex).ok()?.try_into().ok()?;
        VerifyingKey::from_bytes(&bytes)
            .ok()
            .filter(|key| !key.is_weak())
            .map(PublicKey)
    }

    /// Whether `signature_hex` is this key's signature of `message`. Strict: a small-order key
    /// or `R`, or a non-canonical `S`, never verifies, so one signature cannot stand for two
    /// messages.
    pub fn verifies(&self, message: &[u8], signature_hex: &str) -> bool {
        let mut bytes = [0u8; 64];
        if hex::decode_to_slice(signature_hex, &mut bytes).is_err() {
            return false;
        }
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

/// Whether `signature_hex` is `public_key_hex`'s signature of `message`.
pub fn verify(public_key_hex: &str, message: &[u8], signature_hex: &str) -> bool {
    PublicKey::parse(public_key_hex).is_some_and(|key| key.verifies(message, signature_hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_own_assignment_and_body() {
        let signer = VoteSigner::generate().unwrap();
        let key = signer.public_key_hex();
        assert!(is_public_key(&key));
        let message = vote_message("b1", "n1", "nonce", b"{\"winner\":\"c1\"}");
        let signature = signer.sign(&message);
        assert!(verify(&key, &message, &signature));
        for other in [
            vote_message("b2", "n1", "nonce", b"{\"winner\":\"c1\"}"),
            vote_message("b1", "n2", "nonce", b"{\"winner\":\"c1\"}"),
            vote_message("b1", "n1", "other", b"{\"winner\":\"c1\"}"),
            vote_message("b1", "n1", "nonce", b"{\"winner\":\"c2\"}"),
        ] {
            assert!(!verify(&key, &other, &signature));
        }
        let (again, pkcs8) = VoteSigner::generate_pkcs8().unwrap();
        let loaded = VoteSigner::from_pkcs8(&pkcs8).unwrap();
        assert_eq!(loaded.public_key_hex(), again.public_key_hex());
        assert!(VoteSigner::from_pkcs8(b"junk").is_err());
        let registration = registration_message(1_000, b"{}");
        assert!(verify(&key, &registration, &signer.sign(&registration)));
        assert!(!verify(
            &key,
            &registration_message(1_001, b"{}"),
            &signer.sign(&registration)
        ));
        let stranger = VoteSigner::generate().unwrap();
        assert!(!verify(&stranger.public_key_hex(), &message, &signature));
        assert!(!verify(&key, &message, "not hex"));
        assert!(!is_public_key("abcd"));
        assert!(!is_public_key(&key.to_uppercase()), "one spelling per key");
    }

    /// Keys written by earlier releases (ring's PKCS#8 v2) load as the same identity, and
    /// signatures cross between the two implementations both ways.
    #[test]
    fn keys_and_signatures_of_earlier_releases_still_work() {
        use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let old = Ed25519KeyPair::from_pkcs8(document.as_ref()).unwrap();
        let loaded = VoteSigner::from_pkcs8(document.as_ref()).unwrap();
        assert_eq!(
            loaded.public_key_hex(),
            hex::encode(old.public_key().as_ref())
        );
        let message = vote_message("b1", "n1", "nonce", b"{}");
        let old_signature = hex::encode(old.sign(&message).as_ref());
        assert_eq!(
            loaded.sign(&message),
            old_signature,
            "Ed25519 is deterministic"
        );
        assert!(verify(&loaded.public_key_hex(), &message, &old_signature));
        let new_signature = hex::decode(loaded.sign(&message)).unwrap();
        assert!(
            UnparsedPublicKey::new(&ED25519, old.public_key().as_ref())
                .verify(&message, &new_signature)
                .is_ok()
        );
        let mut tampered = document.as_ref().to_vec();
        let last = tampered.len() - 1;
        tampered[last] ^= 1; // the public key of the v2 document no longer matches
        assert!(VoteSigner::from_pkcs8(&tampered).is_err());
    }

    #[test]
    fn small_order_keys_and_malformed_signatures_never_verify() {
        // The identity point: every signature with R = identity and S = 0 would verify for
        // it under a lax check.
        let identity = format!("01{}", "00".repeat(31));
        let message = b"anything";
        let forged = format!("01{}{}", "00".repeat(31), "00".repeat(32));
        assert!(!verify(&identity, message, &forged));
        assert!(
            PublicKey::parse(&identity).is_none(),
            "refused at registration"
        );
        let signer = VoteSigner::generate().unwrap();
        let key = PublicKey::parse(&signer.public_key_hex()).unwrap();
        let signature = signer.sign(message);
        assert!(key.verifies(message, &signature));
        assert!(!key.verifies(message, &signature[..126]));
        assert!(!key.verifies(message, &format!("{signature}00")));
        assert!(!key.verifies(message, &"zz".repeat(64)));
        assert!(PublicKey::parse("abcd").is_none());
    }
}
