//! Sign-In with Ethereum (EIP-4361 over EIP-191): single-use nonces kept in the database, the
//! message's grammar ([`message`]), who signed it ([`signature`]), and the checks a message
//! must pass before its nonce is spent ([`Siwe::verify`]).

pub mod message;
pub mod nonces;
pub mod signature;

use clap::Args;

pub use message::{MalformedMessage, SiweMessage};

/// How long an issued nonce may be used (the seed's 5 minutes).
pub const NONCE_TTL_MS: i64 = 5 * 60_000;
/// Clock skew tolerated on `Issued At`, `Expiration Time` and `Not Before`.
pub const LEEWAY_MS: i64 = 60_000;
/// Longest signature string accepted (0x and 130 hex digits).
pub const MAX_SIGNATURE_BYTES: usize = 132;

#[derive(Debug, Clone, Args)]
pub struct SiweArgs {
    /// Domain a Sign-In with Ethereum message must name (`host[:port]` the player's wallet saw,
    /// as the first line of the message gives it).
    #[arg(long, env = "HERO_SIWE_DOMAIN", default_value = "localhost:8080")]
    pub siwe_domain: String,
    /// Origin the message's `URI:` must belong to (scheme, host and port must match).
    #[arg(long, env = "HERO_SIWE_URI", default_value = "http://localhost:8080")]
    pub siwe_uri: url::Url,
    /// Chain ids a message may name (repeatable or comma-separated; 5000 is Mantle, the seed's
    /// default chain).
    #[arg(long = "siwe-chain-id", env = "HERO_SIWE_CHAIN_IDS", value_delimiter = ',',
          default_values_t = [1u64, 5000])]
    pub siwe_chain_ids: Vec<u64>,
}

impl SiweArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.siwe_domain.trim().is_empty() || self.siwe_domain.contains('/') {
            anyhow::bail!("--siwe-domain must be host[:port], e.g. game.example.com");
        }
        if !matches!(self.siwe_uri.scheme(), "http" | "https") || !self.siwe_uri.has_host() {
            anyhow::bail!("--siwe-uri must be an http(s) origin, e.g. https://game.example.com");
        }
        if self.siwe_chain_ids.is_empty() {
            anyhow::bail!("--siwe-chain-id needs at least one chain id");
        }
        Ok(())
    }
}

/// Why a well-formed message is refused (answered 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the message is for domain {0}, not this server's")]
    Domain(String),
    #[error("the message names scheme {0}, not this server's")]
    Scheme(String),
    #[error("the message's URI is not on this server's origin")]
    Uri,
    #[error("chain id {0} is not accepted here")]
    Chain(u64),
    #[error("the message was issued in the future")]
    IssuedInFuture,
    #[error("the message was issued too long ago; ask for a new nonce")]
    TooOld,
    #[error("the message has expired")]
    Expired,
    #[error("the message is not valid yet (Not Before)")]
    NotYetValid,
    #[error("the signature is not the address's: {0}")]
    Signature(String),
    #[error("the nonce is unknown, expired or already used; ask for a new one")]
    Nonce,
}

/// The configured domain, origin and chains, checked against each message.
#[derive(Debug, Clone)]
pub struct Siwe {
    pub domain: String,
    /// The scheme of `--siwe-uri`: a message that names a scheme must name this one.
    pub scheme: String,
    pub origin: url::Origin,
    pub chain_ids: Vec<u64>,
}

impl Siwe {
    pub fn new(args: &SiweArgs) -> Siwe {
        Siwe {
            domain: args.siwe_domain.clone(),
            scheme: args.siwe_uri.scheme().to_owned(),
            origin: args.siwe_uri.origin(),
            chain_ids: args.siwe_chain_ids.clone(),
        }
    }

