//! The one error type of the crate, its kinds, and why a session ended.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong with a call, a session or a pool.
///
/// Variants are chosen so a caller can act on them: retry on [`Error::SessionClosed`] (the
/// request was never written), give up on [`Error::Spawn`], report [`Error::OutcomeUnknown`]
/// without retrying a tool that is not safe to repeat. Errors are cheap to clone.
///
/// ```no_run
/// use mcp_pool::{Error, Pool};
/// # let pool = Pool::builder().server(mcp_pool::ServerConfig::new("s", "srv")).build()?;
/// match pool.call_tool("s", "create_ticket", serde_json::json!({"title": "x"})) {
///     Ok(result) if result.is_error => eprintln!("the tool failed: {}", result.text()),
///     Ok(result) => println!("{}", result.text()),
///     // Sent, but the server died before answering: it may have run. Don't repeat blindly.
///     Err(Error::OutcomeUnknown { reason, .. }) => eprintln!("unknown outcome: {reason}"),
///     Err(Error::Timeout { after, .. }) => eprintln!("no answer within {after:?}"),
///     Err(e) => eprintln!("failed ({}): {e}", e.kind()),
/// }
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server process could not be started. The operating system's error is in the
    /// message and in `error` (not repeated as [`source`](std::error::Error::source)).
    #[error("cannot start `{command}`: {error}")]
    Spawn {
        /// The command as configured (or what could not be started, such as a thread).
        command: String,
        /// The operating system's error.
        error: Arc<std::io::Error>,
    },

    /// The server started but the MCP handshake (or `server/discover`) failed.
    #[error("handshake with server failed: {reason}{}", StderrTail(stderr_tail))]
    Handshake {
        /// What went wrong.
        reason: String,
        /// The last lines the server wrote to stderr.
        stderr_tail: String,
    },

    /// The server answered with a JSON-RPC error.
    #[error("server error {code}: {message}")]
    Server {
        /// The JSON-RPC error code.
        code: i64,
        /// The error message.
        message: String,
        /// The optional `data` member.
        data: Option<serde_json::Value>,
    },

    /// A deadline passed.
    #[error("timed out during {phase} after {after:?}")]
    Timeout {
        /// Which phase timed out.
        phase: Phase,
        /// How long the call had waited.
        after: Duration,
    },

    /// The call was cancelled through its [`CancelHandle`](crate::CancelHandle).
    #[error("request cancelled")]
    Cancelled,

    /// The session ended (the child exited, closed stdout, or the session was closed) before
    /// any byte of the request was written. It cannot have run: safe to retry.
    #[error("session closed: {reason}{}", StderrTail(stderr_tail))]
    SessionClosed {
        /// Why: exit status, signal, end of output, or closed by the client.
        reason: CloseReason,
        /// The last lines the server wrote to stderr.
        stderr_tail: String,
    },

    /// The request was written to the server but the session ended before an answer came.
    /// The server may or may not have acted on it.
    #[error(
        "outcome unknown: request was sent but the session ended ({reason}){}",
        StderrTail(stderr_tail)
    )]
    OutcomeUnknown {
        /// Why the session ended.
        reason: CloseReason,
        /// The last lines the server wrote to stderr.
        stderr_tail: String,
    },

    /// The server's answer was longer than the session's message size limit
    /// ([`ServerConfig::max_message_size`](crate::ServerConfig::max_message_size)). The
    /// answer was read and dropped; the session goes on. Repeating the call gives the same.
    #[error("the server's answer of {size} bytes is over the message size limit of {limit} bytes")]
    TooLarge {
        /// The configured limit, in bytes.
        limit: usize,
        /// The size of the answer, in bytes.
        size: usize,
    },

    /// The server broke the protocol (an answer of the wrong shape, an unknown version or
    /// `resultType`, a cursor loop, input asked for too many times).
    #[error("protocol violation: {0}")]
    Protocol(String),

    /// The server asked for input (multi round-trip: elicitation, sampling, roots) that this
    /// client cannot or would not give: the handler does not support it, or refused.
    #[error("the server asked for `{method}`, which the client did not give: {reason}")]
    InputRefused {
        /// The input request's method, e.g. `elicitation/create`.
        method: String,
        /// Why (the handler's message, or what is not supported).
        reason: String,
    },

    /// The tool declared an output schema and its result's `structuredContent` does not
    /// match it. The result is kept, unchecked.
    #[error("the result of tool `{tool}` does not match its output schema: {message}")]
    InvalidOutput {
        /// The tool.
        tool: String,
        /// What the validator said.
        message: String,
        /// The result as the server sent it.
        result: Box<crate::protocol::CallToolResult>,
    },

    /// The call was refused here, not sent: the agreed protocol version removed the method,
    /// or the server did not declare the capability it needs.
    #[error("`{method}` is not available on this server: {reason}")]
    Unsupported {
        /// The method.
        method: String,
        /// Why.
        reason: String,
    },

    /// The server needs the user to complete URL elicitations first (JSON-RPC error
    /// -32042, 2025-11-25): each names a URL to show the user, who then retries.
    #[error("the server needs {} URL elicitation(s) first: {message}", elicitations.len())]
    UrlElicitationRequired {
        /// The server's message.
        message: String,
        /// The elicitations (`mode`, `url`, `message`, `elicitationId`), as sent.
        elicitations: Vec<serde_json::Value>,
    },

    /// The server could not be reached over HTTP, or the connection failed under a
    /// request: refused, unknown host, TLS failure, a dropped or malformed exchange. The URL
    /// is shown without its query or credentials.
    #[error("cannot reach `{url}` ({kind}): {reason}")]
    Connect {
        /// The server's URL, redacted.
        url: String,
        /// What failed.
        kind: ConnectKind,
        /// The details.
        reason: String,
    },

    /// The HTTP server answered a status that carries no MCP answer (a 500 without a
    /// JSON-RPC error, a 403, a redirect that cannot be followed, ...). The session goes on.
    #[error("`{url}` answered HTTP {status}: {message}")]
    Http {
        /// The server's URL, redacted.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What the server said (the start of its body) or why it cannot be used.
        message: String,
    },

    /// The HTTP server refused the request's credentials (401, or 403 for too narrow a
    /// scope) after the token provider, if any, was asked once more. Tokens never appear
    /// in the error.
    #[error("`{url}` refused the credentials (HTTP {status}){}", challenge.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
    Unauthorized {
        /// The server's URL, redacted.
        url: String,
        /// 401 or 403.
        status: u16,
        /// The `WWW-Authenticate` challenge, when the server sent one.
        challenge: Option<Box<crate::Challenge>>,
    },

    /// An argument given by the caller is invalid (bad method name, params not an object, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The pool (or session) was closed by its owner.
    #[error("pool closed")]
    PoolClosed,

    /// Every session of the server was busy for longer than the queue timeout.
    #[error("pool busy: no session of `{server}` had room within {waited:?}")]
    PoolBusy {
        /// The server.
        server: String,
        /// How long the call waited.
        waited: Duration,
    },

    /// The server is marked failing after repeated start failures; calls fail fast until
    /// the cool-down passes. Carries the last failure.
    #[error("server `{server}` is failing (next try in {retry_in:?}): {last_error}")]
    ServerFailing {
        /// The server.
        server: String,
        /// The last spawn or handshake error (with its stderr tail).
        last_error: Box<Error>,
        /// Time left until the next attempt.
        retry_in: Duration,
    },

    /// No server of that name is configured.
    #[error("unknown server `{0}`")]
    UnknownServer(String),

    /// The tool ran and reported a failure (`isError`). Calls never return it by
    /// themselves (a tool's failure is a result the model may read); it is what
    /// [`CallToolResult::into_result`](crate::CallToolResult::into_result) and
    /// [`CallToolResult::structured`](crate::CallToolResult::structured) make of one.
    #[error("the tool failed: {message}")]
    Tool {
        /// The result's text (its text items, joined by newlines): the tool's message.
        message: String,
        /// The result as the server sent it.
        result: Box<crate::protocol::CallToolResult>,
    },
}

