//! mcp-pool (being rebuilt)
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

pub use config::{Generation, HttpTransport, PoolSettings, RetryPolicy, ServerConfig};
pub use error::{CloseReason, ConnectKind, Error, ErrorKind, Phase, Result};
pub use handler::{
    ClientHandler, ElicitAction, HandlerError, HandlerSupport, ListKind, LogMessage, NoHandler,
    ServerRequest, StaticRoots, UrlElicitation,
};
pub use pool::{Percentiles, Pool, PoolBuilder, PoolStats, ServerStats};
pub use protocol::{
    is_read_only_method, CallToolResult, Content, GetPromptResult, Implementation, LogLevel,
    Progress, PromptMessage, ServerDetails, Task, TaskStatus, TaskSupport, Tool, ToolAnnotations,
    ToolCall, ToolExecution,
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
