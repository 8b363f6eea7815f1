//! Google sign-in against a local stand-in for Google's JWKS endpoint (the real document
//! format, `Cache-Control: max-age`, and a 500 when told to fail), with ID tokens minted here
//! by an RSA key of the test's own (the `rsa` crate, not the server's verifier). Wrong
//! audience, issuer, expiry, unknown key and algorithm confusion are all refused; a rotated key
//! is fetched once; known keys outlive an outage for a day; linking follows the same rules as
//! wallets.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hero_aggregator::clock::Clock;
use hero_testkit::{Backend, TestDb, on_both_databases};
use reqwest::Method;
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use crate::harness::{Answer, Game, MINUTE};

on_both_databases!(google_id_tokens_sign_in_and_forgeries_are_refused);

const CLIENT: &str = "hero-web.apps.googleusercontent.com";

/// A signing key of "Google".
struct GoogleKey {
    kid: String,
    key: RsaPrivateKey,
}

impl GoogleKey {
    fn new(kid: &str) -> GoogleKey {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        GoogleKey {
            kid: kid.into(),
            key,
        }
    }

    fn jwk(&self) -> Value {
        let public = self.key.to_public_key();
        json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        })
    }

    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = SigningKey::<Sha256>::new(self.key.clone()).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
    }

    fn token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "RS256", "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }
}

/// What the stand-in serves, and how often it was asked.
#[derive(Default)]
struct Jwks {
    keys: Vec<Value>,
    fetches: usize,
    failing: bool,
}

type Shared = Arc<Mutex<Jwks>>;

async fn certs(State(jwks): State<Shared>) -> Response {
    let mut jwks = jwks.lock().unwrap();
    jwks.fetches += 1;
    if jwks.failing {
        return (StatusCode::INTERNAL_SERVER_ERROR, "backend error").into_response();
    }
    (
        [(
            header::CACHE_CONTROL,
            "public, max-age=3600, must-revalidate, no-transform",
        )],
        axum::Json(json!({ "keys": jwks.keys })),
    )
        .into_response()
}

async fn serve_jwks(jwks: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/oauth2/v3/certs", axum::routing::get(certs))
        .with_state(jwks);
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/oauth2/v3/certs")
}

fn claims(game: &Game, sub: &str) -> Value {
    let now = game.clock.now_ms() / 1000;
    json!({
        "iss": "https://accounts.google.com", "aud": CLIENT, "azp": CLIENT, "sub": sub,
        "email": format!("{sub}@example.com"), "email_verified": true,
        "iat": now, "exp": now + 3600,
    })
}

async fn sign_in(game: &Game, token: &str) -> Answer {
    game.post("/api/v1/auth/google", "", json!({ "id_token": token }))
        .await
}

fn refused(a: &Answer, words: &str) {
    assert_eq!(a.status, 401, "{}", a.body);
    let message = a.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{message:?} should say {words:?}");
}

