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
    let passed = |k: &str| {
        k.contains("PROXY")
            || k.contains("proxy")
            || k.starts_with("LC_")
            || [
                "HOME",
                "LOGNAME",
                "PATH",
                "SHELL",
                "TERM",
                "USER",
                "LANG",
                "LANGUAGE",
                "SSL_CERT_FILE",
                "SSL_CERT_DIR",
                "NODE_EXTRA_CA_CERTS",
                "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE",
            ]
            .contains(&k)
    };
    let Some((name, value)) = std::env::vars()
        .find(|(k, v)| !passed(k) && !k.is_empty() && !v.is_empty() && !k.starts_with("RUST"))
    else {
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
    // A whole-pool value is checked as the file is read.
    let e =
        config_error(json!({"pool": {"maxChildren": 0}, "mcpServers": {"k": {"command": "c"}}}));
    assert_eq!(e, "`pool.maxChildren` must be at least 1");
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
fn pool_builder_from_file_and_pool_from_file() {
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
    let pool = Pool::from_file(&file.0).unwrap();
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
            "invalid configuration: `{}`: cannot read it: ",
            path.display()
        )),
        "{m}"
    );
    let e = Pool::from_file(&path).unwrap_err();
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn builders_not_from_a_file_have_no_warnings() {
    assert!(Pool::builder().warnings().is_empty());
}

/// A directory under the temp directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("mcp-pool-config-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn message(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn one_bad_entry_leaves_out_only_its_server() {
    let b = load(json!({"servers": {
        "good": fake_entry(),
        "gh": {"command": FAKE, "env": {"TOKEN": format!("${{{UNSET}}}")}},
        "vs": {"command": FAKE, "args": ["--token", "${input:token}"]},
        "typo": {"command": FAKE, "args": "--verbose"},
        "ws": {"type": "websocket", "url": "wss://example.com/mcp"},
        "off": {"command": FAKE, "disabled": true, "env": {"A": format!("${{{UNSET}}}")}},
    }}))
    .unwrap();
    let gh = format!("server `gh` skipped: `env.TOKEN`: environment variable `{UNSET}` is not set");
    let vs = "server `vs` skipped: `args[1]`: unsupported variable `${input:token}` (only `${VAR}` and `${env:VAR}`)";
    let warnings = [
        gh.as_str(),
        "server `typo` skipped: `args` must be an array of strings",
        vs,
        "server `ws` skipped: type `websocket` is not supported (`stdio`, `http`, `streamable-http` or `sse`)",
    ];
    // A disabled entry is left out without a warning (its variables are never expanded).
    assert_eq!(b.warnings(), warnings);
    let pool = b.build().unwrap();
    assert_eq!(pool.servers(), ["good"]);
    assert_eq!(pool.config_warnings(), warnings, "the pool keeps them");
    let skipped: Vec<(&str, bool)> = pool
        .skipped_servers()
        .iter()
        .map(|s| (s.name.as_str(), s.disabled))
        .collect();
    assert_eq!(
        skipped,
        [
            ("gh", false),
            ("off", true),
            ("typo", false),
            ("vs", false),
            ("ws", false)
        ]
    );
    // The others work.
    assert_eq!(
        text(&pool, "good", "echo", json!({"text": "still"})),
        "still"
    );
    // A call to a left-out server says which, why, and (for a variable) which variable.
    let call = |server: &str| pool.call_tool(server, "echo", json!({})).unwrap_err();
    assert_eq!(message(call("gh")), gh);
    assert_eq!(message(call("vs")), vs);
    assert_eq!(
        message(call("off")),
        "server `off`: disabled in the configuration (`\"disabled\": true`)"
    );
    assert!(message(call("ws")).contains("type `websocket` is not supported"));
    assert!(matches!(pool.list_tools("gh"), Err(Error::Config(_))));
    assert!(matches!(pool.session("vs"), Err(Error::Config(_))));
    assert!(matches!(call("nosuch"), Error::UnknownServer(_)));
    pool.close();
}

#[test]
fn a_file_none_of_whose_servers_can_be_used_is_an_error() {
    let e = config_error(json!({"mcpServers": {
        "a": {"command": format!("${{{UNSET}}}")},
        "b": {"args": []},
        "c": {"command": "c", "disabled": true},
    }}));
    assert_eq!(
        e,
        format!(
            "server `a`: `command`: environment variable `{UNSET}` is not set (and 1 more \
             servers cannot be used)"
        )
    );
    let e = config_error(json!({"mcpServers": {"c": {"command": "c", "disabled": true}}}));
    assert_eq!(e, "no servers to start: all 1 in `mcpServers` are disabled");
}

