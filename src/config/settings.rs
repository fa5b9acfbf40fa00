//! How to start a server and how its sessions behave.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::deadline::{MAX_DURATION, MAX_DURATION_YEARS};
use crate::error::Error;
use crate::handler::{ClientHandler, NoHandler};
use crate::protocol::LogLevel;
use crate::session::http::{Secret, TokenProvider};

use super::http::{HttpSettings, HttpTransport};

/// Which MCP protocol generation a session speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Generation {
    /// Probe with `server/discover` (per-request generation), fall back to `initialize`.
    #[default]
    Auto,
    /// The handshake generation (`initialize`, protocol versions 2024-11-05 to 2025-11-25).
    Handshake,
    /// The per-request generation (2026-07-28): no handshake, every request carries its
    /// protocol version and client capabilities in `_meta`.
    PerRequest,
}

/// One MCP server: the command that starts it and how its sessions behave.
///
/// ```
/// use std::time::Duration;
/// use mcp_pool::ServerConfig;
///
/// let config = ServerConfig::new("files", "npx")
///     .args(["-y", "@modelcontextprotocol/server-filesystem", "/tmp"])
///     .env("LOG_LEVEL", "info")
///     .request_timeout(Duration::from_secs(20));
/// assert_eq!(config.name(), "files");
/// ```
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) name: String,
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) inherit_env: bool,
    /// Names and `PREFIX*` patterns of this process's variables passed besides the defaults.
    pub(crate) pass_env: Vec<String>,
    /// The configuration file the server was read from, for messages.
    pub(crate) origin: Option<Arc<Path>>,
    pub(crate) generation: Generation,
    pub(crate) request_timeout: Duration,
    pub(crate) max_request_timeout: Duration,
    pub(crate) start_timeout: Duration,
    pub(crate) discover_timeout: Duration,
    pub(crate) close_grace: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) stderr_tail_lines: usize,
    pub(crate) stderr_tail_bytes: usize,
    pub(crate) client_name: String,
    pub(crate) client_version: String,
    pub(crate) handler: Arc<dyn ClientHandler>,
    pub(crate) max_input_rounds: usize,
    pub(crate) validate_output: bool,
    pub(crate) tasks: bool,
    pub(crate) log_level: Option<LogLevel>,
    /// Set for a server reached over HTTP (`command` is then empty).
    pub(crate) http: Option<Box<HttpSettings>>,
    /// An HTTP-only setting was given to a server started as a command.
    pub(crate) http_misuse: Option<&'static str>,
    /// The caller key a per-caller pool started this session for (set by the pool).
    pub(crate) caller: Option<Arc<str>>,
}

impl ServerConfig {
    /// A server called `name` (used in logs and errors) started by running `command`
    /// directly, without a shell.
    pub fn new(name: impl Into<String>, command: impl Into<String>) -> Self {
        ServerConfig {
            name: name.into(),
            command: command.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: None,
            inherit_env: false,
            pass_env: Vec::new(),
            origin: None,
            generation: Generation::Auto,
            request_timeout: Duration::from_secs(60),
            max_request_timeout: Duration::from_secs(600),
            start_timeout: Duration::from_secs(30),
            discover_timeout: Duration::from_secs(1),
            close_grace: Duration::from_secs(2),
            max_message_size: 16 << 20,
            stderr_tail_lines: 64,
            stderr_tail_bytes: 8 << 10,
            client_name: env!("CARGO_PKG_NAME").to_owned(),
            client_version: env!("CARGO_PKG_VERSION").to_owned(),
            handler: Arc::new(NoHandler),
            max_input_rounds: 10,
            validate_output: true,
            tasks: true,
            log_level: None,
            http: None,
            http_misuse: None,
            caller: None,
        }
    }

