//! Vote signing (protocol extension): a node that registered an Ed25519 public key signs each
//! result it returns, over a canonical encoding of (battle id, node id, the aggregator's
//! assignment nonce, SHA-256 of the exact response body). A vote from such a node counts only
//! with a valid signature, so a result cannot be forged or replayed for another assignment.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, UnparsedPublicKey};
use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
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

/// A node's signing key, generated at start. `ed25519-dalek` reads and writes it (PKCS#8, the
/// public key); AWS-LC signs with it, in about half of dalek's time (the same bytes: Ed25519
/// is deterministic).
pub struct VoteSigner {
    key: SigningKey,
    signing: Ed25519KeyPair,
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
        Ok((Self::of(key)?, pkcs8.as_bytes().to_vec()))
    }

    fn of(key: SigningKey) -> Result<Self, String> {
        let signing = Ed25519KeyPair::from_seed_unchecked(key.as_bytes())
            .map_err(|_| "cannot load the signing key".to_string())?;
        Ok(Self { key, signing })
    }

    /// Loads a key from its PKCS#8 document (v1, or v2 with the public key as earlier
    /// releases wrote it; a v2 document whose public key is not the private key's is refused).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, String> {
        let key = SigningKey::from_pkcs8_der(pkcs8)
            .map_err(|_| "not an Ed25519 PKCS#8 key".to_string())?;
        Self::of(key)
    }

    /// The public key to register (hex, 32 bytes).
    pub fn public_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().as_bytes())
    }

    /// The signature of `message` (hex, 64 bytes).
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.signing.sign(message).as_ref())
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

/// A node's public key, checked once (the aggregator parses a node's key on its first vote and
/// keeps it): a point of the curve, canonically encoded, not of small order.
#[derive(Clone, Debug)]
pub struct PublicKey([u8; 32]);

/// The canonical encodings of the eight points of small order (the curve's 8-torsion). A
/// signature whose `R` is one of them never verifies: verification accepts `R` only as the
/// canonical encoding of the point it computes, so no other encoding of these points can pass.
const SMALL_ORDER: [[u8; 32]; 8] = [
    hex_32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex_32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex_32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex_32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex_32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex_32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    hex_32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex_32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
];

const fn hex_32(text: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not lowercase hex"),
        }
    }
    let text = text.as_bytes();
    assert!(text.len() == 64);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(text[2 * i]) << 4 | nibble(text[2 * i + 1]);
        i += 1;
    }
    out
}

impl PublicKey {
    /// The key `public_key_hex` names, if it is the canonical encoding of a point of the curve
    /// not of small order (no signature by such a key ever verifies strictly).
    pub fn parse(public_key_hex: &str) -> Option<PublicKey> {
        let bytes: [u8; 32] = hex::decode(public_key_hex).ok()?.try_into().ok()?;
        let point = CompressedEdwardsY(bytes).decompress()?;
        (!point.is_small_order() && point.compress().to_bytes() == bytes)
            .then_some(PublicKey(bytes))
    }

    /// Whether `signature_hex` is this key's signature of `message`. Strict, as
    /// `ed25519-dalek`'s `verify_strict`: a small-order key (refused by [`PublicKey::parse`])
    /// or `R`, or a non-canonical `S`, never verifies, so one signature cannot stand for two
    /// messages. AWS-LC checks the equation (`[S]B - [k]A` encodes to exactly `R`) and that
    /// `S` is below the group's order; the small-order `R` are refused here. One difference
    /// from `verify_strict`, stricter: `R` must be the canonical encoding of its point (only
    /// the signer can make another, so refusing it costs an honest node nothing).
    pub fn verifies(&self, message: &[u8], signature_hex: &str) -> bool {
        let mut bytes = [0u8; 64];
        if hex::decode_to_slice(signature_hex, &mut bytes).is_err() {
            return false;
        }
        if SMALL_ORDER.iter().any(|r| bytes[..32] == r[..]) {
            return false;
        }
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &bytes)
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

