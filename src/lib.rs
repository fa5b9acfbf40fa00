//! Blocking, thread-based client sessions for MCP (Model Context Protocol) servers, pooled:
//! servers started as child processes (JSON-RPC over stdin/stdout) or reached over HTTP
//! (Streamable HTTP, or the older HTTP+SSE), kept alive and shared by any number of
//! threads, so a tool call costs a pipe round trip (or a request on a kept-alive
//! connection) instead of a process start and a handshake. No async runtime.
//!
//! # The pool
//!
//! A [`Pool`] holds named servers, each with a set of sessions it starts on first use,
//! reuses, replaces when they die or stop answering, and closes when idle or old.
//!
//! ```no_run
//! use mcp_pool::{Pool, PoolSettings, ServerConfig};
//! use serde_json::json;
//!
//! let pool = Pool::builder()
//!     .server(ServerConfig::new("files", "npx").args(["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]))
//!     .server_with(
//!         ServerConfig::http("docs", "https://mcp.example.com/mcp").header("X-Team", "search"),
//!         PoolSettings::new().max_sessions(4),
//!     )
//!     .build()?;
//! let result = pool.call_tool("files", "list_directory", json!({"path": "/tmp"}))?;
//! println!("{}", result.text());
//! # Ok::<(), mcp_pool::Error>(())
//! ```
//!
//! Or from the `mcpServers` file Claude Desktop, Cursor and VS Code use (`command`
//! entries and `url` entries alike; see [`PoolBuilder::from_json`]):
//!
//! ```no_run
//! let pool = mcp_pool::Pool::from_file("mcp.json")?;
//! # Ok::<(), mcp_pool::Error>(())
//! ```
//!
//! - **Calls**: every call kind of the protocol ([`Pool::call_tool`], resources, prompts,
//!   completion, [`Pool::request`] for the rest), each with [`CallOptions`]: a deadline
//!   (which also covers waiting for a session to start), progress, a [`CancelHandle`],
//!   `_meta`, a log level, a caller key. Every call ends in its result or a typed [`Error`]
//!   within its deadline.
//! - **Retries** never run a tool twice: a request that never reached the server goes to
//!   another session; one that did goes again only when the method is read-only or the
//!   tool says it is safe ([`RetryPolicy`]); otherwise the caller gets
//!   [`Error::OutcomeUnknown`].
//! - **Batches**: [`Pool::batch`] sends many calls on one session without waiting between
//!   them, one result per call.
//! - **Statistics**: [`Pool::stats`] (hits, misses, errors by kind, latency, ...), as
//!   JSON too.
//! - **Closing**: [`Pool::close`] shuts every server down and reaps it; nothing is left
//!   behind.
//! - **Threads**: a call runs on the caller's thread; each session has one worker thread;
//!   a pool has one reaper. ARCHITECTURE.md lists every thread.
//!
//! # One session
//!
//! A [`Session`] is one live connection to one server, for callers that manage their own:
//! the same call kinds, plus subscriptions ([`Session::listen`]), task handles
//! ([`Session::call_tool_as_task`]) and the session's own details. A [`ClientHandler`]
//! answers the server's requests (roots, sampling, elicitation) in either protocol
//! generation.
//!
//! # From C
//!
//! The library is also a `cdylib` and a `staticlib` with the C header
//! `include/mcp_pool.h`; see the README.
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod config;
mod deadline;
mod error;
// The C ABI (`include/mcp_pool.h`): private, since its items are for C, not Rust callers.
mod ffi;
mod handler;
mod jsonrpc;
mod pool;
mod protocol;
mod session;

pub use config::{
    Generation, HttpTransport, PoolSettings, RetryPolicy, ServerConfig, Sharing, SkippedServer,
};
pub use error::{CloseReason, ConnectKind, Error, ErrorKind, Phase, Result};
pub use handler::{
    ClientHandler, ElicitAction, HandlerError, HandlerSupport, ListKind, LogMessage, NoHandler,
    ServerRequest, StaticRoots, UrlElicitation,
};
pub use pool::{Percentiles, Pool, PoolBuilder, PoolStats, ServerStats};
pub use protocol::{
    is_read_only_method, CallToolResult, Content, GetPromptResult, Implementation, LogLevel,
    Progress, Prompt, PromptArgument, PromptMessage, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerDetails, Task, TaskStatus, TaskSupport, Tool,
    ToolAnnotations, ToolCall, ToolExecution,
};
pub use session::http::{Challenge, TokenProvider, TokenRequest};
pub use session::{
    BatchOptions, CallOptions, CancelHandle, ListenFilter, Session, Subscription, TaskHandle,
};

/// Starts the process-wide watchdog now (it otherwise starts with the first server) and
/// returns its pid. For tests that count this process's children and descriptors: the
/// watchdog is one child and one socket for the life of the process.
#[doc(hidden)]
pub fn __watchdog_pid() -> Option<u32> {
    session::watchdog::ensure_running()
}
