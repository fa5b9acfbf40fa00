//! One HTTP session's link to its server: the agent (kept-alive connections), the URL, what
//! every request carries (the protocol version, the session id of the handshake
//! generation, the configured headers, the bearer token), and the one place requests are
//! made: redirects followed by hand (credentials only to the configured origin), a refused
//! token renewed once, `429`/`503` retried after `Retry-After` within the deadline.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;

use crate::config::{HttpSettings, HttpTransport};
use crate::error::{ConnectKind, Error};

use super::super::sys::Bell;
use super::auth::{Challenge, Secret, TokenProvider, TokenRequest};
use super::net::{self, Scope};

/// Redirects followed for one request.
const MAX_REDIRECTS: usize = 5;
/// `429`/`503` answers waited out for one request.
const MAX_BUSY_RETRIES: u32 = 3;
/// The longest `Retry-After` honoured (a longer one fails the request at once).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// The most bytes of an error body quoted in an error.
const QUOTED_BODY: usize = 300;

/// `Accept` of a POST: both reply shapes.
pub(crate) const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// The scheme, host and port of a URL: credentials go only where the configuration said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    pub(crate) fn of(url: &str) -> Option<Origin> {
        let uri: ureq::http::Uri = url.parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        let default = if scheme == "https" { 443 } else { 80 };
        Some(Origin {
            host: uri.host()?.to_ascii_lowercase(),
            port: Some(uri.port_u16().unwrap_or(default)),
            scheme,
        })
    }
}

/// A URL for messages and errors: no user information, no query, no fragment.
pub(crate) fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => return "<invalid url>".into(),
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (mut base, tail) = (rest[..end].to_owned(), &rest[end..]);
    let authority_end = base.find('/').unwrap_or(base.len());
    if let Some(at) = base[..authority_end].rfind('@') {
        base = base[at + 1..].to_owned();
    }
    let marker = if tail.starts_with('?') { "?…" } else { "" };
    format!("{scheme}://{base}{marker}")
}

/// Which transport the session ended up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Wire {
    /// Streamable HTTP: one POST per message, each reply its own stream.
    Streamable,
    /// HTTP+SSE (2024-11-05): messages POSTed to this endpoint, every answer on the GET
    /// stream.
    Legacy { endpoint: String },
}

/// A request's outcome at the HTTP level.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: String,
    pub session_id: Option<String>,
    pub body: ureq::Body,
    /// The few other response headers the session reads (`location`, `www-authenticate`,
    /// `retry-after`), names lowercased.
    kept: Vec<(&'static str, String)>,
}

/// Why a request did not get a reply.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The scope's stop bell rang (the call was cancelled, or its session ends).
    Stopped,
    /// The scope's deadline passed.
    Expired,
    /// Anything else, as the caller's error.
    Error(Error),
}

impl From<Error> for Failed {
    fn from(e: Error) -> Failed {
        Failed::Error(e)
    }
}

impl Reply {
    pub(crate) fn is_sse(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }

    pub(crate) fn is_json(&self) -> bool {
        self.content_type.starts_with("application/json") || self.content_type.ends_with("+json")
    }
}

/// The HTTP side of a session.
pub(crate) struct Link {
    pub name: String,
    /// The caller key of a per-caller pool's session, told to the token provider.
    caller: Option<Arc<str>>,
    pub url: String,
    /// The URL as shown in errors.
    pub shown: String,
    origin: Option<Origin>,
    /// Taken when the session has ended, so its kept-alive connections close then, not
    /// when the last handle goes.
    agent: Mutex<Option<ureq::Agent>>,
    headers: Vec<(String, Secret)>,
    tokens: Option<Arc<dyn TokenProvider>>,
    token: Mutex<Option<Secret>>,
    pub transport: HttpTransport,
    pub standalone_stream: bool,
    pub max_message: usize,
    /// The session id the server gave at `initialize` (handshake generation).
    session_id: Mutex<Option<String>>,
    /// `MCP-Protocol-Version` of every request after the start.
    version: Mutex<Option<String>>,
    wire: OnceLock<Wire>,
    /// The stop bells of the requests whose replies are being read, by request id: rung to
    /// cancel one (closing its stream) or, all of them, when the session ends.
    open: Mutex<HashMap<u64, Arc<Bell>>>,
    /// Set when the session ends: no new request starts.
    ended: AtomicBool,
}

