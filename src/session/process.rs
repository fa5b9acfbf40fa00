//! The child process: spawning (environment policy, program lookup, its own process group,
//! the watchdog), the bounded stderr tail, and the kill ladder that always reaps.
//!
//! The environment policy: unless the configuration inherits the whole environment, the
//! child gets the variables of [`DEFAULT_ENV`] and [`DEFAULT_PREFIXES`] that this process
//! has, those its `pass_env` names, and its own `env` (which wins). What it did not get is
//! listed, names only, when it exits during its start ([`withheld_note`]).
//!
//! Children are spawned without a `pre_exec` hook, so the standard library can use
//! `posix_spawn` (a vfork) instead of copying the host's address space for every spawn.
//! What `PR_SET_PDEATHSIG` used to do, and more, is done by the watchdog (`watchdog.rs`): it
//! kills each registered process group when the host dies, however it dies.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::config::{server_error, ServerConfig};
use crate::error::{CloseReason, Error};

use super::sys::{self, Watch};
use super::watchdog;

/// Variables passed to the child when the environment is not inherited (documented on
/// `ServerConfig::env`): who and where the user is, the proxy and certificate settings a
/// server needs to reach the network the way everything else here does, and the locale.
pub(crate) const DEFAULT_ENV: &[&str] = &[
    "HOME",
    "LOGNAME",
    "PATH",
    "SHELL",
    "TERM",
    "USER",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "LANG",
    "LANGUAGE",
];

/// Prefixes of the variables passed by default: the locale categories.
pub(crate) const DEFAULT_PREFIXES: &[&str] = &["LC_"];

/// The most withheld variable names an error lists.
const WITHHELD_SHOWN: usize = 16;

/// Whether the child gets this process's variable `name` (the environment not inherited):
/// a default, or named by `pass` (a name, or a prefix ending in `*`).
fn passed(name: &OsStr, pass: &[String]) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    DEFAULT_ENV.contains(&name)
        || DEFAULT_PREFIXES.iter().any(|p| name.starts_with(p))
        || pass.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => p == name,
        })
}