async fn google_id_tokens_sign_in_and_forgeries_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = GoogleKey::new("key-1");
    let jwks: Shared = Arc::new(Mutex::new(Jwks {
        keys: vec![first.jwk()],
        ..Jwks::default()
    }));
    let url = serve_jwks(Arc::clone(&jwks)).await;
    let game = Game::start(
        &db.url,
        0,
        &["--google-client-id", CLIENT, "--google-jwks-url", &url],
    )
    .await;
    let fetches = || jwks.lock().unwrap().fetches;

    // A good token: a new player keyed by `sub`, with its verified email.
    let ok = sign_in(&game, &first.token(&claims(&game, "1001"))).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["new_player"], true);
    assert_eq!(ok.body["player"]["login_method"], "google");
    let player = ok.body["player"]["id"].clone();
    let token = ok.body["access_token"].as_str().unwrap().to_owned();
    let logins = game.get("/api/v1/players/me/logins", &token).await;
    assert_eq!(logins["linked"][0]["email"], "1001@example.com");
    // The same account again (and the old issuer spelling): the same player; keys cached.
    let mut again = claims(&game, "1001");
    again["iss"] = json!("accounts.google.com");
    again["email_verified"] = json!("true");
    let second = sign_in(&game, &first.token(&again)).await;
    assert_eq!(
        (second.status, second.body["player"]["id"].clone()),
        (200, player)
    );
    assert_eq!(fetches(), 1, "the keys were fetched once and cached");
    // An unverified email is not kept.
    let mut unverified = claims(&game, "1002");
    unverified["email_verified"] = json!(false);
    let u = sign_in(&game, &first.token(&unverified)).await;
    let u_token = u.body["access_token"].as_str().unwrap();
    let u_logins = game.get("/api/v1/players/me/logins", u_token).await;
    assert_eq!(u_logins["linked"][0]["email"], Value::Null);

    // Forgeries.
    let mut wrong_aud = claims(&game, "1001");
    wrong_aud["aud"] = json!("someone-else.apps.googleusercontent.com");
    refused(
        &sign_in(&game, &first.token(&wrong_aud)).await,
        "another application",
    );
    let mut wrong_iss = claims(&game, "1001");
    wrong_iss["iss"] = json!("https://accounts.evil.com");
    refused(
        &sign_in(&game, &first.token(&wrong_iss)).await,
        "not issued by Google",
    );
    let mut expired = claims(&game, "1001");
    expired["exp"] = json!(game.clock.now_ms() / 1000 - 120);
    refused(&sign_in(&game, &first.token(&expired)).await, "expired");
    let mut future = claims(&game, "1001");
    future["iat"] = json!(game.clock.now_ms() / 1000 + 600);
    refused(&sign_in(&game, &first.token(&future)).await, "future");
    // Signed by a key Google never published, under a known kid and under an unknown one.
    let stranger = GoogleKey::new("key-1");
    refused(
        &sign_in(&game, &stranger.token(&claims(&game, "1001"))).await,
        "signature",
    );
    let unknown = GoogleKey::new("key-x");
    game.advance(31_000);
    refused(
        &sign_in(&game, &unknown.token(&claims(&game, "1001"))).await,
        "does not publish",
    );
    assert_eq!(
        fetches(),
        2,
        "an unknown kid refetches the keys (at most every 30 s)"
    );
    refused(
        &sign_in(&game, &unknown.token(&claims(&game, "1001"))).await,
        "does not publish",
    );
    assert_eq!(fetches(), 2, "and not again right away");
    // Algorithm confusion: HS256 keyed with the public modulus, and `none`.
    let body = URL_SAFE_NO_PAD.encode(claims(&game, "1001").to_string());
    for header in [
        json!({"alg": "HS256", "kid": "key-1", "typ": "JWT"}),
        json!({"alg": "none", "kid": "key-1"}),
        json!({"alg": "RS512", "kid": "key-1"}),
    ] {
        let input = format!("{}.{body}", URL_SAFE_NO_PAD.encode(header.to_string()));
        let public = first.key.to_public_key().n().to_bytes_be();
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
            input.as_bytes(),
        );
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        refused(&sign_in(&game, &forged).await, "RS256");
    }
    for garbage in ["", "a.b", "not a token", &"x".repeat(9000)] {
        let a = sign_in(&game, garbage).await;
        assert_eq!(a.status, 401, "{garbage:.20}: {}", a.body);
    }

    // Google rotates its keys: a token under the new kid is fetched for once and accepted.
    let rotated = GoogleKey::new("key-2");
    jwks.lock().unwrap().keys.push(rotated.jwk());
    game.advance(MINUTE);
    let new_key = sign_in(&game, &rotated.token(&claims(&game, "1001"))).await;
    assert_eq!(new_key.status, 200, "{}", new_key.body);
    assert_eq!(fetches(), 3);

    // Linking: a guest links a Google account nobody has; not one that is taken.
    let guest = game.guest().await;
    let link = |token: String| {
        let guest = guest.clone();
        let game = &game;
        async move {
            game.post(
                "/api/v1/players/me/logins/google",
                &guest,
                json!({ "id_token": token }),
            )
            .await
        }
    };
    let taken = link(first.token(&claims(&game, "1001"))).await;
    assert_eq!(taken.status, 409, "{}", taken.body);
    let linked = link(first.token(&claims(&game, "2001"))).await;
    assert_eq!(linked.status, 200, "{}", linked.body);
    assert_eq!(
        game.get("/api/v1/players/me", &guest).await["login_method"],
        "google"
    );
    // A Google-only player cannot unlink its only login.
    let only = sign_in(&game, &first.token(&claims(&game, "3001"))).await;
    let only_token = only.body["access_token"].as_str().unwrap();
    let last = game
        .call(
            Method::DELETE,
            "/api/v1/players/me/logins/google",
            only_token,
            None,
        )
        .await;
    assert_eq!(last.status, 409, "{}", last.body);

    // Google's endpoint failing once the cache expired: the known keys keep working for a day,
    // with one fetch attempt per 30 s; after that, 503 (not 500, not 401).
    jwks.lock().unwrap().failing = true;
    game.advance(2 * 60 * MINUTE);
    let before = fetches();
    let stale = sign_in(&game, &first.token(&claims(&game, "1001"))).await;
    assert_eq!(stale.status, 200, "{}", stale.body);
    let stale = sign_in(&game, &first.token(&claims(&game, "1001"))).await;
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert_eq!(fetches(), before + 1, "one attempt, not one per request");
    game.advance(24 * 60 * MINUTE);
    let down = sign_in(&game, &first.token(&claims(&game, "1001"))).await;
    assert_eq!(down.status, 503, "{}", down.body);
}