impl Link {
    pub(crate) fn new(
        name: &str,
        settings: &HttpSettings,
        max_message: usize,
        client: &str,
        caller: Option<Arc<str>>,
    ) -> Result<Link, Error> {
        let roots =
            match &settings.roots_pem {
                Some(pem) => Some(parse_roots(pem).map_err(|e| {
                    Error::Config(format!("server `{name}`: root certificates: {e}"))
                })?),
                None => None,
            };
        Ok(Link {
            name: name.to_owned(),
            caller,
            url: settings.url.clone(),
            shown: redact(&settings.url),
            origin: Origin::of(&settings.url),
            agent: Mutex::new(Some(net::agent(roots, settings.idle_connections, client))),
            headers: settings.headers.clone(),
            tokens: settings.token.clone(),
            token: Mutex::new(None),
            transport: settings.transport,
            standalone_stream: settings.standalone_stream,
            max_message,
            session_id: Mutex::new(None),
            version: Mutex::new(None),
            wire: OnceLock::new(),
            open: Mutex::new(HashMap::new()),
            ended: AtomicBool::new(false),
        })
    }

    /// The transport's name: `streamable-http`, `http+sse`, or `http` before the start
    /// chose.
    pub(crate) fn transport_name(&self) -> &'static str {
        match self.wire.get() {
            Some(Wire::Streamable) => "streamable-http",
            Some(Wire::Legacy { .. }) => "http+sse",
            None => "http",
        }
    }

    pub(crate) fn set_wire(&self, wire: Wire) {
        let _ = self.wire.set(wire);
    }

    pub(crate) fn is_legacy(&self) -> bool {
        matches!(self.wire.get(), Some(Wire::Legacy { .. }))
    }

    pub(crate) fn session_id(&self) -> Option<String> {
        self.session_id.lock().clone()
    }

    pub(crate) fn set_session_id(&self, id: Option<String>) {
        *self.session_id.lock() = id;
    }

    pub(crate) fn set_version(&self, version: &str) {
        *self.version.lock() = Some(version.to_owned());
    }

    pub(crate) fn clear_version(&self) {
        *self.version.lock() = None;
    }

    /// Registers the stop bell of a request whose reply this thread reads; dropped when
    /// the read ends.
    pub(crate) fn open_reply(self: &Arc<Self>, id: u64, bell: Arc<Bell>) -> OpenReply {
        if self.ended.load(Ordering::Acquire) {
            bell.ring();
        }
        self.open.lock().insert(id, bell);
        OpenReply {
            link: self.clone(),
            id,
        }
    }

    /// Stops reading the reply of request `id` (its stream is closed: in the per-request
    /// generation that cancels it). Returns whether one was being read.
    pub(crate) fn interrupt(&self, id: u64) -> bool {
        match self.open.lock().get(&id) {
            Some(bell) => {
                bell.ring();
                true
            }
            None => false,
        }
    }

    /// The session ends: every reply being read is interrupted, and no request starts.
    pub(crate) fn shut(&self) {
        self.ended.store(true, Ordering::Release);
        for bell in self.open.lock().values() {
            bell.ring();
        }
    }

    /// Closes the kept-alive connections (requests still running keep theirs until they
    /// end); no request goes out after this.
    pub(crate) fn release_connections(&self) {
        self.agent.lock().take();
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// POSTs one JSON-RPC message with the session's headers and `extra` ones (the
    /// request metadata). Follows redirects, renews a refused token once, waits out a busy
    /// server within the scope's deadline. Any HTTP status comes back as a [`Reply`] except
    /// redirects, refusals and busy answers, which end as typed errors.
    pub(crate) fn post(
        &self,
        scope: &Scope,
        body: &[u8],
        extra: &[(String, String)],
    ) -> Result<Reply, Failed> {
        let target = match self.wire.get() {
            Some(Wire::Legacy { endpoint }) => endpoint.clone(),
            _ => self.url.clone(),
        };
        self.send(scope, Method::Post(body), &target, extra, ACCEPT_BOTH)
    }

    /// GETs the event stream (the standalone stream, a resumption with `Last-Event-ID`,
    /// or the HTTP+SSE stream).
    pub(crate) fn get_stream(
        &self,
        scope: &Scope,
        last_event_id: Option<&str>,
    ) -> Result<Reply, Failed> {
        let extra: Vec<(String, String)> = last_event_id
            .map(|id| vec![("Last-Event-ID".to_owned(), id.to_owned())])
            .unwrap_or_default();
        self.send(scope, Method::Get, &self.url, &extra, "text/event-stream")
    }

    /// DELETEs the session (handshake generation). A 405 is fine.
    pub(crate) fn delete(&self, scope: &Scope) -> Result<u16, Failed> {
        let reply = self.send(scope, Method::Delete, &self.url, &[], ACCEPT_BOTH)?;
        Ok(reply.status)
    }

    fn send(
        &self,
        scope: &Scope,
        method: Method<'_>,
        target: &str,
        extra: &[(String, String)],
        accept: &str,
    ) -> Result<Reply, Failed> {
        let mut url = target.to_owned();
        let mut trusted = true;
        let mut renewed = false;
        let mut renew_now = false;
        let mut busy = 0;
        let mut hops = 0;
        let mut challenge: Option<Challenge> = None;
        loop {
            // A session that ends still deletes itself on the server.
            if self.is_shut() && !matches!(method, Method::Delete) {
                return Err(Failed::Stopped);
            }
            let token = if trusted {
                self.token(challenge.take().as_ref(), std::mem::take(&mut renew_now))?
            } else {
                None
            };
            scope.clear_wrote();
            let reply = self.exchange(&method, &url, extra, accept, trusted, token.as_ref());
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => return Err(self.failed(scope, e)),
            };
            match reply.status {
                307 | 308 => {
                    hops += 1;
                    let location = header(&reply, "location");
                    let Some(next) = location.and_then(|l| resolve(&url, &l)) else {
                        return Err(self
                            .http_error(reply.status, "a redirect without a usable Location")
                            .into());
                    };
                    if hops > MAX_REDIRECTS {
                        return Err(self.http_error(reply.status, "too many redirects").into());
                    }
                    trusted = trusted && Origin::of(&next) == self.origin;
                    if !trusted {
                        log::warn!(
                            "[{}] redirected to another origin ({}): the request goes there without the configured headers or token",
                            self.name,
                            redact(&next)
                        );
                    }
                    url = next;
                }
                301..=303 => {
                    let to = header(&reply, "location")
                        .map(|l| redact(&l))
                        .unwrap_or_default();
                    return Err(self.http_error(
                        reply.status,
                        &format!("redirected to {to}, which would turn the request into a GET; configure that URL instead"),
                    ).into());
                }
                401 | 403 => {
                    let found =
                        header(&reply, "www-authenticate").and_then(|h| Challenge::parse(&h));
                    let scope_refusal = reply.status == 403
                        && found.as_ref().and_then(|c| c.param("error"))
                            == Some("insufficient_scope");
                    if reply.status == 403 && !scope_refusal {
                        return Err(self.http_error_with_body(reply).into());
                    }
                    if trusted && self.tokens.is_some() && !renewed {
                        renewed = true;
                        renew_now = true;
                        challenge = found;
                        continue;
                    }
                    return Err(Error::Unauthorized {
                        url: self.shown.clone(),
                        status: reply.status,
                        challenge: found.map(Box::new),
                    }
                    .into());
                }
                429 | 503 => {
                    let after = header(&reply, "retry-after")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    // A 503 without Retry-After may come from a proxy that forwarded the
                    // request: a tool call is not sent again (it could run twice). A 429, a
                    // 503 that says when to come back, or any other message is sent again.
                    if reply.status == 503 && after.is_none() && is_tool_call(&method) {
                        return Err(self.http_error_with_body(reply).into());
                    }
                    let wait = after.unwrap_or(Duration::from_millis(250 << busy));
                    busy += 1;
                    if busy > MAX_BUSY_RETRIES || wait > MAX_RETRY_AFTER {
                        return Err(self.http_error_with_body(reply).into());
                    }
                    log::debug!(
                        "[{}] HTTP {}: trying again in {wait:?}",
                        self.name,
                        reply.status
                    );
                    drop(reply);
                    if !net::pause(wait) {
                        return Err(if scope.stopped() {
                            Failed::Stopped
                        } else {
                            self.http_error(503, "busy until after the deadline (Retry-After)")
                                .into()
                        });
                    }
                }
                _ => return Ok(reply),
            }
        }
    }

    fn exchange(
        &self,
        method: &Method<'_>,
        url: &str,
        extra: &[(String, String)],
        accept: &str,
        trusted: bool,
        token: Option<&Secret>,
    ) -> Result<Reply, ureq::Error> {
        macro_rules! with_headers {
            ($req:expr) => {{
                let mut req = $req.header("Accept", accept);
                if let Some(v) = self.version.lock().as_deref() {
                    req = req.header("MCP-Protocol-Version", v);
                }
                if let Some(id) = self.session_id.lock().as_deref() {
                    req = req.header("Mcp-Session-Id", id);
                }
                if trusted {
                    for (k, v) in &self.headers {
                        req = req.header(k.as_str(), v.expose());
                    }
                    if let Some(t) = token {
                        req = req.header("Authorization", format!("Bearer {}", t.expose()));
                    }
                }
                for (k, v) in extra {
                    req = req.header(k.as_str(), v.as_str());
                }
                req
            }};
        }
        let Some(agent) = self.agent.lock().clone() else {
            return Err(ureq::Error::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the session has ended",
            )));
        };
        let response = match method {
            Method::Post(body) => with_headers!(agent.post(url))
                .header("Content-Type", "application/json")
                .send(*body)?,
            Method::Get => with_headers!(agent.get(url)).call()?,
            Method::Delete => with_headers!(agent.delete(url)).call()?,
        };
        let status = response.status().as_u16();
        let text = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = text("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let session_id = text("mcp-session-id");
        let kept = ["location", "www-authenticate", "retry-after"]
            .into_iter()
            .filter_map(|name| text(name).map(|v| (name, v)))
            .collect();
        Ok(Reply {
            status,
            content_type,
            session_id,
            body: response.into_body(),
            kept,
        })
    }

    /// The bearer token: asked for the first time, or again after a refusal.
    fn token(&self, challenge: Option<&Challenge>, renew: bool) -> Result<Option<Secret>, Failed> {
        let Some(provider) = &self.tokens else {
            return Ok(None);
        };
        let mut held = self.token.lock();
        if held.is_some() && !renew {
            return Ok(held.clone());
        }
        let request = TokenRequest {
            server: &self.name,
            caller: self.caller.as_deref(),
            url: &self.url,
            challenge,
        };
        let why = match provider.token(&request) {
            Ok(token) if !token.is_empty() && token.bytes().all(|b| (0x21..=0x7e).contains(&b)) => {
                *held = Some(Secret::new(token));
                return Ok(held.clone());
            }
            Ok(_) => "an empty token, or one with spaces or control characters".to_owned(),
            Err(why) => why,
        };
        log::warn!(
            "[{}] the token provider gave no usable token: {why}",
            self.name
        );
        Err(Error::Unauthorized {
            url: self.shown.clone(),
            status: 401,
            challenge: challenge.cloned().map(Box::new),
        }
        .into())
    }

    /// What a failed exchange means: its scope's stop or deadline, or a connection error.
    pub(crate) fn failed(&self, scope: &Scope, e: ureq::Error) -> Failed {
        if scope.stopped() {
            return Failed::Stopped;
        }
        if scope.expired() || matches!(e, ureq::Error::Timeout(_)) {
            return Failed::Expired;
        }
        let (kind, reason) = describe(&e);
        Failed::Error(Error::Connect {
            url: self.shown.clone(),
            kind,
            reason,
        })
    }

    pub(crate) fn http_error(&self, status: u16, message: &str) -> Error {
        Error::Http {
            url: self.shown.clone(),
            status,
            message: message.to_owned(),
        }
    }

    /// An HTTP error quoting the start of the body (without control characters).
    pub(crate) fn http_error_with_body(&self, reply: Reply) -> Error {
        let status = reply.status;
        let mut body = reply.body;
        let text = body
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .ok()
            .map(|b| quote(&b))
            .unwrap_or_default();
        let reason = ureq::http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        let message = match (reason, text.is_empty()) {
            (r, true) => r.to_owned(),
            (r, false) => format!("{r}: {text}"),
        };
        self.http_error(status, &message)
    }
}

