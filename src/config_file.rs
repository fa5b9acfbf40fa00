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
//!     }
//!   }
//! }
//! ```
//!
//! `${VAR}` and `${env:VAR}` expand from this process's environment in `command`, `args`,
//! `env` values and `cwd`. Comments and trailing commas (VS Code's JSONC) are accepted.
//! Unknown keys and servers that cannot be run (remote ones) become warnings; anything
//! malformed is an [`Error::Config`] naming the server and the key.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::config::{Generation, PoolSettings, RetryPolicy, ServerConfig};
use crate::error::Error;
use crate::pool::{Pool, PoolBuilder};

impl PoolBuilder {
    /// Parses an `mcpServers` (Claude Desktop, Cursor) or VS Code `servers` JSON text into a
    /// builder holding its servers and pool settings.
    ///
    /// Each server entry takes `command`, `args`, `env`, `cwd`, `disabled` and `pool`; VS Code
    /// entries also `type` (only `"stdio"` runs; remote servers are skipped with a warning).
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
    ///         "remote": {"url": "https://example.com/mcp"}
    ///     }
    /// }"#)?;
    /// assert_eq!(builder.warnings().len(), 1); // `remote` is skipped
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
    let mut defaults = PoolSettings::default();
    top.apply_to_settings(&mut defaults);
    builder = builder.defaults(defaults);
    if let Some(n) = top.max_children {
        builder = builder.max_children(n);
    }
    if let Some(eager) = top.warm_eagerly {
        builder = builder.warm_eagerly(eager);
    }

    let mut added = 0;
    for (name, entry) in servers {
        if let Some((config, keys)) = parse_server(name, entry, key, warnings)? {
            let keys = top.overlay(&keys);
            let config = keys.apply_to_config(config);
            let mut settings = PoolSettings::default();
            keys.apply_to_settings(&mut settings);
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
                    "no servers to start: all {} in `{key}` are disabled or remote",
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
    match present(entry, "type") {
        None => {}
        Some(Value::String(t)) if t == "stdio" => {}
        Some(Value::String(t)) => {
            warnings.push(format!(
                "server `{name}` skipped: type `{t}` is not supported yet (only `stdio`; remote \
                 servers are planned)"
            ));
            return Ok(None);
        }
        Some(_) => return Err(bad("type", "must be a string")),
    }
    let command = match present(entry, "command") {
        None if present(entry, "url").is_some() => {
            warnings.push(format!(
                "server `{name}` skipped: remote servers (`url`) are not supported yet"
            ));
            return Ok(None);
        }
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
            "url" => warnings.push(format!(
                "`url` in server `{name}` is ignored: the server has a `command`"
            )),
            other => warnings.push(format!("unknown key `{other}` in server `{name}`")),
        }
    }
    Ok(Some((config, keys)))
}

/// A key's value, treating `null` as absent.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// The settings a `pool` object may hold; `None` where it says nothing.
#[derive(Debug, Default, Clone)]
struct PoolKeys {
    max_sessions: Option<usize>,
    min_sessions: Option<usize>,
    max_in_flight: Option<usize>,
    queue_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    lifetime_jitter: Option<Duration>,
    keepalive: Option<Option<Duration>>,
    retry: Option<RetryPolicy>,
    failure_threshold: Option<u32>,
    cooldown: Option<Duration>,
    backoff_base: Option<Duration>,
    backoff_max: Option<Duration>,
    direct: Option<bool>,
    // Session settings, for `ServerConfig`.
    request_timeout: Option<Duration>,
    max_request_timeout: Option<Duration>,
    start_timeout: Option<Duration>,
    discover_timeout: Option<Duration>,
    close_grace: Option<Duration>,
    max_message_bytes: Option<usize>,
    generation: Option<Generation>,
    inherit_env: Option<bool>,
    // Whole-pool settings: top level only.
    max_children: Option<usize>,
    warm_eagerly: Option<bool>,
}

impl PoolKeys {
    /// These keys as defaults, `over`'s where it has them.
    fn overlay(&self, over: &PoolKeys) -> PoolKeys {
        macro_rules! merge {
            ($($field:ident),* $(,)?) => {
                PoolKeys { $($field: over.$field.or(self.$field),)* }
            };
        }
        merge!(
            max_sessions,
            min_sessions,
            max_in_flight,
            queue_timeout,
            idle_timeout,
            max_lifetime,
            lifetime_jitter,
            keepalive,
            retry,
            failure_threshold,
            cooldown,
            backoff_base,
            backoff_max,
            direct,
            request_timeout,
            max_request_timeout,
            start_timeout,
            discover_timeout,
            close_grace,
            max_message_bytes,
            generation,
            inherit_env,
            max_children,
            warm_eagerly,
        )
    }

