//! Credentials of HTTP sessions: static headers (kept as secrets: never in logs, `Debug`
//! output or errors), a token provider asked before the first request and once more after
//! a refusal, and the `WWW-Authenticate` challenge a refusal carries.
//!
//! The token provider is the seam for a full OAuth 2.1 client: it is told the server's URL
//! and, after a refusal, the challenge (with `resource_metadata`, `scope`, `error`), which
//! is what protected-resource discovery and step-up authorization start from.

use std::fmt;

/// A `WWW-Authenticate` challenge (RFC 9110 section 11.6.1), e.g. `Bearer error="invalid_token",
/// resource_metadata="https://…"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The authentication scheme, e.g. `Bearer`.
    pub scheme: String,
    /// The parameters in order, names lowercased, values unquoted.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (e.g. `error`, `scope`, `resource_metadata`).
    pub fn param(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads the first challenge of a `WWW-Authenticate` value, preferring a `Bearer` one.
    /// Tolerant: what it cannot read is left out.
    pub(crate) fn parse(header: &str) -> Option<Challenge> {
        let mut all = Vec::new();
        let mut current: Option<Challenge> = None;
        let mut rest = header.trim();
        while !rest.is_empty() {
            rest = rest.trim_start_matches([' ', '\t', ',']);
            let token_end = rest.find([' ', '\t', ',', '=']).unwrap_or(rest.len());
            let token = &rest[..token_end];
            if token.is_empty() {
                break;
            }
            let after = rest[token_end..].trim_start_matches([' ', '\t']);
            if let Some(value_part) = after.strip_prefix('=') {
                let value_part = value_part.trim_start_matches([' ', '\t']);
                let (value, next) = read_value(value_part);
                if let Some(c) = current.as_mut() {
                    c.params.push((token.to_ascii_lowercase(), value));
                }
                rest = next;
            } else {
                // A new scheme.
                if let Some(done) = current.take() {
                    all.push(done);
                }
                current = Some(Challenge {
                    scheme: token.to_owned(),
                    params: Vec::new(),
                });
                rest = after;
            }
        }
        if let Some(done) = current {
            all.push(done);
        }
        let bearer = all
            .iter()
            .position(|c| c.scheme.eq_ignore_ascii_case("bearer"));
        match bearer {
            Some(i) => Some(all.swap_remove(i)),
            None => all.into_iter().next(),
        }
    }
}

/// Reads a token or quoted-string value; returns it and what follows.
fn read_value(s: &str) -> (String, &str) {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        out.push(escaped);
                    }
                }
                '"' => return (out, &quoted[i + 1..]),
                _ => out.push(c),
            }
        }
        (out, "")
    } else {
        let end = s.find([',', ' ', '\t']).unwrap_or(s.len());
        (s[..end].to_owned(), &s[end..])
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(
                f,
                "{k}=\"{}\"",
                v.replace('\\', "\\\\").replace('"', "\\\"")
            )?;
        }
        Ok(())
    }
}

/// What a [`TokenProvider`] is asked for.
#[derive(Debug)]
pub struct TokenRequest<'a> {
    /// The server's name.
    pub server: &'a str,
    /// The caller key of the session asking, on a pool server with
    /// [`Sharing::PerCaller`](crate::Sharing::PerCaller): whose token this is. `None` on a
    /// shared server or a session started directly.
    pub caller: Option<&'a str>,
    /// The server's URL (the MCP endpoint), as configured.
    pub url: &'a str,
    /// The challenge of the refusal this request follows: `None` for the first token, the
    /// 401's (or `insufficient_scope` 403's) `WWW-Authenticate` when the last token was refused.
    pub challenge: Option<&'a Challenge>,
}

/// Gives HTTP sessions their bearer token (`Authorization: Bearer …`). Asked before the
/// session's first request, and once more when a request is refused (401, or 403 with
/// `error="insufficient_scope"`), with the refusal's challenge; a second refusal in a row is
/// [`Error::Unauthorized`](crate::Error::Unauthorized). The token is sent only to the
/// configured server's origin, never to another one a redirect points at.
///
/// A closure is a provider:
///
/// ```
/// use mcp_pool::{ServerConfig, TokenRequest};
///
/// let config = ServerConfig::http("docs", "https://mcp.example.com/mcp")
///     .token_provider(|req: &TokenRequest<'_>| {
///         // A real provider refreshes when `req.challenge` is set.
///         std::env::var("DOCS_TOKEN").map_err(|e| format!("no token for {}: {e}", req.server))
///     });
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// A token, or why there is none (the call then fails as unauthorized).
    fn token(&self, request: &TokenRequest<'_>) -> Result<String, String>;
}

impl<F> TokenProvider for F
where
    F: Fn(&TokenRequest<'_>) -> Result<String, String> + Send + Sync + 'static,
{
    fn token(&self, request: &TokenRequest<'_>) -> Result<String, String> {
        self(request)
    }
}

/// A value that must not be shown: a token, a header value from the configuration.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Secret {
        Secret(value)
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_read_tolerantly() {
        let c = Challenge::parse(
            r#"Bearer realm="mcp", error="invalid_token", error_description="The \"token\" expired", resource_metadata="https://x/.well-known/oauth-protected-resource""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("error"), Some("invalid_token"));
        assert_eq!(c.param("ERROR_description"), Some("The \"token\" expired"));
        assert_eq!(
            c.param("resource_metadata"),
            Some("https://x/.well-known/oauth-protected-resource")
        );
        // Several challenges: the Bearer one is preferred.
        let c =
            Challenge::parse(r#"Basic realm="a", Bearer scope="files:read files:write""#).unwrap();
        assert_eq!(c.scheme, "Bearer");
        assert_eq!(c.param("scope"), Some("files:read files:write"));
        let c = Challenge::parse("Bearer").unwrap();
        assert!(c.params.is_empty());
        assert_eq!(Challenge::parse(""), None);
        let c = Challenge::parse(r#"Bearer error=insufficient_scope, scope="a b""#).unwrap();
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        assert_eq!(
            c.to_string(),
            r#"Bearer error="insufficient_scope", scope="a b""#
        );
    }

    #[test]
    fn secrets_do_not_show() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "<redacted, 7 bytes>");
        assert_eq!(s.expose(), "hunter2");
    }
}