/// Whether a POST carries a `tools/call` request (the library's own serialization puts
/// `method` right after `jsonrpc` and `id`).
fn is_tool_call(method: &Method<'_>) -> bool {
    match method {
        Method::Post(body) => {
            let head = &body[..body.len().min(96)];
            memchr::memmem::find(head, br#""method":"tools/call""#).is_some()
        }
        _ => false,
    }
}

enum Method<'a> {
    Post(&'a [u8]),
    Get,
    Delete,
}

/// Unregisters a reply's stop bell when its read ends.
pub(crate) struct OpenReply {
    link: Arc<Link>,
    id: u64,
}

impl Drop for OpenReply {
    fn drop(&mut self) {
        self.link.open.lock().remove(&self.id);
    }
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply
        .kept
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.clone())
}

/// Resolves a `Location` (or an HTTP+SSE endpoint) against the URL it came from.
pub(crate) fn resolve(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if location.contains("://") {
        return Some(location.to_owned());
    }
    let (scheme, rest) = base.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(path) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{path}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = &rest[authority_end..];
    let path = path.split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

/// What a ureq error says, as a connect kind and reason.
fn describe(e: &ureq::Error) -> (ConnectKind, String) {
    match e {
        ureq::Error::HostNotFound => (ConnectKind::Dns, "the host name does not resolve".into()),
        ureq::Error::Io(io) => {
            let kind = match io.kind() {
                std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::HostUnreachable
                | std::io::ErrorKind::NetworkUnreachable
                | std::io::ErrorKind::AddrNotAvailable => ConnectKind::Refused,
                // rustls reports each of its failures (the handshake, the certificate, a
                // corrupt record) as an I/O error of this kind wrapping its own error;
                // nothing else under the agent does (plain sockets fail with resets and
                // EOFs, HTTP framing errors are ureq's own variants).
                std::io::ErrorKind::InvalidData => ConnectKind::Tls,
                _ => ConnectKind::Io,
            };
            (kind, io.to_string())
        }
        ureq::Error::ConnectionFailed => (ConnectKind::Refused, "connection failed".into()),
        ureq::Error::Tls(why) => (ConnectKind::Tls, (*why).to_owned()),
        ureq::Error::Rustls(e) => (ConnectKind::Tls, e.to_string()),
        ureq::Error::Pem(e) => (ConnectKind::Tls, e.to_string()),
        other => (ConnectKind::Io, other.to_string()),
    }
}

/// Up to [`QUOTED_BODY`] characters of a body, control characters replaced.
pub(crate) fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(QUOTED_BODY)
        .collect();
    if text.chars().count() > QUOTED_BODY {
        out.push('…');
    }
    out.trim().to_owned()
}

/// The certificates of a PEM text.
pub(crate) fn parse_roots(pem: &[u8]) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let mut roots = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c.to_owned()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_resolved() {
        assert_eq!(
            redact("https://user:pw@mcp.example.com:8443/mcp?key=s3cret#x"),
            "https://mcp.example.com:8443/mcp?…"
        );
        assert_eq!(redact("http://127.0.0.1:9/mcp"), "http://127.0.0.1:9/mcp");
        assert_eq!(
            resolve("http://a:1/x/mcp?q", "/other").as_deref(),
            Some("http://a:1/other")
        );
        assert_eq!(
            resolve("http://a:1/x/mcp", "next").as_deref(),
            Some("http://a:1/x/next")
        );
        assert_eq!(
            resolve("http://a:1/x/mcp", "https://b/y").as_deref(),
            Some("https://b/y")
        );
        assert_eq!(Origin::of("http://A:80/x"), Origin::of("http://a/y"));
        assert_ne!(Origin::of("http://a/x"), Origin::of("https://a/x"));
        assert_ne!(Origin::of("http://a:1/"), Origin::of("http://a:2/"));
    }
}
