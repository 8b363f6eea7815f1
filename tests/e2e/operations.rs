//! Operator commands of the real binaries: `hero-aggregator migrate`, and settings refused
//! at start with a reason.

use hero_protocol::signing::VoteSigner;
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::enroll::register;
use hero_tests::{Aggregator, AggregatorOptions, run_to_exit};

on_both_databases!(
    wrong_methods_and_huge_bodies_get_the_error_shape,
    migrate_creates_the_schema_and_is_repeatable,
    operators_are_created_listed_and_revoked_from_the_command_line,
    admins_are_created_listed_and_revoked_from_the_command_line,
    restarting_local_nodes_leaves_no_stale_nodes_listed,
);

/// A restart with `--local-nodes` brings back the same local nodes (their keys are kept beside
/// the database): the list holds three nodes, with the same ids, however often it restarts;
/// and each shutdown ends every task in its time.
async fn restarting_local_nodes_leaves_no_stale_nodes_listed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let options = AggregatorOptions {
        extra: vec!["--local-nodes".into(), "3".into()],
        ..AggregatorOptions::default()
    };
    let mut first_ids: Option<Vec<String>> = None;
    for run in 1..=3 {
        let mut agg = Aggregator::start(&db, &options);
        agg.wait_online(3).await;
        let nodes = agg.get("/api/nodes").await;
        let list = nodes.as_array().expect("a list");
        let names: Vec<&str> = list.iter().filter_map(|n| n["name"].as_str()).collect();
        assert_eq!(
            names,
            ["local-node-1", "local-node-2", "local-node-3"],
            "run {run}: {nodes}"
        );
        assert!(
            list.iter().all(|n| n["status"] == "online"),
            "run {run}: {nodes}"
        );
        let ids: Vec<String> = list
            .iter()
            .filter_map(|n| n["id"].as_str().map(str::to_owned))
            .collect();
        match &first_ids {
            None => first_ids = Some(ids),
            Some(first) => assert_eq!(&ids, first, "run {run}: the same nodes"),
        }
        assert!(agg.process.terminate().success());
        // Every stage stopped on its own: nothing (the verdict writer, the late-vote recorder)
        // was kept waiting past its limit.
        let log = std::fs::read_to_string(&agg.process.log).unwrap_or_default();
        assert!(
            !log.contains("were left behind"),
            "run {run}: shutdown left tasks behind; see {}",
            agg.process.log.display()
        );
    }
}