#[test]
fn messages_about_a_file_name_it() {
    let dir = TempDir::new("named");
    let path = dir.write(
        "mcp.json",
        &json!({
            "theme": "dark",
            "mcpServers": {
                "x": {"command": FAKE, "pool": {"maxSessions": 0}},
                "gh": {"command": FAKE, "env": {"T": format!("${{{UNSET}}}")}},
            }
        })
        .to_string(),
    );
    let at = format!("`{}`: ", path.display());
    let b = PoolBuilder::from_file(&path).unwrap();
    // Warnings,
    assert_eq!(
        b.warnings(),
        [
            format!("{at}unknown key `theme` at the top level"),
            format!("{at}server `gh` skipped: `env.T`: environment variable `{UNSET}` is not set"),
        ]
    );
    // what build() checks,
    assert_eq!(
        b.build().unwrap_err().to_string(),
        format!("invalid configuration: {at}server `x`: max sessions must be at least 1")
    );
    // and the errors of calls to a skipped server.
    let path = dir.write(
        "ok.json",
        &json!({"mcpServers": {
            "x": fake_entry(),
            "gh": {"command": FAKE, "env": {"T": format!("${{{UNSET}}}")}},
        }})
        .to_string(),
    );
    let pool = Pool::from_file(&path).unwrap();
    let e = pool.call_tool("gh", "echo", json!({})).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid configuration: `{}`: server `gh` skipped: `env.T`: environment variable \
             `{UNSET}` is not set",
            path.display()
        )
    );
    pool.close();
}

#[cfg(unix)]
#[test]
fn relative_paths_resolve_against_the_files_directory() {
    let dir = TempDir::new("relative");
    std::fs::create_dir_all(dir.0.join("conf/bin")).unwrap();
    std::fs::create_dir_all(dir.0.join("conf/work")).unwrap();
    std::os::unix::fs::symlink(FAKE, dir.0.join("conf/bin/fake")).unwrap();
    let path = dir.write(
        "conf/mcp.json",
        &json!({"mcpServers": {
            "s": {"command": "./bin/fake", "cwd": "work", "pool": {"closeGraceSecs": 0.5}},
            "t": {"command": "t", "args": ["./data.json", "../up", "plain/rel", "--opt=./x", "."]},
        }})
        .to_string(),
    );
    let b = PoolBuilder::from_file(&path).unwrap();
    let conf = std::path::absolute(dir.0.join("conf")).unwrap();
    let debug = format!("{b:?}");
    let shown = |p: PathBuf| format!("{:?}", p.display().to_string());
    assert!(debug.contains(&shown(conf.join("bin/fake"))), "{debug}");
    // Only arguments that start with `./` or `../` are paths to resolve.
    let args = format!(
        "{:?}",
        [
            conf.join("data.json").display().to_string(),
            conf.join("../up").display().to_string(),
            "plain/rel".into(),
            "--opt=./x".into(),
            ".".into()
        ]
    );
    assert!(debug.contains(&args), "{debug}");
    // The server starts (the relative command was found) in the resolved `cwd`.
    let pool = b.build().unwrap();
    let cwd = PathBuf::from(text(&pool, "s", "cwd", json!({})));
    assert_eq!(
        cwd.canonicalize().unwrap(),
        conf.join("work").canonicalize().unwrap()
    );
    pool.close();

    // VS Code's `.vscode/mcp.json` belongs to the workspace folder above it.
    let path = dir.write(
        "ws/.vscode/mcp.json",
        &json!({"servers": {"s": {"command": FAKE, "cwd": ".", "pool": {"closeGraceSecs": 0.5}}}})
            .to_string(),
    );
    let pool = Pool::from_file(&path).unwrap();
    let cwd = PathBuf::from(text(&pool, "s", "cwd", json!({})));
    assert_eq!(
        cwd.canonicalize().unwrap(),
        dir.0.join("ws").canonicalize().unwrap()
    );
    pool.close();

    // Text without a file leaves them as they are.
    let b =
        load(json!({"mcpServers": {"s": {"command": "./bin/fake", "args": ["./a"], "cwd": "w"}}}))
            .unwrap();
    let debug = format!("{b:?}");
    assert!(
        debug.contains("\"./bin/fake\"") && debug.contains("[\"./a\"]"),
        "{debug}"
    );
}

