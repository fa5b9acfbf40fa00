//! The C ABI, from C and from Python, against the fake server:
//!
//! - `tests/c/ffi_test.c`, built with `cc -Wall -Wextra -Werror` under AddressSanitizer
//!   (where the compiler has it), covers every exported function and its error paths, with
//!   an HTTP fake server for the token callback; its threaded part runs again under
//!   ThreadSanitizer (where the compiler has it);
//! - `examples/c/hello.c` linked against the shared library and, with the documented link
//!   line, against the static one;
//! - the shared library's `SONAME` (`readelf`, when installed);
//! - `tests/python/test_mcp_pool.py` over `examples/mcp_pool.py`, and the script
//!   `examples/mcp_ctypes.py` against a configuration file, cut short by a closed pipe;
//! - that every exported function is in the committed header.
//!
//! No cargo runs inside: `cargo test` built the library's `cdylib` and `staticlib` next to
//! this test (`<target>/<profile>/deps/`), and they are hard-linked into a directory of this
//! run (named as an installed library is: `libmcp_pool.so.1` and its `libmcp_pool.so` link),
//! so a concurrent build cannot change them under the test. The whole file takes a few
//! seconds.
//!
//! `CC` picks another C compiler; `MCP_POOL_NO_ASAN=1` builds without AddressSanitizer and
//! `MCP_POOL_NO_TSAN=1` skips the ThreadSanitizer run; python3 missing skips the Python
//! tests, unless `MCP_POOL_INTEROP=require`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TMP: &str = env!("CARGO_TARGET_TMPDIR");

/// The C ABI version, as the header and the `SONAME` carry it.
fn abi_version() -> String {
    let header = std::fs::read_to_string(Path::new(ROOT).join("include/mcp_pool.h")).unwrap();
    let line = header
        .lines()
        .find_map(|l| l.strip_prefix("#define MCP_POOL_ABI_VERSION "))
        .expect("the header defines MCP_POOL_ABI_VERSION");
    line.trim().to_owned()
}

/// This run's directory: the libraries and the programs built from C.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Directories of runs that are over (their process is gone) are removed.
        if let Ok(entries) = std::fs::read_dir(TMP) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("ffi-run-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        let dir = Path::new(TMP).join(format!("ffi-run-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // This test runs from <target>/<profile>/deps/ffi-HASH, beside the libraries.
        let exe = std::env::current_exe().expect("test executable path");
        let deps = exe.parent().expect("<target>/<profile>/deps");
        let soname = format!("libmcp_pool.so.{}", abi_version());
        for (from, to) in [
            ("libmcp_pool.so", soname.as_str()),
            ("libmcp_pool.a", "libmcp_pool.a"),
        ] {
            let from = deps.join(from);
            assert!(from.exists(), "{} was not built", from.display());
            let to = dir.join(to);
            if std::fs::hard_link(&from, &to).is_err() {
                std::fs::copy(&from, &to).unwrap();
            }
        }
        std::os::unix::fs::symlink(&soname, dir.join("libmcp_pool.so")).unwrap();
        dir
    })
}

fn shared_library() -> PathBuf {
    run_dir().join(format!("libmcp_pool.so.{}", abi_version()))
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Whether programs built with `-fsanitize=NAME` compile and run here (a threaded probe).
fn sanitizer(name: &str, off_variable: &str) -> bool {
    static ON: OnceLock<std::sync::Mutex<Vec<(String, bool)>>> = OnceLock::new();
    let cache = ON.get_or_init(Default::default);
    if let Some((_, on)) = cache.lock().unwrap().iter().find(|(n, _)| n == name) {
        return *on;
    }
    let on = if std::env::var_os(off_variable).is_some_and(|v| v == "1") {
        eprintln!("{name} sanitizer: off ({off_variable}=1)");
        false
    } else {
        let src = run_dir().join(format!("probe-{name}.c"));
        std::fs::write(
            &src,
            "#include <pthread.h>\nstatic void *f(void *a) { return a; }\n\
             int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); return pthread_join(t, 0); }\n",
        )
        .unwrap();
        let exe = run_dir().join(format!("probe-{name}"));
        let works = Command::new(cc())
            .args([&format!("-fsanitize={name}"), "-pthread"])
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&exe)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        eprintln!(
            "{name} sanitizer: {}",
            if works {
                "on"
            } else {
                "off (not supported here)"
            }
        );
        works
    };
    cache.lock().unwrap().push((name.to_owned(), on));
    on
}

