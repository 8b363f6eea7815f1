//! The OpenAPI document against the running aggregator. Every route refuses control
//! characters in every path parameter, query parameter and body field with a 4xx in the error
//! shape, never a 500 (on PostgreSQL, which cannot store U+0000); and real answers, successes
//! and errors, conform to the schemas the document gives them (on both databases).

use hero_testkit::{Backend, TestDb, on_both_databases};
use hero_tests::game::Player;
use hero_tests::process::ADMIN_TOKEN;
use hero_tests::schema::Document;
use hero_tests::{Aggregator, AggregatorOptions};
use reqwest::Method;
use serde_json::{Value, json};

on_both_databases!(answers_conform_to_the_document);

async fn document(agg: &Aggregator) -> Document {
    Document(agg.get("/api/openapi.json").await)
}

/// Sends a request; the status and the JSON body (null when there is none).
async fn send(
    agg: &Aggregator,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().request(method.clone(), format!("{}{path}", agg.url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The names of `schema`'s properties (through one `$ref`).
fn property_names(doc: &Document, schema: &Value) -> Vec<String> {
    let schema = match schema["$ref"].as_str() {
        Some(r) => &doc.0["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    };
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn control_characters_are_refused_on_every_route_on_postgres() {
    let db = TestDb::new(Backend::Postgres).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let doc = document(&agg).await;
    let player = Player::guest(&agg).await;
    let mut tried = 0;
    let paths = doc.0["paths"].as_object().expect("paths").clone();
    for (template, item) in &paths {
        for (method, op) in item.as_object().expect("operation") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let token = match op["security"][0].as_object().and_then(|s| s.keys().next()) {
                Some(scheme) if scheme == "bearer" => Some(player.access_token.as_str()),
                Some(_) => Some(ADMIN_TOKEN),
                None => None,
            };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let fill = |bad: &str, which: Option<&str>| {
                let mut path = template.clone();
                for p in params.iter().filter(|p| p["in"] == "path") {
                    let name = p["name"].as_str().unwrap_or_default();
                    let value = if which.is_none_or(|w| w == name) {
                        bad
                    } else {
                        "x"
                    };
                    path = path.replace(&format!("{{{name}}}"), value);
                }
                path
            };
            let mut requests: Vec<(String, Option<Value>)> = Vec::new();
            // Each path parameter, then each query parameter, holding a control character.
            for p in params.iter().filter(|p| p["in"] == "path") {
                for bad in ["%00", "a%01b", "%7F"] {
                    requests.push((fill(bad, p["name"].as_str()), None));
                }
            }
            let base = fill("x", Some(""));
            for p in params.iter().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap_or_default();
                requests.push((format!("{base}?{name}=%00"), None));
                requests.push((format!("{base}?{name}=a%1Fb"), None));
            }
            // A route without parameters still gets a query string with one.
            requests.push((format!("{base}?q=%00"), None));
            // Each body field holding U+0000, the others harmless.
            let body_schema = &op["requestBody"]["content"]["application/json"]["schema"];
            if !body_schema.is_null() {
                let names = property_names(&doc, body_schema);
                for name in &names {
                    let mut body = serde_json::Map::new();
                    for other in &names {
                        let value = if other == name { "bad\u{0}field" } else { "x" };
                        body.insert(other.clone(), json!(value));
                    }
                    requests.push((base.clone(), Some(Value::Object(body))));
                }
                requests.push((base.clone(), Some(json!({ "nested": ["\u{0}"] }))));
            }
            for (path, body) in requests {
                let (status, answer) = send(&agg, &method, &path, token, body.as_ref()).await;
                tried += 1;
                assert!(
                    (400..500).contains(&status),
                    "{method} {path} {body:?} answered {status}: {answer}"
                );
                assert!(
                    answer["error"]["code"].is_string() && answer["error"]["message"].is_string(),
                    "{method} {path} answered {status} without the error shape: {answer}"
                );
            }
        }
    }
    assert!(tried > 100, "only {tried} requests");
    // The database is fine afterwards: nothing half-written, and the API still answers.
    assert_eq!(agg.get("/api/health").await["database"], "ok");
}

/// Calls `method template` (at `path`) and checks the answer against the document.
struct Checker<'a> {
    agg: &'a Aggregator,
    doc: Document,
    checked: usize,
}

impl Checker<'_> {
    async fn call(
        &mut self,
        method: Method,
        template: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, answer) = send(self.agg, &method, path, token, body.as_ref()).await;
        let schema = self
            .doc
            .response_schema(&method.as_str().to_lowercase(), template, status);
        if !schema.is_null() {
            let violations = self.doc.violations(&schema, &answer, "$");
            assert!(
                violations.is_empty(),
                "{method} {path} {status}: {violations:#?}\n{answer:#}"
            );
        }
        self.checked += 1;
        (status, answer)
    }
}

async fn answers_conform_to_the_document(backend: Backend) {
    let db = TestDb::new(backend).await;
    let agg = Aggregator::start(&db, &AggregatorOptions::default());
    let mut c = Checker {
        doc: document(&agg).await,
        agg: &agg,
        checked: 0,
    };
    let (status, login) = c
        .call(
            Method::POST,
            "/api/v1/auth/guest",
            "/api/v1/auth/guest",
            None,
            None,
        )
        .await;
    assert_eq!(status, 201);
    let token = login["access_token"]
        .as_str()
        .or(login["tokens"]["access_token"].as_str())
        .expect("access token")
        .to_owned();
    let me = Some(token.as_str());
    let rival = Player::guest(&agg).await;
    c.call(Method::GET, "/api/health", "/api/health", None, None)
        .await;
    c.call(
        Method::GET,
        "/api/v1/players/me",
        "/api/v1/players/me",
        me,
        None,
    )
    .await;
    let (status, hero) = c
        .call(
            Method::POST,
            "/api/v1/characters",
            "/api/v1/characters",
            me,
            Some(json!({ "prompt": "a storm knight", "power": 2 })),
        )
        .await;
    assert_eq!(status, 201);
    let hero = hero["id"].as_str().expect("id").to_owned();
    let foe = rival.summon("a quiet archer").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    c.call(
        Method::GET,
        "/api/v1/characters",
        "/api/v1/characters?limit=1",
        me,
        None,
    )
    .await;
    let one = format!("/api/v1/characters/{hero}");
    c.call(Method::GET, "/api/v1/characters/{id}", &one, me, None)
        .await;
    let (status, started) = c
        .call(
            Method::POST,
            "/api/v1/battles",
            "/api/v1/battles",
            me,
            Some(json!({ "character_id": hero, "opponent_id": foe })),
        )
        .await;
    assert_eq!(status, 202);
    let battle = started["battle_id"].as_str().expect("battle").to_owned();
    agg.settled(&battle, 30).await;
    c.call(
        Method::GET,
        "/api/v1/battles/{id}",
        &format!("/api/v1/battles/{battle}"),
        None,
        None,
    )
    .await;
    c.call(
        Method::GET,
        "/api/v1/battles/{id}/replay",
        &format!("/api/v1/battles/{battle}/replay"),
        me,
        None,
    )
    .await;
    c.call(
        Method::GET,
        "/api/v1/battles",
        "/api/v1/battles?mine=true",
        me,
        None,
    )
    .await;
    c.call(
        Method::GET,
        "/api/v1/characters/{id}/battles",
        &format!("{one}/battles"),
        me,
        None,
    )
    .await;
    c.call(Method::GET, "/api/v1/quests", "/api/v1/quests", me, None)
        .await;
    for kind in ["characters", "players"] {
        let path = format!("/api/v1/leaderboard?kind={kind}&limit=1");
        c.call(Method::GET, "/api/v1/leaderboard", &path, None, None)
            .await;
    }
    c.call(
        Method::GET,
        "/api/v1/players/me/ledger",
        "/api/v1/players/me/ledger?limit=3",
        me,
        None,
    )
    .await;
    c.call(Method::GET, "/api/nodes", "/api/nodes", None, None)
        .await;
    c.call(
        Method::GET,
        "/api/battles/recent",
        "/api/battles/recent?limit=5",
        None,
        None,
    )
    .await;
    let admin = Some(ADMIN_TOKEN);
    c.call(
        Method::POST,
        "/api/v1/admin/operators",
        "/api/v1/admin/operators",
        admin,
        Some(json!({ "name": "acme" })),
    )
    .await;
    c.call(
        Method::GET,
        "/api/v1/admin/operators",
        "/api/v1/admin/operators",
        admin,
        None,
    )
    .await;
    // Errors have the documented error shape.
    for (method, template, path, token) in [
        (
            Method::GET,
            "/api/v1/characters/{id}",
            "/api/v1/characters/nope",
            me,
        ),
        (
            Method::GET,
            "/api/v1/battles/{id}",
            "/api/v1/battles/nope",
            None,
        ),
        (
            Method::GET,
            "/api/v1/players/me",
            "/api/v1/players/me",
            None,
        ),
        (
            Method::GET,
            "/api/v1/admin/operators",
            "/api/v1/admin/operators",
            me,
        ),
        (
            Method::POST,
            "/api/v1/quests/{id}/claim",
            "/api/v1/quests/nope/claim",
            me,
        ),
        (
            Method::GET,
            "/api/v1/characters/{id}/portrait.svg",
            "/api/v1/characters/nope/portrait.svg",
            None,
        ),
    ] {
        let (status, _) = c.call(method, template, path, token, None).await;
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    assert_eq!(c.checked, 25);
}
