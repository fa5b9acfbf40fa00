//! The HTTP client under every HTTP session: a ureq agent whose sockets answer to the
//! calling thread's [`Scope`]: its deadline (which progress may push back while a response
//! streams) and its stop bell (rung to cancel the call, or because the session ends). A
//! call blocked reading a response stream therefore ends on time and on cancel, on the
//! caller's own thread, like a stdio call.
//!
//! ureq does the HTTP/1.1 framing, the keep-alive pool and TLS (rustls); this file supplies
//! the bottom of its connector chain (a TCP socket whose waits are `poll`s over the socket
//! and the stop bell) and a resolver that never starts a thread for an IP address.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, RustlsConnector, Transport,
};

use super::super::sys::{self, Bell, Watch};

/// The payload of the I/O error a transport returns when the stop bell rang. Its kind is
/// `Other`, never `Interrupted`: rustls (and `std::io::Read::read_to_end`) retry an
/// interrupted read or write at once, which, with a bell that stays rung until the reader
/// drains it, is a busy loop that never ends the read.
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped by the mcp-pool session")
    }
}

impl std::error::Error for Stopped {}

/// What the I/O of one exchange on this thread answers to.
struct ScopeState {
    deadline: std::cell::Cell<Option<Instant>>,
    stop: Option<Arc<Bell>>,
    /// Some byte of a request went out on a socket while the scope was open.
    wrote: std::cell::Cell<bool>,
    /// The stop bell was seen ringing.
    stopped: std::cell::Cell<bool>,
    /// Run when a byte of a request goes out while `wrote` is not set yet.
    on_write: RefCell<Option<Box<dyn Fn()>>>,
}

thread_local! {
    static SCOPE: RefCell<Option<Rc<ScopeState>>> = const { RefCell::new(None) };
}

/// The deadline and stop bell of the HTTP exchanges this thread makes while the scope
/// lives.
pub(crate) struct Scope {
    state: Rc<ScopeState>,
    outer: Option<Rc<ScopeState>>,
}

impl Scope {
    pub(crate) fn enter(deadline: Option<Instant>, stop: Option<Arc<Bell>>) -> Scope {
        let state = Rc::new(ScopeState {
            deadline: std::cell::Cell::new(deadline),
            stop,
            wrote: std::cell::Cell::new(false),
            stopped: std::cell::Cell::new(false),
            on_write: RefCell::new(None),
        });
        let outer = SCOPE.with(|s| s.borrow_mut().replace(state.clone()));
        Scope { state, outer }
    }

    /// Moves the deadline (progress pushed it back).
    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        self.state.deadline.set(deadline);
    }

    /// Whether any byte of a request was written under this scope.
    pub(crate) fn wrote(&self) -> bool {
        self.state.wrote.get()
    }

    /// Whether the stop bell rang during an exchange (or a pause) of this scope.
    pub(crate) fn stopped(&self) -> bool {
        self.state.stopped.get()
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        self.state
            .deadline
            .get()
            .is_some_and(|d| Instant::now() >= d)
    }

    /// Forgets a ring of the stop bell seen so far (the reader goes on after a poke).
    pub(crate) fn clear_stopped(&self) {
        self.state.stopped.set(false);
        if let Some(bell) = &self.state.stop {
            bell.drain();
        }
    }

    /// Runs `f` as soon as a byte of a request goes out (again after each
    /// [`clear_wrote`](Self::clear_wrote)): on the writing thread, inside the transport,
    /// before the reply is waited for. The pending table learns there that the request
    /// was sent, so a session that ends while the reply's head is awaited fails the call
    /// as outcome unknown, never as unsent.
    pub(crate) fn on_write(&self, f: impl Fn() + 'static) {
        *self.state.on_write.borrow_mut() = Some(Box::new(f));
    }

    /// Forgets the writes so far (before a new request under the same scope).
    pub(crate) fn clear_wrote(&self) {
        self.state.wrote.set(false);
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let outer = self.outer.take();
        SCOPE.with(|s| *s.borrow_mut() = outer);
    }
}

fn current() -> Option<Rc<ScopeState>> {
    SCOPE.with(|s| s.borrow().clone())
}

