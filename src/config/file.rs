//! Loading servers and pool settings from a JSON file in the shape MCP clients already use:
//! `mcpServers` (Claude Desktop, Cursor, ...) or VS Code's `servers`.
//!
//! ```json
//! {
//!   "pool": {"maxSessions": 2, "idleTimeoutSecs": 120, "maxChildren": 8},
//!   "mcpServers": {
//!     "files": {
//!       "command": "npx",
//!       "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}/notes"],
//!       "env": {"LOG_LEVEL": "info"},
//!       "pool": {"maxSessions": 4, "requestTimeoutSecs": 20}
//!     },
//!     "docs": {
//!       "type": "http",
//!       "url": "https://mcp.example.com/mcp",
//!       "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}
//!     }
//!   }
//! }
//! ```
//!
//! A server is started as a `command`, or reached at a `url` (`type` `http` or
//! `streamable-http`: Streamable HTTP, falling back to HTTP+SSE; `sse`: HTTP+SSE only; no
//! `type` with a `url` and no `command`: as `http`). `${VAR}` and `${env:VAR}` expand from
//! this process's environment in `command`, `args`, `env` values, `cwd`, `url` and
//! `headers` values. Comments and trailing commas (VS Code's JSONC) are accepted. Unknown
//! keys and servers of an unknown `type` become warnings; anything malformed is an
//! [`Error::Config`] naming the server and the key.

use std::path::Path;

use serde_json::{Map, Value};

use super::http::HttpTransport;
use super::keys::{self, PoolKeys, Whole};
use super::settings::{PoolSettings, ServerConfig};
use super::text::{expand, strip_jsonc};
use crate::error::Error;
use crate::pool::{Pool, PoolBuilder};

impl PoolBuilder {
    /// Parses an `mcpServers` (Claude Desktop, Cursor) or VS Code `servers` JSON text into a
    /// builder holding its servers and pool settings.
    ///
    /// Each server entry takes `command`, `args`, `env`, `cwd`, `disabled` and `pool`, or, for
    /// a remote server, `url`, `headers`, `disabled` and `pool`; `type` is `stdio`, `http`,
    /// `streamable-http` or `sse` (another is skipped with a warning).
    /// An optional top-level `pool` object gives settings for every server, which a server's
    /// own `pool` object overrides key by key. Settings are read here and checked by
    /// [`build`](Self::build).
    ///
    /// Warnings (unknown keys, skipped servers) are logged with `log::warn!` and kept in
    /// [`warnings`](Self::warnings).
    ///
    /// ```
    /// use mcp_pool::PoolBuilder;
    ///
    /// let builder = PoolBuilder::from_json(r#"{
    ///     "pool": {"maxSessions": 2, "idleTimeoutSecs": 90},
    ///     "mcpServers": {
    ///         "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
    ///         "search": {"command": "search-mcp", "pool": {"maxSessions": 4, "retry": "never"}},
    ///         "remote": {"url": "https://example.com/mcp"},
    ///         "socket": {"type": "websocket", "url": "wss://example.com/mcp"}
    ///     }
    /// }"#)?;
    /// assert_eq!(builder.warnings().len(), 1); // `socket` is skipped
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn from_json(text: &str) -> Result<PoolBuilder, Error> {
        load(text, None)
    }

    /// Reads and parses a configuration file (see [`from_json`](Self::from_json)). Errors
    /// name the path.
    ///
    /// ```no_run
    /// use mcp_pool::PoolBuilder;
    ///
    /// let pool = PoolBuilder::from_file("mcp.json")?.max_children(16).build()?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<PoolBuilder, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read `{}`: {e}", path.display())))?;
        load(&text, Some(path)).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("`{}`: {m}", path.display())),
            other => other,
        })
    }

    /// Warnings produced while loading a configuration: unknown keys, skipped servers,
    /// settings in the wrong place. Each was also logged with `log::warn!`. Empty for a
    /// builder not made from a configuration.
    ///
    /// ```
    /// use mcp_pool::PoolBuilder;
    ///
    /// let builder = PoolBuilder::from_json(r#"{"mcpServers": {"a": {"command": "a", "color": "red"}}}"#)?;
    /// assert_eq!(builder.warnings(), ["unknown key `color` in server `a`"]);
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

impl Pool {
    /// Builds a pool from a configuration file: `PoolBuilder::from_file(path)?.build()`.
    ///
    /// ```no_run
    /// use mcp_pool::Pool;
    /// use serde_json::json;
    ///
    /// let pool = Pool::from_config_file("claude_desktop_config.json")?;
    /// let result = pool.call_tool("files", "list_directory", json!({"path": "/tmp"}))?;
    /// println!("{}", result.text());
    /// pool.close();
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Pool, Error> {
        PoolBuilder::from_file(path)?.build()
    }
}

