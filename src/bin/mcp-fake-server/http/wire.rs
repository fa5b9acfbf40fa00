//! HTTP/1.1 on the wire: reading a request (request line, headers, a `Content-Length` or
//! chunked body, `Expect: 100-continue`), writing a response head, bodies with
//! `Content-Length`, SSE bodies framed by `Transfer-Encoding: chunked` or by closing the
//! connection, SSE event text, telling whether the peer has closed, and the `=?base64?…?=`
//! sentinel of `Mcp-Name` / `Mcp-Param-*` values. Nothing here panics on bad input.

use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::os::unix::io::AsRawFd;

/// The largest request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 200;
/// The largest request body.
pub(crate) const MAX_BODY: usize = 256 << 20;

/// One HTTP request as received. Header names are lowercased; values are trimmed.
#[derive(Debug, Default)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The request target as received (path and query).
    pub(crate) target: String,
    pub(crate) path: String,
    pub(crate) query: String,
    /// `HTTP/1.0` (true) or `HTTP/1.1`.
    pub(crate) http10: bool,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    /// The first value of a header (`name` in lowercase).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times a header appears.
    pub(crate) fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// Whether a comma-separated header lists `token` (case-insensitive, parameters ignored).
    pub(crate) fn lists(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .any(|(_, v)| {
                v.split(',').any(|item| {
                    let item = item.split(';').next().unwrap_or("").trim();
                    item.eq_ignore_ascii_case(token)
                })
            })
    }

    /// Whether the connection may carry another request after this one.
    pub(crate) fn keep_alive(&self) -> bool {
        !self.http10 && !self.lists("connection", "close")
    }

    /// A `key=value` parameter of the query string (no percent-decoding).
    pub(crate) fn query_param(&self, key: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }
}

#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection before sending a byte of a new request.
    Closed,
    /// Malformed HTTP: answered 400, then the connection is closed.
    Bad(String),
    /// The body is larger than `MAX_BODY`: answered 413.
    TooLarge,
    /// A read failed or the connection ended mid-request.
    Io,
}

fn bad(message: impl Into<String>) -> ReadError {
    ReadError::Bad(message.into())
}