    /// A remote server called `name`, reached over HTTP at `url` (its MCP endpoint, e.g.
    /// `https://mcp.example.com/mcp`): Streamable HTTP in either protocol generation,
    /// falling back to the deprecated HTTP+SSE transport when the server speaks only that
    /// (see [`http_transport`](Self::http_transport)). Every other setting applies as for a
    /// command; the process settings (`args`, `env`, `cwd`, `inherit_env`, the stderr tail,
    /// the close grace's kill ladder) do not.
    ///
    /// ```
    /// use mcp_pool::ServerConfig;
    ///
    /// let config = ServerConfig::http("docs", "https://mcp.example.com/mcp")
    ///     .header("X-Team", "search");
    /// assert_eq!(config.name(), "docs");
    /// ```
    pub fn http(name: impl Into<String>, url: impl Into<String>) -> Self {
        let mut config = ServerConfig::new(name, "");
        config.http = Some(Box::new(HttpSettings::new(url.into())));
        config
    }

    /// The server's URL, for a server reached over HTTP.
    pub fn url(&self) -> Option<&str> {
        self.http.as_ref().map(|h| h.url.as_str())
    }

    fn http_mut(&mut self, what: &'static str) -> Option<&mut HttpSettings> {
        if self.http.is_none() {
            self.http_misuse = Some(what);
        }
        self.http.as_deref_mut()
    }

    /// Which HTTP transport to speak. Defaults to [`HttpTransport::Auto`] (HTTP servers
    /// only).
    pub fn http_transport(mut self, transport: HttpTransport) -> Self {
        if let Some(h) = self.http_mut("http_transport") {
            h.transport = transport;
        }
        self
    }

