//! Loading pools from `mcpServers` / VS Code `servers` configuration files.

use std::path::PathBuf;

use mcp_pool::{Error, Pool, PoolBuilder};
use serde_json::{json, Value};

const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");

/// A variable this process surely does not have.
const UNSET: &str = "MCP_POOL_CONFIG_TEST_SURELY_UNSET";

fn load(config: Value) -> Result<PoolBuilder, Error> {
    PoolBuilder::from_json(&config.to_string())
}

fn config_error(config: Value) -> String {
    match load(config) {
        Err(Error::Config(m)) => m,
        Err(e) => panic!("expected a config error, got {e:?}"),
        Ok(b) => panic!("expected a config error, got {b:?}"),
    }
}

/// A fake server entry that exits quickly on close.
fn fake_entry() -> Value {
    json!({"command": FAKE, "pool": {"closeGraceSecs": 0.5}})
}

fn text(pool: &Pool, server: &str, tool: &str, args: Value) -> String {
    let result = pool.call_tool(server, tool, args).unwrap();
    assert!(!result.is_error, "{}", result.text());
    result.text()
}

/// A file under the temp directory that is removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "mcp-pool-config-{}-{name}.json",
            std::process::id()
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn claude_desktop_shape() {
    let builder = PoolBuilder::from_json(
        r#"{
          "mcpServers": {
            "files": {
              "command": "npx",
              "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
              "env": {"LOG_LEVEL": "info"},
              "cwd": "/tmp"
            },
            "search": {"command": "search-mcp", "disabled": false}
          }
        }"#,
    )
    .unwrap();
    assert!(builder.warnings().is_empty(), "{:?}", builder.warnings());
    let pool = builder.build().unwrap();
    assert_eq!(pool.servers(), ["files", "search"]);
    assert_eq!(pool.live_children(), 0, "servers start on first use");
    pool.close();
}

#[test]
fn vs_code_shape_with_inputs_and_comments() {
    let builder = PoolBuilder::from_json(
        r#"{
          // VS Code writes JSONC.
          "inputs": [{"type": "promptString", "id": "token", "description": "API token"}],
          "servers": {
            "files": {"type": "stdio", "command": "npx", "args": ["-y", "server-filesystem"],},
            /* a remote one */
            "remote": {"type": "http", "url": "https://example.com/mcp", "headers": {"a": "b"}}
          }
        }"#,
    )
    .unwrap();
    assert!(builder.warnings().is_empty(), "{:?}", builder.warnings());
    let pool = builder.build().unwrap();
    assert_eq!(pool.servers(), ["files", "remote"]);
    pool.close();
}

#[test]
fn inputs_are_only_silent_in_vs_code_files() {
    let b = load(json!({"inputs": [], "mcpServers": {"a": {"command": "a"}}})).unwrap();
    assert_eq!(b.warnings(), ["unknown key `inputs` at the top level"]);
}

#[test]
fn one_of_mcp_servers_or_servers() {
    let e = config_error(json!({"mcpServers": {}, "servers": {}}));
    assert!(e.contains("both `mcpServers` and `servers`"), "{e}");
    let e = config_error(json!({"pool": {}}));
    assert!(e.contains("no `mcpServers`"), "{e}");
    let e = config_error(json!({"mcpServers": {}}));
    assert_eq!(e, "`mcpServers` has no servers");
    let e = config_error(json!({"mcpServers": []}));
    assert_eq!(e, "`mcpServers` must be an object");
    let e = config_error(json!([1]));
    assert_eq!(e, "the configuration must be a JSON object");
}

#[test]
fn disabled_servers_are_skipped_and_remote_ones_kept() {
    let b = load(json!({"mcpServers": {
        "on": {"command": "on"},
        "off": {"command": "off", "disabled": true},
        "off2": {"disabled": true},
        "sse": {"type": "sse", "url": "https://x/sse"},
        "url": {"url": "https://x/mcp"},
        "ws": {"type": "websocket", "url": "wss://x/mcp"}
    }}))
    .unwrap();
    assert_eq!(
        b.warnings(),
        ["server `ws` skipped: type `websocket` is not supported (`stdio`, `http`, `streamable-http` or `sse`)"]
    );
    let pool = b.build().unwrap();
    assert_eq!(pool.servers(), ["on", "sse", "url"]);
    pool.close();
}