    /// Every signature, valid or tampered with, is judged as `ed25519-dalek`'s
    /// `verify_strict` judges it.
    #[test]
    fn verification_agrees_with_dalek_verify_strict() {
        use ed25519_dalek::{Signature, Signer as _};
        for round in 0..64u32 {
            let signer = VoteSigner::generate().unwrap();
            let key = PublicKey::parse(&signer.public_key_hex()).unwrap();
            let dalek = signer.key.verifying_key();
            let message = vote_message("b", "n", &round.to_string(), &round.to_le_bytes());
            let good = hex::decode(signer.sign(&message)).unwrap();
            assert_eq!(good, signer.key.sign(&message).to_bytes(), "the same bytes");
            let mut cases = vec![(good.clone(), message.clone())];
            for bit in [0, 7, 100, 255, 256, 300, 511] {
                let mut bad = good.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                cases.push((bad, message.clone()));
            }
            let mut other = message.clone();
            other[0] ^= 1;
            cases.push((good.clone(), other));
            for (signature, message) in cases {
                let strict = dalek
                    .verify_strict(&message, &Signature::from_slice(&signature).unwrap())
                    .is_ok();
                assert_eq!(key.verifies(&message, &hex::encode(&signature)), strict);
            }
        }
    }

    /// The signer can make a signature whose `R` is the identity and which satisfies the
    /// verification equation; AWS-LC alone accepts it, strict verification must not.
    #[test]
    fn a_small_order_r_never_verifies() {
        use aws_lc_rs::digest::{SHA512, digest as sha};
        use curve25519_dalek::scalar::Scalar;
        let signer = VoteSigner::generate().unwrap();
        let public = signer.key.verifying_key().to_bytes();
        let expanded = sha(&SHA512, signer.key.as_bytes());
        let mut a = [0u8; 32];
        a.copy_from_slice(&expanded.as_ref()[..32]);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let a = Scalar::from_bytes_mod_order(a);
        let message = b"a vote";
        let r = SMALL_ORDER[0];
        let mut hashed = Vec::from(r);
        hashed.extend_from_slice(&public);
        hashed.extend_from_slice(message);
        let k: [u8; 64] = sha(&SHA512, &hashed).as_ref().try_into().unwrap();
        let s = Scalar::from_bytes_mod_order_wide(&k) * a;
        let mut forged = Vec::from(r);
        forged.extend_from_slice(s.as_bytes());
        assert!(
            UnparsedPublicKey::new(&ED25519, &public)
                .verify(message, &forged)
                .is_ok(),
            "the equation holds"
        );
        let key = PublicKey::parse(&signer.public_key_hex()).unwrap();
        assert!(!key.verifies(message, &hex::encode(&forged)));
    }

    /// `S + L` (the group's order) is the same scalar, but not its canonical encoding.
    #[test]
    fn a_non_canonical_s_never_verifies() {
        const ORDER: [u8; 32] =
            hex_32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
        let signer = VoteSigner::generate().unwrap();
        let key = PublicKey::parse(&signer.public_key_hex()).unwrap();
        let message = b"a vote";
        let mut signature = hex::decode(signer.sign(message)).unwrap();
        let mut carry = 0u16;
        for (byte, order) in signature[32..].iter_mut().zip(ORDER) {
            let sum = u16::from(*byte) + u16::from(order) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        assert!(!key.verifies(message, &hex::encode(&signature)));
    }

    #[test]
    fn the_small_order_table_is_the_whole_eight_torsion() {
        let mut seen = std::collections::HashSet::new();
        for bytes in SMALL_ORDER {
            let point = CompressedEdwardsY(bytes).decompress().unwrap();
            assert!(point.is_small_order());
            assert_eq!(point.compress().to_bytes(), bytes, "canonical");
            assert!(seen.insert(bytes));
        }
        // The 8-torsion has exactly eight points, each with one canonical encoding.
        assert_eq!(seen.len(), 8);
    }

    /// `y + p` decodes to the same point as `y`; only the canonical spelling is a key.
    #[test]
    fn only_canonical_keys_parse() {
        let p = hex_32("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        let mut tried = 0;
        for y in 2u8..19 {
            let mut canonical = [0u8; 32];
            canonical[0] = y;
            let mut spelled_again = p;
            spelled_again[0] += y;
            let (Some(a), Some(b)) = (
                CompressedEdwardsY(canonical).decompress(),
                CompressedEdwardsY(spelled_again).decompress(),
            ) else {
                continue;
            };
            assert_eq!(a, b);
            tried += 1;
            assert!(PublicKey::parse(&hex::encode(canonical)).is_some());
            assert!(PublicKey::parse(&hex::encode(spelled_again)).is_none());
        }
        assert!(tried > 0);
    }
}
