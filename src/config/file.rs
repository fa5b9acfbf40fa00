//! Loading servers and pool settings from a JSON file in the shape MCP clients already use:
//! `mcpServers` (Claude Desktop, Cursor, ...) or VS Code's `servers`.
//!
//! ```json
//! {
//!   "pool": {"maxSessions": 2, "idleTimeoutSecs": 120, "maxChildren": 8, "passEnv": ["UV_*"]},
//!   "mcpServers": {
//!     "files": {
//!       "command": "npx",
//!       "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}/notes"],
//!       "env": {"LOG_LEVEL": "info"},
//!       "passEnv": ["npm_config_*"],
//!       "pool": {"maxSessions": 4, "requestTimeoutSecs": 20}
//!     },
//!     "local": {"command": "./venv/bin/python", "args": ["./server.py"]},
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
//! `headers` values. Comments and trailing commas (VS Code's JSONC) are accepted.
//!
//! **One bad entry leaves out only its server.** An entry that cannot be used (a variable
//! that is not set, VS Code's `${input:...}`, a value of the wrong type, a missing
//! `command`, a `type` not supported) is skipped with a warning: the other servers work,
//! and a call to the skipped one fails with an [`Error::Config`] naming the server, the key
//! and what is wrong (for `${VAR}`, the variable). An entry with `"disabled": true` is left
//! out without a warning, and a call to it says it is disabled. Problems of the whole file
//! (not JSON, no `mcpServers`, a bad top-level `pool`), a file none of whose servers can be
//! used, and the values [`build`](PoolBuilder::build) checks (`maxSessions: 0`, ...) are
//! errors. The warnings and the servers left out stay reachable from the builder and from
//! the pool built from it ([`Pool::config_warnings`], [`Pool::skipped_servers`]; the C ABI's
//! `mcp_pool_warnings_json`), and each warning is also logged with `log::warn!`.
//!
//! **Relative paths**, in a file read with [`PoolBuilder::from_file`], resolve against the
//! file's own directory (for a file in a `.vscode` folder, the folder above it: the
//! workspace folder), whatever the working directory of the process that loads it: a
//! `command` that is a relative path (`./venv/bin/python`, `bin/server`; a bare name is
//! looked up on `PATH`), an argument that starts with `./` or `../` (other arguments are
//! left as they are: only the server knows which of them are paths), and a relative `cwd`.
//! That is what a file next to its servers needs. Claude Desktop resolves nothing: it starts
//! servers in its own working directory (`/` on macOS), so relative paths fail there and its
//! documentation asks for absolute ones. VS Code starts a workspace's servers in the
//! workspace folder, so there they mean what they mean here. Text given to
//! [`PoolBuilder::from_json`] has no directory: its relative paths are left as they are.
//! Without `cwd`, a server runs in this process's working directory.
//!
//! **The environment**: a server gets the variables listed on
//! [`ServerConfig::env`](crate::ServerConfig::env) (identity, `PATH`, proxies, certificate
//! bundles, locale), its `env`, and those `passEnv` names (variable names, or prefixes
//! ending in `*`): in a server's entry for that server, in the top-level `pool` for every
//! server. `"inheritEnv": true` in a `pool` object passes everything.
//!
//! Every error and warning about a file begins with its path: `` `mcp.json`: server `x`:
//! `args[2]`: environment variable `TOKEN` is not set ``.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::http::HttpTransport;
use super::keys::{self, PoolKeys, Whole};
use super::settings::{at, located, pass_env_problem, server_error, PoolSettings, ServerConfig};
use super::text::{expand, strip_jsonc};
use crate::error::Error;
use crate::pool::{Pool, PoolBuilder};

