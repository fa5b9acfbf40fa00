//! The one error type of the crate.

use std::fmt;
use std::time::Duration;

/// What went wrong with a call, a session or a pool.
///
/// Variants are chosen so a caller can act on them: retry on [`Error::SessionClosed`] when
/// the request was never written, give up on [`Error::Spawn`], report
/// [`Error::OutcomeUnknown`] without retrying a tool that is not safe to repeat.
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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server process could not be started.
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        /// The command as configured.
        command: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
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
        /// How long was waited.
        after: Duration,
    },

    /// The call was cancelled through its [`CancelHandle`](crate::CancelHandle).
    #[error("request cancelled")]
    Cancelled,

    /// The session ended (the child exited, closed stdout, or the session was closed) before
    /// the request was written. Safe to retry on a fresh session.
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

    /// The server broke the protocol (an answer of the wrong shape, an unknown version, a
    /// message over the size limit, a cursor loop).
    #[error("protocol violation: {0}")]
    Protocol(String),

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

    /// A copy of this error, for handing one failure to several waiting callers.
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Spawn { command, source } => Error::Spawn {
                command: command.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Handshake {
                reason,
                stderr_tail,
            } => Error::Handshake {
                reason: reason.clone(),
                stderr_tail: stderr_tail.clone(),
            },
            Error::Server {
                code,
                message,
                data,
            } => Error::Server {
                code: *code,
                message: message.clone(),
                data: data.clone(),
            },
            Error::Timeout { phase, after } => Error::Timeout {
                phase: *phase,
                after: *after,
            },
            Error::Cancelled => Error::Cancelled,
            Error::SessionClosed {
                reason,
                stderr_tail,
            } => Error::SessionClosed {
                reason: reason.clone(),
                stderr_tail: stderr_tail.clone(),
            },
            Error::OutcomeUnknown {
                reason,
                stderr_tail,
            } => Error::OutcomeUnknown {
                reason: reason.clone(),
                stderr_tail: stderr_tail.clone(),
            },
            Error::Protocol(m) => Error::Protocol(m.clone()),
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::Config(m) => Error::Config(m.clone()),
            Error::PoolClosed => Error::PoolClosed,
            Error::PoolBusy { server, waited } => Error::PoolBusy {
                server: server.clone(),
                waited: *waited,
            },
            Error::ServerFailing {
                server,
                last_error,
                retry_in,
            } => Error::ServerFailing {
                server: server.clone(),
                last_error: Box::new(last_error.duplicate()),
                retry_in: *retry_in,
            },
            Error::UnknownServer(s) => Error::UnknownServer(s.clone()),
        }
    }

    /// A short stable name of the variant, for statistics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Spawn { .. } => "spawn",
            Error::Handshake { .. } => "handshake",
            Error::Server { .. } => "server",
            Error::Timeout { .. } => "timeout",
            Error::Cancelled => "cancelled",
            Error::SessionClosed { .. } => "session_closed",
            Error::OutcomeUnknown { .. } => "outcome_unknown",
            Error::Protocol(_) => "protocol",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::Config(_) => "config",
            Error::PoolClosed => "pool_closed",
            Error::PoolBusy { .. } => "pool_busy",
            Error::ServerFailing { .. } => "server_failing",
            Error::UnknownServer(_) => "unknown_server",
        }
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
    /// Shutting a session down.
    Close,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Handshake => "handshake",
            Phase::Request => "request",
            Phase::Close => "close",
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
        assert_eq!(e.kind(), "session_closed");
    }
}
