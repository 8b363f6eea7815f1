//! The web page in a real browser: headless Chromium, driven over WebDriver (Debian's
//! `chromedriver`), against the real aggregator with three local Sim nodes on SQLite. A guest
//! summons a hero, fights a rival, watches the nodes' votes and the verdict arrive and the log
//! replayed; then the operator view lists the three nodes and the battle with its votes.
//! Screenshots go to `target/screenshots/`.
//!
//! Chromium and chromedriver are required: without them this test fails (it never skips).
//! `HERO_TEST_CHROMEDRIVER` and `HERO_TEST_CHROMIUM` name other binaries.

use std::net::TcpStream;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use futures::{FutureExt, SinkExt};
use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::Player;
use hero_tests::{Aggregator, AggregatorOptions, Behavior, TestNode, free_port};
use serde_json::{Value, json};

const INSTALL: &str = "the browser test needs Debian's chromium and chromium-driver: \
     apt-get install -y chromium chromium-driver (or set HERO_TEST_CHROMIUM and \
     HERO_TEST_CHROMEDRIVER to other binaries)";

/// `target/<profile>/` (the test binary is `target/<profile>/deps/e2e-…`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(2)
        .expect("the profile directory")
        .to_path_buf()
}

/// `target/` of the workspace.
fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the target directory")
        .to_path_buf()
}

fn binary(env: &str, default: &str) -> String {
    let path = std::env::var(env).unwrap_or_else(|_| default.to_owned());
    assert!(
        Path::new(&path).is_file(),
        "{path} is missing ({env}): {INSTALL}"
    );
    path
}