async fn wrong_methods_and_huge_bodies_get_the_error_shape(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let node = hero_tests::NodeProcess::start(&agg.url(), "shape", &["--api-key", "shape-key"]);
    let client = reqwest::Client::new();
    for url in [
        format!("{}/api/nodes/register", agg.url()),
        format!("{}/generate_battle", node.process.url()),
    ] {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 405, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{url}: {body}");
    }
    for url in [
        format!("{}/api/nodes/register", agg.url()),
        format!("{}/generate_battle", node.process.url()),
    ] {
        let r = client
            .post(&url)
            .header("content-type", "application/json")
            .bearer_auth("shape-key")
            .body(vec![b' '; 2 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{url}");
        assert_eq!(r.headers()["connection"], "close", "{url}");
        // The pooled client's next request on a fresh connection works.
        assert_ne!(client.get(&url).send().await.unwrap().status(), 413);
    }
    // Refused before its body is read: the connection cannot carry another request, and the
    // answer says so (a pooled client would otherwise reuse it as the server closes it).
    let url = format!("{}/api/v1/characters", agg.url());
    let r = client
        .post(&url)
        .json(&serde_json::json!({"name": "Ayla", "prompt": "a knight"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["connection"], "close");
    let health = client.get(format!("{}/api/health", agg.url())).send().await;
    assert_eq!(health.unwrap().status(), 200);
    assert!(
        !client
            .get(&url)
            .send()
            .await
            .unwrap()
            .headers()
            .contains_key("connection")
    );
}

async fn operators_are_created_listed_and_revoked_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let run = |args: &[&str]| command(&db, "operators", args);
    let (ok, stdout, stderr) = run(&["create", "acme", "--max-nodes", "2", "--max-weight", "3"]);
    assert!(ok, "{stderr}");
    let token = stdout
        .lines()
        .find_map(|l| l.split("operator): ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        token.starts_with("hero_enroll_") && token.len() == 76,
        "{stdout}"
    );
    let (ok, _, stderr) = run(&["create", "acme"]);
    assert!(!ok, "a second acme is refused");
    assert!(stderr.contains("acme"), "{stderr}");
    let (ok, _, stderr) = run(&["create", "bad name!"]);
    assert!(!ok && stderr.contains("operator name"), "{stderr}");
    let (ok, stdout, _) = run(&["list"]);
    assert!(
        ok && stdout.contains("acme\tmax_nodes=2\tmax_weight=3\tactive"),
        "{stdout}"
    );
    // The token works; the network is closed to everyone else.
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let body = serde_json::json!({"name": "n", "url": "http://127.0.0.1:9", "weight": 9});
    let k = VoteSigner::generate().unwrap();
    let (status, _) = register(&agg.url(), None, body.clone(), Some(&k)).await;
    assert_eq!(status, 401, "no open registration once an operator exists");
    let (status, reg) = register(&agg.url(), Some(&token), body.clone(), Some(&k)).await;
    assert_eq!(status, 200, "{reg}");
    let nodes = agg.get("/api/nodes").await;
    assert_eq!(nodes[0]["operator"], "acme");
    assert_eq!(nodes[0]["weight"], 3, "clamped to max_weight");
    let (ok, stdout, _) = run(&["revoke", "acme"]);
    assert!(ok && stdout.contains("1 of its nodes left"), "{stdout}");
    let (status, _) = register(&agg.url(), Some(&token), body, Some(&k)).await;
    assert_eq!(status, 401, "a revoked token registers nothing");
}

/// `hero-aggregator admin create|list|revoke`: a personal admin token, printed once, that opens
/// admin endpoints until it is revoked (on a running aggregator, at once).
async fn admins_are_created_listed_and_revoked_from_the_command_line(backend: Backend) {
    let db = TestDb::new(backend).await;
    let run = |args: &[&str]| command(&db, "admin", args);
    let (ok, stdout, stderr) = run(&["create", "ops-alice"]);
    assert!(ok, "{stderr}");
    let token = stdout
        .lines()
        .find_map(|l| l.split("Bearer ...): ").nth(1))
        .unwrap()
        .trim()
        .to_string();
    assert!(token.starts_with("hero_admin_"), "{stdout}");
    let (ok, _, stderr) = run(&["create", "ops-alice"]);
    assert!(!ok && stderr.contains("ops-alice"), "{stderr}");
    let (ok, _, stderr) = run(&["create", "bad name"]);
    assert!(!ok && stderr.contains("admin names"), "{stderr}");

    // No --admin-token: the personal token is the only way in.
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let client = reqwest::Client::new();
    let tasks = format!("{}/api/v1/admin/tasks", agg.url());
    let status = |token: String| {
        let request = client.get(&tasks).bearer_auth(token).send();
        async move { request.await.unwrap().status().as_u16() }
    };
    assert_eq!(status(token.clone()).await, 200);
    assert_eq!(status("hero_admin_guess".into()).await, 401);
    let (ok, stdout, _) = run(&["list"]);
    assert!(
        ok && stdout.contains("ops-alice\tactive\tlast used at"),
        "{stdout}"
    );
    let (ok, stdout, _) = run(&["revoke", "ops-alice"]);
    assert!(ok && stdout.contains("revoked"), "{stdout}");
    assert_eq!(status(token).await, 401, "revoked at once");
    let (ok, _, stderr) = run(&["revoke", "ops-alice"]);
    assert!(!ok && stderr.contains("no active admin"), "{stderr}");
    // `keys rotate` (its effect on tokens is tested in the aggregator's `roles` tests).
    let (ok, stdout, stderr) = command(&db, "keys", &["rotate"]);
    assert!(ok && stdout.contains("is current"), "{stdout}{stderr}");
}

/// `hero-aggregator GROUP ARGS… --database-url <db>`: (success, stdout, stderr).
fn command(db: &TestDb, group: &str, args: &[&str]) -> (bool, String, String) {
    let mut all = vec![group];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--database-url", &db.url]);
    let out = run_to_exit("hero-aggregator", &all, &[("RUST_BACKTRACE", "0")], &[]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

async fn migrate_creates_the_schema_and_is_repeatable(backend: Backend) {
    let db = TestDb::new(backend).await;
    for _ in 0..2 {
        let out = run_to_exit(
            "hero-aggregator",
            &["migrate", "--database-url", &db.url],
            &[],
            &[],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("migrations applied"), "{stdout}");
    }
    for (table, key) in [
        ("nodes", "id"),
        ("battles", "id"),
        ("battle_votes", "battle_id"),
        ("battle_results", "battle_id"),
        ("players", "id"),
        ("characters", "id"),
        ("bets", "id"),
    ] {
        // The house account (betting stakes) is the one row a new database holds.
        let n = db
            .scalar_i64(
                &format!("SELECT COUNT(*) FROM {table} WHERE {key} <> $1"),
                "house",
            )
            .await;
        assert_eq!(n, 0, "{table} exists and is empty");
    }
    let house = db
        .scalar_i64("SELECT gold FROM players WHERE id = $1", "house")
        .await;
    assert_eq!(house, 0);
}

#[test]
fn help_never_prints_secrets_from_the_environment() {
    let secrets = [
        ("HERO_DATABASE_URL", "postgres://u:dbsecret@h/db"),
        ("HERO_ADMIN_TOKEN", "adminsecret-0123456789"),
        ("HERO_ENROLLMENT_TOKEN", "enrollsecret"),
        ("HERO_GEMINI_API_KEY", "geminisecret"),
        ("HERO_JWT_SECRET", "jwtsecret-0123456789-0123456789-01"),
        (
            "HERO_JWT_PREVIOUS_SECRET",
            "jwtprevious-0123456789-0123456789",
        ),
        ("HERO_REDIS_URL", "redis://:redissecret@127.0.0.1:6379"),
    ];
    for args in [
        &["--help"][..],
        &["operators", "create", "--help"][..],
        &["admin", "create", "--help"][..],
    ] {
        let out = run_to_exit("hero-aggregator", args, &secrets, &[]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        for (_, value) in secrets {
            assert!(!help.contains(value), "{args:?} printed {value}");
        }
    }
    let node_secrets = [
        ("HERO_NODE_API_KEY", "nodekeysecret"),
        ("HERO_NODE_ENROLLMENT_TOKEN", "nodeenrollsecret"),
        ("HERO_NODE_GEMINI_API_KEY", "nodegeminisecret"),
        ("HERO_NODE_OPENAI_API_KEY", "nodeopenaisecret"),
    ];
    let out = run_to_exit("hero-node", &["--help"], &node_secrets, &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    for (_, value) in node_secrets {
        assert!(!help.contains(value), "hero-node --help printed {value}");
    }
}

#[test]
fn impossible_settings_are_refused_with_a_reason() {
    let cases: [(&[&str], &str); 5] = [
        (&["--quorum-size", "4"], "--quorum-size must be odd"),
        (&["--quorum-size", "1"], "--insecure-single-node"),
        (&["--trusted-proxy", "not-a-cidr"], "trusted-proxy"),
        (
            &[
                "--battle-lease-ms",
                "1000",
                "--consensus-deadline-ms",
                "2000",
            ],
            "--battle-lease-ms",
        ),
        (&["--database-url", "mysql://x"], "unsupported database url"),
    ];
    for (args, reason) in cases {
        let out = run_to_exit("hero-aggregator", args, &[("RUST_BACKTRACE", "0")], &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should be refused");
        assert!(stderr.contains(reason), "{args:?}: {stderr}");
    }
}