/// The kind of an [`Error`]: its variant without the details. Stable names for statistics,
/// logs and the C API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorKind {
    /// [`Error::Spawn`].
    Spawn,
    /// [`Error::Handshake`].
    Handshake,
    /// [`Error::Server`].
    Server,
    /// [`Error::Timeout`].
    Timeout,
    /// [`Error::Cancelled`].
    Cancelled,
    /// [`Error::SessionClosed`].
    SessionClosed,
    /// [`Error::OutcomeUnknown`].
    OutcomeUnknown,
    /// [`Error::TooLarge`].
    TooLarge,
    /// [`Error::Protocol`].
    Protocol,
    /// [`Error::InputRefused`].
    InputRefused,
    /// [`Error::InvalidOutput`].
    InvalidOutput,
    /// [`Error::Unsupported`].
    Unsupported,
    /// [`Error::UrlElicitationRequired`].
    UrlElicitationRequired,
    /// [`Error::Connect`].
    Connect,
    /// [`Error::Http`].
    Http,
    /// [`Error::Unauthorized`].
    Unauthorized,
    /// [`Error::InvalidArgument`].
    InvalidArgument,
    /// [`Error::Config`].
    Config,
    /// [`Error::PoolClosed`].
    PoolClosed,
    /// [`Error::PoolBusy`].
    PoolBusy,
    /// [`Error::ServerFailing`].
    ServerFailing,
    /// [`Error::UnknownServer`].
    UnknownServer,
    /// [`Error::Tool`].
    Tool,
}

