//! The watchdog: one small `sh` process per host process that kills every registered
//! server process group when the host dies, however it dies (a SIGKILL included).
//!
//! The host holds one end of a socket pair and the watchdog reads the other as its stdin:
//! `+PGID` registers a group, `-PGID` forgets it. When the host is gone, the kernel closes
//! its end, the watchdog reads end of input and sends SIGKILL to each group still
//! registered. It ignores the terminal's signals (a Ctrl-C reaches the host's process group,
//! which the watchdog is not in) and holds nothing but its stdin, so it never keeps a server's
//! pipe open. This replaces `PR_SET_PDEATHSIG`, which needed a `pre_exec` hook (and so a full
//! `fork()` per spawn) and only ever killed the server itself, not its group.

use std::collections::BTreeSet;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};

use parking_lot::Mutex;

/// The name the watchdog runs under (`$0`), visible in `ps` and `/proc/PID/cmdline`.
pub const NAME: &str = "mcp-pool-watchdog";

const SCRIPT: &str = r#"trap '' INT HUP TERM QUIT PIPE
g=""
while IFS= read -r line; do
  case "$line" in
    +*) g="$g ${line#+}" ;;
    -*) n=""; for x in $g; do [ "$x" = "${line#-}" ] || n="$n $x"; done; g="$n" ;;
  esac
done
for x in $g; do kill -9 -"$x" 2>/dev/null; done
"#;

struct Watchdog {
    child: Child,
    socket: OwnedFd,
}

struct State {
    running: Option<Watchdog>,
    groups: BTreeSet<u32>,
    /// Starting failed once: do not try at every spawn.
    unavailable: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    running: None,
    groups: BTreeSet::new(),
    unavailable: false,
});

/// Registers a server's process group (its leader's pid).
pub(crate) fn register(pgid: u32) {
    let mut st = STATE.lock();
    st.groups.insert(pgid);
    if !send(&mut st, &format!("+{pgid}\n")) {
        // The watchdog died (or never started): start one and give it every group.
        st.running = None;
        if ensure(&mut st) {
            let all: String = st.groups.iter().map(|g| format!("+{g}\n")).collect();
            send(&mut st, &all);
        }
    }
}

/// Forgets a group, before its leader is reaped (so its id cannot have been reused).
pub(crate) fn unregister(pgid: u32) {
    let mut st = STATE.lock();
    if st.groups.remove(&pgid) {
        send(&mut st, &format!("-{pgid}\n"));
    }
}

/// Starts the watchdog if none runs, and returns its process id (`None` when it cannot be
/// started).
pub(crate) fn ensure_running() -> Option<u32> {
    let mut st = STATE.lock();
    ensure(&mut st);
    st.running.as_ref().map(|w| w.child.id())
}

/// Writes `line` to the watchdog; `false` when there is none or it is gone.
fn send(st: &mut State, line: &str) -> bool {
    if st.running.is_none() && !ensure(st) {
        return false;
    }
    let Some(w) = st.running.as_mut() else {
        return false;
    };
    let mut bytes = line.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: a send of a live slice on our own socket; MSG_NOSIGNAL turns a dead peer
        // into EPIPE instead of SIGPIPE, whatever this thread's signal mask.
        let n = unsafe {
            libc::send(
                w.socket.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            log::warn!("the watchdog (pid {}) is gone: {e}", w.child.id());
            let _ = w.child.try_wait();
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

/// Starts the watchdog if none runs. `false` when it cannot be started.
fn ensure(st: &mut State) -> bool {
    if st.running.is_some() {
        return true;
    }
    if st.unavailable {
        return false;
    }
    match start() {
        Ok(w) => {
            log::debug!("watchdog started, pid {}", w.child.id());
            st.running = Some(w);
            true
        }
        Err(e) => {
            log::warn!(
                "cannot start the watchdog (/bin/sh): {e}; servers' process groups will not \
                 be killed if this process dies without closing its pools"
            );
            st.unavailable = true;
            false
        }
    }
}

fn start() -> io::Result<Watchdog> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a writable array of two ints that socketpair fills with new
    // close-on-exec descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The watchdog only reads; shut our reading side so nothing can pile up there.
    // SAFETY: plain system call on our own socket.
    unsafe { libc::shutdown(ours.as_raw_fd(), libc::SHUT_RD) };
    use std::os::unix::process::CommandExt;
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg(NAME)
        .env_clear()
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own group: a signal to the host's group (a terminal's Ctrl-C, a `kill -- -PGID`)
        // does not take it down before it has done its job.
        .process_group(0)
        .spawn()?;
    Ok(Watchdog {
        child,
        socket: ours,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registered_group_dies_with_the_watchdogs_input() {
        use std::os::unix::process::CommandExt;
        // A watchdog of our own (not the process-wide one), closed by hand.
        let Watchdog { mut child, socket } = start().unwrap();
        let mut victim = Command::new("sleep")
            .arg("100")
            .process_group(0)
            .spawn()
            .unwrap();
        let line = format!("+{}\n+99999\n-99999\n", victim.id());
        // SAFETY: a write of a live slice to our own socket.
        unsafe { libc::write(socket.as_raw_fd(), line.as_ptr().cast(), line.len()) };
        drop(socket);
        let status = victim.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert!(child.wait().unwrap().success());
    }
}