    /// A header sent with every request to the server (HTTP servers only), for example an
    /// API key. Its value is kept secret: never logged, shown by `Debug` or put in an error,
    /// and never sent to another origin a redirect points at.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        if let Some(h) = self.http_mut("header") {
            h.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&name));
            h.headers.push((name, Secret::new(value)));
        }
        self
    }

    /// Asks `provider` for the bearer token of the server's requests (HTTP servers only):
    /// before the first request, and again once after a refusal. See [`TokenProvider`].
    pub fn token_provider(mut self, provider: impl TokenProvider) -> Self {
        if let Some(h) = self.http_mut("token_provider") {
            h.token = Some(Arc::new(provider));
        }
        self
    }

    /// Trusts the root certificates in `pem` (one or more PEM `CERTIFICATE` blocks)
    /// instead of the bundled Mozilla roots, for a server whose certificate a private
    /// authority signed (HTTP servers only).
    pub fn root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        let pem = pem.into();
        if let Some(h) = self.http_mut("root_certificates") {
            h.roots_pem = Some(Arc::new(pem));
        }
        self
    }

    /// In the handshake generation over Streamable HTTP, keeps the optional GET stream
    /// open for server messages that belong to no request (list changes, resource
    /// updates, server requests): one connection and one thread per session. Defaults to
    /// `true` (HTTP servers only).
    pub fn standalone_stream(mut self, open: bool) -> Self {
        if let Some(h) = self.http_mut("standalone_stream") {
            h.standalone_stream = open;
        }
        self
    }

    /// The most kept-alive connections a session holds for later requests. Defaults to 16
    /// (HTTP servers only).
    pub fn idle_connections(mut self, n: usize) -> Self {
        if let Some(h) = self.http_mut("idle_connections") {
            h.idle_connections = n;
        }
        self
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Arguments passed to the command. Defaults to none.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets one environment variable for the child; it wins over a variable of the same
    /// name passed from this process.
    ///
    /// The child does not get this process's whole environment (which may hold secrets
    /// meant for other programs), only:
    ///
    /// - `HOME`, `LOGNAME`, `PATH`, `SHELL`, `TERM`, `USER`;
    /// - the proxy settings `HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, `ALL_PROXY` and their
    ///   lowercase forms, and the certificate settings `SSL_CERT_FILE`, `SSL_CERT_DIR`,
    ///   `NODE_EXTRA_CA_CERTS`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`: without them a server
    ///   behind a proxy or a private certificate authority (npm fetching a package, a
    ///   Python server calling an API) fails with a network or TLS error that names nothing;
    /// - the locale, `LANG`, `LANGUAGE` and `LC_*`: without it a server runs in the C locale,
    ///   where some tools and older Pythons treat text as ASCII and fail on anything else;
    /// - what [`pass_env`](Self::pass_env) names, and these.
    ///
    /// When a server started this way exits during its start, the error lists the
    /// variables of this process it did not get (names only).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// Passes more of this process's variables to the child (see [`env`](Self::env) for
    /// what it gets anyway): each entry a name (`"UV_NATIVE_TLS"`) or a prefix ending in
    /// `*` (`"npm_config_*"`). Adds to the entries given before. Between the defaults and
    /// [`inherit_env`](Self::inherit_env): the server gets what it needs and nothing else.
    /// Defaults to none. In a configuration file: `passEnv` in a server's entry, or in the
    /// top-level `pool` for every server.
    ///
    /// ```
    /// use mcp_pool::ServerConfig;
    ///
    /// let config = ServerConfig::new("fetch", "npx")
    ///     .args(["-y", "@example/fetch-mcp"])
    ///     .pass_env(["npm_config_*", "UV_NATIVE_TLS"]);
    /// ```
    pub fn pass_env<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.pass_env.extend(names.into_iter().map(Into::into));
        self
    }

    /// Passes this process's whole environment to the child (plus [`env`](Self::env)).
    /// Defaults to `false`.
    pub fn inherit_env(mut self, inherit: bool) -> Self {
        self.inherit_env = inherit;
        self
    }

    /// The child's working directory; a relative one is relative to this process's. Before
    /// each start the directory must exist, or the start fails with an
    /// [`Error::Config`] naming it. Defaults to this process's.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Pins the protocol generation, skipping the `server/discover` probe. Defaults to
    /// [`Generation::Auto`].
    pub fn generation(mut self, generation: Generation) -> Self {
        self.generation = generation;
        self
    }

    /// The deadline of a request when the call gives none. Defaults to 60 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The hard limit up to which progress notifications may extend a request's deadline.
    /// Defaults to 600 s.
    pub fn max_request_timeout(mut self, timeout: Duration) -> Self {
        self.max_request_timeout = timeout;
        self
    }

    /// The deadline for spawning the process and completing the handshake. Defaults to 30 s
    /// (a cold `npx` start takes seconds).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// [`Generation::Auto`] sends `server/discover` and `initialize` together and takes the
    /// first that succeeds; when `initialize` fails, it waits this much longer for the
    /// answer to `server/discover` before giving up. Defaults to 1 s.
    pub fn discover_timeout(mut self, timeout: Duration) -> Self {
        self.discover_timeout = timeout;
        self
    }

    /// How long closing waits after closing stdin, and again after SIGTERM, before the next
    /// step of the kill ladder. Defaults to 2 s.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// The largest message accepted from the server. A longer one is skipped as it streams
    /// by: the call it answers fails with [`Error::TooLarge`](crate::Error::TooLarge) and the
    /// session goes on. Defaults to 16 MiB.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How much of the server's stderr errors carry: the last `lines` lines, at most `bytes`
    /// bytes. Defaults to 64 lines and 8 KiB.
    pub fn stderr_tail(mut self, lines: usize, bytes: usize) -> Self {
        self.stderr_tail_lines = lines;
        self.stderr_tail_bytes = bytes;
        self
    }

    /// The `clientInfo` sent to the server. Defaults to this crate's name and version.
    pub fn client_info(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.client_name = name.into();
        self.client_version = version.into();
        self
    }

    /// Answers the server's requests (`roots/list`, `sampling/createMessage`,
    /// `elicitation/create`) and receives its change notifications. Defaults to a handler that
    /// supports none of them.
    pub fn handler(mut self, handler: impl ClientHandler) -> Self {
        self.handler = Arc::new(handler);
        self
    }

    /// How many times one call may answer the server's requests for input (multi
    /// round-trip, per-request generation) before it fails as a protocol error. Defaults
    /// to 10.
    pub fn max_input_rounds(mut self, rounds: usize) -> Self {
        self.max_input_rounds = rounds;
        self
    }

    /// Checks each successful tool result's `structuredContent` against the tool's
    /// `outputSchema` (JSON Schema 2020-12 unless the schema's `$schema` says otherwise;
    /// references outside the schema are never loaded). A result that does not match is
    /// [`Error::InvalidOutput`]. Defaults to `true`.
    pub fn validate_output(mut self, validate: bool) -> Self {
        self.validate_output = validate;
        self
    }

    /// Takes part in tasks: declares the tasks extension (per-request generation) and runs
    /// tools whose `taskSupport` is `required` as tasks, waiting for their result within the
    /// call's deadline. Defaults to `true`.
    pub fn tasks(mut self, enabled: bool) -> Self {
        self.tasks = enabled;
        self
    }

    /// The level of the log messages the server sends. In the per-request generation it
    /// is sent with every request (`io.modelcontextprotocol/logLevel`; without it the server
    /// sends none); in the handshake generation it is set with `logging/setLevel` when the
    /// session starts. Messages reach the handler's `on_log` and `log`. Defaults
    /// to none.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = Some(level);
        self
    }

    /// The command and arguments (or the redacted URL), for messages.
    pub(crate) fn command_line(&self) -> String {
        if let Some(h) = &self.http {
            return crate::session::http::redact(&h.url);
        }
        let mut s = self.command.clone();
        for arg in &self.args {
            s.push(' ');
            s.push_str(arg);
        }
        s
    }

    /// Rejects values that cannot work, naming the server and the setting (and the file
    /// the server was read from).
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let origin = self.origin.as_deref();
        let bad = |what: &str| Err(server_error(origin, &self.name, what));
        if self.name.is_empty() {
            return Err(Error::Config("a server needs a non-empty name".into()));
        }
        if let Some(what) = self.http_misuse {
            return bad(&format!(
                "`{what}` applies only to servers reached over HTTP (ServerConfig::http)"
            ));
        }
        match &self.http {
            Some(h) => h.validate(&self.name).map_err(|e| located(origin, e))?,
            None if self.command.trim().is_empty() => return bad("`command` is empty"),
            None => {}
        }
        for (what, d) in [
            ("request timeout", self.request_timeout),
            ("start timeout", self.start_timeout),
            ("discover timeout", self.discover_timeout),
        ] {
            if d.is_zero() {
                return bad(&format!("{what} must be more than zero"));
            }
        }
        for (what, d) in [
            ("request timeout", self.request_timeout),
            ("max request timeout", self.max_request_timeout),
            ("start timeout", self.start_timeout),
            ("discover timeout", self.discover_timeout),
            ("close grace", self.close_grace),
        ] {
            if d > MAX_DURATION {
                return bad(&format!(
                    "{what} is longer than {} years",
                    MAX_DURATION_YEARS
                ));
            }
        }
        if self.max_request_timeout < self.request_timeout {
            return bad("max request timeout is shorter than the request timeout");
        }
        if self.max_input_rounds == 0 {
            return bad("max input rounds must be at least 1");
        }
        if self.max_message_size < 1024 {
            return bad("max message size must be at least 1024 bytes");
        }
        if self.stderr_tail_lines == 0 || self.stderr_tail_bytes == 0 {
            return bad("stderr tail limits must be more than zero");
        }
        if self.env.keys().any(|k| k.is_empty() || k.contains('=')) {
            return bad("an environment variable name is empty or contains `=`");
        }
        if let Some(problem) = self.pass_env.iter().find_map(|n| pass_env_problem(n)) {
            return bad(&format!("pass_env: {problem}"));
        }
        Ok(())
    }
}