impl ErrorKind {
    /// The kind's stable snake_case name, e.g. `"outcome_unknown"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Spawn => "spawn",
            ErrorKind::Handshake => "handshake",
            ErrorKind::Server => "server",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::SessionClosed => "session_closed",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Protocol => "protocol",
            ErrorKind::InputRefused => "input_refused",
            ErrorKind::InvalidOutput => "invalid_output",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::UrlElicitationRequired => "url_elicitation_required",
            ErrorKind::Connect => "connect",
            ErrorKind::Http => "http",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Config => "config",
            ErrorKind::PoolClosed => "pool_closed",
            ErrorKind::PoolBusy => "pool_busy",
            ErrorKind::ServerFailing => "server_failing",
            ErrorKind::UnknownServer => "unknown_server",
            ErrorKind::Tool => "tool",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stderr tail the error carries, if any.
    pub fn stderr_tail(&self) -> Option<&str> {
        match self {
            Error::Handshake { stderr_tail, .. }
            | Error::SessionClosed { stderr_tail, .. }
            | Error::OutcomeUnknown { stderr_tail, .. } => Some(stderr_tail),
            Error::ServerFailing { last_error, .. } => last_error.stderr_tail(),
            _ => None,
        }
    }

    /// The error's kind.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Spawn { .. } => ErrorKind::Spawn,
            Error::Handshake { .. } => ErrorKind::Handshake,
            Error::Server { .. } => ErrorKind::Server,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::SessionClosed { .. } => ErrorKind::SessionClosed,
            Error::OutcomeUnknown { .. } => ErrorKind::OutcomeUnknown,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::Protocol(_) => ErrorKind::Protocol,
            Error::InputRefused { .. } => ErrorKind::InputRefused,
            Error::InvalidOutput { .. } => ErrorKind::InvalidOutput,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::UrlElicitationRequired { .. } => ErrorKind::UrlElicitationRequired,
            Error::Connect { .. } => ErrorKind::Connect,
            Error::Http { .. } => ErrorKind::Http,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Config(_) => ErrorKind::Config,
            Error::PoolClosed => ErrorKind::PoolClosed,
            Error::PoolBusy { .. } => ErrorKind::PoolBusy,
            Error::ServerFailing { .. } => ErrorKind::ServerFailing,
            Error::UnknownServer(_) => ErrorKind::UnknownServer,
            Error::Tool { .. } => ErrorKind::Tool,
        }
    }

    /// A spawn error for `command`.
    pub(crate) fn spawn(command: impl Into<String>, error: std::io::Error) -> Error {
        Error::Spawn {
            command: command.into(),
            error: Arc::new(error),
        }
    }
}

