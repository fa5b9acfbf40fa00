//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, versions 0.1.16
//! and 0.2.0-alpha.12, installed by `.ci/install-conformance`) against
//! `examples/conformance_client.rs`: every non-auth client scenario of both versions, at
//! each protocol version the newer one lists (21 runs with the pinned versions).
//!
//! A run passes when the suite exits 0 for it (no failed or warning check, the client
//! neither timed out nor failed) and, for every scenario but the extension ones, its
//! `checks.json` holds at least one successful check of its own (`wire-schema-valid` not
//! counted), so a client that sends nothing cannot pass.
//!
//! Ignored by a plain `cargo test`; with `-- --include-ignored`, skipped when the suite is
//! not installed, unless `MCP_POOL_CONFORMANCE=require` (CI).
//! The auth scenarios need a full OAuth 2.1 client, which mcp-pool does not have.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

struct Suite {
    label: &'static str,
    script: PathBuf,
}

struct Run {
    label: String,
    script: PathBuf,
    scenario: String,
    spec_version: Option<&'static str>,
    extension: bool,
}

fn install_dir() -> PathBuf {
    std::env::var_os("MCP_POOL_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance"))
}

/// The client binary, built now (`cargo test --test conformance` alone does not build
/// the examples) in this test's own profile, beside this test's directory.
fn client() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", "conformance_client"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(
        status.success(),
        "cannot build examples/conformance_client.rs"
    );
    profile_dir.join("examples").join("conformance_client")
}

/// `name [tags]` lines of `list --client`.
fn scenarios(node: &Path, script: &Path, spec_version: Option<&str>) -> Vec<(String, String)> {
    let mut cmd = Command::new(node);
    cmd.arg(script).args(["list", "--client"]);
    if let Some(v) = spec_version {
        cmd.args(["--spec-version", v]);
    }
    let out = cmd.output().expect("run the suite's list");
    assert!(
        out.status.success(),
        "list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("- ")?;
            let (name, tags) = l.split_once(" [")?;
            Some((name.to_owned(), tags.trim_end_matches(']').to_owned()))
        })
        .filter(|(name, _)| !name.starts_with("auth/"))
        .collect()
}

/// Successful checks of a run (`wire-schema-valid` not counted), from its `checks.json`.
fn own_successes(dir: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|f| f == "checks.json") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let checks: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                n += checks
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|c| c["status"] == "SUCCESS" && c["id"] != "wire-schema-valid")
                    .count();
            }
        }
    }
    n
}

#[test]
#[ignore = "needs the conformance suite: .ci/install-conformance, then cargo test -- --include-ignored"]
fn every_non_auth_client_scenario_of_both_suite_versions_passes() {
    let dir = install_dir();
    let node = dir.join("node_modules/node22/bin/node");
    if !node.exists() {
        let required = std::env::var("MCP_POOL_CONFORMANCE").is_ok_and(|v| v == "require");
        assert!(
            !required,
            "the conformance suite is not installed in {}: run .ci/install-conformance",
            dir.display()
        );
        eprintln!("skipped: the conformance suite is not installed (run .ci/install-conformance)");
        return;
    }
    let client = client();
    assert!(client.exists(), "{} is not built", client.display());
    let suites = [
        Suite {
            label: "0.1",
            script: dir.join("node_modules/conformance-0.1/dist/index.js"),
        },
        Suite {
            label: "0.2",
            script: dir.join("node_modules/conformance-0.2/dist/index.js"),
        },
    ];
    let mut runs = Vec::new();
    for (name, _) in scenarios(&node, &suites[0].script, None) {
        runs.push(Run {
            label: format!("{}/{name}", suites[0].label),
            script: suites[0].script.clone(),
            scenario: name,
            spec_version: None,
            extension: false,
        });
    }
    for version in ["2025-11-25", "2026-07-28"] {
        for (name, _) in scenarios(&node, &suites[1].script, Some(version)) {
            runs.push(Run {
                label: format!("{}@{version}/{name}", suites[1].label),
                script: suites[1].script.clone(),
                scenario: name,
                spec_version: Some(version),
                extension: false,
            });
        }
    }
    for (name, tags) in scenarios(&node, &suites[1].script, None) {
        if tags.split(',').any(|t| t.trim() == "extension") {
            runs.push(Run {
                label: format!("{}@extension/{name}", suites[1].label),
                script: suites[1].script.clone(),
                scenario: name,
                spec_version: None,
                extension: true,
            });
        }
    }
    assert!(runs.len() >= 21, "only {} scenario runs listed", runs.len());
    let only = std::env::var("MCP_POOL_CONFORMANCE_ONLY").ok();
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance-results");
    let _ = std::fs::remove_dir_all(&results);
    let node_dir = node.parent().expect("node's directory");
    let path = format!(
        "{}:{}",
        node_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failed = Vec::new();
    let mut total = 0;
    for run in &runs {
        if only
            .as_ref()
            .is_some_and(|o| !run.label.contains(o.as_str()))
        {
            continue;
        }
        total += 1;
        let out_dir = results.join(run.label.replace('/', "_"));
        let mut cmd = Command::new(&node);
        cmd.arg(&run.script)
            .args(["client", "--command"])
            .arg(&client)
            .args(["--scenario", &run.scenario, "--timeout", "30000", "-o"])
            .arg(&out_dir)
            .env("PATH", &path)
            .env("RUST_LOG", "mcp_pool=debug");
        if let Some(v) = run.spec_version {
            cmd.args(["--spec-version", v]);
        }
        let started = Instant::now();
        let out = cmd.output().expect("run the suite");
        let log = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::create_dir_all(&out_dir).ok();
        std::fs::write(out_dir.join("suite.log"), &log).ok();
        let successes = own_successes(&out_dir);
        let verdict = if !out.status.success() {
            Err("the suite failed it".to_owned())
        } else if successes == 0 && !run.extension {
            Err("no successful check: the client exercised nothing".to_owned())
        } else {
            Ok(())
        };
        let summary: String = log
            .lines()
            .filter(|l| {
                l.contains("Passed:") || l.contains("TIMED OUT") || l.contains("EXITED WITH ERROR")
            })
            .collect::<Vec<_>>()
            .join(" ");
        match &verdict {
            Ok(()) => eprintln!(
                "PASS {:<55} {:>5.1}s {summary}",
                run.label,
                started.elapsed().as_secs_f64()
            ),
            Err(why) => {
                eprintln!(
                    "FAIL {:<55} {:>5.1}s {why}; {summary}\n{}",
                    run.label,
                    started.elapsed().as_secs_f64(),
                    log.lines()
                        .rev()
                        .take(40)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                failed.push(run.label.clone());
            }
        }
    }
    eprintln!(
        "{}/{total} conformance scenarios passed",
        total - failed.len()
    );
    assert!(
        failed.is_empty(),
        "failed: {failed:?} (logs under {})",
        results.display()
    );
}