/// How a C program is linked.
enum Link<'a> {
    /// Against the shared library, sanitized with these `-fsanitize` values.
    Shared(&'a [&'a str]),
    /// Against the static library, with the system libraries the README lists.
    Static,
}

/// Compiles one C file against the header and a library; returns the program.
fn compile(source: &str, name: &str, link: Link<'_>) -> PathBuf {
    let dir = run_dir();
    let exe = dir.join(name);
    let mut cmd = Command::new(cc());
    cmd.args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-pthread", "-g"])
        .arg("-I")
        .arg(Path::new(ROOT).join("include"))
        .arg(Path::new(ROOT).join(source))
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Shared(sanitizers) => {
            for s in sanitizers {
                cmd.arg(format!("-fsanitize={s}"));
            }
            cmd.arg("-fno-omit-frame-pointer")
                .arg("-L")
                .arg(dir)
                .arg("-lmcp_pool")
                .arg(format!("-Wl,-rpath,{}", dir.display()));
        }
        Link::Static => {
            // The README's static link line.
            cmd.arg(dir.join("libmcp_pool.a")).args([
                "-lgcc_s",
                "-lutil",
                "-lrt",
                "-lpthread",
                "-lm",
                "-ldl",
                "-lc",
            ]);
        }
    }
    run_ok(&mut cmd, &format!("compiling {source}"));
    exe
}

/// Runs a command to completion within two minutes; panics with its output if it fails.
/// Returns its stdout.
fn run_ok(cmd: &mut Command, what: &str) -> String {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("--- {what}: stdout\n{out}--- {what}: stderr\n{err}");
    match status {
        Some(status) if status.success() => out,
        Some(status) => panic!("{what} failed ({status}); see its output above"),
        None => panic!("{what} did not finish within 120 s; see its output above"),
    }
}

/// A fake server over HTTP that refuses every request without `Bearer good`; ends when
/// dropped.
struct HttpServer {
    child: Child,
    url: String,
}