    /// Checks `message` at `now_ms` and that `signature` is its address's: the signer's address.
    /// The nonce is not looked at here; spend it only after this passes.
    pub fn verify(
        &self,
        message: &SiweMessage,
        text: &str,
        signature: &str,
        now_ms: i64,
    ) -> Result<[u8; 20], Refused> {
        if message.domain != self.domain {
            return Err(Refused::Domain(message.domain.clone()));
        }
        if let Some(scheme) = message.scheme.as_ref().filter(|s| **s != self.scheme) {
            return Err(Refused::Scheme(scheme.clone()));
        }
        if message.uri.origin() != self.origin {
            return Err(Refused::Uri);
        }
        if !self.chain_ids.contains(&message.chain_id) {
            return Err(Refused::Chain(message.chain_id));
        }
        if message.issued_at_ms > now_ms + LEEWAY_MS {
            return Err(Refused::IssuedInFuture);
        }
        if message.issued_at_ms < now_ms - NONCE_TTL_MS - LEEWAY_MS {
            return Err(Refused::TooOld);
        }
        if message
            .expiration_ms
            .is_some_and(|t| t + LEEWAY_MS <= now_ms)
        {
            return Err(Refused::Expired);
        }
        if message
            .not_before_ms
            .is_some_and(|t| t > now_ms + LEEWAY_MS)
        {
            return Err(Refused::NotYetValid);
        }
        let claimed = signature::parse_checksummed(&message.address)
            .map_err(|e| Refused::Signature(e.to_string()))?;
        let signer =
            signature::recover(text, signature).map_err(|e| Refused::Signature(e.to_string()))?;
        if signer != claimed {
            return Err(Refused::Signature("signed by another key".into()));
        }
        Ok(signer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    const NOW: i64 = 1_796_119_200_000;

    fn siwe() -> Siwe {
        Siwe {
            domain: "game.example".into(),
            scheme: "https".into(),
            origin: url::Url::parse("https://game.example").unwrap().origin(),
            chain_ids: vec![5000],
        }
    }

    fn signed(key: &SigningKey, edit: impl Fn(String) -> String) -> (SiweMessage, String, String) {
        let address = signature::checksummed(&signature::address_of(key.verifying_key()));
        let text = edit(format!(
            "game.example wants you to sign in with your Ethereum account:\n{address}\n\n\n\
             URI: https://game.example/app\nVersion: 1\nChain ID: 5000\nNonce: n0nce1234\n\
             Issued At: 2026-12-01T10:00:00Z\nExpiration Time: 2026-12-01T10:02:00Z"
        ));
        let (sig, recid) = key
            .sign_prehash_recoverable(&signature::eip191_hash(&text))
            .unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(27 + recid.to_byte());
        let message = SiweMessage::parse(&text).unwrap();
        (message, text, format!("0x{}", hex::encode(bytes)))
    }

    #[test]
    fn a_good_message_verifies_and_every_check_can_refuse() {
        let key = SigningKey::from_slice(&[3u8; 32]).unwrap();
        let s = siwe();
        let (m, text, sig) = signed(&key, |t| t);
        assert_eq!(
            s.verify(&m, &text, &sig, NOW),
            Ok(signature::address_of(key.verifying_key()))
        );
        type Edit = fn(String) -> String;
        let refusals: [(Edit, i64, Refused); 5] = [
            (
                |t| t.replace("game.example wants", "evil.example wants"),
                NOW,
                Refused::Domain("evil.example".into()),
            ),
            (
                |t| t.replace("https://game.example/app", "https://evil.example/app"),
                NOW,
                Refused::Uri,
            ),
            (
                |t| t.replace("Chain ID: 5000", "Chain ID: 1"),
                NOW,
                Refused::Chain(1),
            ),
            (|t| t, NOW + 2 * 60_000 + LEEWAY_MS, Refused::Expired),
            (|t| t, NOW - LEEWAY_MS - 1, Refused::IssuedInFuture),
        ];
        for (edit, now, expected) in refusals {
            let (m, text, sig) = signed(&key, edit);
            assert_eq!(s.verify(&m, &text, &sig, now), Err(expected));
        }
        let (m, text, sig) = signed(&key, |t| {
            t.replacen("game.example", "http://game.example", 1)
        });
        assert_eq!(
            s.verify(&m, &text, &sig, NOW),
            Err(Refused::Scheme("http".into()))
        );
        let (m, text, sig) = signed(&key, |t| {
            t.replacen("game.example", "https://game.example", 1)
        });
        assert!(s.verify(&m, &text, &sig, NOW).is_ok());
        let (m, text, sig) = signed(&key, |t| t + "\nNot Before: 2026-12-01T11:00:00Z");
        assert_eq!(s.verify(&m, &text, &sig, NOW), Err(Refused::NotYetValid));
        // Signed by another key, or a signature over another text.
        let other = SigningKey::from_slice(&[4u8; 32]).unwrap();
        let (_, _, other_sig) = signed(&other, |t| t);
        let (m, text, _) = signed(&key, |t| t);
        assert!(matches!(
            s.verify(&m, &text, &other_sig, NOW),
            Err(Refused::Signature(_))
        ));
    }
}