/// A server a configuration names that the pool does not have: disabled, or skipped because
/// its entry cannot be used. See [`Pool::skipped_servers`].
///
/// ```
/// use mcp_pool::PoolBuilder;
///
/// let builder = PoolBuilder::from_json(r#"{"mcpServers": {
///     "on": {"command": "server"},
///     "off": {"command": "server", "disabled": true},
///     "gh": {"command": "gh-mcp", "env": {"TOKEN": "${MCP_POOL_DOC_UNSET}"}}
/// }}"#)?;
/// let skipped = builder.skipped_servers(); // sorted by name
/// assert_eq!(skipped[0].reason, "`env.TOKEN`: environment variable `MCP_POOL_DOC_UNSET` is not set");
/// assert_eq!((skipped[1].name.as_str(), skipped[1].disabled), ("off", true));
/// # Ok::<(), mcp_pool::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SkippedServer {
    /// Its name in the configuration.
    pub name: String,
    /// `true` for an entry with `"disabled": true`; `false` for one that cannot be used.
    pub disabled: bool,
    /// Why: what is wrong with the entry, e.g. `` `env.TOKEN`: environment variable
    /// `GITHUB_TOKEN` is not set ``; `disabled` for a disabled one.
    pub reason: String,
    /// What a call to the server returns: an [`Error::Config`] naming the file (if any), the
    /// server and the reason.
    pub error: Error,
}

/// What loading a configuration found besides the servers: its warnings and the servers it
/// left out. Kept by the builder and by the pool built from it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Loaded {
    pub(crate) warnings: Vec<String>,
    pub(crate) skipped: Vec<SkippedServer>,
}

impl Loaded {
    /// The error for a call to `server`, which the pool does not have: why it was left
    /// out, or that it is unknown.
    pub(crate) fn missing(&self, server: &str) -> Error {
        match self.skipped.iter().find(|s| s.name == server) {
            Some(skipped) => skipped.error.clone(),
            None => Error::UnknownServer(server.to_owned()),
        }
    }
}

/// The file a configuration was read from.
struct Source {
    /// As the caller named it, for messages.
    path: Arc<Path>,
    /// The absolute directory relative paths resolve against.
    base: PathBuf,
}

impl Source {
    fn new(path: &Path) -> Source {
        let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let mut base = absolute.parent().map(Path::to_path_buf).unwrap_or_default();
        // VS Code's `.vscode/mcp.json` belongs to the workspace folder above it, where
        // VS Code starts its servers.
        if base.file_name() == Some(OsStr::new(".vscode")) {
            base.pop();
        }
        Source {
            path: Arc::from(path),
            base,
        }
    }

    /// `path` (relative) under the base directory.
    fn rebase(&self, path: &str) -> String {
        let path = path.strip_prefix("./").unwrap_or(path);
        self.base.join(path).to_string_lossy().into_owned()
    }
}