/// Parses, collects warnings, and logs them (prefixed with the file when there is one).
fn load(text: &str, origin: Option<&Path>) -> Result<PoolBuilder, Error> {
    let text = strip_jsonc(text.strip_prefix('\u{feff}').unwrap_or(text));
    let root: Value =
        serde_json::from_str(&text).map_err(|e| Error::Config(format!("not valid JSON: {e}")))?;
    let mut warnings = Vec::new();
    let mut builder = parse_root(&root, &mut warnings)?;
    for w in &warnings {
        match origin {
            Some(path) => log::warn!("{}: {w}", path.display()),
            None => log::warn!("{w}"),
        }
    }
    builder.warnings = warnings;
    Ok(builder)
}

fn config_error(server: Option<&str>, what: impl std::fmt::Display) -> Error {
    match server {
        Some(name) => Error::Config(format!("server `{name}`: {what}")),
        None => Error::Config(what.to_string()),
    }
}

fn parse_root(root: &Value, warnings: &mut Vec<String>) -> Result<PoolBuilder, Error> {
    let Some(root) = root.as_object() else {
        return Err(config_error(
            None,
            "the configuration must be a JSON object",
        ));
    };
    let (key, servers) = match (root.get("mcpServers"), root.get("servers")) {
        (Some(_), Some(_)) => {
            return Err(config_error(
                None,
                "both `mcpServers` and `servers` are present; use one",
            ))
        }
        (Some(s), None) => ("mcpServers", s),
        (None, Some(s)) => ("servers", s),
        (None, None) => {
            return Err(config_error(
                None,
                "no `mcpServers` (or VS Code `servers`) object",
            ))
        }
    };
    let Some(servers) = servers.as_object() else {
        return Err(config_error(None, format!("`{key}` must be an object")));
    };
    for name in root.keys() {
        match name.as_str() {
            "mcpServers" | "servers" | "pool" => {}
            "inputs" if key == "servers" => {}
            other => warnings.push(format!("unknown key `{other}` at the top level")),
        }
    }

    let top = match root.get("pool") {
        None | Some(Value::Null) => PoolKeys::default(),
        Some(v) => parse_pool(v, None, warnings)?,
    };
    let mut builder = PoolBuilder::default();
    let mut whole = Whole::default();
    let mut defaults = PoolSettings::default();
    top.apply(&mut defaults, &mut ServerConfig::new("-", "-"), &mut whole);
    builder = builder.defaults(defaults);
    if let Some(n) = whole.max_children {
        builder = builder.max_children(n);
    }
    if let Some(eager) = whole.warm_eagerly {
        builder = builder.warm_eagerly(eager);
    }

    let mut added = 0;
    for (name, entry) in servers {
        if let Some((mut config, keys)) = parse_server(name, entry, key, warnings)? {
            let mut settings = PoolSettings::default();
            top.overlay(&keys)
                .apply(&mut settings, &mut config, &mut Whole::default());
            builder = builder.server_with(config, settings);
            added += 1;
        }
    }
    if added == 0 {
        return Err(config_error(
            None,
            if servers.is_empty() {
                format!("`{key}` has no servers")
            } else {
                format!(
                    "no servers to start: all {} in `{key}` are disabled or of an unsupported type",
                    servers.len()
                )
            },
        ));
    }
    Ok(builder)
}