/// A chromedriver child process on a free port; killed on drop.
struct Chromedriver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Chromedriver {
    fn start() -> Chromedriver {
        let program = binary("HERO_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = free_port();
        let logs = profile_dir().join("e2e-logs");
        std::fs::create_dir_all(&logs).expect("log dir");
        let log = logs.join(format!(
            "chromedriver-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::from(file.try_clone().expect("log file")))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}; {INSTALL}"));
        let mut driver = Chromedriver { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!(
                    "{program} exited ({status}) before listening: {}\n{INSTALL}",
                    std::fs::read_to_string(&driver.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{program} did not listen on port {port} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A headless Chromium session with a fresh profile.
async fn browser(driver: &Chromedriver, profile: &Path) -> Client {
    let chromium = binary("HERO_TEST_CHROMIUM", "/usr/bin/chromium");
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,1500",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "no browser session through chromedriver: {e}\nchromedriver log {}:\n{}\n{INSTALL}",
                driver.log.display(),
                std::fs::read_to_string(&driver.log).unwrap_or_default()
            )
        })
}

/// Runs `script` in the page every 50 ms until it returns something truthy (not null, false,
/// 0 or ""), and returns that; fails after `secs`.
async fn until(client: &Client, secs: u64, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match client.execute(script, Vec::new()).await {
            Ok(v)
                if !matches!(&v, Value::Null | Value::Bool(false))
                    && v != json!(0)
                    && v != json!("") =>
            {
                return v;
            }
            Ok(v) => v,
            Err(e) => json!(e.to_string()),
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what} (last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(client: &Client, script: &str) -> Value {
    client
        .execute(script, Vec::new())
        .await
        .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let dir = target_dir().join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = dir.join(name);
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
    path
}

/// A headless Chromium session and its chromedriver, closed by [`Browser::finish`].
struct Browser {
    client: Client,
    driver: Chromedriver,
    profile: PathBuf,
}

impl Browser {
    async fn open() -> Browser {
        let driver = Chromedriver::start();
        let profile = std::env::temp_dir().join(format!("hero-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).expect("profile dir");
        let client = browser(&driver, &profile).await;
        Browser {
            client,
            driver,
            profile,
        }
    }

    /// Runs `scenario`, then closes the browser whatever happened (a failure leaves
    /// `web-failure.png`), and fails as the scenario did.
    async fn run(self, scenario: impl std::future::Future<Output = ()>) {
        let outcome = AssertUnwindSafe(scenario).catch_unwind().await;
        if outcome.is_err() {
            let _ = AssertUnwindSafe(screenshot(&self.client, "web-failure.png"))
                .catch_unwind()
                .await;
        }
        let _ = self.client.clone().close().await;
        drop(self.driver);
        let _ = std::fs::remove_dir_all(&self.profile);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// The binaries are checked first: a machine without them fails at once, saying what to install.
fn require_browser() {
    binary("HERO_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    binary("HERO_TEST_CHROMIUM", "/usr/bin/chromium");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_watches_a_battle_live_and_the_operator_sees_the_nodes_on_sqlite() {
    require_browser();
    let db = TestDb::new(Backend::Sqlite).await;
    let agg = Aggregator::start(
        &db,
        &AggregatorOptions {
            extra: vec!["--local-nodes".into(), "3".into()],
            ..AggregatorOptions::default()
        },
    );
    agg.wait_online(3).await;
    let browser = Browser::open().await;
    let client = browser.client.clone();
    browser.run(journey(&client, &agg)).await;
}

on_both_databases!(votes_appear_one_by_one_as_slow_nodes_answer);

/// Three nodes that take their time: 0.6 s, 1.5 s and 2.5 s.
async fn slow_network(agg: &Aggregator) -> [TestNode; 3] {
    let nodes = [
        TestNode::start(&agg.url(), "quick", Behavior::Honest { delay_ms: 600 }).await,
        TestNode::start(&agg.url(), "steady", Behavior::Honest { delay_ms: 1500 }).await,
        TestNode::start(&agg.url(), "slow", Behavior::Honest { delay_ms: 2500 }).await,
    ];
    agg.wait_online(3).await;
    nodes
}

/// With slow nodes, the page shows each node asked before it answers, then the votes one by
/// one, then the verdict (after the second vote: a strict majority of 3), as the live events
/// bring them. Someone else is watching too (a WebSocket on the ladder's battles).
async fn votes_appear_one_by_one_as_slow_nodes_answer(backend: Backend) {
    require_browser();
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _nodes = slow_network(&agg).await;
    let url = format!("{}/api/v1/ws", agg.url().replacen("http://", "ws://", 1));
    let (mut other_viewer, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("a WebSocket");
    other_viewer
        .send(tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "subscribe", "topic": "ladder"})
                .to_string()
                .into(),
        ))
        .await
        .expect("subscribe");
    let browser = Browser::open().await;
    let client = browser.client.clone();
    let name = format!("{backend:?}").to_lowercase();
    browser.run(slow_votes(&client, &agg, &name)).await;
    drop(other_viewer);
}

/// The same, with the page the only one watching: the battle is created, then the page opens
/// its stream, and every node's vote must still arrive live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_viewer_sees_the_votes_live_on_sqlite() {
    require_browser();
    let db = TestDb::new(Backend::Sqlite).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let _nodes = slow_network(&agg).await;
    let browser = Browser::open().await;
    let client = browser.client.clone();
    browser.run(slow_votes(&client, &agg, "alone")).await;
}

/// Opens the page and signs in as a guest with one hero; returns the hero's id.
async fn guest_with_a_hero(client: &Client, agg: &Aggregator) -> String {
    client.goto(&agg.url()).await.expect("open the page");
    until(
        client,
        15,
        "the page's script",
        "return document.body.dataset.ready === 'true';",
    )
    .await;
    client
        .find(Locator::Id("guest-btn"))
        .await
        .expect("guest button")
        .click()
        .await
        .expect("click");
    until(
        client,
        15,
        "the profile",
        "return /^\\d+$/.test(document.getElementById('profile-gold').textContent);",
    )
    .await;
    client
        .find(Locator::Id("summon-prompt"))
        .await
        .expect("prompt")
        .send_keys("a storm knight with a silver blade")
        .await
        .expect("type");
    client
        .find(Locator::Id("summon-btn"))
        .await
        .expect("summon button")
        .click()
        .await
        .expect("click");
    let id = until(
        client,
        15,
        "the summoned hero",
        "const li = document.querySelector('[data-testid=character]'); return li && li.dataset.id;",
    )
    .await;
    id.as_str().expect("id").to_owned()
}

/// Clicks the hero's Fight button; returns the battle's id once the live view shows it.
async fn fight(client: &Client, hero_id: &str) -> String {
    let button = client
        .find(Locator::Css(&format!(
            "[data-testid=character][data-id='{hero_id}'] [data-testid=fight-btn]"
        )))
        .await
        .expect("fight button");
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&button).expect("element")],
        )
        .await
        .expect("scroll");
    let before = run(
        client,
        "return document.getElementById('battle').dataset.battleId || '';",
    )
    .await;
    button.click().await.expect("click");
    let id = until(
        client,
        15,
        "the battle to start",
        &format!(
            "const b = document.getElementById('battle'); \
             return !b.hidden && b.dataset.battleId !== {before} && b.dataset.battleId;"
        ),
    )
    .await;
    id.as_str().expect("battle id").to_owned()
}

async fn slow_votes(client: &Client, agg: &Aggregator, name: &str) {
    let hero_id = guest_with_a_hero(client, agg).await;
    let rival = Player::guest(agg).await;
    rival.summon("a fire monk").await;
    // Every change of the battle view, recorded by the page itself: what the seats and the
    // verdict showed at each moment.
    run(
        client,
        "window.__seen = []; \
         const record = () => { \
         const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         window.__seen.push({ \
         seats: seats.length, \
         pending: seats.filter(s => s.dataset.vote === 'pending').length, \
         valid: seats.filter(s => s.dataset.vote === 'valid').length, \
         verdict: !document.getElementById('battle-verdict').hidden, \
         }); \
         }; \
         new MutationObserver(record).observe(document.getElementById('battle'), \
         { subtree: true, childList: true, attributes: true }); \
         return true;",
    )
    .await;
    let battle_id = fight(client, &hero_id).await;
    // Mid-battle: a vote in, the others still pending, no verdict yet.
    let voting = until(
        client,
        20,
        "a first vote or the verdict",
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         const valid = seats.filter(s => s.dataset.vote === 'valid').length; \
         const verdict = !document.getElementById('battle-verdict').hidden; \
         return (valid > 0 || verdict) && (verdict ? 'verdict' : 'voting');",
    )
    .await;
    if voting == "voting" {
        // Past the vote's fade-in, for the picture.
        tokio::time::sleep(Duration::from_millis(300)).await;
        run(
            client,
            "document.getElementById('battle').scrollIntoView({block: 'start'});",
        )
        .await;
        screenshot(client, &format!("web-battle-voting-{name}.png")).await;
    }
    until(
        client,
        30,
        "the replay to end",
        "return document.getElementById('battle').dataset.state === 'done';",
    )
    .await;
    agg.settled(&battle_id, 30).await;
    // The third vote comes after the verdict (two agreeing votes of three settle it).
    let battle = agg.with_votes(&battle_id, 3, 15).await;
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    until(
        client,
        15,
        "the three votes",
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         return seats.length === 3 && seats.every(s => s.dataset.vote === 'valid');",
    )
    .await;
    let shown = run(
        client,
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         return { \
         voted: seats.map(s => s.dataset.votedWinner), \
         winner_id: document.getElementById('battle-verdict').dataset.winnerId, \
         transport: document.getElementById('battle').dataset.transport, \
         events: document.getElementById('battle').dataset.events, \
         seen: window.__seen, \
         };",
    )
    .await;
    assert_eq!(shown["winner_id"], battle["winner_id"], "{shown}");
    assert!(
        shown["voted"]
            .as_array()
            .is_some_and(|v| v.iter().all(|w| *w == battle["winner_id"])),
        "once the verdict is out, every vote names its fighter: {shown}"
    );
    assert_eq!(shown["transport"], "sse", "{shown}");
    // What the stream brought, in order: a vote before the verdict, or it was not live.
    let events: Vec<&str> = shown["events"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .collect();
    let first_vote = events.iter().position(|e| *e == "vote");
    let verdict = events.iter().position(|e| *e == "verdict");
    assert!(
        first_vote.is_some() && first_vote < verdict,
        "no vote reached the page before the verdict; the stream brought {events:?} (a battle's \
         events are published only when someone listened as it was claimed)"
    );
    let seen = shown["seen"].as_array().expect("recorded views");
    assert!(
        seen.iter()
            .any(|v| v["valid"].as_u64() > Some(0) && v["verdict"] == false),
        "a vote showed before the verdict: {shown}"
    );
    // Nodes chosen after the page subscribed show as asked before they answer (those chosen
    // before are not in the snapshot, which holds votes only).
    if events.contains(&"node_selected") {
        assert!(
            seen.iter()
                .any(|v| v["pending"].as_u64() > Some(0) && v["verdict"] == false),
            "the nodes showed as asked before they voted: {shown}"
        );
    }
    screenshot(client, &format!("web-battle-voted-{name}.png")).await;
}

async fn journey(client: &Client, agg: &Aggregator) {
    // Play as guest (the token is kept in localStorage), summon.
    let hero_id = guest_with_a_hero(client, agg).await;
    assert_eq!(client.title().await.expect("title"), "AI Hero Battle");
    let gold = run(
        client,
        "return document.getElementById('profile-gold').textContent;",
    )
    .await;
    assert_eq!(gold, "1000", "the starting gold");
    let stored = run(client, "return localStorage.getItem('hero.session');").await;
    assert!(
        stored.as_str().is_some_and(|s| s.contains("access_token")),
        "the token is kept in localStorage: {stored}"
    );
    // The hero is listed with its portrait, drawn by the server.
    let portrait = until(
        client,
        15,
        "the portrait to load",
        "const img = document.querySelector('[data-testid=character] img.portrait'); \
         return img && img.complete && img.naturalWidth > 0 && img.getAttribute('src');",
    )
    .await;
    assert_eq!(
        portrait,
        format!("/api/v1/characters/{hero_id}/portrait.svg")
    );

    // A rival for the matchmaker, over HTTP.
    let rival = Player::guest(agg).await;
    let foe = rival.summon("a fire monk").await;
    let foe_name = foe["name"].as_str().expect("name").to_owned();

    // Fight: the live view shows the nodes' votes and the verdict.
    let battle_id = fight(client, &hero_id).await;
    // Mid-battle: while the log is being replayed, round by round.
    let state = until(
        client,
        30,
        "the verdict and a few rounds",
        "const s = document.getElementById('battle').dataset.state; \
         const shown = document.querySelectorAll('[data-testid=log-entry]').length; \
         return ((s === 'replaying' && shown >= 3) || s === 'done') && s;",
    )
    .await;
    if state == "replaying" {
        run(
            client,
            "document.getElementById('battle').scrollIntoView({block: 'start'});",
        )
        .await;
        screenshot(client, "web-battle-live.png").await;
    } else {
        eprintln!("the replay ended before the mid-battle screenshot");
    }
    until(
        client,
        30,
        "the replay to end",
        "return document.getElementById('battle').dataset.state === 'done';",
    )
    .await;

    agg.settled(&battle_id, 30).await;
    // A vote that came after the verdict is recorded a moment later; the page looks again.
    let battle = agg.with_votes(&battle_id, 3, 15).await;
    until(
        client,
        15,
        "the three votes",
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         return seats.length === 3 && seats.every(s => s.dataset.vote === 'valid');",
    )
    .await;
    assert_eq!(battle["status"], "COMPLETED", "{battle}");
    assert_eq!(battle["settled_by"], "quorum", "{battle}");
    let winner_id = battle["winner_id"].as_str().expect("winner").to_owned();
    let winner_name = battle["fighters"]
        .as_array()
        .expect("fighters")
        .iter()
        .find(|f| f["id"] == winner_id.as_str())
        .and_then(|f| f["name"].as_str())
        .expect("the winner is a fighter")
        .to_owned();
    let shown = run(
        client,
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         const verdict = document.getElementById('battle-verdict'); \
         return { \
           seats: seats.length, \
           valid: seats.filter(s => s.dataset.vote === 'valid').length, \
           agreeing: seats.filter(s => s.dataset.agrees === 'true').length, \
           voted: seats.map(s => s.dataset.votedWinner), \
           winner_id: verdict.dataset.winnerId, \
           settled_by: verdict.dataset.settledBy, \
           winner: document.getElementById('verdict-winner').textContent, \
           fighters: Array.from(document.querySelectorAll('[data-testid=fighter] strong')).map(e => e.textContent), \
           log: document.querySelectorAll('[data-testid=log-entry]').length, \
           transport: document.getElementById('battle').dataset.transport, \
         };",
    )
    .await;
    assert_eq!(shown["seats"], 3, "three nodes voted: {shown}");
    assert_eq!(shown["valid"], 3, "three valid votes: {shown}");
    assert_eq!(shown["agreeing"], 3, "all agree with the verdict: {shown}");
    assert!(
        shown["voted"]
            .as_array()
            .is_some_and(|v| v.iter().all(|w| w == winner_id.as_str())),
        "each vote names the winner: {shown}"
    );
    assert_eq!(shown["winner_id"], winner_id.as_str(), "{shown}");
    assert_eq!(shown["winner"], winner_name.as_str(), "{shown}");
    assert_eq!(shown["settled_by"], "quorum", "{shown}");
    assert!(
        shown["fighters"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == foe_name.as_str())),
        "the rival fights: {shown}"
    );
    assert_eq!(
        shown["log"],
        battle["battle_log"].as_array().map_or(0, Vec::len),
        "every log entry is replayed: {shown}"
    );
    // The page watched over the live stream (it polls only where the stream is not served).
    assert_eq!(shown["transport"], "sse", "{shown}");
    // The profile followed the verdict: 10 energy spent, the attacker's reward paid.
    until(
        client,
        15,
        "the profile after the battle",
        "return document.getElementById('profile-energy').textContent.startsWith('90/');",
    )
    .await;
    screenshot(client, "web-battle-done.png").await;

    // Where the event stream is not served (404), the page reads the battle every 500 ms: the
    // same view, by polling. (The page's EventSource is pointed at a path that answers 404.)
    run(
        client,
        "const Real = window.EventSource; \
         window.EventSource = function (url) { return new Real(url.replace(/\\/events$/, '/no-such-events')); }; \
         window.EventSource.CLOSED = Real.CLOSED; \
         return true;",
    )
    .await;
    let polled_id = fight(client, &hero_id).await;
    assert_ne!(polled_id, battle_id);
    until(
        client,
        30,
        "the polled battle's replay to end",
        "return document.getElementById('battle').dataset.state === 'done';",
    )
    .await;
    agg.settled(&polled_id, 30).await;
    let polled = agg.with_votes(&polled_id, 3, 15).await;
    until(
        client,
        15,
        "the polled battle's three votes",
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         return seats.length === 3 && seats.every(s => s.dataset.vote === 'valid');",
    )
    .await;
    let shown = run(
        client,
        "const seats = Array.from(document.querySelectorAll('[data-testid=node-seat]')); \
         const b = document.getElementById('battle'); \
         return { \
           transport: b.dataset.transport, \
           events: b.dataset.events || null, \
           valid: seats.filter(s => s.dataset.vote === 'valid').length, \
           winner_id: document.getElementById('battle-verdict').dataset.winnerId, \
           log: document.querySelectorAll('[data-testid=log-entry]').length, \
         };",
    )
    .await;
    assert_eq!(shown["transport"], "poll", "{shown}");
    assert_eq!(shown["events"], Value::Null, "no event arrived: {shown}");
    assert_eq!(shown["valid"], 3, "{shown}");
    assert_eq!(shown["winner_id"], polled["winner_id"], "{shown}");
    assert_eq!(
        shown["log"],
        polled["battle_log"].as_array().map_or(0, Vec::len),
        "{shown}"
    );

    // Operator view: the three local nodes, and the battle with its votes.
    client
        .find(Locator::Id("tab-operate"))
        .await
        .expect("operate tab")
        .click()
        .await
        .expect("click");
    let nodes = until(
        client,
        20,
        "the three nodes online",
        "const rows = Array.from(document.querySelectorAll('[data-testid=ops-node]')); \
         return rows.length === 3 && rows.every(r => r.dataset.status === 'online') \
           && rows.map(r => r.querySelector('[data-testid=ops-node-name]').textContent);",
    )
    .await;
    assert_eq!(
        nodes,
        json!(["local-node-1", "local-node-2", "local-node-3"])
    );
    let votes = until(
        client,
        20,
        "the battle in the recent list",
        &format!(
            "const li = document.querySelector('[data-testid=ops-battle][data-id=\"{battle_id}\"]'); \
             return li && li.querySelectorAll('[data-testid=ops-vote]').length;"
        ),
    )
    .await;
    assert_eq!(votes, 3);
    let facts = run(
        client,
        "return { \
           health: document.querySelector('[data-testid=health-status]').textContent, \
           online: document.querySelector('[data-testid=health-online]').textContent, \
           fallback: document.querySelector('[data-testid=fallback-rate]').textContent, \
           models: document.querySelectorAll('[data-testid=ops-agreement-row]').length, \
         };",
    )
    .await;
    assert_eq!(facts["health"], "ok", "{facts}");
    assert_eq!(facts["online"], "3 of 3", "{facts}");
    assert_eq!(facts["fallback"], "0%", "{facts}");
    assert_eq!(facts["models"], 1, "one backend (sim): {facts}");
    screenshot(client, "web-operate.png").await;
}
