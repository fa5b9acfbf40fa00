//! How to reach a remote server over HTTP: its URL, the transport variant, headers,
//! credentials and TLS roots. Held by [`ServerConfig`](super::ServerConfig) when it was made
//! with [`ServerConfig::http`](super::ServerConfig::http).

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::session::http::{Secret, TokenProvider};

/// Which HTTP transport a server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HttpTransport {
    /// Streamable HTTP, falling back to the deprecated HTTP+SSE transport (2024-11-05) when
    /// the first POST is refused with 400, 404 or 405 and no MCP error: what the
    /// specification advises for a URL of unknown kind.
    #[default]
    Auto,
    /// Streamable HTTP only (both protocol generations).
    Streamable,
    /// The deprecated HTTP+SSE transport (2024-11-05): a GET event stream that names the
    /// URL to POST messages to.
    Sse,
}

/// The HTTP side of a server's configuration.
#[derive(Clone)]
pub(crate) struct HttpSettings {
    pub url: String,
    pub transport: HttpTransport,
    /// Sent with every request to the server's origin (never to another one).
    pub headers: Vec<(String, Secret)>,
    pub token: Option<Arc<dyn TokenProvider>>,
    /// PEM text of the root certificates trusted instead of the bundled Mozilla roots.
    pub roots_pem: Option<Arc<Vec<u8>>>,
    /// In the handshake generation, keep the optional GET stream open for server messages
    /// that belong to no request.
    pub standalone_stream: bool,
    /// Kept-alive connections per session.
    pub idle_connections: usize,
}

impl HttpSettings {
    pub(crate) fn new(url: String) -> HttpSettings {
        HttpSettings {
            url,
            transport: HttpTransport::Auto,
            headers: Vec::new(),
            token: None,
            roots_pem: None,
            standalone_stream: true,
            idle_connections: 16,
        }
    }

    /// Rejects what cannot work, naming the server.
    pub(crate) fn validate(&self, server: &str) -> Result<(), Error> {
        let bad = |what: String| Err(Error::Config(format!("server `{server}`: {what}")));
        let url = &self.url;
        let rest = match url.split_once("://") {
            Some((scheme, rest))
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
            {
                rest
            }
            _ => {
                return bad(format!(
                    "`url` must start with http:// or https://, not `{}`",
                    crate::session::http::redact(url)
                ))
            }
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.ends_with('@') {
            return bad(format!(
                "`url` {} has no host",
                crate::session::http::redact(url)
            ));
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("`url` contains whitespace or control characters".into());
        }
        if url.parse::<ureq::http::Uri>().is_err() {
            return bad(format!(
                "`url` {} is not a valid URL",
                crate::session::http::redact(url)
            ));
        }
        for (name, value) in &self.headers {
            if name.is_empty() || !name.bytes().all(is_tchar) {
                return bad(format!(
                    "header name `{}` is not a valid HTTP header name",
                    name.escape_debug()
                ));
            }
            if value
                .expose()
                .bytes()
                .any(|b| b == b'\r' || b == b'\n' || b == 0)
            {
                return bad(format!(
                    "the value of header `{name}` contains a line break or NUL"
                ));
            }
            if is_reserved_header(name) {
                return bad(format!(
                    "header `{name}` is set by the MCP transport itself"
                ));
            }
        }
        if let Some(pem) = &self.roots_pem {
            match crate::session::http::parse_roots(pem) {
                Ok(roots) if roots.is_empty() => {
                    return bad("the root certificates hold no PEM certificate".into())
                }
                Ok(_) => {}
                Err(e) => return bad(format!("the root certificates are not valid PEM: {e}")),
            }
        }
        if self.idle_connections == 0 {
            return bad("idle connections must be at least 1".into());
        }
        Ok(())
    }
}

/// Headers the transport sets; a configured one would break it.
fn is_reserved_header(name: &str) -> bool {
    const RESERVED: [&str; 10] = [
        "content-type",
        "content-length",
        "accept",
        "host",
        "transfer-encoding",
        "connection",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
    ];
    let lower = name.to_ascii_lowercase();
    RESERVED.contains(&lower.as_str())
        || lower.starts_with("mcp-param-")
        || lower == "last-event-id"
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("url", &crate::session::http::redact(&self.url))
            .field("transport", &self.transport)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("token_provider", &self.token.is_some())
            .field("custom_roots", &self.roots_pem.is_some())
            .finish_non_exhaustive()
    }
}
