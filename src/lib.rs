//! # mcp-pool
//!
//! Blocking, thread-based client sessions for MCP (Model Context Protocol) servers that run as
//! child processes speaking JSON-RPC over stdin and stdout.
//!
//! Starting a server, handshaking and tearing it down costs 0.3–1.2 s for node and Python
//! servers; a call on a live session costs a pipe round trip. A [`Session`] keeps one server
//! process alive and lets any number of threads call it at once.
//!
//! ```no_run
//! use mcp_pool::{ServerConfig, Session};
//! use serde_json::json;
//!
//! let config = ServerConfig::new("everything", "npx")
//!     .args(["-y", "@modelcontextprotocol/server-everything"]);
//! let session = Session::start(config)?;
//! let result = session.call_tool("echo", json!({"message": "hello"}))?;
//! assert!(!result.is_error);
//! println!("{}", result.text());
//! # Ok::<(), mcp_pool::Error>(())
//! ```
//!
//! ## Threads
//! Each session has a worker thread that owns the child process and writes to its stdin, a
//! reader thread that parses its stdout, and a thread that drains its stderr into `log` (at
//! debug level) and a bounded tail that errors carry. Callers block on their own reply
//! channel and keep their own deadline, so every call ends within its deadline.
//!
//! ## Protocol
//! Both MCP generations are spoken: the per-request one (`server/discover`, 2026-07-28) is
//! probed first and the handshake one (`initialize`, 2024-11-05 to 2025-11-25) is the
//! fallback; [`ServerConfig::generation`] pins one.
#![deny(missing_docs)]
#![warn(rust_2018_idioms)]

mod config;
mod config_file;
mod error;
// The C ABI (`include/mcp_pool.h`): private, since its items are for C, not Rust callers.
mod ffi;
mod handler;
mod jsonrpc;
mod pool;
mod process;
mod protocol;
mod reaper;
mod session;
mod slot;
mod stats;
mod transport;
mod worker;

pub use config::{Generation, PoolSettings, RetryPolicy, ServerConfig};
pub use error::{CloseReason, Error, Phase, Result};
pub use handler::{ClientHandler, HandlerError, HandlerSupport, ListKind, NoHandler, StaticRoots};
pub use pool::{Pool, PoolBuilder};
pub use protocol::{
    is_read_only_method, CallToolResult, Content, GetPromptResult, Implementation, LogLevel,
    Progress, PromptMessage, ServerDetails, Tool, ToolAnnotations, ToolCall,
};
pub use session::{CallOptions, CancelHandle, Session};
pub use stats::{Percentiles, PoolStats, ServerStats};

#[cfg(test)]
mod tests {
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn handles_are_send_and_sync() {
        assert_send_sync::<super::Session>();
        assert_send_sync::<super::CancelHandle>();
        assert_send_sync::<super::Error>();
        assert_send_sync::<super::ServerConfig>();
        assert_send_sync::<super::Pool>();
    }
}