impl PoolBuilder {
    /// Parses an `mcpServers` (Claude Desktop, Cursor) or VS Code `servers` JSON text into a
    /// builder holding its servers and pool settings.
    ///
    /// Each server entry takes `command`, `args`, `env`, `passEnv`, `cwd`, `disabled` and
    /// `pool`, or, for a remote server, `url`, `headers`, `disabled` and `pool`; `type` is
    /// `stdio`, `http`, `streamable-http` or `sse`. An optional top-level `pool` object
    /// gives settings for every server, which a server's own `pool` object overrides key by
    /// key. Settings are read here and checked by [`build`](Self::build). `${VAR}` and
    /// `${env:VAR}` expand from this process's environment in `command`, `args`, `env`
    /// values, `cwd`, `url` and `headers` values; comments and trailing commas (JSONC) are
    /// accepted.
    ///
    /// **One bad entry leaves out only its server.** An entry that cannot be used (a
    /// variable that is not set, VS Code's `${input:...}`, a value of the wrong type, a
    /// missing `command`, a `type` not supported) is skipped with a warning: the other
    /// servers work, and a call to the skipped one fails with an [`Error::Config`] naming
    /// the server, the key and what is wrong (for `${VAR}`, the variable). An entry with
    /// `"disabled": true` is left out without a warning; a call to it says it is disabled.
    /// Problems of the whole text (not JSON, no `mcpServers`, a bad top-level `pool`) and a
    /// text none of whose servers can be used are errors here.
    ///
    /// **The environment.** A server gets the variables listed on [`ServerConfig::env`]
    /// (identity, `PATH`, proxies, certificate bundles, locale), its `env`, and those its
    /// `passEnv` names (variable names, or prefixes ending in `*`; in the top-level `pool`,
    /// for every server); `"inheritEnv": true` in a `pool` object passes everything.
    ///
    /// Warnings (unknown keys, skipped servers) are logged with `log::warn!`, kept in
    /// [`warnings`](Self::warnings) and kept by the pool ([`Pool::config_warnings`],
    /// [`Pool::skipped_servers`]), so a program without a `log` backend can show them.
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
        load(text, None, None)
    }

    /// Reads and parses a configuration file (see [`from_json`](Self::from_json)). Its errors
    /// and warnings, and the errors of calls to its skipped servers, begin with the path as
    /// given: `` `mcp.json`: server `x`: ... ``.
    ///
    /// **Relative paths** in the file resolve against its own directory (for a file in a
    /// `.vscode` folder, the folder above it: the workspace folder), whatever the working
    /// directory of the process that loads it: a `command` that is a relative path
    /// (`./venv/bin/python`, `bin/server`; a bare name is looked up on `PATH`), an argument
    /// that starts with `./` or `../` (other arguments are left as they are: only the
    /// server knows which are paths), and a relative `cwd`. So a file kept next to its
    /// servers works from anywhere. Claude Desktop resolves nothing (it starts servers in
    /// its own working directory, `/` on macOS, so its documentation asks for absolute
    /// paths); VS Code starts a workspace's servers in the workspace folder, where relative
    /// paths mean what they mean here. [`from_json`](Self::from_json) text has no directory
    /// and leaves relative paths as they are. Without `cwd`, a server runs in this
    /// process's working directory.
    ///
    /// ```no_run
    /// use mcp_pool::PoolBuilder;
    ///
    /// let pool = PoolBuilder::from_file("mcp.json")?.max_children(16).build()?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<PoolBuilder, Error> {
        Self::from_file_with(path, &Value::Null)
    }

    /// [`from_file`](Self::from_file) with `overrides`: a `pool` object (the same keys as
    /// the file's) whose settings win over the file's, at the top level and in every
    /// server, as a command line's flags would. `null` overrides nothing.
    ///
    /// ```no_run
    /// use mcp_pool::PoolBuilder;
    /// use serde_json::json;
    ///
    /// // `--start-timeout 90` given on the command line.
    /// let pool = PoolBuilder::from_file_with("mcp.json", &json!({"startTimeoutSecs": 90}))?.build()?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn from_file_with(path: impl AsRef<Path>, overrides: &Value) -> Result<PoolBuilder, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| located(Some(path), Error::Config(format!("cannot read it: {e}"))))?;
        load(&text, Some(path), Some(overrides)).map_err(|e| located(Some(path), e))
    }

    /// Warnings produced while loading a configuration: unknown keys, skipped servers,
    /// settings in the wrong place, each beginning with the file's path when there is a
    /// file. Each was also logged with `log::warn!`. The pool keeps them
    /// ([`Pool::config_warnings`]). Empty for a builder not made from a configuration.
    ///
    /// ```
    /// use mcp_pool::PoolBuilder;
    ///
    /// let builder = PoolBuilder::from_json(r#"{"mcpServers": {"a": {"command": "a", "color": "red"}}}"#)?;
    /// assert_eq!(builder.warnings(), ["unknown key `color` in server `a`"]);
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.loaded.warnings
    }

    /// The servers the configuration names but left out: disabled, or skipped with a
    /// warning, sorted by name. The pool keeps them ([`Pool::skipped_servers`]).
    pub fn skipped_servers(&self) -> &[SkippedServer] {
        &self.loaded.skipped
    }
}

impl Pool {
    /// Builds a pool from a configuration file: `PoolBuilder::from_file(path)?.build()`.
    /// What loading it warned about stays reachable: [`config_warnings`](Self::config_warnings),
    /// [`skipped_servers`](Self::skipped_servers).
    ///
    /// ```no_run
    /// use mcp_pool::Pool;
    /// use serde_json::json;
    ///
    /// let pool = Pool::from_file("claude_desktop_config.json")?;
    /// for warning in pool.config_warnings() {
    ///     eprintln!("warning: {warning}");
    /// }
    /// let result = pool.call_tool("files", "list_directory", json!({"path": "/tmp"}))?;
    /// println!("{}", result.text());
    /// pool.close();
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Pool, Error> {
        PoolBuilder::from_file(path)?.build()
    }

