//! Logins across two real `hero-aggregator` processes on one database and one Redis: a wallet
//! signs in (EIP-4361 message signed here with k256 over a Keccak-256 EIP-191 hash computed here)
//! with a nonce another replica issued, the same message is refused on either replica
//! afterwards, and the per-address limit is one limit for both replicas.

use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::{Aggregator, AggregatorOptions};
use k256::ecdsa::SigningKey;
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};

on_both_databases!(two_replicas_share_nonces_and_one_redis_limit);

/// The wallet's EIP-55 address, computed here.
fn address(key: &SigningKey) -> String {
    let point = key.verifying_key().to_encoded_point(false);
    let lower = hex::encode(&Keccak256::digest(&point.as_bytes()[1..])[12..]);
    let case = Keccak256::digest(lower.as_bytes());
    let mixed: String = lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (case[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0xf;
            if nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    format!("0x{mixed}")
}

fn personal_sign(key: &SigningKey, message: &str) -> String {
    let prefixed = format!("\x19Ethereum Signed Message:\n{}{message}", message.len());
    let (sig, recid) = key
        .sign_prehash_recoverable(&Keccak256::digest(prefixed.as_bytes()))
        .unwrap();
    let mut bytes = sig.to_bytes().to_vec();
    bytes.push(27 + recid.to_byte());
    format!("0x{}", hex::encode(bytes))
}

async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn two_replicas_share_nonces_and_one_redis_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let redis =
        std::env::var("HERO_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("hero-e2e-{}", uuid::Uuid::new_v4().simple());
    let options = AggregatorOptions {
        extra: [
            "--siwe-domain",
            "game.test",
            "--siwe-uri",
            "https://game.test",
            "--ip-limit-auth-per-minute",
            "6",
            "--redis-url",
            &redis,
            "--redis-prefix",
            &prefix,
        ]
        .map(String::from)
        .to_vec(),
        ..AggregatorOptions::default()
    };
    let a = Aggregator::start(&db, &options);
    let b = Aggregator::start(&db, &options);
    let client = reqwest::Client::new();

    // A nonce from B, signed in on A.
    let (status, nonce) = call(client.get(format!("{}/api/v1/auth/web3/nonce", b.url()))).await;
    assert_eq!(status, 200, "{nonce}");
    let key = SigningKey::from_slice(&[42u8; 32]).unwrap();
    let issued = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    // No statement: the address, two blank lines, then the fields.
    let message = format!(
        "game.test wants you to sign in with your Ethereum account:\n{}\n\n\n\
         URI: https://game.test/play\nVersion: 1\nChain ID: 5000\nNonce: {}\nIssued At: {issued}",
        address(&key),
        nonce["nonce"].as_str().unwrap()
    );
    let body = json!({"message": message, "signature": personal_sign(&key, &message)});
    let (status, login) = call(
        client
            .post(format!("{}/api/v1/auth/web3", a.url()))
            .json(&body),
    )
    .await;
    assert_eq!(status, 200, "{login}");
    assert_eq!(login["player"]["wallet_address"], address(&key).as_str());
    // Replayed, on either replica: refused.
    for replica in [&a, &b] {
        let (status, answer) = call(
            client
                .post(format!("{}/api/v1/auth/web3", replica.url()))
                .json(&body),
        )
        .await;
        assert_eq!(status, 401, "{answer}");
    }
    // Six sign-in requests a minute from this address in all, whichever replica gets them
    // (the four above counted too).
    let mut statuses = Vec::new();
    for replica in [&a, &b, &a, &b] {
        let (status, _) =
            call(client.get(format!("{}/api/v1/auth/web3/nonce", replica.url()))).await;
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
}