/// One server entry; `None` when it is disabled or remote.
fn parse_server(
    name: &str,
    entry: &Value,
    section: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<(ServerConfig, PoolKeys)>, Error> {
    if name.is_empty() {
        return Err(config_error(
            None,
            format!("a server name in `{section}` is empty"),
        ));
    }
    let server = Some(name);
    let bad = |key: &str, what: &str| config_error(server, format!("`{key}` {what}"));
    let unexpanded = |key: &str, why: String| config_error(server, format!("`{key}`: {why}"));
    let Some(entry) = entry.as_object() else {
        return Err(config_error(server, "the entry must be an object"));
    };
    match present(entry, "disabled") {
        None => {}
        Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            log::debug!("server `{name}` is disabled; skipped");
            return Ok(None);
        }
        Some(_) => return Err(bad("disabled", "must be true or false")),
    }
    let kind = match present(entry, "type") {
        None => None,
        Some(Value::String(t)) => Some(t.as_str()),
        Some(_) => return Err(bad("type", "must be a string")),
    };
    let http = match kind {
        Some("stdio") => false,
        Some("http" | "streamable-http" | "streamableHttp" | "sse") => true,
        Some(other) => {
            warnings.push(format!(
                "server `{name}` skipped: type `{other}` is not supported (`stdio`, `http`, \
                 `streamable-http` or `sse`)"
            ));
            return Ok(None);
        }
        None => present(entry, "command").is_none() && present(entry, "url").is_some(),
    };
    if http {
        return parse_http_server(name, entry, kind, warnings).map(Some);
    }
    let command = match present(entry, "command") {
        None => return Err(bad("command", "is missing")),
        Some(Value::String(c)) => expand(c).map_err(|e| unexpanded("command", e))?,
        Some(_) => return Err(bad("command", "must be a string")),
    };
    if command.trim().is_empty() {
        return Err(bad("command", "is empty"));
    }
    let mut config = ServerConfig::new(name, command);

    if let Some(args) = present(entry, "args") {
        let Some(args) = args.as_array().filter(|a| a.iter().all(Value::is_string)) else {
            return Err(bad("args", "must be an array of strings"));
        };
        let mut expanded = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().filter_map(Value::as_str).enumerate() {
            expanded.push(expand(arg).map_err(|e| unexpanded(&format!("args[{i}]"), e))?);
        }
        config = config.args(expanded);
    }
    if let Some(env) = present(entry, "env") {
        let Some(env) = env.as_object() else {
            return Err(bad("env", "must be an object of strings"));
        };
        for (k, v) in env {
            let key = format!("env.{k}");
            let Some(v) = v.as_str() else {
                return Err(bad(&key, "must be a string"));
            };
            let v = expand(v).map_err(|e| unexpanded(&key, e))?;
            config = config.env(k.as_str(), v);
        }
    }
    if let Some(cwd) = present(entry, "cwd") {
        let Some(cwd) = cwd.as_str() else {
            return Err(bad("cwd", "must be a string"));
        };
        config = config.cwd(expand(cwd).map_err(|e| unexpanded("cwd", e))?);
    }
    let keys = match present(entry, "pool") {
        None => PoolKeys::default(),
        Some(v) => parse_pool(v, server, warnings)?,
    };
    for key in entry.keys() {
        match key.as_str() {
            "command" | "args" | "env" | "cwd" | "disabled" | "pool" | "type" => {}
            "url" | "headers" => warnings.push(format!(
                "`{key}` in server `{name}` is ignored: the server has a `command`"
            )),
            other => warnings.push(format!("unknown key `{other}` in server `{name}`")),
        }
    }
    Ok(Some((config, keys)))
}

/// A remote server entry: `url`, `type` (`http`, `streamable-http`, `sse`), `headers` (each
/// value with `${VAR}` expanded, kept secret), `pool`.
fn parse_http_server(
    name: &str,
    entry: &Map<String, Value>,
    kind: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<(ServerConfig, PoolKeys), Error> {
    let server = Some(name);
    let bad = |key: &str, what: &str| config_error(server, format!("`{key}` {what}"));
    let unexpanded = |key: &str, why: String| config_error(server, format!("`{key}`: {why}"));
    let url = match present(entry, "url") {
        None => return Err(bad("url", "is missing (a remote server needs its URL)")),
        Some(Value::String(u)) => expand(u).map_err(|e| unexpanded("url", e))?,
        Some(_) => return Err(bad("url", "must be a string")),
    };
    let mut config = ServerConfig::http(name, url);
    if kind == Some("sse") {
        config = config.http_transport(HttpTransport::Sse);
    }
    if let Some(headers) = present(entry, "headers") {
        let Some(headers) = headers.as_object() else {
            return Err(bad("headers", "must be an object of strings"));
        };
        for (k, v) in headers {
            let key = format!("headers.{k}");
            let Some(v) = v.as_str() else {
                return Err(bad(&key, "must be a string"));
            };
            let v = expand(v).map_err(|e| unexpanded(&key, e))?;
            config = config.header(k.as_str(), v);
        }
    }
    let keys = match present(entry, "pool") {
        None => PoolKeys::default(),
        Some(v) => parse_pool(v, server, warnings)?,
    };
    for key in entry.keys() {
        match key.as_str() {
            "url" | "headers" | "type" | "disabled" | "pool" => {}
            "command" | "args" | "env" | "cwd" => warnings.push(format!(
                "`{key}` in server `{name}` is ignored: the server is reached over HTTP"
            )),
            other => warnings.push(format!("unknown key `{other}` in server `{name}`")),
        }
    }
    Ok((config, keys))
}

/// A key's value, treating `null` as absent.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A `pool` object: the top-level one (`server` is `None`) or a server's.
fn parse_pool(
    value: &Value,
    server: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<PoolKeys, Error> {
    let Some(map) = value.as_object() else {
        return Err(config_error(server, "`pool` must be an object"));
    };
    keys::parse(map, server, warnings).map_err(|what| config_error(server, what))
}
