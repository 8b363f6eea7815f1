//! The deployment files name only real settings: every `HERO_*` environment name in
//! `docker/compose.yaml` and `deploy/k8s/` is the `env` of a flag of `hero-aggregator` (any
//! subcommand) or of `hero-node`. A misspelt name would be ignored silently by the binary.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

/// Every environment name the binaries read, subcommands included.
fn flag_env_names() -> BTreeSet<String> {
    fn walk(command: &clap::Command, names: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                names.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, names);
        }
    }
    let mut names = BTreeSet::new();
    walk(&hero_aggregator::cli::Cli::command(), &mut names);
    walk(&hero_node::Cli::command(), &mut names);
    names
}

/// The `HERO_[A-Z0-9_]+` words of a text.
fn hero_names(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("HERO_") {
        let start = i + at;
        let boundary = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let mut end = start + "HERO_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary && end > start + "HERO_".len() {
            found.push(text[start..end].trim_end_matches('_').to_owned());
        }
        i = end;
    }
    found
}

fn deployment_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("docker/compose.yaml")];
    let k8s = root.join("deploy/k8s");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&k8s)
        .unwrap_or_else(|e| panic!("{}: {e}", k8s.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    manifests.sort();
    assert!(!manifests.is_empty(), "no manifests in {}", k8s.display());
    files.extend(manifests);
    files
}

#[test]
fn every_environment_name_in_compose_and_k8s_is_a_real_flag() {
    let known = flag_env_names();
    assert!(known.contains("HERO_DATABASE_URL") && known.contains("HERO_NODE_ENGINE"));
    let mut unknown = Vec::new();
    let mut seen = 0;
    for file in deployment_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for name in hero_names(&text) {
            seen += 1;
            if !known.contains(&name) {
                unknown.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(seen > 10, "only {seen} environment names found");
    assert!(
        unknown.is_empty(),
        "not a flag of hero-aggregator or hero-node: {unknown:#?}"
    );
}

#[test]
fn names_are_read_whole() {
    assert_eq!(
        hero_names("a HERO_LISTEN=1 ${HERO_ADMIN_TOKEN:?x} XHERO_NO $(HERO_NODE_NAME)"),
        ["HERO_LISTEN", "HERO_ADMIN_TOKEN", "HERO_NODE_NAME"]
    );
}
