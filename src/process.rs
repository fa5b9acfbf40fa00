//! The child process: spawning (environment policy, process group, death signal), the stderr
//! drain with its bounded tail, and the kill ladder that always reaps.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::ServerConfig;
use crate::error::{CloseReason, Error};

/// Variables passed to the child when the environment is not inherited.
const DEFAULT_ENV: &[&str] = &["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

/// Starts the server's process: no shell, its own process group, stdio piped.
///
/// Call this from the thread that will own the child for its whole life: on Linux the child
/// is asked to die with that thread (`PR_SET_PDEATHSIG`).
pub(crate) fn spawn(config: &ServerConfig) -> Result<Child, Error> {
    let mut cmd = Command::new(&config.command);
    cmd.args(&config.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if !config.inherit_env {
        cmd.env_clear();
        for key in DEFAULT_ENV {
            if let Some(value) = std::env::var_os(key) {
                cmd.env(key, value);
            }
        }
    }
    cmd.envs(&config.env);
    if let Some(dir) = &config.cwd {
        cmd.current_dir(dir);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: the closure runs in the child between fork and exec and only makes the
        // async-signal-safe `prctl` system call: no allocation, no lock.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn().map_err(|source| Error::Spawn {
        command: config.command_line(),
        source,
    })
}

/// Blocks `SIGPIPE` in the calling thread, so a write to a dead child returns `EPIPE` instead
/// of killing a host process (a C program) that did not ignore the signal.
pub(crate) fn block_sigpipe_in_this_thread() {
    #[cfg(unix)]
    // SAFETY: `set` is a local, initialized by `sigemptyset` before use; `pthread_sigmask`
    // only changes the calling thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Makes writes to the child's stdin return `WouldBlock` instead of blocking.
pub(crate) fn set_nonblocking(stdin: &std::process::ChildStdin) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        let fd = stdin.as_raw_fd();
        // SAFETY: `fd` is an open descriptor owned by `stdin` for the duration of the calls;
        // F_GETFL/F_SETFL only change its file status flags.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Whether the child has exited, without reaping it: until [`shut_down`] reaps it, its pid,
/// and so its process group id, cannot be reused. Returns why it ended.
pub(crate) fn exited(child: &Child) -> Option<CloseReason> {
    #[cfg(unix)]
    {
        let pid = libc::id_t::try_from(child.id()).ok()?;
        // SAFETY: `info` is a zeroed local the call fills in; WNOWAIT leaves the child
        // waitable, WNOHANG makes the call return at once. `pid` is our own child.
        let (status, code) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            if libc::waitid(libc::P_PID, pid, &mut info, flags) != 0 || info.si_pid() == 0 {
                return None;
            }
            (info.si_status(), info.si_code)
        };
        Some(if code == libc::CLD_EXITED {
            CloseReason::Exited(status)
        } else {
            CloseReason::Signaled(status)
        })
    }
    #[cfg(not(unix))]
    {
        let _ = child;
        None
    }
}

/// Waits up to `limit` for the child to exit (without reaping it), polling with a growing
/// interval.
pub(crate) fn wait_exit(child: &Child, limit: Duration) -> Option<CloseReason> {
    let until = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(reason) = exited(child) {
            return Some(reason);
        }
        let now = Instant::now();
        if now >= until {
            return None;
        }
        thread::sleep(pause.min(until - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn signal_group(child: &Child, signal: i32) {
    #[cfg(unix)]
    {
        let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
            return;
        };
        // SAFETY: plain system call. The group id is the child's pid (it leads its own group,
        // see `spawn`), and the child is not reaped before the last signal is sent (see
        // `shut_down`), so the id cannot belong to anyone else's group.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (child, signal);
    }
}

/// The kill ladder. The caller has already closed the child's stdin. Waits `grace` for a
/// clean exit, then sends SIGTERM to the process group, waits `grace` again, then SIGKILL.
/// Then, while the exited leader still holds its group id, kills what is left of the group
/// (grandchildren such as the node process under `npx`), and only then reaps the child.
pub(crate) fn shut_down(child: &mut Child, grace: Duration) -> CloseReason {
    let mut reason = wait_exit(child, grace);
    if reason.is_none() {
        log::debug!(
            "child {} still running; sending SIGTERM to its group",
            child.id()
        );
        #[cfg(unix)]
        signal_group(child, libc::SIGTERM);
        reason = wait_exit(child, grace);
    }
    if reason.is_none() {
        log::debug!("child {} ignored SIGTERM; sending SIGKILL", child.id());
        #[cfg(unix)]
        signal_group(child, libc::SIGKILL);
        let _ = child.kill();
    }
    #[cfg(unix)]
    signal_group(child, libc::SIGKILL);
    loop {
        match child.wait() {
            Ok(status) => return reason.unwrap_or_else(|| close_reason(status)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::error!("cannot reap child {}: {e}", child.id());
                return reason.unwrap_or(CloseReason::Broken(format!("cannot reap: {e}")));
            }
        }
    }
}

/// Turns an exit status into the reason a session ended.
fn close_reason(status: ExitStatus) -> CloseReason {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return CloseReason::Signaled(sig);
        }
    }
    CloseReason::Exited(status.code().unwrap_or(-1))
}

/// The last lines a server wrote on stderr, bounded in lines and bytes.
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    lines: VecDeque<String>,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

impl StderrTail {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Self {
        StderrTail {
            lines: VecDeque::new(),
            bytes: 0,
            max_lines,
            max_bytes,
        }
    }

    pub(crate) fn push(&mut self, line: &str) {
        let mut line = line.to_owned();
        if line.len() > self.max_bytes {
            let mut end = self.max_bytes;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines || self.bytes > self.max_bytes {
            match self.lines.pop_front() {
                Some(old) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    pub(crate) fn text(&self) -> String {
        let mut out = String::with_capacity(self.bytes + self.lines.len());
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// A shared handle on a session's stderr tail.
pub(crate) type SharedTail = Arc<Mutex<StderrTail>>;

/// Drains the child's stderr until it closes: each line to `log` at debug level with the
/// server's name, and into the tail. Lines longer than the tail's byte limit are cut.
pub(crate) fn drain_stderr(stderr: ChildStderr, server: &str, tail: &SharedTail) {
    let max = tail.lock().max_bytes.max(256);
    let mut reader = BufReader::with_capacity(8192, stderr);
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        // Read at most `max` bytes of a line; the rest of an overlong line becomes new lines.
        match (&mut reader).take(max as u64).read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                log::debug!(target: "mcp_pool::stderr", "[{server}] {text}");
                tail.lock().push(text);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                log::debug!("[{server}] stderr read failed: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_within_bounds() {
        let mut t = StderrTail::new(3, 20);
        for i in 0..10 {
            t.push(&format!("line {i}"));
        }
        assert_eq!(t.text(), "line 7\nline 8\nline 9\n");
        t.push(&"y".repeat(50));
        assert_eq!(t.text(), format!("{}\n", "y".repeat(20)));
    }
}
