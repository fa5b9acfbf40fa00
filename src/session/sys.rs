//! The few system calls the stdio session makes directly: `poll`, `eventfd`, `pidfd_open`,
//! non-blocking reads and writes on raw descriptors, and the thread's signal mask. Each
//! `unsafe` block says why it is sound; everything above this module is safe code.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// `poll` readiness bits.
pub(crate) const IN: i16 = libc::POLLIN;
pub(crate) const OUT: i16 = libc::POLLOUT;

/// One descriptor to wait on, and what it turned out to be ready for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watch {
    pub fd: RawFd,
    pub events: i16,
    pub ready: i16,
}

impl Watch {
    pub(crate) fn new(fd: RawFd, events: i16) -> Watch {
        Watch {
            fd,
            events,
            ready: 0,
        }
    }

    /// Readable, or hung up / in error (a read then says which).
    pub(crate) fn readable(&self) -> bool {
        self.ready & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
    }

    /// Writable, or in error (a write then says which).
    pub(crate) fn writable(&self) -> bool {
        self.ready & (libc::POLLOUT | libc::POLLHUP | libc::POLLERR) != 0
    }
}

/// Waits until one of `watches` is ready or `until` passes (`None`: no time limit).
/// Returns whether anything is ready. Interrupted calls are resumed.
pub(crate) fn poll(watches: &mut [Watch], until: Option<Instant>) -> io::Result<bool> {
    let mut fds: [libc::pollfd; 8] = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 8];
    assert!(watches.len() <= fds.len(), "at most 8 descriptors");
    for (slot, w) in fds.iter_mut().zip(watches.iter()) {
        slot.fd = w.fd;
        slot.events = w.events;
    }
    loop {
        let timeout = match until {
            None => -1,
            Some(t) => {
                let left = t.saturating_duration_since(Instant::now());
                // Round up, so a wait never ends before its deadline.
                let ms = left.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        };
        // SAFETY: `fds` is a valid array of `watches.len()` pollfd structs that lives across
        // the call; poll only writes their `revents`.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), watches.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for (w, slot) in watches.iter_mut().zip(fds.iter()) {
            w.ready = slot.revents;
        }
        return Ok(n > 0);
    }
}

/// An eventfd used as a doorbell: any thread rings it, one waiter polls it. It can be
/// closed while others may still ring it: a ring after the close does nothing (the
/// descriptor's number is never written to once it may belong to someone else).
#[derive(Debug)]
pub(crate) struct Bell(
    parking_lot::Mutex<Option<OwnedFd>>,
    /// Rung and not drained since (read without a system call).
    std::sync::atomic::AtomicBool,
);

