//! Operator commands of the real binaries: `hero-aggregator migrate`, and settings refused
//! at start with a reason.

use hero_tests::{Backend, TestDb, on_both_databases, run_to_exit};

on_both_databases!(migrate_creates_the_schema_and_is_repeatable);

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
    for table in ["nodes", "battles", "battle_votes", "players", "characters"] {
        let n = db
            .scalar_i64(&format!("SELECT COUNT(*) FROM {table} WHERE $1 = $1"), "x")
            .await;
        assert_eq!(n, 0, "{table} exists and is empty");
    }
}

#[test]
fn impossible_settings_are_refused_with_a_reason() {
    let cases: [(&[&str], &str); 3] = [
        (&["--quorum-size", "4"], "--quorum-size must be odd"),
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