#[test]
fn remote_entries_take_a_url_headers_with_variables_and_pool_keys() {
    std::env::set_var("MCP_POOL_TEST_TOKEN", "s3cret-token");
    let b = load(json!({"mcpServers": {
        "docs": {
            "type": "http",
            "url": "https://mcp.example.com/mcp",
            "headers": {"Authorization": "Bearer ${MCP_POOL_TEST_TOKEN}", "X-Team": "search"},
            "args": ["ignored"],
            "pool": {"maxSessions": 3}
        }
    }}))
    .unwrap();
    assert_eq!(
        b.warnings(),
        ["`args` in server `docs` is ignored: the server is reached over HTTP"]
    );
    let shown = format!("{b:?}");
    assert!(
        !shown.contains("s3cret-token"),
        "a header value shows: {shown}"
    );
    let pool = b.build().unwrap();
    assert_eq!(pool.servers(), ["docs"]);
    assert_eq!(pool.stats().server("docs").unwrap().transport, "http");
    pool.close();
    let e = config_error(json!({"mcpServers": {"r": {"type": "http"}}}));
    assert!(e.contains("`url` is missing"), "{e}");
    let build_error = |config: Value| match load(config).unwrap().build() {
        Err(Error::Config(m)) => m,
        other => panic!("expected a config error, got {other:?}"),
    };
    let e = build_error(json!({"mcpServers": {"r": {"url": "ftp://x/"}}}));
    assert!(e.contains("http:// or https://"), "{e}");
    let e = config_error(json!({"mcpServers": {"r": {"url": "https://x/", "headers": {"a": 1}}}}));
    assert!(e.contains("`headers.a` must be a string"), "{e}");
    let e = build_error(
        json!({"mcpServers": {"r": {"url": "https://x/", "headers": {"Mcp-Session-Id": "x"}}}}),
    );
    assert!(e.contains("set by the MCP transport"), "{e}");
}

#[test]
fn env_values_expand_from_the_environment_in_both_syntaxes() {
    let path = std::env::var("PATH").expect("PATH is set");
    let mut entry = fake_entry();
    entry["env"] = json!({
        "PLAIN": "${PATH}",
        "PREFIXED": "<${env:PATH}>",
        "LITERAL": "$PATH $$ ${env:PATH}x",
    });
    let pool = load(json!({"mcpServers": {"fake": entry}}))
        .unwrap()
        .build()
        .unwrap();
    let env = |name: &str| text(&pool, "fake", "env", json!({"name": name}));
    assert_eq!(env("PLAIN"), path);
    assert_eq!(env("PREFIXED"), format!("<{path}>"));
    assert_eq!(env("LITERAL"), format!("$PATH $$ {path}x"));
    pool.close();
}

#[test]
fn command_args_and_cwd_expand_too() {
    let path = std::env::var("PATH").unwrap();
    let b = load(json!({"mcpServers": {"s": {
        "command": "run-${env:PATH}",
        "args": ["a", "${PATH}", "$1"],
        "cwd": "/x/${PATH}"
    }}}))
    .unwrap();
    // The builder's debug output shows the command, arguments and directory.
    let debug = format!("{b:?}");
    assert!(
        debug.contains(&format!("{:?}", format!("run-{path}"))),
        "{debug}"
    );
    assert!(
        debug.contains(&format!("{:?}", ["a", path.as_str(), "$1"])),
        "{debug}"
    );
    assert!(
        debug.contains(&format!("{:?}", format!("/x/{path}"))),
        "{debug}"
    );
}