impl Bell {
    pub(crate) fn new() -> io::Result<Bell> {
        // SAFETY: plain system call; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(Bell(
            parking_lot::Mutex::new(Some(unsafe { OwnedFd::from_raw_fd(fd) })),
            std::sync::atomic::AtomicBool::new(false),
        ))
    }

    /// Whether it was rung and not drained since.
    pub(crate) fn is_rung(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Makes the bell readable (until it is drained).
    pub(crate) fn ring(&self) {
        let fd = self.0.lock();
        let Some(fd) = fd.as_ref() else { return };
        self.1.store(true, std::sync::atomic::Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our own eventfd, kept open by the lock we
        // hold. A full counter (EAGAIN) means it is already ringing, which is all we want.
        unsafe {
            libc::write(
                fd.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// Silences the bell.
    pub(crate) fn drain(&self) {
        let fd = self.0.lock();
        let Some(fd) = fd.as_ref() else { return };
        self.1.store(false, std::sync::atomic::Ordering::Release);
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a local from our own non-blocking eventfd, kept open by
        // the lock we hold.
        unsafe {
            libc::read(
                fd.as_raw_fd(),
                (&mut count as *mut u64).cast(),
                std::mem::size_of::<u64>(),
            );
        }
    }

    /// The descriptor to poll. Only its one waiter polls it, and only while it is sure the
    /// bell is not being closed (see `close`).
    pub(crate) fn fd(&self) -> Option<RawFd> {
        self.0.lock().as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Closes the descriptor. The caller makes sure its waiter no longer polls it.
    pub(crate) fn close(&self) {
        self.0.lock().take();
    }
}

/// A descriptor that becomes readable when process `pid` exits (Linux 5.3+).
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: plain system call with integer arguments; a non-negative result is a new
    // descriptor (close-on-exec by default) that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sets `O_NONBLOCK` on a descriptor.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: `fd` is open for the duration of the calls (the caller owns it); F_GETFL and
    // F_SETFL only change its file status flags.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Reads what is available into the spare capacity of `buf` (at least `chunk` bytes are
/// made room for), without blocking. `Ok(None)`: nothing available now; `Ok(Some(0))`: end
/// of stream.
pub(crate) fn read_into(fd: RawFd, buf: &mut Vec<u8>, chunk: usize) -> io::Result<Option<usize>> {
    buf.reserve(chunk);
    let spare = buf.capacity() - buf.len();
    loop {
        // SAFETY: the pointer is `spare` bytes of allocated, writable capacity past the
        // initialized part of `buf`; read writes at most that many bytes there.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().add(buf.len()).cast(), spare) };
        if n >= 0 {
            // SAFETY: read initialized exactly `n` bytes right after the old length.
            unsafe { buf.set_len(buf.len() + n as usize) };
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// Writes what the descriptor takes of `bytes` without blocking; 0 when it takes nothing
/// now.
pub(crate) fn write_some(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the pointer and length describe the live slice `bytes`.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Blocks `SIGPIPE` in the calling thread, so a write to a dead child returns `EPIPE`
/// instead of killing a host (a C program, say) that keeps the default action.
pub(crate) fn block_sigpipe_in_this_thread() {
    // SAFETY: `set` is a local initialized by sigemptyset before use; pthread_sigmask only
    // changes this thread's signal mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A pipe whose both ends are close-on-exec.
#[cfg(test)]
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints that pipe2 fills with new descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// How long `poll` may be asked to wait before its timeout rounds to a whole millisecond.
#[cfg(test)]
pub(crate) const POLL_GRAIN: Duration = Duration::from_millis(1);

/// Starts a TCP connection without waiting for it: a non-blocking, close-on-exec socket
/// whose connect is under way (wait for it to become writable, then read its error).
pub(crate) fn tcp_connect_nonblocking(
    addr: std::net::SocketAddr,
) -> io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let (family, storage, len) = sockaddr(addr);
    // SAFETY: plain socket(2) call; the descriptor is owned right below.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nobody else owns.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(fd) };
    // SAFETY: `storage` holds a valid sockaddr of `len` bytes for this family.
    let rc = unsafe {
        libc::connect(
            fd,
            std::ptr::addr_of!(storage).cast::<libc::sockaddr>(),
            len,
        )
    };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
    }
    Ok(stream)
}

fn sockaddr(addr: std::net::SocketAddr) -> (i32, libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is a valid (unspecified) address.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin) };
            (
                libc::AF_INET,
                storage,
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write(std::ptr::addr_of_mut!(storage).cast(), sin6) };
            (
                libc::AF_INET6,
                storage,
                std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bell_wakes_a_poll_and_drains() {
        let bell = Bell::new().unwrap();
        let mut w = [Watch::new(bell.fd().unwrap(), IN)];
        assert!(!poll(&mut w, Some(Instant::now())).unwrap());
        bell.ring();
        bell.ring();
        assert!(poll(&mut w, None).unwrap() && w[0].readable());
        bell.drain();
        assert!(!poll(&mut w, Some(Instant::now() + POLL_GRAIN)).unwrap());
        bell.close();
        bell.ring();
        assert_eq!(bell.fd(), None);
    }

    #[test]
    fn reads_and_writes_do_not_block() {
        let (r, w) = pipe().unwrap();
        set_nonblocking(r.as_raw_fd()).unwrap();
        set_nonblocking(w.as_raw_fd()).unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_into(r.as_raw_fd(), &mut buf, 16).unwrap(), None);
        assert_eq!(write_some(w.as_raw_fd(), b"hello").unwrap(), 5);
        assert_eq!(read_into(r.as_raw_fd(), &mut buf, 16).unwrap(), Some(5));
        assert_eq!(buf, b"hello");
        // A full pipe takes nothing more.
        let big = vec![0u8; 1 << 20];
        while write_some(w.as_raw_fd(), &big).unwrap() > 0 {}
        assert_eq!(write_some(w.as_raw_fd(), b"x").unwrap(), 0);
        drop(w);
        let mut sink = Vec::new();
        loop {
            sink.clear();
            match read_into(r.as_raw_fd(), &mut sink, 1 << 16).unwrap() {
                Some(0) => break,
                _ => continue,
            }
        }
    }

    #[test]
    fn a_pidfd_becomes_readable_when_the_process_exits() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let fd = pidfd_open(child.id()).unwrap();
        let mut w = [Watch::new(fd.as_raw_fd(), IN)];
        assert!(poll(&mut w, Some(Instant::now() + Duration::from_secs(5))).unwrap());
        child.wait().unwrap();
    }
}
