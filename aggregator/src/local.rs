//! `--local-nodes N`: Sim nodes started in this process that register over real HTTP, so
//! one command runs a whole network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hero_node::NodeConfig;

use crate::supervisor::{Stage, Supervisor};

/// Starts one node per local operator token on free loopback ports, registered with the
/// aggregator at `aggregator`; they deregister first at shutdown.
pub async fn start_nodes(
    tokens: &[String],
    aggregator: SocketAddr,
    keys: &Path,
    supervisor: &Supervisor,
) -> anyhow::Result<()> {
    for (i, token) in tokens.iter().enumerate().map(|(i, t)| (i + 1, t)) {
        let config = NodeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            name: Some(format!("local-node-{i}")),
            operator: Some(crate::nodes::operators::local_name(i)),
            enrollment_token: Some(token.clone()),
            aggregator_url: Some(format!("http://{aggregator}")),
            // The Sim engine answers in microseconds: let a local node take many battles at once.
            max_concurrent_requests: 64,
            // The same key on every start: the node keeps its identity (one row, its history).
            key_file: Some(keys.join(format!("local-node-{i}.key"))),
            ..NodeConfig::default()
        };
        let app = hero_node::Application::build(config, Arc::new(hero_engine::Sim)).await?;
        let token = supervisor.stop_token(Stage::LocalNodes);
        supervisor.spawn(Stage::LocalNodes, async move {
            if let Err(e) = app.run_until_stopped(token).await {
                tracing::error!(error = format!("{e:#}"), "local node failed");
            }
        });
    }
    Ok(())
}

/// Where the local nodes keep their keys: beside a SQLite database file, or under `data/`
/// named after the (PostgreSQL) database, so each database has its own local nodes.
pub fn key_dir(database_url: &str) -> PathBuf {
    match crate::db::sqlite_path(database_url).and_then(|file| Path::new(file).parent()) {
        Some(dir) => dir.join("local-nodes"),
        None => {
            let digest = crate::auth::secrets::hash_secret(database_url);
            PathBuf::from("data").join(format!("local-nodes-{}", &digest[..12]))
        }
    }
}

/// Tells a new user how to try the network.
pub fn print_walkthrough(addr: SocketAddr, admin_token: &str) {
    println!(
        r#"
Local network: aggregator on http://{addr} with in-process Sim nodes (they register over HTTP).
Admin token for this run: {admin_token}

Create a battle:
  curl -s -X POST http://{addr}/api/v1/admin/battles \
    -H 'Authorization: Bearer {admin_token}' -H 'Content-Type: application/json' \
    -d '{{"fighters":[{{"id":"c1","name":"Aria","strength":60,"agility":40,"luck":30,"rarity":3,"skill_description":"Storm blade"}},{{"id":"c2","name":"Borin","strength":45,"agility":55,"luck":35,"rarity":2,"skill_description":"Shield bash"}}]}}'
Then read it (status, winner, settled_by, log, every vote):
  curl -s http://{addr}/api/v1/battles/<battle_id>
Nodes and health:
  curl -s http://{addr}/api/nodes
  curl -s http://{addr}/api/health
"#
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_beside_the_database() {
        assert_eq!(
            key_dir("sqlite://data/hero.db"),
            PathBuf::from("data/local-nodes")
        );
        assert_eq!(
            key_dir("sqlite:/tmp/x/h.db?mode=rwc"),
            PathBuf::from("/tmp/x/local-nodes")
        );
        let a = key_dir("postgres://postgres@127.0.0.1/a");
        let b = key_dir("postgres://postgres@127.0.0.1/b");
        assert!(a.starts_with("data") && a != b);
    }
}