#[test]
fn an_unset_variable_names_server_key_and_variable() {
    let v = format!("${{{UNSET}}}");
    let cases = [
        (json!({"command": v}), "`command`"),
        (json!({"command": "x", "args": ["a", "b", v]}), "`args[2]`"),
        (json!({"command": "x", "env": {"TOKEN": v}}), "`env.TOKEN`"),
        (
            json!({"command": "x", "cwd": format!("/a/${{env:{UNSET}}}")}),
            "`cwd`",
        ),
    ];
    for (entry, key) in cases {
        let e = load(json!({"mcpServers": {"files": entry}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "invalid configuration: server `files`: {key}: environment variable `{UNSET}` is not set"
            )
        );
    }
    let e = config_error(json!({"mcpServers": {"files": {"command": "x", "args": ["${HOME"]}}}));
    assert!(
        e.starts_with("server `files`: `args[0]`: unclosed `${`"),
        "{e}"
    );
    let e = config_error(json!({"servers": {"s": {"command": "x", "env": {"T": "${input:tok}"}}}}));
    assert!(
        e.starts_with("server `s`: `env.T`: unsupported variable `${input:tok}`"),
        "{e}"
    );
}

#[test]
fn unknown_keys_are_warnings_naming_where() {
    let b = load(json!({
        "theme": "dark",
        "pool": {"maxSesions": 2, "maxChildren": 4},
        "mcpServers": {"x": {
            "command": "x",
            "autoApprove": [],
            "pool": {"idle": 3, "maxChildren": 2, "warmEagerly": true}
        }}
    }))
    .unwrap();
    assert_eq!(
        b.warnings(),
        [
            "unknown key `theme` at the top level",
            "unknown key `maxSesions` in the top-level `pool`",
            "unknown key `idle` in the `pool` of server `x`",
            "`maxChildren` in the `pool` of server `x` is ignored: it applies to the whole pool (set it in the top-level `pool`)",
            "`warmEagerly` in the `pool` of server `x` is ignored: it applies to the whole pool (set it in the top-level `pool`)",
            "unknown key `autoApprove` in server `x`",
        ]
    );
    // Warnings do not stop the pool from building.
    b.build().unwrap().close();
}

#[test]
fn every_wrong_type_names_the_server_and_the_key() {
    let cases: Vec<(Value, &str)> = vec![
        (json!("npx"), "server `x`: the entry must be an object"),
        (json!({"args": []}), "server `x`: `command` is missing"),
        (json!({"command": 1}), "server `x`: `command` must be a string"),
        (json!({"command": " "}), "server `x`: `command` is empty"),
        (
            json!({"command": "c", "args": "a b"}),
            "server `x`: `args` must be an array of strings",
        ),
        (
            json!({"command": "c", "args": ["--port", 80]}),
            "server `x`: `args` must be an array of strings",
        ),
        (
            json!({"command": "c", "env": ["A=1"]}),
            "server `x`: `env` must be an object of strings",
        ),
        (
            json!({"command": "c", "env": {"PORT": 80}}),
            "server `x`: `env.PORT` must be a string",
        ),
        (json!({"command": "c", "cwd": 1}), "server `x`: `cwd` must be a string"),
        (
            json!({"command": "c", "disabled": "yes"}),
            "server `x`: `disabled` must be true or false",
        ),
        (json!({"command": "c", "type": 1}), "server `x`: `type` must be a string"),
        (json!({"command": "c", "pool": 4}), "server `x`: `pool` must be an object"),
        (
            json!({"command": "c", "pool": {"maxSessions": -1}}),
            "server `x`: `pool.maxSessions` must be a non-negative integer, not -1",
        ),
        (
            json!({"command": "c", "pool": {"maxInFlight": 1.5}}),
            "server `x`: `pool.maxInFlight` must be a non-negative integer, not 1.5",
        ),
        (
            json!({"command": "c", "pool": {"idleTimeoutSecs": -2.5}}),
            "server `x`: `pool.idleTimeoutSecs` must not be negative, not -2.5",
        ),
        (
            json!({"command": "c", "pool": {"requestTimeoutSecs": "20s"}}),
            "server `x`: `pool.requestTimeoutSecs` must be a number of seconds, not \"20s\"",
        ),
        (
            json!({"command": "c", "pool": {"keepaliveSecs": true}}),
            "server `x`: `pool.keepaliveSecs` must be a number of seconds, not true",
        ),
        (
            json!({"command": "c", "pool": {"retry": "sometimes"}}),
            "server `x`: `pool.retry` must be one of \"never\", \"safe\", \"always\", not \"sometimes\"",
        ),
        (
            json!({"command": "c", "pool": {"generation": "2025"}}),
            "server `x`: `pool.generation` must be one of \"auto\", \"handshake\", \"per-request\", not \"2025\"",
        ),
        (
            json!({"command": "c", "pool": {"direct": "no"}}),
            "server `x`: `pool.direct` must be true or false, not \"no\"",
        ),
        (
            json!({"command": "c", "pool": {"inheritEnv": 1}}),
            "server `x`: `pool.inheritEnv` must be true or false, not 1",
        ),
        (
            json!({"command": "c", "pool": {"failureThreshold": 5000000000u64}}),
            "server `x`: `pool.failureThreshold` must be an integer from 0 to 4294967295",
        ),
        (
            json!({"command": "c", "pool": {"cooldownSecs": 1e300}}),
            "server `x`: `pool.cooldownSecs` must be less than 2^64 seconds, not 1e+300",
        ),
    ];
    for (entry, expected) in cases {
        let e = config_error(json!({"mcpServers": {"x": entry}}));
        assert_eq!(e, expected);
    }
    // The top-level pool names the key alone.
    let e =
        config_error(json!({"pool": {"maxChildren": "8"}, "mcpServers": {"x": {"command": "c"}}}));
    assert_eq!(
        e,
        "`pool.maxChildren` must be a non-negative integer, not \"8\""
    );
    let e =
        config_error(json!({"pool": {"warmEagerly": 1}, "mcpServers": {"x": {"command": "c"}}}));
    assert_eq!(e, "`pool.warmEagerly` must be true or false, not 1");
    let e = config_error(json!({"mcpServers": {"": {"command": "c"}}}));
    assert_eq!(e, "a server name in `mcpServers` is empty");
}

#[test]
fn null_means_absent_except_for_keepalive() {
    let b = load(json!({"mcpServers": {"x": {
        "command": "c", "args": null, "env": null, "cwd": null, "disabled": null, "type": null,
        "pool": {"maxSessions": null, "keepaliveSecs": null}
    }}}))
    .unwrap();
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
    b.build().unwrap().close();
}

#[test]
fn not_json_reports_line_and_column() {
    let e = PoolBuilder::from_json("{\n  \"mcpServers\": {\n    \"x\": {\"command\": \"c\"\n  }\n")
        .unwrap_err();
    let m = e.to_string();
    assert!(
        m.starts_with("invalid configuration: not valid JSON: "),
        "{m}"
    );
    assert!(m.contains("line 5 column 0"), "{m}");
    let m = PoolBuilder::from_json("").unwrap_err().to_string();
    assert!(m.contains("not valid JSON"), "{m}");
    let m = PoolBuilder::from_json("{\"mcpServers\": {} x}")
        .unwrap_err()
        .to_string();
    assert!(m.contains("line 1 column 19"), "{m}");
}

#[test]
fn pool_settings_merge_top_level_then_server() {
    // Top-level `direct: true` applies to `a`; `b` turns it off. Both calls reach the server.
    let mut b_entry = fake_entry();
    b_entry["pool"]["direct"] = json!(false);
    let pool = load(json!({
        "pool": {"direct": true, "maxSessions": 2, "queueTimeoutSecs": 2.5, "keepaliveSecs": 30},
        "mcpServers": {"a": fake_entry(), "b": b_entry}
    }))
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(text(&pool, "a", "echo", json!({"text": "1"})), "1");
    assert_eq!(text(&pool, "b", "echo", json!({"text": "2"})), "2");
    let stats = pool.stats();
    assert_eq!(stats.servers["a"].direct_calls, 1);
    assert_eq!(stats.servers["b"].direct_calls, 0);
    assert_eq!(stats.servers["b"].live_sessions, 1);
    pool.close();
}

#[test]
fn whole_pool_and_session_settings_take_effect() {
    // warmEagerly + minSessions: the session starts inside build().
    let mut entry = fake_entry();
    entry["pool"]["generation"] = json!("handshake");
    entry["pool"]["startTimeoutSecs"] = json!(20);
    let pool = load(json!({
        "pool": {"warmEagerly": true, "minSessions": 1, "maxChildren": 4, "generation": "per-request"},
        "mcpServers": {"fake": entry}
    }))
    .unwrap()
    .build()
    .unwrap();
    // Started by build() itself, exactly the warm minimum.
    assert_eq!(pool.live_children(), 1);
    assert_eq!(pool.stats().total.spawns, 1);
    // The server's `generation` overrides the top-level one.
    let caps: Value = serde_json::from_str(&text(&pool, "fake", "client_caps", json!({}))).unwrap();
    assert_eq!(caps["generation"], "handshake", "{caps}");
    pool.close();
    assert_eq!(pool.live_children(), 0);
}

#[test]
fn inherit_env_passes_the_whole_environment() {
    let allowed = ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];
    let Some((name, value)) = std::env::vars().find(|(k, v)| {
        !allowed.contains(&k.as_str()) && !k.is_empty() && !v.is_empty() && !k.starts_with("RUST")
    }) else {
        return; // nothing beyond the always-passed variables to look for
    };
    let mut inherit = fake_entry();
    inherit["pool"]["inheritEnv"] = json!(true);
    let pool = load(json!({"mcpServers": {"plain": fake_entry(), "inherit": inherit}}))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(text(&pool, "inherit", "env", json!({"name": name})), value);
    assert_eq!(
        text(&pool, "plain", "env", json!({"name": name})),
        "<unset>"
    );
    pool.close();
}