/// Reads one line (terminator included) of at most `limit` bytes; `Ok(false)` at EOF.
fn read_line<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, limit: usize) -> Result<bool, ReadError> {
    buf.clear();
    let n = r
        .by_ref()
        .take(limit as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|_| ReadError::Io)?;
    if n == 0 {
        return Ok(false);
    }
    if buf.last() != Some(&b'\n') {
        return match n > limit {
            true => Err(bad("line too long")),
            false => Err(ReadError::Io),
        };
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(true)
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Reads one request. `on_continue` is called before the body is read when the client sent
/// `Expect: 100-continue` (it writes the interim response).
pub(crate) fn read_request<R: BufRead>(
    r: &mut R,
    mut on_continue: impl FnMut() -> io::Result<()>,
) -> Result<Request, ReadError> {
    let mut line = Vec::with_capacity(256);
    let mut budget = MAX_HEAD;
    // Empty lines before a request line are ignored (RFC 9112 section 2.2).
    loop {
        if !read_line(r, &mut line, budget)? {
            return Err(ReadError::Closed);
        }
        budget = budget.saturating_sub(line.len() + 2);
        if !line.is_empty() {
            break;
        }
        if budget == 0 {
            return Err(bad("too many empty lines"));
        }
    }
    let request_line = std::str::from_utf8(&line).map_err(|_| bad("request line is not UTF-8"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("malformed method"));
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("malformed request target"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return Err(bad(format!("unsupported version {version}"))),
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_string(),
        target: target.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        http10,
        ..Request::default()
    };
    loop {
        if budget == 0 {
            return Err(bad("request head too large"));
        }
        if !read_line(r, &mut line, budget)? {
            return Err(ReadError::Io);
        }
        budget = budget.saturating_sub(line.len() + 2);
        if line.is_empty() {
            break;
        }
        req.headers.push(parse_header(&line)?);
        if req.headers.len() > MAX_HEADERS {
            return Err(bad("too many headers"));
        }
    }
    read_body(r, &mut req, &mut on_continue)?;
    Ok(req)
}

/// `name: value`; obsolete line folding and whitespace before the colon are refused.
fn parse_header(line: &[u8]) -> Result<(String, String), ReadError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad("header line without a colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().copied().all(is_tchar) {
        return Err(bad("malformed header name"));
    }
    if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
        return Err(bad("control character in a header value"));
    }
    let trim: &[u8] = b" \t";
    let start = value
        .iter()
        .position(|b| !trim.contains(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !trim.contains(b))
        .map_or(start, |i| i + 1);
    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
    Ok((
        name,
        String::from_utf8_lossy(&value[start..end]).into_owned(),
    ))
}

fn read_body<R: BufRead>(
    r: &mut R,
    req: &mut Request,
    on_continue: &mut impl FnMut() -> io::Result<()>,
) -> Result<(), ReadError> {
    let chunked = match req.header_count("transfer-encoding") {
        0 => false,
        1 if req
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked")) =>
        {
            true
        }
        _ => return Err(bad("unsupported Transfer-Encoding (only chunked)")),
    };
    let mut length = None;
    for (_, v) in req.headers.iter().filter(|(n, _)| n == "content-length") {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("malformed Content-Length"));
        }
        let n: usize = v.parse().map_err(|_| ReadError::TooLarge)?;
        if length.is_some_and(|l| l != n) {
            return Err(bad("conflicting Content-Length headers"));
        }
        length = Some(n);
    }
    if chunked && length.is_some() {
        return Err(bad("both Content-Length and Transfer-Encoding"));
    }
    if length.is_some_and(|n| n > MAX_BODY) {
        return Err(ReadError::TooLarge);
    }
    let expects_body = chunked || length.is_some_and(|n| n > 0);
    if expects_body && !req.http10 && req.lists("expect", "100-continue") {
        on_continue().map_err(|_| ReadError::Io)?;
    }
    if chunked {
        req.body = read_chunked(r)?;
    } else if let Some(n) = length {
        let mut body = vec![0; n];
        r.read_exact(&mut body).map_err(|_| ReadError::Io)?;
        req.body = body;
    }
    Ok(())
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    let mut line = Vec::with_capacity(64);
    loop {
        if !read_line(r, &mut line, 4096)? {
            return Err(ReadError::Io);
        }
        let text = std::str::from_utf8(&line).map_err(|_| bad("malformed chunk size"))?;
        let size = text.split(';').next().unwrap_or("").trim();
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("malformed chunk size"));
        }
        let size = usize::from_str_radix(size, 16).map_err(|_| ReadError::TooLarge)?;
        if size == 0 {
            // Trailers, up to the empty line; ignored.
            loop {
                if !read_line(r, &mut line, 8192)? {
                    return Err(ReadError::Io);
                }
                if line.is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ReadError::TooLarge);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])
            .map_err(|_| ReadError::Io)?;
        if !read_line(r, &mut line, 2)? || !line.is_empty() {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        202 => "Accepted",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A response head: status line, the headers, the empty line.
pub(crate) fn head(status: u16, headers: &[(&str, String)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// How an SSE body is delimited.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Framing {
    Chunked,
    /// The body ends when the server closes the connection.
    Close,
}

/// Writes part of an SSE body (one chunk when chunked).
pub(crate) fn write_part(w: &mut impl Write, framing: Framing, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    match framing {
        Framing::Close => w.write_all(data)?,
        Framing::Chunked if data.len() <= 64 * 1024 => {
            let mut chunk = Vec::with_capacity(data.len() + 16);
            chunk.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
            chunk.extend_from_slice(data);
            chunk.extend_from_slice(b"\r\n");
            w.write_all(&chunk)?;
        }
        Framing::Chunked => {
            w.write_all(format!("{:x}\r\n", data.len()).as_bytes())?;
            w.write_all(data)?;
            w.write_all(b"\r\n")?;
        }
    }
    w.flush()
}

/// Ends an SSE body (the last chunk when chunked; nothing otherwise).
pub(crate) fn write_end(w: &mut impl Write, framing: Framing) -> io::Result<()> {
    match framing {
        Framing::Chunked => w.write_all(b"0\r\n\r\n").and_then(|()| w.flush()),
        Framing::Close => Ok(()),
    }
}

/// The text of one SSE event: `id:`, `retry:`, `event:` (when `data` is not empty) and one
/// `data:` line per line of `data` (an empty `data:` line when it is empty).
pub(crate) fn sse_event(
    id: Option<&str>,
    retry: Option<u64>,
    event: Option<&str>,
    data: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    if let Some(id) = id {
        out.extend_from_slice(format!("id: {id}\n").as_bytes());
    }
    if let Some(ms) = retry {
        out.extend_from_slice(format!("retry: {ms}\n").as_bytes());
    }
    if let Some(event) = event.filter(|_| !data.is_empty()) {
        out.extend_from_slice(format!("event: {event}\n").as_bytes());
    }
    if data.is_empty() {
        out.extend_from_slice(b"data: \n");
    }
    for line in data.split(|&b| b == b'\n').filter(|_| !data.is_empty()) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

/// Whether the peer has closed (or reset) the connection, without blocking and without
/// consuming anything: a pending byte (a pipelined request) means it is still open.
pub(crate) fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: recv(2) into a valid one-byte buffer on an fd owned by `stream`; MSG_PEEK and
    // MSG_DONTWAIT neither consume data nor block.
    let n = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => !matches!(
            io::Error::last_os_error().kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub(crate) fn unbase64(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    for (q, quad) in text.chunks(4).enumerate() {
        let last = q + 1 == text.len() / 4;
        let (mut n, mut pad) = (0u32, 0usize);
        for (i, &c) in quad.iter().enumerate() {
            let v = match c {
                b'=' if i >= 2 && last => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return None,
                _ => BASE64.iter().position(|&b| b == c)? as u32,
            };
            n = (n << 6) | v;
        }
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8][..3 - pad]);
    }
    Some(out)
}

/// The value of an `Mcp-Name` / `Mcp-Param-*` header: a `=?base64?…?=` sentinel decoded
/// (base64 of UTF-8), anything else as is. `Err` for a sentinel that does not decode.
pub(crate) fn header_value(raw: &str) -> Result<String, String> {
    let Some(inner) = raw
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(raw.to_string());
    };
    let bytes = unbase64(inner).ok_or_else(|| format!("'{raw}' is not valid base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("'{raw}' does not decode to UTF-8"))
}

/// Whether a header value holds only what RFC 9110 allows (visible ASCII, space, tab).
pub(crate) fn is_field_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (0x20..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut Cursor::new(raw.to_vec()), || Ok(()))
    }

    fn base64(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let at = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
            let n = (at(0) << 16) | (at(1) << 8) | at(2);
            for i in 0..4 {
                match i <= chunk.len() {
                    true => out.push(char::from(BASE64[(n >> (18 - 6 * i)) as usize & 63])),
                    false => out.push('='),
                }
            }
        }
        out
    }

    #[test]
    fn content_length_request() {
        let req = parse(
            b"POST /mcp?x=1&session=abc HTTP/1.1\r\nHost: h\r\nContent-Type:  application/json \r\n\
              Content-Length: 2\r\nMcp-Name: =?base64?aGk=?=\r\n\r\n{}",
        )
        .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/mcp");
        assert_eq!(req.target, "/mcp?x=1&session=abc");
        assert_eq!(req.query_param("session"), Some("abc"));
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.body, b"{}");
        assert!(req.keep_alive());
        assert_eq!(header_value(req.header("mcp-name").unwrap()).unwrap(), "hi");
    }

    #[test]
    fn chunked_request_and_pipelining() {
        let raw = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: x\r\n\r\n\
                    GET /next HTTP/1.0\n\n";
        let mut cursor = Cursor::new(raw.to_vec());
        let first = read_request(&mut cursor, || Ok(())).unwrap();
        assert_eq!(first.body, b"abcde");
        let second = read_request(&mut cursor, || Ok(())).unwrap();
        assert_eq!(second.path, "/next");
        assert!(second.http10 && !second.keep_alive());
        assert!(matches!(
            read_request(&mut cursor, || Ok(())),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn expect_continue_is_answered_before_the_body() {
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx";
        let mut asked = 0;
        let req = read_request(&mut Cursor::new(raw.to_vec()), || {
            asked += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((asked, req.body.as_slice()), (1, &b"x"[..]));
    }

    #[test]
    fn bad_requests_are_refused() {
        let cases: &[&[u8]] = &[
            b"GET\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n",
        ];
        for raw in cases {
            let got = parse(raw);
            assert!(
                matches!(got, Err(ReadError::Bad(_))),
                "{:?}: {got:?}",
                String::from_utf8_lossy(raw)
            );
        }
        let huge = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(parse(huge.as_bytes()), Err(ReadError::TooLarge)));
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_HEAD + 10));
        assert!(matches!(parse(long.as_bytes()), Err(ReadError::Bad(_))));
        // Cut short: not a clean close.
        assert!(matches!(
            parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab"),
            Err(ReadError::Io)
        ));
        assert!(matches!(parse(b""), Err(ReadError::Closed)));
        assert!(matches!(parse(b"\r\n\r\n"), Err(ReadError::Closed)));
    }

    #[test]
    fn sse_events() {
        assert_eq!(
            sse_event(Some("1-2"), None, None, b""),
            b"id: 1-2\ndata: \n\n"
        );
        assert_eq!(
            sse_event(Some("7"), Some(300), Some("message"), b"{}"),
            b"id: 7\nretry: 300\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(
            sse_event(None, None, Some("endpoint"), b"a\nb"),
            b"event: endpoint\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn chunked_parts() {
        let mut out = Vec::new();
        write_part(&mut out, Framing::Chunked, b"hello").unwrap();
        write_end(&mut out, Framing::Chunked).unwrap();
        assert_eq!(out, b"5\r\nhello\r\n0\r\n\r\n");
        let mut out = Vec::new();
        write_part(&mut out, Framing::Close, b"hello").unwrap();
        write_end(&mut out, Framing::Close).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn base64_sentinel() {
        for text in [
            "",
            "a",
            "ab",
            "abc",
            "Hello, 世界",
            " padded ",
            "=?base64?literal?=",
        ] {
            let encoded = format!("=?base64?{}?=", base64(text.as_bytes()));
            assert_eq!(header_value(&encoded).unwrap(), text);
        }
        assert_eq!(header_value("us-west1").unwrap(), "us-west1");
        assert_eq!(
            header_value("=?base64?SGVsbG8sIOS4lueVjA==?=").unwrap(),
            "Hello, 世界"
        );
        assert!(header_value("=?base64?abc?=").is_err());
        assert!(header_value("=?base64?a=bc?=").is_err());
        assert!(header_value("=?base64?/w==?=").is_err(), "not UTF-8");
        assert!(is_field_value("a b\tc") && !is_field_value("é") && !is_field_value("a\x01"));
    }
}