/// The sooner of ureq's own timeout and the scope's deadline; `None` waits for ever.
fn wait_for(timeout: &NextTimeout, scope: Option<&ScopeState>) -> Option<Duration> {
    let ours = scope
        .and_then(|s| s.deadline.get())
        .map(|d| d.saturating_duration_since(Instant::now()));
    let theirs = (!timeout.after.is_not_happening()).then(|| *timeout.after);
    match (ours, theirs) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn stopped() -> ureq::Error {
    ureq::Error::Io(io::Error::other(Stopped))
}

/// Waits until `fd` is ready for `events`, the stop bell rings or the wait ends.
fn wait_ready(
    fd: i32,
    events: i16,
    timeout: &NextTimeout,
    scope: Option<&ScopeState>,
) -> Result<(), ureq::Error> {
    let wait = wait_for(timeout, scope);
    if wait == Some(Duration::ZERO) {
        return Err(ureq::Error::Timeout(timeout.reason));
    }
    let until = wait.map(|w| Instant::now() + w);
    let stop = scope.and_then(|s| s.stop.as_ref()).and_then(|b| b.fd());
    let mut watches = Vec::with_capacity(2);
    watches.push(Watch::new(fd, events));
    if let Some(bell) = stop {
        watches.push(Watch::new(bell, sys::IN));
    }
    match sys::poll(&mut watches, until) {
        Ok(true) => {}
        Ok(false) => return Err(ureq::Error::Timeout(timeout.reason)),
        Err(e) => return Err(ureq::Error::Io(e)),
    }
    if watches.len() > 1 && watches[1].readable() {
        if let Some(s) = scope {
            s.stopped.set(true);
        }
        return Err(stopped());
    }
    Ok(())
}

/// A TCP socket as ureq's transport, with waits that answer to the thread's scope.
pub(crate) struct Socket {
    stream: TcpStream,
    buffers: LazyBuffers,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

impl Transport for Socket {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        let scope = current();
        let fd = self.stream.as_raw_fd();
        let mut at = 0;
        // Write first, and wait only when the socket takes no more: a request usually
        // fits in the socket's buffer at once.
        let mut ready = true;
        while at < amount {
            if !ready {
                wait_ready(fd, sys::OUT, &timeout, scope.as_deref())?;
            }
            ready = true;
            match (&self.stream).write(&self.buffers.output()[at..amount]) {
                Ok(0) => {
                    return Err(ureq::Error::Io(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "the connection took no more bytes",
                    )))
                }
                Ok(n) => {
                    at += n;
                    if let Some(s) = &scope {
                        if !s.wrote.replace(true) {
                            if let Some(f) = s.on_write.borrow().as_ref() {
                                f();
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        let scope = current();
        let fd = self.stream.as_raw_fd();
        // The stop bell is looked at before each wait (a read that finds data never
        // waits); a bell rung while data keeps coming is seen at the next wait.
        if scope
            .as_deref()
            .and_then(|s| s.stop.as_ref())
            .is_some_and(|b| b.is_rung())
        {
            if let Some(s) = scope.as_deref() {
                s.stopped.set(true);
            }
            return Err(stopped());
        }
        loop {
            let input = self.buffers.input_append_buf();
            match (&self.stream).read(input) {
                Ok(n) => {
                    self.buffers.input_appended(n);
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_ready(fd, sys::IN, &timeout, scope.as_deref())?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ureq::Error::Io(e)),
            }
        }
    }

    fn is_open(&mut self) -> bool {
        // A pooled connection is usable when nothing is waiting to be read on it (the
        // server neither closed it nor sent bytes nobody asked for).
        let mut byte = [0u8; 1];
        match self.stream.peek(&mut byte) {
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            Ok(_) => false,
        }
    }
}

/// The bottom of the connector chain: opens a [`Socket`] (non-blocking, no Nagle) to the
/// first resolved address that answers within the scope's deadline.
#[derive(Debug, Default)]
pub(crate) struct SocketConnector;

impl<In: Transport> Connector<In> for SocketConnector {
    type Out = Socket;

    fn connect(
        &self,
        details: &ConnectionDetails<'_>,
        _chained: Option<In>,
    ) -> Result<Option<Socket>, ureq::Error> {
        let scope = current();
        let mut last = None;
        for addr in details.addrs.iter() {
            match connect_one(*addr, &details.timeout, scope.as_deref()) {
                Ok(stream) => {
                    let buffers = LazyBuffers::new(
                        details.config.input_buffer_size(),
                        details.config.output_buffer_size(),
                    );
                    return Ok(Some(Socket { stream, buffers }));
                }
                Err(e) if is_stop(&e) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(ureq::Error::ConnectionFailed))
    }
}

/// Whether an error is the scope's stop or its deadline (no use trying another address).
fn is_stop(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Timeout(_) => true,
        ureq::Error::Io(io) => io.get_ref().is_some_and(|e| e.is::<Stopped>()),
        _ => false,
    }
}

fn connect_one(
    addr: SocketAddr,
    timeout: &NextTimeout,
    scope: Option<&ScopeState>,
) -> Result<TcpStream, ureq::Error> {
    let stream = sys::tcp_connect_nonblocking(addr).map_err(ureq::Error::Io)?;
    let fd = stream.as_raw_fd();
    wait_ready(fd, sys::OUT, timeout, scope)?;
    if let Some(e) = stream.take_error().map_err(ureq::Error::Io)? {
        return Err(ureq::Error::Io(e));
    }
    stream.set_nodelay(true).map_err(ureq::Error::Io)?;
    Ok(stream)
}

/// Resolves without a thread when the host is an IP address; names go to ureq's resolver
/// with the scope's deadline (it resolves on a short-lived thread it does not wait for
/// past the deadline).
#[derive(Debug, Default)]
pub(crate) struct ScopedResolver(DefaultResolver);

impl Resolver for ScopedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok();
        if literal {
            return self.0.resolve(uri, config, NextTimeout::default());
        }
        let scope = current();
        let mut timeout = timeout;
        if let Some(wait) = wait_for(&timeout, scope.as_deref()) {
            timeout.after = ureq::unversioned::transport::time::Duration::Exact(wait);
        }
        // A failed lookup comes back from the system resolver as a plain I/O error ("Name
        // or service not known"): it is still an unknown host, not a broken connection.
        self.0.resolve(uri, config, timeout).map_err(|e| match e {
            ureq::Error::Io(io) => {
                log::debug!("name lookup of `{host}` failed: {io}");
                ureq::Error::HostNotFound
            }
            other => other,
        })
    }
}

/// The agent of one HTTP session: sockets from [`SocketConnector`], TLS by rustls with the
/// given roots (Mozilla's when `None`), statuses returned rather than raised, no
/// redirects followed (the session follows them itself, see `link.rs`), and up to
/// `idle_per_host` kept-alive connections.
pub(crate) fn agent(
    roots: Option<Vec<ureq::tls::Certificate<'static>>>,
    idle_per_host: usize,
    user_agent: &str,
) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(roots) = roots {
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(tls.build())
        .max_idle_connections(idle_per_host.max(1))
        .max_idle_connections_per_host(idle_per_host.max(1))
        .max_idle_age(Duration::from_secs(30))
        .user_agent(user_agent)
        .accept(ureq::config::AutoHeaderValue::None)
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .build();
    let connector = ().chain(SocketConnector).chain(RustlsConnector::default());
    ureq::Agent::with_parts(config, connector, ScopedResolver::default())
}

/// Sleeps `pause` unless the scope's stop bell rings or its deadline comes first. Returns
/// `false` when the pause was cut short.
pub(crate) fn pause(pause: Duration) -> bool {
    let scope = current();
    let until = Instant::now() + pause;
    if scope
        .as_deref()
        .and_then(|s| s.deadline.get())
        .is_some_and(|d| d < until)
    {
        return false;
    }
    let stop = scope
        .as_deref()
        .and_then(|s| s.stop.as_ref())
        .and_then(|b| b.fd());
    match stop {
        Some(fd) => {
            let mut watches = [Watch::new(fd, sys::IN)];
            let rang = matches!(sys::poll(&mut watches, Some(until)), Ok(true));
            if rang {
                if let Some(s) = scope.as_deref() {
                    s.stopped.set(true);
                }
            }
            !rang
        }
        None => {
            std::thread::sleep(pause);
            true
        }
    }
}
