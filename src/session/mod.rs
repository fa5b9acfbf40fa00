//! One live MCP session with one server, knowing nothing of pools.
//!
//! | file | job |
//! |---|---|
//! | `handle.rs` | [`Session`], the caller-facing handle: every call kind, closing |
//! | `options.rs` | [`CallOptions`], [`BatchOptions`], [`CancelHandle`] |
//! | `run.rs` | from a call kind to its final result: refusing what the server cannot take, paging, `resultType`, input rounds, tasks, output checks |
//! | `listen.rs` | subscriptions of the per-request generation (`subscriptions/listen`) |
//! | `tasks.rs` | [`TaskHandle`]: a task-augmented tool call the caller follows itself (2025-11-25) |
//! | `batch.rs` | batches: one hand-over to the worker, answers on one channel, each under the single call's result rules; over HTTP a POST each |
//! | `call.rs` | one request, top to bottom: register, hand to the worker, wait (reading the answer itself when it holds the read token), give up |
//! | `pending.rs` | the table of requests in flight and the read token: the one owner of "registered before written" and of "was any byte sent" |
//! | `inbound.rs` | line framing of the server's output with the size cap, and what each message does |
//! | `shared.rs` | what the worker, readers and handles share: the lifecycle, the doorbells, counters |
//! | `worker.rs` | the worker thread: writes, reads while no caller does, stderr, child exit, ending |
//! | `outbox.rs` | the worker's write buffer: offsets, per-request "sent" from the first byte, a bound |
//! | `handshake.rs` | agreeing on a generation: a pure decision and its driver |
//! | `process.rs` | spawning, the environment policy, the stderr tail, the kill ladder |
//! | `watchdog.rs` | the process that kills registered process groups when the host dies |
//! | `sys.rs` | the few system calls made directly (`poll`, `eventfd`, `pidfd_open`, ...) |
//! | `http/` | sessions over HTTP: Streamable HTTP (both generations) and HTTP+SSE |

mod batch;
mod buffer;
mod call;
mod handle;
mod handshake;
pub(crate) mod http;
mod inbound;
mod listen;
mod options;
mod outbox;
mod pending;
pub(crate) mod process;
mod run;
mod shared;
mod sys;
mod tasks;
pub(crate) mod watchdog;
mod worker;

pub use handle::Session;
pub(crate) use handle::{Joiner, Starting};
pub use listen::{ListenFilter, Subscription};
pub use options::{BatchOptions, CallOptions, CancelHandle};
pub use tasks::TaskHandle;
pub(crate) use worker::{spawn_process, Connect};

#[cfg(test)]
mod tests;