impl HttpServer {
    fn start() -> HttpServer {
        let mut child = Command::new(FAKE)
            .args(["--http", "127.0.0.1:0", "--http-401", "always"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the HTTP fake server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the HTTP fake server said {line:?}"))
            .to_owned();
        HttpServer { child, url }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take()); // it exits at end of input
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A configuration file naming the fake server `fake`, started with `args`.
fn config_file(name: &str, args: &[&str]) -> PathBuf {
    let path = run_dir().join(name);
    let config = serde_json::json!({"mcpServers": {"fake": {"command": FAKE, "args": args}}});
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

#[test]
fn c_test_program_passes() {
    let asan: &[&str] = if sanitizer("address", "MCP_POOL_NO_ASAN") {
        &["address"]
    } else {
        &[]
    };
    let exe = compile("tests/c/ffi_test.c", "ffi_test", Link::Shared(asan));
    let http = HttpServer::start();
    let out = run_ok(
        Command::new(exe).arg(FAKE).arg(&http.url),
        "tests/c/ffi_test.c",
    );
    assert!(out.contains("all C ABI checks passed"), "{out}");
    assert!(
        out.contains("HTTP token"),
        "the token callback was tested: {out}"
    );
}

/// The parts where the library's threads and the program's meet, under ThreadSanitizer.
/// The library itself is not instrumented: `tests/c/tsan.supp` silences the reports of its
/// own memory accesses (`called_from_lib`), so what is checked is the C side: the
/// callbacks and the threads calling in.
#[test]
fn c_threaded_part_passes_under_thread_sanitizer() {
    if !sanitizer("thread", "MCP_POOL_NO_TSAN") {
        eprintln!("skipped: ThreadSanitizer is not available here");
        return;
    }
    let exe = compile(
        "tests/c/ffi_test.c",
        "ffi_test_tsan",
        Link::Shared(&["thread"]),
    );
    let suppressions = Path::new(ROOT).join("tests/c/tsan.supp");
    let http = HttpServer::start();
    let out = run_ok(
        Command::new(exe)
            .arg(FAKE)
            .arg(&http.url)
            .arg("--threads")
            .env(
                "TSAN_OPTIONS",
                format!("suppressions={} exitcode=66", suppressions.display()),
            ),
        "tests/c/ffi_test.c --threads (ThreadSanitizer)",
    );
    assert!(
        out.contains("all C ABI checks passed (threaded part)"),
        "{out}"
    );
}

#[test]
fn c_example_lists_and_calls() {
    let exe = compile("examples/c/hello.c", "hello", Link::Shared(&[]));
    let config = config_file("ffi-hello.json", &[]);
    let tools = run_ok(Command::new(&exe).arg(&config).arg("fake"), "hello (list)");
    assert!(tools.contains(r#""name":"echo""#), "{tools}");
    let out = run_ok(
        Command::new(&exe)
            .arg(&config)
            .args(["fake", "echo", r#"{"text": "hi from C"}"#]),
        "hello (call)",
    );
    assert!(out.contains(r#""text":"hi from C""#), "{out}");
}

#[test]
fn c_example_links_statically_with_the_documented_line() {
    let exe = compile("examples/c/hello.c", "hello_static", Link::Static);
    let config = config_file("ffi-hello-static.json", &[]);
    let out = run_ok(
        Command::new(&exe)
            .arg(&config)
            .args(["fake", "echo", r#"{"text": "static"}"#]),
        "hello (static)",
    );
    assert!(out.contains(r#""text":"static""#), "{out}");
}

#[test]
fn shared_library_has_its_soname() {
    let Ok(out) = Command::new("readelf")
        .arg("-d")
        .arg(shared_library())
        .output()
    else {
        eprintln!("skipped: readelf not found");
        return;
    };
    let dynamic = String::from_utf8_lossy(&out.stdout);
    let want = format!("Library soname: [libmcp_pool.so.{}]", abi_version());
    assert!(dynamic.contains(&want), "{dynamic}");
}

/// `python3`, or `None` (with a message) when it is missing and not required.
fn python3() -> Option<&'static str> {
    if Command::new("python3").arg("--version").output().is_ok() {
        return Some("python3");
    }
    if std::env::var("MCP_POOL_INTEROP").is_ok_and(|v| v == "require") {
        panic!("python3 not found, and MCP_POOL_INTEROP=require");
    }
    eprintln!("skipped: python3 not found (MCP_POOL_INTEROP=require makes this a failure)");
    None
}

#[test]
fn python_module_tests_pass() {
    let Some(python) = python3() else { return };
    run_ok(
        Command::new(python)
            .arg(Path::new(ROOT).join("tests/python/test_mcp_pool.py"))
            .env("MCP_POOL_LIB", shared_library())
            .env("MCP_FAKE_SERVER", FAKE)
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "tests/python/test_mcp_pool.py",
    );
}

#[test]
fn python_script_calls_a_tool_from_a_config_file() {
    let Some(python) = python3() else { return };
    let config = config_file("ffi-python.json", &[]);
    let out = run_ok(
        Command::new(python)
            .arg(Path::new(ROOT).join("examples/mcp_ctypes.py"))
            .arg(&config)
            .args(["fake", "echo", r#"{"text": "hi from Python"}"#])
            .env("MCP_POOL_LIB", shared_library())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        "examples/mcp_ctypes.py",
    );
    assert_eq!(out, "hi from Python\n");
}

/// `mcp_ctypes.py CONFIG fake | head -1`: the script ends quietly when its reader goes.
/// The server has thousands of tools, so the list fills the pipe and the script is still
/// writing when the reader closes its end.
#[test]
fn python_script_ends_quietly_on_a_closed_pipe() {
    let Some(python) = python3() else { return };
    let config = config_file("ffi-python-pipe.json", &["--extra-tools", "3000"]);
    let mut child = Command::new(python)
        .arg(Path::new(ROOT).join("examples/mcp_ctypes.py"))
        .arg(&config)
        .arg("fake")
        .env("MCP_POOL_LIB", shared_library())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap(); // and the pipe is closed, as `head -1` does
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(first.contains(": "), "a tool's line: {first}");
    assert!(status.success(), "{status}; stderr: {stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

/// A cheap guard for machines without cbindgen; `.ci/run` compares the whole header.
#[test]
fn header_declares_every_exported_function() {
    let header = std::fs::read_to_string(Path::new(ROOT).join("include/mcp_pool.h")).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(Path::new(ROOT).join("src/ffi")).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in source.lines() {
            let Some(rest) = line.split("extern \"C\" fn ").nth(1) else {
                continue;
            };
            let name = rest.split('(').next().unwrap();
            count += 1;
            assert!(
                header.contains(&format!(" {name}(")) || header.contains(&format!("*{name}(")),
                "{name} is missing from include/mcp_pool.h: regenerate it (see cbindgen.toml)"
            );
        }
    }
    assert!(count >= 60, "found only {count} exported functions");
}
