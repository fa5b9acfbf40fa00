//! Configuration: how to start a server and how its sessions behave (`settings.rs`), how to
//! reach a remote one over HTTP (`http.rs`), the `mcpServers` / VS Code file loader
//! (`file.rs`), the table of its `pool` keys (`keys.rs`), and the loader's pure text
//! helpers: JSONC and `${VAR}` (`text.rs`).

mod file;
mod http;
mod keys;
mod settings;
mod text;

pub(crate) use file::Loaded;
pub use file::SkippedServer;
pub(crate) use http::HttpSettings;
pub use http::HttpTransport;
pub(crate) use settings::server_error;
pub use settings::{Generation, PoolSettings, RetryPolicy, ServerConfig, Sharing};