/// What is wrong with a pass-env entry (a variable name, or a prefix ending in `*`), if
/// anything.
pub(crate) fn pass_env_problem(entry: &str) -> Option<String> {
    let stem = entry.strip_suffix('*').unwrap_or(entry);
    if stem.is_empty() {
        return Some(format!(
            "`{entry}` names nothing (to pass everything, inherit the whole environment)"
        ));
    }
    if stem.contains(['=', '*']) || stem.chars().any(char::is_whitespace) {
        return Some(format!(
            "`{entry}` is neither a variable name nor a prefix ending in `*`"
        ));
    }
    None
}

/// "`FILE`: " for a setting read from a configuration file, else nothing: every
/// configuration message about a file names it first.
pub(crate) fn at(origin: Option<&Path>) -> String {
    origin.map_or_else(String::new, |p| format!("`{}`: ", p.display()))
}

/// An [`Error::Config`] about server `server`, naming the file it was read from.
pub(crate) fn server_error(origin: Option<&Path>, server: &str, what: impl fmt::Display) -> Error {
    Error::Config(format!("{}server `{server}`: {what}", at(origin)))
}

/// A configuration error given the file it is about, when there is one.
pub(crate) fn located(origin: Option<&Path>, error: Error) -> Error {
    match error {
        Error::Config(m) if origin.is_some() => Error::Config(format!("{}{m}", at(origin))),
        other => other,
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("http", &self.http)
            .field("caller", &self.caller)
            .field("args", &self.args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("inherit_env", &self.inherit_env)
            .field("pass_env", &self.pass_env)
            .field("generation", &self.generation)
            .field("request_timeout", &self.request_timeout)
            .field("start_timeout", &self.start_timeout)
            .finish_non_exhaustive()
    }
}

/// When a call interrupted by a dying session is retried once on a fresh session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RetryPolicy {
    /// Never retry.
    Never,
    /// Retry when it cannot run a tool twice: the request was never written, the method is
    /// read-only (`tools/list`, `resources/read`, `ping`, ...), or the tool's annotations say
    /// `readOnlyHint` or `idempotentHint`.
    #[default]
    Safe,
    /// Retry once whatever happened, accepting that a tool may run twice.
    Always,
}

