//! HTTP sessions: Streamable HTTP in both protocol generations, and the deprecated HTTP+SSE
//! transport (2024-11-05), behind the same [`Session`](super::Session) API.
//!
//! | file | job |
//! |---|---|
//! | `worker.rs` | the session's worker: the start (generation and transport), posting notifications and answers, the streams no caller reads, the end |
//! | `exchange.rs` | one request on the caller's thread: POST it, read its JSON or event-stream reply, resume a cut stream, give up on time |
//! | `link.rs` | what every request carries and the one place requests are made: redirects, a refused token renewed once, `Retry-After` |
//! | `headers.rs` | `Mcp-Method`, `Mcp-Name` and `Mcp-Param-*` (2026-07-28), with the spec's value encoding |
//! | `auth.rs` | [`TokenProvider`], the `WWW-Authenticate` [`Challenge`], secrets that never show |
//! | `sse.rs` | the event-stream parser (WHATWG rules, a bound on one event) |
//! | `net.rs` | the ureq agent whose sockets answer to the calling thread's deadline and stop bell |

mod auth;
mod exchange;
mod headers;
mod link;
mod net;
mod sse;
mod worker;

pub(crate) use auth::Secret;
pub use auth::{Challenge, TokenProvider, TokenRequest};
pub(crate) use exchange::{exchange, Exchanged};
pub(crate) use headers::request_headers;
pub(crate) use link::{parse_roots, redact, Link};
pub(crate) use worker::serve;
