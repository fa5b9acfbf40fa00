//! What a server's process gets from this one: the default variables (identity, proxies,
//! certificate bundles, locale), `pass_env` names and prefixes, nothing else unless the
//! environment is inherited; what it did not get is named (never its value) when it dies
//! starting; a missing working directory is the directory's fault. Each test checks nothing
//! is left behind. The variables set here are this test binary's own.

mod common;

use common::{fake, Clean};
use mcp_pool::{Error, Pool, ServerConfig};
use serde_json::json;

fn env_of(pool: &Pool, name: &str) -> String {
    let result = pool
        .call_tool("fake", "env", json!({ "name": name }))
        .unwrap();
    assert!(!result.is_error, "{}", result.text());
    result.text()
}

fn pool_of(config: ServerConfig) -> Pool {
    Pool::builder().server(config).build().unwrap()
}

#[test]
fn proxies_certificates_and_locale_pass_by_default_and_nothing_else() {
    let _clean = Clean::new();
    let passed = [
        ("HTTPS_PROXY", "http://proxy.invalid:3128"),
        ("no_proxy", "localhost"),
        ("SSL_CERT_FILE", "/etc/ssl/test-bundle.pem"),
        ("NODE_EXTRA_CA_CERTS", "/etc/ssl/test-extra.pem"),
        ("REQUESTS_CA_BUNDLE", "/etc/ssl/test-requests.pem"),
        ("LC_MCP_POOL_TEST", "C.UTF-8"),
    ];
    for (k, v) in passed {
        std::env::set_var(k, v);
    }
    std::env::set_var("MCP_POOL_ENV_SECRET", "s3cret");
    let pool = pool_of(fake(&[]).env("MCP_POOL_ENV_OWN", "own"));
    for (k, v) in passed {
        assert_eq!(env_of(&pool, k), v, "{k}");
    }
    assert_eq!(env_of(&pool, "MCP_POOL_ENV_OWN"), "own");
    assert_eq!(env_of(&pool, "MCP_POOL_ENV_SECRET"), "<unset>");
    pool.close();
}

#[test]
fn pass_env_adds_names_and_prefixes() {
    let _clean = Clean::new();
    std::env::set_var("MCP_POOL_PASS_NAMED", "named");
    std::env::set_var("npm_config_mcp_pool_registry", "https://registry.invalid/");
    std::env::set_var("MCP_POOL_PASS_OTHER", "other");
    let config = fake(&[])
        .pass_env(["MCP_POOL_PASS_NAMED"])
        .pass_env(["npm_config_*"])
        .env("MCP_POOL_PASS_NAMED", "configured wins");
    let pool = pool_of(config);
    assert_eq!(env_of(&pool, "MCP_POOL_PASS_NAMED"), "configured wins");
    assert_eq!(
        env_of(&pool, "npm_config_mcp_pool_registry"),
        "https://registry.invalid/"
    );
    assert_eq!(env_of(&pool, "MCP_POOL_PASS_OTHER"), "<unset>");
    pool.close();

    // An entry that is neither a name nor a prefix is refused at build.
    for bad in ["A=B", "*", "NPM*X*", ""] {
        let e = Pool::builder()
            .server(fake(&[]).pass_env([bad]))
            .build()
            .unwrap_err();
        assert!(
            matches!(&e, Error::Config(m) if m.starts_with("server `fake`: pass_env: ")),
            "{bad}: {e}"
        );
    }
}

#[test]
fn a_server_dying_at_start_names_the_variables_it_did_not_get() {
    let _clean = Clean::new();
    // Sorted first among the names the error lists (proxy-like names come first).
    std::env::set_var("AAAA_MCP_POOL_TEST_PROXY", "proxy-secret-value");
    let pool = pool_of(fake(&["--exit-during-handshake", "4"]));
    let e = pool.call_tool("fake", "echo", json!({})).unwrap_err();
    let Error::Handshake { reason, .. } = &e else {
        panic!("expected a handshake error, got {e:?}");
    };
    assert!(reason.starts_with("server exited with code 4"), "{reason}");
    assert!(
        reason.contains("it did not get these variables of this process: AAAA_MCP_POOL_TEST_PROXY"),
        "{reason}"
    );
    assert!(reason.contains("passEnv"), "{reason}");
    assert!(!e.to_string().contains("proxy-secret-value"), "{e}");
    pool.close();

    // Passed, it is not named; with the whole environment inherited, nothing is.
    let pool = pool_of(fake(&["--exit-during-handshake", "4"]).pass_env(["AAAA_MCP_POOL_*"]));
    let e = pool.call_tool("fake", "echo", json!({})).unwrap_err();
    assert!(!e.to_string().contains("AAAA_MCP_POOL_TEST_PROXY"), "{e}");
    pool.close();
    let pool = pool_of(fake(&["--exit-during-handshake", "4"]).inherit_env(true));
    let e = pool.call_tool("fake", "echo", json!({})).unwrap_err();
    assert!(!e.to_string().contains("did not get"), "{e}");
    pool.close();
}

#[test]
fn a_missing_working_directory_is_named_not_the_command() {
    let _clean = Clean::new();
    let missing = std::env::temp_dir().join(format!("mcp-pool-no-such-dir-{}", std::process::id()));
    let pool = pool_of(fake(&[]).cwd(&missing));
    let e = pool.call_tool("fake", "echo", json!({})).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid configuration: server `fake`: its working directory `{}` (`cwd`) does not exist",
            missing.display()
        )
    );
    pool.close();
    let file = common::temp_path("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let pool = pool_of(fake(&[]).cwd(&file));
    let e = pool.call_tool("fake", "echo", json!({})).unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.ends_with("(`cwd`) is not a directory")),
        "{e}"
    );
    pool.close();
    let _ = std::fs::remove_file(&file);
}