    /// The old name of [`Pool::from_file`].
    #[deprecated(
        since = "0.1.0",
        note = "named like `PoolBuilder::from_file`: use `Pool::from_file`"
    )]
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Pool, Error> {
        Pool::from_file(path)
    }

    /// The warnings of the configuration the pool was built from (see
    /// [`PoolBuilder::warnings`]), so they are not lost without a `log` backend. Empty for
    /// a pool not built from a configuration.
    ///
    /// ```
    /// use mcp_pool::PoolBuilder;
    ///
    /// let pool = PoolBuilder::from_json(r#"{"mcpServers": {
    ///     "a": {"command": "a"},
    ///     "b": {"command": "b", "args": ["--token", "${MCP_POOL_DOC_UNSET}"]}
    /// }}"#)?.build()?;
    /// assert_eq!(
    ///     pool.config_warnings(),
    ///     ["server `b` skipped: `args[1]`: environment variable `MCP_POOL_DOC_UNSET` is not set"]
    /// );
    /// // `a` works; a call to `b` fails with that reason.
    /// let e = pool.call_tool("b", "t", serde_json::json!({})).unwrap_err();
    /// assert!(matches!(e, mcp_pool::Error::Config(_)), "{e}");
    /// # pool.close();
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn config_warnings(&self) -> &[String] {
        &self.loaded().warnings
    }

    /// The servers the configuration names but the pool does not have (see
    /// [`SkippedServer`]); a call to one returns its [`error`](SkippedServer::error), not
    /// [`Error::UnknownServer`].
    pub fn skipped_servers(&self) -> &[SkippedServer] {
        &self.loaded().skipped
    }
}

/// Parses, collects warnings (prefixed with the file when there is one) and logs them.
fn load(
    text: &str,
    origin: Option<&Path>,
    overrides: Option<&Value>,
) -> Result<PoolBuilder, Error> {
    let text = strip_jsonc(text.strip_prefix('\u{feff}').unwrap_or(text));
    let root: Value =
        serde_json::from_str(&text).map_err(|e| Error::Config(format!("not valid JSON: {e}")))?;
    let source = origin.map(Source::new);
    let mut warnings = Vec::new();
    let mut builder = parse_root(&root, source.as_ref(), overrides, &mut warnings)?;
    let at = at(origin);
    for w in &mut warnings {
        *w = format!("{at}{w}");
        log::warn!("{w}");
    }
    builder.loaded.warnings = warnings;
    Ok(builder)
}

/// A `pool` object's keys and its `passEnv`.
#[derive(Default)]
struct PoolObject {
    keys: PoolKeys,
    pass_env: Vec<String>,
}