/// What failed when an HTTP server could not be reached ([`Error::Connect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectKind {
    /// The host name did not resolve.
    Dns,
    /// Nothing listens there (connection refused, host unreachable).
    Refused,
    /// The TLS handshake failed (an unknown certificate authority, a name mismatch, ...).
    Tls,
    /// The connection broke or the server's HTTP was malformed.
    Io,
}

impl fmt::Display for ConnectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectKind::Dns => "unknown host",
            ConnectKind::Refused => "connection refused",
            ConnectKind::Tls => "TLS",
            ConnectKind::Io => "connection failed",
        })
    }
}

/// The phase in which a [`Error::Timeout`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Starting the process and completing the handshake.
    Handshake,
    /// Waiting for the answer to a request.
    Request,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Handshake => "handshake",
            Phase::Request => "request",
        })
    }
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The child exited with this code.
    Exited(i32),
    /// The child was killed by this signal.
    Signaled(i32),
    /// The child closed its standard output; the process may still be running.
    Eof,
    /// The session broke on a protocol or I/O error.
    Broken(String),
    /// The server stopped answering: a health probe after a timed-out or cancelled call got
    /// no answer, so the pool replaced the session.
    Unresponsive,
    /// The HTTP server forgot the session: it answered 404 for the session's id.
    Gone,
    /// The client closed the session.
    Closed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Exited(code) => write!(f, "server exited with code {code}"),
            CloseReason::Signaled(sig) => write!(f, "server killed by signal {sig}"),
            CloseReason::Eof => f.write_str("server closed its output"),
            CloseReason::Broken(why) => write!(f, "session broken: {why}"),
            CloseReason::Unresponsive => {
                f.write_str("server stopped answering; the session was replaced")
            }
            CloseReason::Gone => f.write_str("the server ended the session (HTTP 404)"),
            CloseReason::Closed => f.write_str("closed by the client"),
        }
    }
}

/// Formats a stderr tail as a suffix of an error message: nothing when empty.
struct StderrTail<'a>(&'a str);

impl fmt::Display for StderrTail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.trim_end();
        if tail.is_empty() {
            return Ok(());
        }
        let last: Vec<&str> = tail.lines().rev().take(3).collect();
        f.write_str("; server stderr: ")?;
        for (i, line) in last.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(line)?;
        }
        Ok(())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_stays_small() {
        assert!(
            std::mem::size_of::<Error>() <= 80,
            "{}",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn display_carries_the_last_stderr_lines() {
        let e = Error::SessionClosed {
            reason: CloseReason::Exited(3),
            stderr_tail: "a\nb\nc\nboom\n".into(),
        };
        assert_eq!(
            e.to_string(),
            "session closed: server exited with code 3; server stderr: b | c | boom"
        );
        assert_eq!(e.kind(), ErrorKind::SessionClosed);
        assert_eq!(e.kind().as_str(), "session_closed");
    }

    #[test]
    fn spawn_names_the_os_error_once() {
        let e = Error::spawn(
            "npx",
            std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        );
        assert_eq!(e.to_string(), "cannot start `npx`: No such file");
        assert!(std::error::Error::source(&e).is_none());
        // Clones share the OS error.
        let Error::Spawn { error, .. } = e.clone() else {
            unreachable!()
        };
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    }
}