#[test]
fn build_rejects_bad_values_naming_the_server() {
    let e = load(json!({"mcpServers": {"x": {"command": "c", "pool": {"maxSessions": 0}}}}))
        .unwrap()
        .build()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: server `x`: max sessions must be at least 1"
    );
    // Merged from both levels: min 3 from the top, max 2 from the server.
    let e = load(json!({
        "pool": {"minSessions": 3},
        "mcpServers": {"y": {"command": "c", "pool": {"maxSessions": 2}}}
    }))
    .unwrap()
    .build()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration: server `y`: min sessions is more than max sessions"
    );
    let e = load(json!({"mcpServers": {"z": {"command": "c", "pool": {"requestTimeoutSecs": 0}}}}))
        .unwrap()
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("server `z`: request timeout"), "{e}");
    let e = load(json!({"pool": {"keepaliveSecs": 0}, "mcpServers": {"k": {"command": "c"}}}))
        .unwrap()
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("server `k`: keepalive"), "{e}");
    let e = load(json!({"pool": {"maxChildren": 0}, "mcpServers": {"k": {"command": "c"}}}))
        .unwrap()
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("max children"), "{e}");
}

#[test]
fn every_documented_key_is_accepted() {
    let all = json!({
        "maxSessions": 3, "minSessions": 0, "maxInFlight": 8, "queueTimeoutSecs": 1.5,
        "idleTimeoutSecs": 60, "maxLifetimeSecs": 600, "lifetimeJitterSecs": 0.25,
        "keepaliveSecs": 15, "retry": "always", "failureThreshold": 2, "cooldownSecs": 5,
        "backoffBaseSecs": 0.05, "backoffMaxSecs": 2, "direct": false,
        "requestTimeoutSecs": 10, "maxRequestTimeoutSecs": 100, "startTimeoutSecs": 5,
        "discoverTimeoutSecs": 0.5, "closeGraceSecs": 0.5, "maxMessageBytes": 1048576,
        "generation": "auto", "inheritEnv": false
    });
    let mut top = all.clone();
    top["maxChildren"] = json!(8);
    top["warmEagerly"] = json!(false);
    let b = load(json!({"pool": top, "mcpServers": {"x": {"command": "c", "pool": all}}})).unwrap();
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
    b.build().unwrap().close();
}

