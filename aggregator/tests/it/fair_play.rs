//! The economy cannot be farmed with alt accounts: new accounts (guests, first wallet sign-ins)
//! are limited per address and day, a defender earns rating but never currency, and a player may
//! fight another player's characters only so often per UTC day (matchmaking stops offering
//! them, naming them is refused).

use hero_testkit::{Backend, TestDb, on_both_databases};
use reqwest::Method;
use serde_json::json;

use crate::harness::{Game, HOUR};
use crate::ladder::{assert_ledger_explains_gold, game_now};
use crate::web3::{self, SIWE_FLAGS, Wallet};

on_both_databases!(alt_accounts_farm_nothing);
on_both_databases!(new_accounts_are_limited_per_address_and_day);

async fn alt_accounts_farm_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No nodes: every battle settles at once by the local fallback.
    let game = Game::start(&db.url, 0, &[]).await;
    let (main, _, main_hero) = game.fighter("the main account's champion").await;
    let gold_before = game.get("/api/v1/players/me", &main).await["gold"].clone();
    assert_eq!(gold_before, 1000);

    // An alt fights the main's champion as often as the daily limit allows (5 by default).
    let (alt, _, alt_hero) = game.fighter("a throwaway").await;
    let fight = |opponent: Option<&str>| {
        let body = match opponent {
            Some(o) => json!({"character_id": alt_hero, "opponent_id": o}),
            None => json!({"character_id": alt_hero}),
        };
        game.call(Method::POST, "/api/v1/battles", &alt, Some(body))
    };
    for i in 0..5 {
        let a = fight(Some(&main_hero)).await;
        assert_eq!(a.status, 202, "battle {i}: {}", a.body);
    }
    let sixth = fight(Some(&main_hero)).await;
    assert_eq!(sixth.status, 429, "{}", sixth.body);
    assert!(
        sixth.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("5 times today"),
        "{}",
        sixth.body
    );
    // Matchmaking no longer offers the main's characters (there is nobody else).
    let matched = fight(None).await;
    assert_eq!(matched.status, 409, "{}", matched.body);

    // Every battle settled: the main's record and rating moved, its currency did not.
    let main_me = game
        .until("the five battles to settle", || async {
            let me = game.get("/api/v1/players/me", &main).await;
            (me["wins"].as_i64().unwrap() + me["losses"].as_i64().unwrap() == 5).then_some(me)
        })
        .await;
    assert_eq!(main_me["gold"], gold_before, "a defender is never paid");
    assert_eq!(main_me["exp_potion"], 100);
    let history = game.get("/api/v1/players/me/ledger", &main).await;
    assert!(
        history["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["reason"] != "battle_reward"),
        "{history}"
    );
    let hero = game
        .get(&format!("/api/v1/characters/{main_hero}"), &main)
        .await;
    assert_eq!(
        hero["wins"].as_i64().unwrap() + hero["losses"].as_i64().unwrap(),
        5
    );
    // The attacker was paid for each battle it fought.
    let alt_me = game.get("/api/v1/players/me", &alt).await;
    assert!(
        alt_me["gold"].as_i64().unwrap() >= 1000 + 5 * 10,
        "{alt_me}"
    );

    // A new UTC day: the pair may fight again.
    let now = game_now(&game);
    game.advance(24 * HOUR - now.rem_euclid(24 * HOUR) + 1_000);
    let tomorrow = fight(Some(&main_hero)).await;
    assert_eq!(tomorrow.status, 202, "{}", tomorrow.body);
    assert_ledger_explains_gold(&db).await;
}

async fn new_accounts_are_limited_per_address_and_day(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut flags = vec!["--ip-limit-accounts-per-day", "3"];
    flags.extend(SIWE_FLAGS);
    let game = Game::start(&db.url, 0, &flags).await;
    game.guest().await;
    game.guest().await;
    // A first sign-in with a wallet makes an account too (wallets cost nothing to generate).
    let wallet = Wallet::new(21);
    let first = web3::sign_in(&game, &wallet, &web3::fields(&game, &wallet).await).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let another = Wallet::new(22);
    let refused = web3::sign_in(&game, &another, &web3::fields(&game, &another).await).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    // Signing in to an existing account does not count.
    let again = web3::sign_in(&game, &wallet, &web3::fields(&game, &wallet).await).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let refused = game
        .call(Method::POST, "/api/v1/auth/guest", "", None)
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("new account"),
        "{}",
        refused.body
    );
    // A day later the address may make guests again.
    game.advance(24 * HOUR);
    game.guest().await;
}