/// Who may use a server's pooled sessions: any caller, or only the caller whose key started
/// the session.
///
/// Choose [`Shared`](Self::Shared) (the default) for servers whose tools keep no state
/// between calls (a search, a calculator, a file reader over a fixed tree): every caller
/// uses the same few sessions, so the fewest processes run and almost every call finds a
/// live session. Choose [`PerCaller`](Self::PerCaller) for servers that remember things
/// between calls or act for one user: a memory store, a browser, a shell, a database
/// session, a server authenticated per user (its handler and token provider are told the
/// key: [`ServerRequest::caller`](crate::ServerRequest::caller),
/// [`TokenRequest::caller`](crate::TokenRequest::caller)). On a multi-tenant host, pooling such a
/// server by its name alone hands one user's state (the browser's pages, the memory's
/// entries, the shell's directory) to the next user; with `PerCaller` two callers never
/// share a session, at the cost of a process (or HTTP session) per live caller.
///
/// ```
/// use mcp_pool::{PoolSettings, Sharing};
///
/// let browser = PoolSettings::new().sharing(Sharing::PerCaller).max_sessions(1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Sharing {
    /// Every caller uses the same sessions; a caller key given to a call is ignored.
    #[default]
    Shared,
    /// A session belongs to the caller key that started it and serves only calls with that
    /// key ([`CallOptions::caller`](crate::CallOptions::caller),
    /// [`Pool::call_tool_as`](crate::Pool::call_tool_as),
    /// [`Pool::session_for`](crate::Pool::session_for)); a pooled call without a key fails
    /// with [`Error::InvalidArgument`]. `max_sessions` and `max_in_flight` apply to each key;
    /// the pool's `max_children` bounds them all.
    PerCaller,
}