    fn apply_to_settings(&self, s: &mut PoolSettings) {
        macro_rules! set {
            ($($field:ident),* $(,)?) => {
                $(if let Some(v) = self.$field { s.$field = v; })*
            };
        }
        set!(
            max_sessions,
            min_sessions,
            max_in_flight,
            queue_timeout,
            idle_timeout,
            max_lifetime,
            lifetime_jitter,
            keepalive,
            retry,
            failure_threshold,
            cooldown,
            backoff_base,
            backoff_max,
            direct,
        );
    }

    fn apply_to_config(&self, mut c: ServerConfig) -> ServerConfig {
        macro_rules! set {
            ($($field:ident => $target:ident),* $(,)?) => {
                $(if let Some(v) = self.$field { c.$target = v; })*
            };
        }
        set!(
            request_timeout => request_timeout,
            max_request_timeout => max_request_timeout,
            start_timeout => start_timeout,
            discover_timeout => discover_timeout,
            close_grace => close_grace,
            max_message_bytes => max_message_size,
            generation => generation,
            inherit_env => inherit_env,
        );
        c
    }
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
    let place = match server {
        Some(name) => format!("the `pool` of server `{name}`"),
        None => "the top-level `pool`".to_owned(),
    };
    let mut k = PoolKeys::default();
    for (key, v) in map {
        let bad = |what: String| config_error(server, format!("`pool.{key}` {what}"));
        if key == "keepaliveSecs" {
            // `null` switches keepalive off, so it is not "absent" here.
            k.keepalive = Some(match v {
                Value::Null => None,
                v => Some(secs(v).map_err(bad)?),
            });
            continue;
        }
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "maxSessions" => k.max_sessions = Some(count(v).map_err(bad)?),
            "minSessions" => k.min_sessions = Some(count(v).map_err(bad)?),
            "maxInFlight" => k.max_in_flight = Some(count(v).map_err(bad)?),
            "queueTimeoutSecs" => k.queue_timeout = Some(secs(v).map_err(bad)?),
            "idleTimeoutSecs" => k.idle_timeout = Some(secs(v).map_err(bad)?),
            "maxLifetimeSecs" => k.max_lifetime = Some(secs(v).map_err(bad)?),
            "lifetimeJitterSecs" => k.lifetime_jitter = Some(secs(v).map_err(bad)?),
            "retry" => {
                k.retry = Some(match v.as_str() {
                    Some("never") => RetryPolicy::Never,
                    Some("safe") => RetryPolicy::Safe,
                    Some("always") => RetryPolicy::Always,
                    _ => return Err(bad(one_of(v, &["never", "safe", "always"]))),
                })
            }
            "failureThreshold" => {
                k.failure_threshold = Some(
                    count(v)
                        .ok()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(format!("must be an integer from 0 to {}", u32::MAX)))?,
                )
            }
            "cooldownSecs" => k.cooldown = Some(secs(v).map_err(bad)?),
            "backoffBaseSecs" => k.backoff_base = Some(secs(v).map_err(bad)?),
            "backoffMaxSecs" => k.backoff_max = Some(secs(v).map_err(bad)?),
            "direct" => k.direct = Some(boolean(v).map_err(bad)?),
            "requestTimeoutSecs" => k.request_timeout = Some(secs(v).map_err(bad)?),
            "maxRequestTimeoutSecs" => k.max_request_timeout = Some(secs(v).map_err(bad)?),
            "startTimeoutSecs" => k.start_timeout = Some(secs(v).map_err(bad)?),
            "discoverTimeoutSecs" => k.discover_timeout = Some(secs(v).map_err(bad)?),
            "closeGraceSecs" => k.close_grace = Some(secs(v).map_err(bad)?),
            "maxMessageBytes" => k.max_message_bytes = Some(count(v).map_err(bad)?),
            "generation" => {
                k.generation = Some(match v.as_str() {
                    Some("auto") => Generation::Auto,
                    Some("handshake") => Generation::Handshake,
                    Some("per-request") => Generation::PerRequest,
                    _ => return Err(bad(one_of(v, &["auto", "handshake", "per-request"]))),
                })
            }
            "inheritEnv" => k.inherit_env = Some(boolean(v).map_err(bad)?),
            "maxChildren" | "warmEagerly" if server.is_some() => warnings.push(format!(
                "`{key}` in {place} is ignored: it applies to the whole pool (set it in the \
                 top-level `pool`)"
            )),
            "maxChildren" => k.max_children = Some(count(v).map_err(bad)?),
            "warmEagerly" => k.warm_eagerly = Some(boolean(v).map_err(bad)?),
            other => warnings.push(format!("unknown key `{other}` in {place}")),
        }
    }
    Ok(k)
}