fn parse_root(
    root: &Value,
    source: Option<&Source>,
    overrides: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<PoolBuilder, Error> {
    let error = |what: String| Error::Config(what);
    let Some(root) = root.as_object() else {
        return Err(error("the configuration must be a JSON object".into()));
    };
    let (key, servers) = match (root.get("mcpServers"), root.get("servers")) {
        (Some(_), Some(_)) => {
            return Err(error(
                "both `mcpServers` and `servers` are present; use one".into(),
            ))
        }
        (Some(s), None) => ("mcpServers", s),
        (None, Some(s)) => ("servers", s),
        (None, None) => {
            return Err(error(
                "no `mcpServers` (or VS Code `servers`) object".into(),
            ))
        }
    };
    let Some(servers) = servers.as_object() else {
        return Err(error(format!("`{key}` must be an object")));
    };
    for name in root.keys() {
        match name.as_str() {
            "mcpServers" | "servers" | "pool" => {}
            "inputs" if key == "servers" => {}
            other => warnings.push(format!("unknown key `{other}` at the top level")),
        }
    }

    let top = match root.get("pool") {
        None | Some(Value::Null) => PoolObject::default(),
        Some(v) => parse_pool(v, None, warnings).map_err(error)?,
    };
    let over = match overrides {
        None | Some(Value::Null) => PoolObject::default(),
        Some(v) => {
            let mut unknown = Vec::new();
            let over = parse_pool(v, None, &mut unknown)
                .map_err(|what| Error::InvalidArgument(format!("the overrides: {what}")))?;
            if !unknown.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "the overrides: {}",
                    unknown.join("; ")
                )));
            }
            over
        }
    };
    let top_keys = top.keys.overlay(&over.keys);
    let mut builder = PoolBuilder::default();
    let mut whole = Whole::default();
    let mut defaults = PoolSettings::default();
    top_keys.apply(&mut defaults, &mut ServerConfig::new("-", "-"), &mut whole);
    builder = builder.defaults(defaults);
    if let Some(n) = whole.max_children {
        if n == 0 {
            return Err(error("`pool.maxChildren` must be at least 1".into()));
        }
        builder = builder.max_children(n);
    }
    if let Some(eager) = whole.warm_eagerly {
        builder = builder.warm_eagerly(eager);
    }

    let origin = source.map(|s| s.path.clone());
    let mut skipped = Vec::new();
    let mut added = 0;
    for (name, entry) in servers {
        if name.is_empty() {
            return Err(error(format!("a server name in `{key}` is empty")));
        }
        match parse_server(name, entry, source, warnings) {
            Ok(Parsed::Server(parsed)) => {
                let (mut config, own) = *parsed;
                let mut settings = PoolSettings::default();
                top.keys.overlay(&own.keys).overlay(&over.keys).apply(
                    &mut settings,
                    &mut config,
                    &mut Whole::default(),
                );
                config = config
                    .pass_env(top.pass_env.iter().chain(&over.pass_env).cloned())
                    .pass_env(own.pass_env);
                config.origin = origin.clone();
                settings.origin = origin.clone();
                builder = builder.server_with(config, settings);
                added += 1;
            }
            Ok(Parsed::Disabled) => {
                log::debug!("server `{name}` is disabled; skipped");
                skipped.push(SkippedServer {
                    name: name.clone(),
                    disabled: true,
                    reason: "disabled".into(),
                    error: server_error(
                        origin.as_deref(),
                        name,
                        "disabled in the configuration (`\"disabled\": true`)",
                    ),
                });
            }
            Err(reason) => {
                let what = format!("server `{name}` skipped: {reason}");
                skipped.push(SkippedServer {
                    name: name.clone(),
                    disabled: false,
                    error: Error::Config(format!("{}{what}", at(origin.as_deref()))),
                    reason,
                });
                warnings.push(what);
            }
        }
    }
    if added == 0 {
        let unusable: Vec<&SkippedServer> = skipped.iter().filter(|s| !s.disabled).collect();
        return Err(error(match unusable.first() {
            _ if servers.is_empty() => format!("`{key}` has no servers"),
            // The one problem as it is; with more, the first and how many more.
            Some(first) => format!(
                "server `{}`: {}{}",
                first.name,
                first.reason,
                match unusable.len() - 1 {
                    0 => String::new(),
                    n => format!(" (and {n} more servers cannot be used)"),
                }
            ),
            None => format!(
                "no servers to start: all {} in `{key}` are disabled",
                servers.len()
            ),
        }));
    }
    builder.loaded.skipped = skipped;
    Ok(builder)
}

/// What a server entry holds.
enum Parsed {
    /// A server to run, with its own `pool` object.
    Server(Box<(ServerConfig, PoolObject)>),
    /// `"disabled": true`.
    Disabled,
}