/// How the pool runs one server's sessions.
///
/// ```
/// use std::time::Duration;
/// use mcp_pool::{PoolSettings, RetryPolicy};
///
/// let settings = PoolSettings::new()
///     .max_sessions(4)
///     .min_sessions(1)
///     .idle_timeout(Duration::from_secs(60))
///     .retry(RetryPolicy::Never);
/// ```
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub(crate) max_sessions: usize,
    pub(crate) min_sessions: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) queue_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) lifetime_jitter: Duration,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) retry: RetryPolicy,
    pub(crate) failure_threshold: u32,
    pub(crate) cooldown: Duration,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) direct: bool,
    pub(crate) probe_timeout: Duration,
    pub(crate) sharing: Sharing,
    /// The configuration file the settings were read from, for messages.
    pub(crate) origin: Option<Arc<Path>>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_sessions: 1,
            min_sessions: 0,
            max_in_flight: 256,
            queue_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(3600),
            lifetime_jitter: Duration::from_secs(60),
            keepalive: None,
            retry: RetryPolicy::Safe,
            failure_threshold: 3,
            cooldown: Duration::from_secs(30),
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            direct: false,
            probe_timeout: Duration::from_secs(3),
            sharing: Sharing::Shared,
            origin: None,
        }
    }
}

impl PoolSettings {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most sessions (child processes) for this server. Defaults to 1.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Sessions kept warm: started when the pool is built and never reaped for idleness.
    /// Defaults to 0.
    pub fn min_sessions(mut self, n: usize) -> Self {
        self.min_sessions = n;
        self
    }

    /// The most calls in flight on one session; past it a call goes to another session or
    /// waits. Defaults to 256.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// How long a call waits for capacity (a session with room, or one starting) before it
    /// fails with [`Error::PoolBusy`]; never longer than the call's own deadline. Defaults to
    /// 30 s.
    pub fn queue_timeout(mut self, timeout: Duration) -> Self {
        self.queue_timeout = timeout;
        self
    }

    /// A session unused this long is closed. Defaults to 300 s.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// A session this old takes no new calls and closes when its last call ends. Defaults to
    /// 3600 s.
    pub fn max_lifetime(mut self, lifetime: Duration) -> Self {
        self.max_lifetime = lifetime;
        self
    }

    /// Each session's lifetime is shortened by a random amount up to this, so sessions started
    /// together do not all restart together. Defaults to 60 s (never more than a tenth of the
    /// lifetime).
    pub fn lifetime_jitter(mut self, jitter: Duration) -> Self {
        self.lifetime_jitter = jitter;
        self
    }