fn count(v: &Value) -> Result<usize, String> {
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("must be a non-negative integer, not {v}"))
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("must be true or false, not {v}"))
}

fn one_of(v: &Value, accepted: &[&str]) -> String {
    let accepted: Vec<String> = accepted.iter().map(|a| format!("\"{a}\"")).collect();
    format!("must be one of {}, not {v}", accepted.join(", "))
}

/// A duration given as a JSON number of seconds.
fn secs(v: &Value) -> Result<Duration, String> {
    match v.as_f64() {
        Some(x) => duration_from_secs(x).map_err(|why| format!("{why}, not {v}")),
        None => Err(format!("must be a number of seconds, not {v}")),
    }
}

/// A non-negative, finite number of seconds (fractions allowed) as a `Duration`; the error
/// says what the number must be.
fn duration_from_secs(x: f64) -> Result<Duration, &'static str> {
    if x.is_nan() {
        return Err("must be a number of seconds");
    }
    if x < 0.0 {
        return Err("must not be negative");
    }
    Duration::try_from_secs_f64(x).map_err(|_| "must be less than 2^64 seconds")
}

/// Expands `${VAR}` and `${env:VAR}` from this process's environment.
fn expand(s: &str) -> Result<String, String> {
    expand_with(s, |name| std::env::var(name))
}

