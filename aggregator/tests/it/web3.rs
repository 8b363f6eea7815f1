//! Sign-In with Ethereum from the outside: messages built and signed here by the test's own
//! wallet (k256 over a Keccak-256 EIP-191 hash computed here, an EIP-55 address computed here,
//! not the server's code), sent over HTTP to an aggregator on each database. Every refusal is
//! a 401 or a 422, never a 500; a nonce is spent once, and only by a message that verified.

use futures::future::join_all;
use hero_aggregator::clock::Clock;
use hero_testkit::{Backend, TestDb, on_both_databases};
use k256::ecdsa::SigningKey;
use reqwest::Method;
use serde_json::{Value, json};
use sha3::{Digest, Keccak256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::{Answer, Game, MINUTE};

on_both_databases!(siwe_signs_in_and_refuses_every_forgery);
on_both_databases!(one_signed_message_signs_in_once_under_concurrency);
on_both_databases!(a_wallet_links_to_one_player_and_the_last_login_stays);

pub const SIWE_FLAGS: [&str; 6] = [
    "--siwe-domain",
    "game.test",
    "--siwe-uri",
    "https://game.test",
    "--siwe-chain-id",
    "5000",
];

/// A wallet: a secp256k1 key.
pub struct Wallet(SigningKey);

impl Wallet {
    pub fn new(seed: u8) -> Wallet {
        Wallet(SigningKey::from_slice(&[seed; 32]).unwrap())
    }

    /// The EIP-55 address of the key, computed here.
    pub fn address(&self) -> String {
        let point = self.0.verifying_key().to_encoded_point(false);
        let hash = Keccak256::digest(&point.as_bytes()[1..]);
        let lower = hex::encode(&hash[12..]);
        let case = Keccak256::digest(lower.as_bytes());
        let mixed: String = lower
            .chars()
            .enumerate()
            .map(|(i, c)| {
                let nibble = if i % 2 == 0 {
                    case[i / 2] >> 4
                } else {
                    case[i / 2] & 0xf
                };
                if nibble >= 8 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        format!("0x{mixed}")
    }

    /// `personal_sign`: r ‖ s ‖ v over Keccak-256("\x19Ethereum Signed Message:\n" len msg).
    pub fn sign(&self, message: &str) -> String {
        let mut hasher = Keccak256::new();
        hasher.update(b"\x19Ethereum Signed Message:\n");
        hasher.update(message.len().to_string().as_bytes());
        hasher.update(message.as_bytes());
        let (sig, recid) = self.0.sign_prehash_recoverable(&hasher.finalize()).unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(27 + recid.to_byte());
        format!("0x{}", hex::encode(bytes))
    }
}

pub fn rfc3339(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// The fields of a message, as a wallet would fill them in.
#[derive(Clone)]
pub struct Fields {
    pub domain: String,
    pub address: String,
    pub uri: String,
    pub chain_id: u64,
    pub nonce: String,
    pub issued_at_ms: i64,
    pub expiration_ms: Option<i64>,
    pub not_before_ms: Option<i64>,
}

impl Fields {
    pub fn text(&self) -> String {
        let mut text = format!(
            "{} wants you to sign in with your Ethereum account:\n{}\n\nSign in to AI Hero Battle.\n\n\
             URI: {}\nVersion: 1\nChain ID: {}\nNonce: {}\nIssued At: {}",
            self.domain,
            self.address,
            self.uri,
            self.chain_id,
            self.nonce,
            rfc3339(self.issued_at_ms)
        );
        if let Some(t) = self.expiration_ms {
            text.push_str(&format!("\nExpiration Time: {}", rfc3339(t)));
        }
        if let Some(t) = self.not_before_ms {
            text.push_str(&format!("\nNot Before: {}", rfc3339(t)));
        }
        text
    }
}

pub async fn nonce(game: &Game) -> String {
    let n = game.get("/api/v1/auth/web3/nonce", "").await;
    assert_eq!(n["domain"], "game.test");
    assert_eq!(n["uri"], "https://game.test");
    n["nonce"].as_str().unwrap().to_owned()
}

/// A correct message for `wallet` with a fresh nonce.
pub async fn fields(game: &Game, wallet: &Wallet) -> Fields {
    let now = game.clock.now_ms();
    Fields {
        domain: "game.test".into(),
        address: wallet.address(),
        uri: "https://game.test/play".into(),
        chain_id: 5000,
        nonce: nonce(game).await,
        issued_at_ms: now,
        expiration_ms: Some(now + 10 * MINUTE),
        not_before_ms: None,
    }
}

pub async fn submit(
    game: &Game,
    path: &str,
    token: &str,
    message: &str,
    signature: &str,
) -> Answer {
    game.post(
        path,
        token,
        json!({"message": message, "signature": signature}),
    )
    .await
}

pub async fn sign_in(game: &Game, wallet: &Wallet, fields: &Fields) -> Answer {
    let text = fields.text();
    submit(game, "/api/v1/auth/web3", "", &text, &wallet.sign(&text)).await
}

/// Links `wallet` to the player of `token` with a fresh signed message.
async fn link(game: &Game, token: &str, wallet: &Wallet) -> Answer {
    let text = fields(game, wallet).await.text();
    let signature = wallet.sign(&text);
    submit(
        game,
        "/api/v1/players/me/logins/web3",
        token,
        &text,
        &signature,
    )
    .await
}

fn refused(a: &Answer, status: u16, words: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} should say {words:?}");
}

async fn siwe_signs_in_and_refuses_every_forgery(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Game::start(&db.url, 0, &SIWE_FLAGS).await;
    let wallet = Wallet::new(7);

    // A garbage signature does not burn the nonce: the real signature still signs in after.
    let good = fields(&game, &wallet).await;
    let text = good.text();
    let garbage = submit(
        &game,
        "/api/v1/auth/web3",
        "",
        &text,
        &Wallet::new(8).sign(&text),
    )
    .await;
    refused(&garbage, 401, "signed by another key");
    let first = sign_in(&game, &wallet, &good).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["new_player"], true);
    assert_eq!(first.body["player"]["login_method"], "web3");
    assert_eq!(
        first.body["player"]["wallet_address"],
        wallet.address().as_str()
    );
    let player = first.body["player"]["id"].clone();
    let token = first.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(game.get("/api/v1/players/me", &token).await["id"], player);

    // The same message again: its nonce is spent.
    refused(&sign_in(&game, &wallet, &good).await, 401, "nonce");
    // A new nonce: the same player again.
    let again = sign_in(&game, &wallet, &fields(&game, &wallet).await).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        (
            again.body["new_player"].clone(),
            again.body["player"]["id"].clone()
        ),
        (json!(false), player)
    );

    let now = game.clock.now_ms();
    type Edit = fn(&mut Fields, i64);
    let cases: [(Edit, &str); 7] = [
        (|f, _| f.domain = "evil.test".into(), "domain"),
        (|f, _| f.uri = "https://evil.test/play".into(), "URI"),
        (|f, _| f.chain_id = 1, "chain id 1"),
        (
            |f, now| {
                f.issued_at_ms = now - 20 * MINUTE;
                f.expiration_ms = Some(now - 10 * MINUTE);
            },
            "issued too long ago",
        ),
        (|f, now| f.expiration_ms = Some(now - 2 * MINUTE), "expired"),
        (
            |f, now| f.not_before_ms = Some(now + 10 * MINUTE),
            "not valid yet",
        ),
        (|f, now| f.issued_at_ms = now + 10 * MINUTE, "future"),
    ];
    for (edit, words) in cases {
        let mut f = fields(&game, &wallet).await;
        edit(&mut f, now);
        refused(&sign_in(&game, &wallet, &f).await, 401, words);
        // None of them burned its nonce: the correct message with it still works.
        let mut fixed = fields(&game, &wallet).await;
        fixed.nonce = f.nonce.clone();
        assert_eq!(sign_in(&game, &wallet, &fixed).await.status, 200, "{words}");
    }

    // A nonce the server never issued.
    let mut unknown = fields(&game, &wallet).await;
    unknown.nonce = "NeverIssued123".into();
    refused(&sign_in(&game, &wallet, &unknown).await, 401, "nonce");
    // A nonce past its 5 minutes.
    let stale = fields(&game, &wallet).await;
    game.advance(6 * MINUTE);
    let mut late = stale.clone();
    late.issued_at_ms = game.clock.now_ms();
    late.expiration_ms = None;
    refused(&sign_in(&game, &wallet, &late).await, 401, "nonce");

    // Malformed messages and signatures: 422 or 401, never 500.
    let f = fields(&game, &wallet).await;
    let text = f.text();
    let lowercase = text.replace(&wallet.address(), &wallet.address().to_lowercase());
    for (message, signature, status) in [
        ("hello".to_owned(), wallet.sign("hello"), 422),
        (
            text.replace("Version: 1", "Version: 9"),
            wallet.sign(&text),
            422,
        ),
        (
            format!("{text}\nResources:\n{}", "- https://x.test/\n".repeat(400)),
            wallet.sign(&text),
            422,
        ),
        ("x".repeat(5000), wallet.sign("x"), 422),
        (lowercase.clone(), wallet.sign(&lowercase), 401),
        (text.clone(), "0x1234".to_owned(), 401),
        (text.clone(), format!("0x{}", "ff".repeat(65)), 401),
        (text.clone(), "z".repeat(500), 422),
    ] {
        let a = submit(&game, "/api/v1/auth/web3", "", &message, &signature).await;
        assert_eq!(a.status, status, "{message:.80}: {}", a.body);
    }
    let unknown_field = game
        .post(
            "/api/v1/auth/web3",
            "",
            json!({"message": text, "signature": wallet.sign(&text), "address": "0x"}),
        )
        .await;
    assert_eq!(unknown_field.status, 422);
    // After all that, the nonce of this message is still good.
    assert_eq!(sign_in(&game, &wallet, &f).await.status, 200);
}

async fn one_signed_message_signs_in_once_under_concurrency(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Game::start(&db.url, 0, &SIWE_FLAGS).await;
    let wallet = Wallet::new(9);
    let f = fields(&game, &wallet).await;
    let text = f.text();
    let signature = wallet.sign(&text);
    let answers: Vec<Answer> =
        join_all((0..12).map(|_| submit(&game, "/api/v1/auth/web3", "", &text, &signature))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    let winner = answers.iter().find(|a| a.status == 200).unwrap();
    assert_eq!(winner.body["new_player"], true);
    // One player was made: the next sign-in finds it.
    let next = sign_in(&game, &wallet, &fields(&game, &wallet).await).await;
    assert_eq!(next.body["new_player"], false, "{}", next.body);
    assert_eq!(next.body["player"]["id"], winner.body["player"]["id"]);
}

async fn a_wallet_links_to_one_player_and_the_last_login_stays(backend: Backend) {
    let db = TestDb::new(backend).await;
    let game = Game::start(&db.url, 0, &SIWE_FLAGS).await;
    let guest = game.guest().await;
    let me = game.get("/api/v1/players/me", &guest).await;
    assert_eq!(me["login_method"], "guest");
    let wallet = Wallet::new(11);

    // The guest links a wallet: it is upgraded, and the wallet signs in to it.
    let linked = link(&game, &guest, &wallet).await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(linked.body["linked"][0]["kind"], "web3");
    assert_eq!(
        linked.body["linked"][0]["subject"],
        wallet.address().as_str()
    );
    assert_eq!(linked.body["devices"], 1);
    let upgraded = game.get("/api/v1/players/me", &guest).await;
    assert_eq!(upgraded["login_method"], "web3");
    let by_wallet = sign_in(&game, &wallet, &fields(&game, &wallet).await).await;
    assert_eq!(
        by_wallet.body["player"]["id"], me["id"],
        "{}",
        by_wallet.body
    );
    assert_eq!(by_wallet.body["new_player"], false);

    // Another player cannot take the wallet; the owner cannot link a second one.
    let other = game.guest().await;
    let taken = link(&game, &other, &wallet).await;
    refused(&taken, 409, "another player");
    let second = Wallet::new(12);
    let twice = link(&game, &guest, &second).await;
    refused(&twice, 409, "unlink it first");

    // A wallet-only player cannot remove its only login; the guest (with its device) can.
    let wallet_only = sign_in(&game, &second, &fields(&game, &second).await).await;
    let wallet_token = wallet_only.body["access_token"].as_str().unwrap();
    let last = game
        .call(
            Method::DELETE,
            "/api/v1/players/me/logins/web3",
            wallet_token,
            None,
        )
        .await;
    refused(&last, 409, "last way to sign in");
    let logins: Value = game.get("/api/v1/players/me/logins", wallet_token).await;
    assert_eq!(
        (
            logins["linked"].as_array().unwrap().len(),
            logins["devices"].as_i64()
        ),
        (1, Some(0))
    );
    let unlinked = game
        .call(
            Method::DELETE,
            "/api/v1/players/me/logins/web3",
            &guest,
            None,
        )
        .await;
    assert_eq!(unlinked.status, 204, "{}", unlinked.body);
    let gone = game
        .call(
            Method::DELETE,
            "/api/v1/players/me/logins/web3",
            &guest,
            None,
        )
        .await;
    refused(&gone, 404, "no web3");
    let bad_kind = game
        .call(
            Method::DELETE,
            "/api/v1/players/me/logins/github",
            &guest,
            None,
        )
        .await;
    assert_eq!(bad_kind.status, 404);
    // Unlinked, the wallet makes a new player of its own.
    let fresh = sign_in(&game, &wallet, &fields(&game, &wallet).await).await;
    assert_eq!(fresh.body["new_player"], true, "{}", fresh.body);
}