/// One server entry. `Err`: why it cannot be used (naming the key), for its warning and
/// the error of a call to it.
fn parse_server(
    name: &str,
    entry: &Value,
    source: Option<&Source>,
    warnings: &mut Vec<String>,
) -> Result<Parsed, String> {
    let bad = |key: &str, what: &str| format!("`{key}` {what}");
    let unexpanded = |key: &str, why: String| format!("`{key}`: {why}");
    let Some(entry) = entry.as_object() else {
        return Err("the entry must be an object".into());
    };
    match present(entry, "disabled") {
        None => {}
        Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => return Ok(Parsed::Disabled),
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
            return Err(format!(
                "type `{other}` is not supported (`stdio`, `http`, `streamable-http` or `sse`)"
            ))
        }
        None => present(entry, "command").is_none() && present(entry, "url").is_some(),
    };
    if http {
        return parse_http_server(name, entry, kind, warnings);
    }
    let mut command = match present(entry, "command") {
        None => return Err(bad("command", "is missing")),
        Some(Value::String(c)) => expand(c).map_err(|e| unexpanded("command", e))?,
        Some(_) => return Err(bad("command", "must be a string")),
    };
    if command.trim().is_empty() {
        return Err(bad("command", "is empty"));
    }
    // A path (not a name looked up on `PATH`) relative to the file.
    if let Some(source) = source {
        if command.contains('/') && Path::new(&command).is_relative() {
            command = source.rebase(&command);
        }
    }
    let mut config = ServerConfig::new(name, command);

    if let Some(args) = present(entry, "args") {
        let Some(args) = args.as_array().filter(|a| a.iter().all(Value::is_string)) else {
            return Err(bad("args", "must be an array of strings"));
        };
        let mut expanded = Vec::with_capacity(args.len());
        for (i, arg) in args.iter().filter_map(Value::as_str).enumerate() {
            let arg = expand(arg).map_err(|e| unexpanded(&format!("args[{i}]"), e))?;
            expanded.push(match source {
                Some(source) if arg.starts_with("./") || arg.starts_with("../") => {
                    source.rebase(&arg)
                }
                _ => arg,
            });
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
    let mut pass_env = match present(entry, "passEnv") {
        None => Vec::new(),
        Some(v) => pass_env_list(v).map_err(|what| format!("`passEnv` {what}"))?,
    };
    if let Some(cwd) = present(entry, "cwd") {
        let Some(cwd) = cwd.as_str() else {
            return Err(bad("cwd", "must be a string"));
        };
        let cwd = expand(cwd).map_err(|e| unexpanded("cwd", e))?;
        config = config.cwd(match source {
            Some(source) if Path::new(&cwd).is_relative() => source.rebase(&cwd),
            _ => cwd,
        });
    }
    let mut own = match present(entry, "pool") {
        None => PoolObject::default(),
        Some(v) => parse_pool(v, Some(name), warnings)?,
    };
    pass_env.append(&mut own.pass_env);
    own.pass_env = pass_env;
    for key in entry.keys() {
        match key.as_str() {
            "command" | "args" | "env" | "passEnv" | "cwd" | "disabled" | "pool" | "type" => {}
            "url" | "headers" => warnings.push(format!(
                "`{key}` in server `{name}` is ignored: the server has a `command`"
            )),
            other => warnings.push(format!("unknown key `{other}` in server `{name}`")),
        }
    }
    Ok(Parsed::Server(Box::new((config, own))))
}

/// A remote server entry: `url`, `type` (`http`, `streamable-http`, `sse`), `headers` (each
/// value with `${VAR}` expanded, kept secret), `pool`.
fn parse_http_server(
    name: &str,
    entry: &Map<String, Value>,
    kind: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Parsed, String> {
    let bad = |key: &str, what: &str| format!("`{key}` {what}");
    let unexpanded = |key: &str, why: String| format!("`{key}`: {why}");
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
    let mut own = match present(entry, "pool") {
        None => PoolObject::default(),
        Some(v) => parse_pool(v, Some(name), warnings)?,
    };
    // A remote server has no environment to pass.
    own.pass_env.clear();
    for key in entry.keys() {
        match key.as_str() {
            "url" | "headers" | "type" | "disabled" | "pool" => {}
            "command" | "args" | "env" | "passEnv" | "cwd" => warnings.push(format!(
                "`{key}` in server `{name}` is ignored: the server is reached over HTTP"
            )),
            other => warnings.push(format!("unknown key `{other}` in server `{name}`")),
        }
    }
    Ok(Parsed::Server(Box::new((config, own))))
}

/// A key's value, treating `null` as absent.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// A `passEnv` list: names, or prefixes ending in `*`. The error says what it must be.
fn pass_env_list(value: &Value) -> Result<Vec<String>, String> {
    let names: Option<Vec<String>> = value
        .as_array()
        .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect());
    let names = names.ok_or("must be an array of strings")?;
    if let Some(problem) = names.iter().find_map(|n| pass_env_problem(n)) {
        return Err(problem);
    }
    Ok(names)
}

/// A `pool` object: the top-level one (`server` is `None`) or a server's. The error names
/// the key (and not the server: the caller does).
fn parse_pool(
    value: &Value,
    server: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<PoolObject, String> {
    let Some(map) = value.as_object() else {
        return Err("`pool` must be an object".into());
    };
    let mut map = map.clone();
    let pass_env = match map.remove("passEnv") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => pass_env_list(&v).map_err(|what| format!("`pool.passEnv` {what}"))?,
    };
    let keys = keys::parse(&map, server, warnings)?;
    Ok(PoolObject { keys, pass_env })
}