    /// Pings idle sessions at this interval; a session that fails the ping is replaced.
    /// Defaults to off.
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.keepalive = interval;
        self
    }

    /// When interrupted calls are retried. Defaults to [`RetryPolicy::Safe`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// After this many spawn or handshake failures in a row the server is marked failing and
    /// calls fail fast until the cool-down passes. Defaults to 3.
    pub fn failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n;
        self
    }

    /// How long a failing server is left alone. Defaults to 30 s.
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Restarts after a failure wait `base`, doubling per failure in a row, up to `max`.
    /// Defaults to 100 ms and 10 s.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max;
        self
    }

    /// Direct mode: every call spawns the server, calls, and closes it (no pooling). Defaults
    /// to `false`.
    pub fn direct(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// After a call on a session times out or is cancelled, the session takes no new calls
    /// while a health check (`ping`, or `server/discover` in the per-request generation)
    /// waits this long for an answer; a session that gets none is replaced, and its calls in
    /// flight end as outcome unknown. Defaults to 3 s.
    pub fn probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Whether callers share the sessions or each caller key has its own (see [`Sharing`]
    /// for when to choose which). With [`Sharing::PerCaller`], every pooled call needs a
    /// caller key ([`CallOptions::caller`](crate::CallOptions::caller)), `max_sessions`
    /// and `max_in_flight` apply to each key, and `min_sessions` must be 0 (there is no
    /// caller to warm a session for). Direct mode shares nothing, so it needs no key.
    /// Defaults to [`Sharing::Shared`].
    ///
    /// ```no_run
    /// use mcp_pool::{Pool, PoolSettings, ServerConfig, Sharing};
    /// use serde_json::json;
    ///
    /// let pool = Pool::builder()
    ///     .server_with(
    ///         ServerConfig::new("memory", "npx").args(["-y", "@modelcontextprotocol/server-memory"]),
    ///         PoolSettings::new().sharing(Sharing::PerCaller),
    ///     )
    ///     .build()?;
    /// // Alice's entities stay in Alice's server process.
    /// pool.call_tool_as("alice", "memory", "read_graph", json!({}))?;
    /// # Ok::<(), mcp_pool::Error>(())
    /// ```
    pub fn sharing(mut self, sharing: Sharing) -> Self {
        self.sharing = sharing;
        self
    }

    pub(crate) fn validate(&self, server: &str) -> Result<(), Error> {
        let origin = self.origin.as_deref();
        let bad = |what: &str| Err(server_error(origin, server, what));
        if self.sharing == Sharing::PerCaller && self.min_sessions > 0 {
            return bad(
                "min sessions must be 0 with per-caller sharing (there is no caller to warm \
                 a session for)",
            );
        }
        if self.probe_timeout.is_zero() {
            return bad("probe timeout must be more than zero");
        }
        if self.max_sessions == 0 {
            return bad("max sessions must be at least 1");
        }
        if self.min_sessions > self.max_sessions {
            return bad("min sessions is more than max sessions");
        }
        if self.max_in_flight == 0 {
            return bad("max in flight must be at least 1");
        }
        if self.idle_timeout.is_zero() || self.max_lifetime.is_zero() {
            return bad("idle timeout and max lifetime must be more than zero");
        }
        if self.keepalive.is_some_and(|k| k.is_zero()) {
            return bad("keepalive interval must be more than zero");
        }
        if self.failure_threshold == 0 {
            return bad("failure threshold must be at least 1");
        }
        if self.backoff_base > self.backoff_max {
            return bad("backoff base is longer than its maximum");
        }
        for (what, d) in [
            ("queue timeout", self.queue_timeout),
            ("idle timeout", self.idle_timeout),
            ("max lifetime", self.max_lifetime),
            ("lifetime jitter", self.lifetime_jitter),
            ("keepalive interval", self.keepalive.unwrap_or_default()),
            ("cool-down", self.cooldown),
            ("backoff maximum", self.backoff_max),
            ("probe timeout", self.probe_timeout),
        ] {
            if d > MAX_DURATION {
                return bad(&format!(
                    "{what} is longer than {} years",
                    MAX_DURATION_YEARS
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_durations_are_rejected_not_overflowed() {
        let huge = Duration::from_secs(u64::MAX / 2);
        let err = ServerConfig::new("s", "x")
            .close_grace(huge)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("close grace"), "{err}");
        let err = PoolSettings::new()
            .keepalive(Some(huge))
            .validate("s")
            .unwrap_err();
        assert!(err.to_string().contains("keepalive"), "{err}");
    }

    #[test]
    fn validation_names_server_and_setting() {
        let err = ServerConfig::new("s", " ").validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: server `s`: `command` is empty"
        );
        let err = ServerConfig::new("s", "x")
            .request_timeout(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("request timeout"), "{err}");
        assert!(ServerConfig::new("s", "x").validate().is_ok());
    }

    #[test]
    fn debug_hides_env_values() {
        let c = ServerConfig::new("s", "x").env("TOKEN", "secret");
        let s = format!("{c:?}");
        assert!(s.contains("TOKEN") && !s.contains("secret"), "{s}");
    }
}