/// Expands `${VAR}` and `${env:VAR}` through `lookup`. A `$` not followed by `{` is literal
/// (`$$` too); an unclosed `${`, an empty name, another `${kind:...}` (VS Code's
/// `${input:...}`, ...) or an unset variable is an error.
fn expand_with(
    s: &str,
    lookup: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in `{s}`"));
        };
        let inner = &after[..end];
        let name = inner.strip_prefix("env:").unwrap_or(inner);
        if name.is_empty() {
            return Err(format!("empty variable name `${{{inner}}}`"));
        }
        if name.contains(':') {
            return Err(format!(
                "unsupported variable `${{{inner}}}` (only `${{VAR}}` and `${{env:VAR}}`)"
            ));
        }
        match lookup(name) {
            Ok(value) => out.push_str(&value),
            Err(std::env::VarError::NotPresent) => {
                return Err(format!("environment variable `{name}` is not set"))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(format!("environment variable `{name}` is not valid UTF-8"))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Blanks out `//` and `/* */` comments and trailing commas (VS Code writes JSONC), keeping
/// every line and column where it was so JSON errors point at the right place.
fn strip_jsonc(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let blank = |b: &mut u8| {
        if *b != b'\n' && *b != b'\r' {
            *b = b' ';
        }
    };
    // Comments.
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => in_string = true,
            (b'/', Some(b'/')) => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    blank(&mut bytes[i]);
                    i += 1;
                }
                continue;
            }
            (b'/', Some(b'*')) => {
                let end = bytes[i + 2..]
                    .windows(2)
                    .position(|w| w == b"*/")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
                for b in &mut bytes[i..end] {
                    blank(b);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // Trailing commas: a comma followed (past whitespace) by `}` or `]`.
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            let next = bytes[i + 1..].iter().find(|c| !c.is_ascii_whitespace());
            if matches!(next, Some(b'}' | b']')) {
                bytes[i] = b' ';
            }
        }
        i += 1;
    }
    // Only ASCII bytes outside strings and whole comments were replaced, by ASCII spaces.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::env::VarError;

    fn vars(name: &str) -> Result<String, VarError> {
        match name {
            "HOME" => Ok("/home/me".into()),
            "EMPTY" => Ok(String::new()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn expands_both_syntaxes() {
        assert_eq!(expand_with("${HOME}/x", vars).unwrap(), "/home/me/x");
        assert_eq!(expand_with("${env:HOME}/x", vars).unwrap(), "/home/me/x");
        assert_eq!(
            expand_with("a${HOME}b${env:EMPTY}c${HOME}", vars).unwrap(),
            "a/home/mebc/home/me"
        );
        assert_eq!(expand_with("no vars", vars).unwrap(), "no vars");
        assert_eq!(expand_with("", vars).unwrap(), "");
    }

    #[test]
    fn lone_dollars_are_literal() {
        assert_eq!(expand_with("$HOME $$ a$ $", vars).unwrap(), "$HOME $$ a$ $");
        assert_eq!(expand_with("$${HOME}", vars).unwrap(), "$/home/me");
        assert_eq!(expand_with("€${HOME}€", vars).unwrap(), "€/home/me€");
    }

    #[test]
    fn expansion_errors() {
        assert_eq!(
            expand_with("${NOPE}", vars).unwrap_err(),
            "environment variable `NOPE` is not set"
        );
        assert_eq!(
            expand_with("x${env:NOPE}", vars).unwrap_err(),
            "environment variable `NOPE` is not set"
        );
        assert!(expand_with("${HOME", vars)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand_with("${HOME}${", vars)
            .unwrap_err()
            .contains("unclosed"));
        assert!(expand_with("${}", vars).unwrap_err().contains("empty"));
        assert!(expand_with("${env:}", vars).unwrap_err().contains("empty"));
        let e = expand_with("${input:token}", vars).unwrap_err();
        assert!(e.contains("unsupported variable `${input:token}`"), "{e}");
        let e = expand_with("${X}", |_| Err(VarError::NotUnicode("x".into()))).unwrap_err();
        assert!(e.contains("not valid UTF-8"), "{e}");
    }

    #[test]
    fn durations_from_seconds() {
        assert_eq!(
            duration_from_secs(1.5).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(duration_from_secs(0.0).unwrap(), Duration::ZERO);
        assert_eq!(duration_from_secs(30.0).unwrap(), Duration::from_secs(30));
        assert_eq!(
            duration_from_secs(-1.0).unwrap_err(),
            "must not be negative"
        );
        assert_eq!(
            duration_from_secs(-0.001).unwrap_err(),
            "must not be negative"
        );
        assert_eq!(
            duration_from_secs(f64::NAN).unwrap_err(),
            "must be a number of seconds"
        );
        assert!(duration_from_secs(f64::INFINITY).is_err());
        assert!(duration_from_secs(1e30).is_err());
        assert_eq!(secs(&serde_json::json!(2)).unwrap(), Duration::from_secs(2));
        assert!(secs(&serde_json::json!("2"))
            .unwrap_err()
            .contains("number"));
        assert!(secs(&serde_json::json!(-0.5))
            .unwrap_err()
            .contains("negative"));
    }

    #[test]
    fn counts_and_enums() {
        assert_eq!(count(&serde_json::json!(4)).unwrap(), 4);
        assert!(count(&serde_json::json!(-1)).is_err());
        assert!(count(&serde_json::json!(1.5)).is_err());
        assert!(count(&serde_json::json!("4")).is_err());
        assert_eq!(
            one_of(&serde_json::json!("x"), &["a", "b"]),
            "must be one of \"a\", \"b\", not \"x\""
        );
    }

    #[test]
    fn jsonc_comments_and_trailing_commas_are_blanked() {
        let text = "{\n  // a comment, with \"quotes\"\n  \"a\": \"http://x/*y*/\", /* c\n d */ \"b\": [1, 2,],\n}";
        let stripped = strip_jsonc(text);
        assert_eq!(stripped.len(), text.len());
        assert_eq!(stripped.lines().count(), text.lines().count());
        let v: Value = serde_json::from_str(&stripped).unwrap();
        assert_eq!(v, serde_json::json!({"a": "http://x/*y*/", "b": [1, 2]}));
        // Commas inside strings stay.
        let v: Value = serde_json::from_str(&strip_jsonc(r#"{"a": ",}", "b": "\",]"}"#)).unwrap();
        assert_eq!(v, serde_json::json!({"a": ",}", "b": "\",]"}));
        // Non-ASCII in comments keeps the text valid.
        let v: Value = serde_json::from_str(&strip_jsonc("{/* é */\"a\": 1 // ü\n}")).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
    }

    #[test]
    fn merge_takes_the_servers_keys_over_the_top_level() {
        let mut w = Vec::new();
        let top = parse_pool(
            &serde_json::json!({"maxSessions": 2, "minSessions": 1, "keepaliveSecs": 10}),
            None,
            &mut w,
        )
        .unwrap();
        let server = parse_pool(
            &serde_json::json!({"maxSessions": 5, "keepaliveSecs": null}),
            Some("s"),
            &mut w,
        )
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let merged = top.overlay(&server);
        assert_eq!(merged.max_sessions, Some(5));
        assert_eq!(merged.min_sessions, Some(1));
        assert_eq!(merged.keepalive, Some(None));
        let mut settings = PoolSettings::default();
        merged.apply_to_settings(&mut settings);
        assert_eq!(settings.max_sessions, 5);
        assert_eq!(settings.keepalive, None);
        let mut settings = PoolSettings::default();
        top.apply_to_settings(&mut settings);
        assert_eq!(settings.keepalive, Some(Duration::from_secs(10)));
    }
}