#[test]
fn from_file_and_from_config_file() {
    let cwd = std::env::temp_dir();
    let file = TempFile::new(
        "ok",
        &json!({"mcpServers": {"fake": {
            "command": FAKE,
            "cwd": cwd,
            "pool": {"closeGraceSecs": 0.5}
        }}})
        .to_string(),
    );
    let pool = Pool::from_config_file(&file.0).unwrap();
    let got = PathBuf::from(text(&pool, "fake", "cwd", json!({})));
    assert_eq!(got.canonicalize().unwrap(), cwd.canonicalize().unwrap());
    pool.close();

    // Errors in a file name the file.
    let bad = TempFile::new("bad", r#"{"mcpServers": {"x": {"command": 1}}}"#);
    let e = PoolBuilder::from_file(&bad.0).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid configuration: `{}`: server `x`: `command` must be a string",
            bad.0.display()
        )
    );
}

#[test]
fn a_missing_file_names_the_path() {
    let path = std::env::temp_dir().join("mcp-pool-config-test-does-not-exist.json");
    let e = PoolBuilder::from_file(&path).unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    let m = e.to_string();
    assert!(
        m.starts_with(&format!(
            "invalid configuration: cannot read `{}`: ",
            path.display()
        )),
        "{m}"
    );
    let e = Pool::from_config_file(&path).unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn builders_not_from_a_file_have_no_warnings() {
    assert!(Pool::builder().warnings().is_empty());
}
