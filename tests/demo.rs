//! The README's first command, `cargo run --release --example demo`, in small: it runs the
//! four modes against its embedded fake server, prints the table, the speed-up and the
//! pool's statistics, and exits 0 leaving nothing behind.

mod common;

use std::process::Command;

#[test]
fn the_demo_runs_every_mode_and_prints_true_statistics() {
    let clean = common::Clean::new();
    let out = Command::new(common::build_example("demo"))
        .args(["--calls", "40", "--threads", "4"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for mode in [
        "spawn per call",
        "pooled, one by one",
        "one batch of 40",
        "4 threads at once",
    ] {
        assert!(
            stdout.contains(&format!("| {mode} |")),
            "no row `{mode}`:\n{stdout}"
        );
    }
    assert!(stdout.contains("pooling is "), "{stdout}");
    let stats_at = stdout.find("pool statistics").expect("a statistics block");
    let block = &stdout[stats_at..];
    let json: serde_json::Value =
        serde_json::Deserializer::from_str(&block[block.find('{').unwrap()..])
            .into_iter()
            .next()
            .expect("a JSON object")
            .unwrap_or_else(|e| panic!("the statistics are JSON ({e}):\n{stdout}"));
    // Spawn per call makes at most 50 calls in 3 s: as many direct calls as its row says.
    let spawned: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("| spawn per call | "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the spawn row's call count");
    assert_eq!(json["direct_calls"], spawned, "{json}");
    // Every call is a direct call, a hit or a miss, and 120 went through the pool.
    let n = |key: &str| json[key].as_u64().unwrap();
    assert_eq!(n("calls"), spawned + n("hits") + n("misses"), "{json}");
    assert!(n("hits") + n("misses") >= 120, "{json}");
    assert_eq!(
        json["errors"].as_object().map_or(0, |e| e.len()),
        0,
        "{json}"
    );
    assert!(stdout.contains("0 child processes left"), "{stdout}");
    clean.check();
}