#[test]
fn the_shipped_example_config_resolves_from_any_directory() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let b = PoolBuilder::from_file(manifest.join("examples/mcp.json")).unwrap();
    assert!(b.warnings().is_empty(), "{:?}", b.warnings());
    let script = manifest.join(
        "examples/../target/interop/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    // An absolute path, whatever the current directory is.
    let debug = format!("{b:?}");
    assert!(
        debug.contains(&format!("{:?}", script.display().to_string())),
        "{debug}"
    );
    let pool = b.build().unwrap();
    assert_eq!(pool.servers(), ["everything", "everything-local"]);
    pool.close();
}

#[test]
fn pass_env_in_a_file_passes_names_and_prefixes() {
    std::env::set_var("MCP_POOL_CFG_PASS_TOP", "top");
    std::env::set_var("MCP_POOL_CFG_PFX_ONE", "one");
    std::env::set_var("MCP_POOL_CFG_OWN", "own");
    std::env::set_var("MCP_POOL_CFG_KEPT", "kept");
    let mut entry = fake_entry();
    entry["passEnv"] = json!(["MCP_POOL_CFG_PFX_*"]);
    entry["pool"]["passEnv"] = json!(["MCP_POOL_CFG_OWN"]);
    let pool = load(json!({
        "pool": {"passEnv": ["MCP_POOL_CFG_PASS_TOP"]},
        "mcpServers": {"a": entry, "b": fake_entry()}
    }))
    .unwrap()
    .build()
    .unwrap();
    let env = |server: &str, name: &str| text(&pool, server, "env", json!({ "name": name }));
    assert_eq!(env("a", "MCP_POOL_CFG_PASS_TOP"), "top");
    assert_eq!(env("a", "MCP_POOL_CFG_PFX_ONE"), "one");
    assert_eq!(env("a", "MCP_POOL_CFG_OWN"), "own");
    assert_eq!(env("a", "MCP_POOL_CFG_KEPT"), "<unset>");
    // The top level's is every server's; an entry's only its own.
    assert_eq!(env("b", "MCP_POOL_CFG_PASS_TOP"), "top");
    assert_eq!(env("b", "MCP_POOL_CFG_PFX_ONE"), "<unset>");
    pool.close();

    // A bad list leaves its server out, saying why.
    let b = load(json!({"mcpServers": {
        "ok": {"command": "c"},
        "star": {"command": "c", "passEnv": ["*"]},
        "eq": {"command": "c", "passEnv": ["A=B"]},
        "str": {"command": "c", "passEnv": "HTTPS_PROXY"},
    }}))
    .unwrap();
    assert_eq!(
        b.warnings(),
        [
            "server `eq` skipped: `passEnv` `A=B` is neither a variable name nor a prefix ending in `*`",
            "server `star` skipped: `passEnv` `*` names nothing (to pass everything, inherit the whole environment)",
            "server `str` skipped: `passEnv` must be an array of strings",
        ]
    );
    let e = config_error(json!({"pool": {"passEnv": [1]}, "mcpServers": {"x": {"command": "c"}}}));
    assert_eq!(e, "`pool.passEnv` must be an array of strings");
}

#[test]
fn overrides_win_over_the_file() {
    let mut entry = fake_entry();
    entry["pool"]["requestTimeoutSecs"] = json!(60);
    let file = TempFile::new(
        "overrides",
        &json!({"pool": {"requestTimeoutSecs": 60}, "mcpServers": {"fake": entry}}).to_string(),
    );
    let pool = PoolBuilder::from_file_with(&file.0, &json!({"requestTimeoutSecs": 0.3}))
        .unwrap()
        .build()
        .unwrap();
    let start = std::time::Instant::now();
    let e = pool.call_tool("fake", "hang", json!({})).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    pool.close();
    let e = PoolBuilder::from_file_with(&file.0, &json!({"requestTimeoutSec": 1})).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("requestTimeoutSec")),
        "{e}"
    );
    // `null` overrides nothing.
    PoolBuilder::from_file_with(&file.0, &Value::Null)
        .unwrap()
        .build()
        .unwrap()
        .close();
}