/// The child's environment when it does not inherit this process's: the variables passed,
/// then the configuration's own.
fn child_env(config: &ServerConfig) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            passed(k, &config.pass_env) && !config.env.contains_key(&*k.to_string_lossy())
        })
        .collect();
    env.extend(config.env.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// The names of this process's variables a server started with `config` does not get,
/// sorted, those that most often explain a failed start (proxies, certificates, package
/// managers, interpreters) first.
pub(crate) fn withheld(config: &ServerConfig) -> Vec<String> {
    if config.inherit_env {
        return Vec::new();
    }
    let mut names: Vec<String> = std::env::vars_os()
        .map(|(k, _)| k)
        .filter(|k| !passed(k, &config.pass_env))
        .map(|k| k.to_string_lossy().into_owned())
        .filter(|k| !config.env.contains_key(k))
        .collect();
    const HINTS: &[&str] = &[
        "PROXY",
        "CERT",
        "CA_",
        "SSL",
        "TLS",
        "NPM",
        "NODE",
        "PYTHON",
        "UV_",
        "PIP",
        "VIRTUAL_ENV",
        "CONDA",
        "JAVA",
        "GOPATH",
        "DOCKER",
    ];
    // `false` (a hint) sorts first.
    let plain = |k: &str| {
        let upper = k.to_ascii_uppercase();
        !HINTS.iter().any(|h| upper.contains(h))
    };
    names.sort_by(|a, b| (plain(a), a).cmp(&(plain(b), b)));
    names
}

/// For a server that exited during its start: which of this process's variables it did
/// not get (names only, never values) and how to pass them; empty when it got them all.
pub(crate) fn withheld_note(config: &ServerConfig) -> String {
    let names = withheld(config);
    if names.is_empty() {
        return String::new();
    }
    let shown = names.len().min(WITHHELD_SHOWN);
    let mut list = names[..shown].join(", ");
    if names.len() > shown {
        list += &format!(" and {} more", names.len() - shown);
    }
    format!(
        " (it did not get these variables of this process: {list}; pass what it needs with \
         `passEnv` or `ServerConfig::pass_env`)"
    )
}

/// A running server process and its pipes, each non-blocking.
pub(crate) struct Spawned {
    pub process: Process,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// A child process that leads its own process group, registered with the watchdog.
pub(crate) struct Process {
    child: Child,
    /// Readable once the child exits (None where pidfds are not available).
    exit: Option<OwnedFd>,
    reaped: bool,
}

impl Process {
    /// Starts the server's process: no shell, its own process group, stdio piped and
    /// non-blocking, registered with the watchdog.
    pub(crate) fn spawn(config: &ServerConfig) -> Result<Spawned, Error> {
        let command_line = config.command_line();
        if let Some(dir) = &config.cwd {
            // The directory's fault, not the command's: say so, before anything is run.
            let what = match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => None,
                Ok(_) => Some("is not a directory"),
                Err(_) => Some("does not exist"),
            };
            if let Some(what) = what {
                return Err(server_error(
                    config.origin.as_deref(),
                    &config.name,
                    format!("its working directory `{}` (`cwd`) {what}", dir.display()),
                ));
            }
        }
        let env: Vec<(OsString, OsString)> = if config.inherit_env {
            config
                .env
                .iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect()
        } else {
            child_env(config)
        };
        let path = env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var_os("PATH"));
        let program = resolve(&config.command, path.as_deref(), config.cwd.as_deref())
            .map_err(|e| Error::spawn(command_line.clone(), e))?;

        let mut cmd = Command::new(&program);
        cmd.arg0(&config.command)
            .args(&config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !config.inherit_env {
            cmd.env_clear();
        }
        cmd.envs(env);
        if let Some(dir) = &config.cwd {
            cmd.current_dir(dir);
        }
        cmd.process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::spawn(command_line.clone(), e))?;
        // Registered before anything else can fail, so even a failed set-up cannot leave
        // the group behind a dying host.
        watchdog::register(child.id());
        let exit = match sys::pidfd_open(child.id()) {
            Ok(fd) => Some(fd),
            Err(e) => {
                log::debug!("pidfd_open: {e}; child exits are seen by polling");
                None
            }
        };
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => {
                    (OwnedFd::from(i), OwnedFd::from(o), OwnedFd::from(e))
                }
                _ => unreachable!("all three stdio streams are piped"),
            };
        let mut process = Process {
            child,
            exit,
            reaped: false,
        };
        let nonblocking = [&stdin, &stdout, &stderr]
            .iter()
            .try_for_each(|fd| sys::set_nonblocking(fd.as_raw_fd()));
        if let Err(e) = nonblocking {
            drop((stdin, stdout, stderr));
            process.shut_down(Duration::ZERO);
            return Err(Error::spawn(
                format!("{command_line} (setting up its pipes)"),
                e,
            ));
        }
        log::debug!(
            "[{}] spawned pid {}: {command_line}",
            config.name,
            process.pid()
        );
        Ok(Spawned {
            process,
            stdin,
            stdout,
            stderr,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A descriptor that is readable once the child has exited, if the system has them.
    pub(crate) fn exit_fd(&self) -> Option<RawFd> {
        self.exit.as_ref().map(AsRawFd::as_raw_fd)
    }

    /// Whether the child has exited, without reaping it: until [`shut_down`](Self::shut_down)
    /// reaps it, its pid, and so its process group id, cannot be reused.
    pub(crate) fn exited(&self) -> Option<CloseReason> {
        let pid = libc::id_t::try_from(self.child.id()).ok()?;
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

    /// Waits up to `limit` for the child to exit (without reaping it).
    pub(crate) fn wait_exit(&self, limit: Duration) -> Option<CloseReason> {
        let until = Instant::now() + limit;
        let mut pause = Duration::from_micros(200);
        loop {
            if let Some(reason) = self.exited() {
                return Some(reason);
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            match self.exit_fd() {
                Some(fd) => {
                    let _ = sys::poll(&mut [Watch::new(fd, sys::IN)], Some(until));
                }
                None => {
                    std::thread::sleep(pause.min(until - now));
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
            }
        }
    }

    fn signal_group(&self, signal: i32) {
        let Ok(pgid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: plain system call. The group id is the child's pid (it leads its own group,
        // see `spawn`), and the child is not reaped before the last signal is sent (see
        // `shut_down`), so the id cannot belong to anyone else's group.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }

    /// The kill ladder. The caller has already closed the child's stdin. Waits `grace` for
    /// a clean exit, then sends SIGTERM to the process group, waits `grace` again, then
    /// SIGKILL. Then, while the exited leader still holds its group id, kills what is left
    /// of the group (grandchildren such as the node process under `npx`), and only then
    /// reaps the child. Returns how it ended.
    pub(crate) fn shut_down(&mut self, grace: Duration) -> CloseReason {
        if self.reaped {
            return CloseReason::Closed;
        }
        let pid = self.child.id();
        let mut reason = self.wait_exit(grace);
        if reason.is_none() {
            log::debug!("child {pid} still running; sending SIGTERM to its group");
            self.signal_group(libc::SIGTERM);
            reason = self.wait_exit(grace);
        }
        if reason.is_none() {
            log::debug!("child {pid} ignored SIGTERM; sending SIGKILL");
            self.signal_group(libc::SIGKILL);
            let _ = self.child.kill();
        }
        self.signal_group(libc::SIGKILL);
        // The group is gone; forget it before its id can be reused.
        watchdog::unregister(pid);
        self.reaped = true;
        loop {
            match self.child.wait() {
                Ok(status) => return reason.unwrap_or_else(|| close_reason(status)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::error!("cannot reap child {pid}: {e}");
                    return reason.unwrap_or(CloseReason::Broken(format!("cannot reap: {e}")));
                }
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Normally the worker has run the kill ladder; this is the safety net for a worker
        // that unwound.
        if !self.reaped {
            self.shut_down(Duration::ZERO);
        }
    }
}

/// Turns an exit status into the reason a session ended.
fn close_reason(status: ExitStatus) -> CloseReason {
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        return CloseReason::Signaled(sig);
    }
    CloseReason::Exited(status.code().unwrap_or(-1))
}

/// The program to run: `command` itself when it names a path, else the first executable of
/// that name on `path` (the child's `PATH`), as `execvp` would find it.
fn resolve(
    command: &str,
    path: Option<&std::ffi::OsStr>,
    cwd: Option<&Path>,
) -> io::Result<PathBuf> {
    if command.contains('/') {
        return Ok(PathBuf::from(command));
    }
    for dir in std::env::split_paths(path.unwrap_or_default()) {
        let dir = match (dir.is_relative(), cwd) {
            (true, Some(cwd)) => cwd.join(dir),
            _ => dir,
        };
        let candidate = dir.join(command);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("`{command}` is not found on the server's PATH"),
    ))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
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

/// Drains a child's stderr without blocking: each line to `log` at debug level with the
/// server's name, and into the tail. A line longer than the tail's byte limit is cut there.
pub(crate) struct StderrDrain {
    partial: Vec<u8>,
    pub tail: StderrTail,
    server: String,
}

impl StderrDrain {
    pub(crate) fn new(server: &str, max_lines: usize, max_bytes: usize) -> Self {
        StderrDrain {
            partial: Vec::new(),
            tail: StderrTail::new(max_lines, max_bytes),
            server: server.to_owned(),
        }
    }

    /// Reads what is there. Returns `false` once the stream has ended.
    pub(crate) fn read(&mut self, fd: RawFd) -> bool {
        let max = self.tail.max_bytes.max(256);
        let mut chunk = Vec::with_capacity(8192);
        loop {
            chunk.clear();
            match sys::read_into(fd, &mut chunk, 8192) {
                Ok(Some(0)) | Err(_) => {
                    self.flush_partial();
                    return false;
                }
                Ok(None) => return true,
                Ok(Some(_)) => {
                    let mut rest: &[u8] = &chunk;
                    while let Some(i) = rest.iter().position(|&b| b == b'\n') {
                        self.append(&rest[..i], max);
                        self.flush_partial();
                        rest = &rest[i + 1..];
                    }
                    self.append(rest, max);
                    if self.partial.len() >= max {
                        self.flush_partial();
                    }
                }
            }
        }
    }

    fn append(&mut self, bytes: &[u8], max: usize) {
        let room = max.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn flush_partial(&mut self) {
        if self.partial.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.partial);
        let text = text.trim_end_matches('\r');
        log::debug!(target: "mcp_pool::stderr", "[{}] {text}", self.server);
        self.tail.push(text);
        self.partial.clear();
    }

    /// The tail as text, the line being written included.
    pub(crate) fn text(&self) -> String {
        let mut text = self.tail.text();
        if !self.partial.is_empty() {
            text.push_str(&String::from_utf8_lossy(&self.partial));
            text.push('\n');
        }
        text
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

    #[test]
    fn the_defaults_and_pass_env_entries_decide_what_is_passed() {
        let pass = ["NAMED".to_owned(), "npm_config_*".to_owned()];
        for name in [
            "PATH",
            "HTTPS_PROXY",
            "no_proxy",
            "SSL_CERT_FILE",
            "LC_ALL",
            "LANG",
        ] {
            assert!(passed(name.as_ref(), &[]), "{name}");
        }
        for name in ["NAMED", "npm_config_registry", "npm_config_"] {
            assert!(passed(name.as_ref(), &pass), "{name}");
        }
        for name in [
            "NAMED_NOT",
            "npm_configx",
            "GITHUB_TOKEN",
            "LCX",
            "https_proxyx",
        ] {
            assert!(!passed(name.as_ref(), &pass), "{name}");
        }
    }

    #[test]
    fn programs_are_found_on_the_childs_path() {
        let found = resolve("sh", Some("/nonexistent:/bin:/usr/bin".as_ref()), None).unwrap();
        assert!(found.ends_with("sh"), "{found:?}");
        let e = resolve("no-such-mcp-server", Some("/bin".as_ref()), None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            e.to_string().contains("not found on the server's PATH"),
            "{e}"
        );
        assert_eq!(resolve("./x", None, None).unwrap(), PathBuf::from("./x"));
    }

    #[test]
    fn stderr_lines_are_split_and_cut() {
        let (r, w) = sys::pipe().unwrap();
        sys::set_nonblocking(r.as_raw_fd()).unwrap();
        let mut d = StderrDrain::new("s", 10, 300);
        sys::write_some(w.as_raw_fd(), b"one\ntwo\r\nthr").unwrap();
        assert!(d.read(r.as_raw_fd()));
        assert_eq!(d.text(), "one\ntwo\nthr\n");
        sys::write_some(w.as_raw_fd(), &[b'z'; 1000]).unwrap();
        drop(w);
        assert!(!d.read(r.as_raw_fd()));
        assert!(d.tail.text().lines().all(|l| l.len() <= 300));
    }
}
