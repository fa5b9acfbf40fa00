//! The C ABI, from C and from Python: builds the shared library, compiles
//! `tests/c/ffi_test.c` and `examples/c/hello.c` with `cc -Wall -Wextra -Werror` (with
//! AddressSanitizer where the compiler has it) and runs them against the fake server; runs
//! `examples/mcp_ctypes.py` when `python3` is there. Also checks that every exported function
//! is in the committed header.
//!
//! `CC` picks another C compiler; `MCP_POOL_NO_ASAN=1` builds without AddressSanitizer.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const FAKE: &str = env!("CARGO_BIN_EXE_mcp-fake-server");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TMP: &str = env!("CARGO_TARGET_TMPDIR");

/// The directory holding `libmcp_pool.so`, built for this test's profile and target directory.
fn library_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // This test runs from <target>/<profile>/deps/ffi-HASH.
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>");
        let target_dir = profile_dir.parent().expect("<target>");
        let profile = profile_dir.file_name().unwrap().to_str().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--lib", "--quiet", "--target-dir"])
            .arg(target_dir)
            .current_dir(ROOT);
        match profile {
            "debug" => {}
            "release" => {
                build.arg("--release");
            }
            other => {
                build.args(["--profile", other]);
            }
        }
        // Fresh after `cargo test` built the library; then this only copies it into place.
        run_ok(&mut build, "cargo build --lib");
        let lib = profile_dir.join("libmcp_pool.so");
        assert!(lib.exists(), "{} was not built", lib.display());
        profile_dir.to_path_buf()
    })
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

/// Whether programs built with `-fsanitize=address` compile and run here.
fn asan() -> bool {
    static ASAN: OnceLock<bool> = OnceLock::new();
    *ASAN.get_or_init(|| {
        if std::env::var_os("MCP_POOL_NO_ASAN").is_some_and(|v| v == "1") {
            eprintln!("AddressSanitizer: off (MCP_POOL_NO_ASAN=1)");
            return false;
        }
        let dir = Path::new(TMP).join("ffi-asan-probe");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let exe = dir.join("probe");
        let works = Command::new(cc())
            .arg("-fsanitize=address")
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&exe).status().is_ok_and(|s| s.success());
        eprintln!(
            "AddressSanitizer: {}",
            if works { "on" } else { "off (not supported)" }
        );
        works
    })
}

/// Compiles one C file against the header and the shared library; returns the program.
fn compile(source: &str, name: &str) -> PathBuf {
    let lib = library_dir();
    let out_dir = Path::new(TMP).join("ffi-c");
    std::fs::create_dir_all(&out_dir).unwrap();
    let exe = out_dir.join(name);
    let mut cmd = Command::new(cc());
    cmd.args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-pthread", "-g"]);
    if asan() {
        cmd.args(["-fsanitize=address", "-fno-omit-frame-pointer"]);
    }
    cmd.arg("-I")
        .arg(Path::new(ROOT).join("include"))
        .arg(Path::new(ROOT).join(source))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(lib)
        .arg("-lmcp_pool")
        .arg(format!("-Wl,-rpath,{}", lib.display()));
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
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("--- {what}: stdout\n{out}--- {what}: stderr\n{err}");
    match status {
        Some(status) if status.success() => out,
        Some(status) => panic!("{what} failed ({status}); see its output above"),
        None => panic!("{what} did not finish within 120 s; see its output above"),
    }
}

/// A configuration file naming the fake server `fake`.
fn config_file(name: &str) -> PathBuf {
    let path = Path::new(TMP).join(name);
    let config = serde_json::json!({"mcpServers": {"fake": {"command": FAKE}}});
    std::fs::write(&path, config.to_string()).unwrap();
    path
}

#[test]
fn c_test_program_passes() {
    let exe = compile("tests/c/ffi_test.c", "ffi_test");
    let out = run_ok(Command::new(exe).arg(FAKE), "tests/c/ffi_test.c");
    assert!(out.contains("all C ABI checks passed"), "{out}");
}

#[test]
fn c_example_lists_and_calls() {
    let exe = compile("examples/c/hello.c", "hello");
    let config = config_file("ffi-hello.json");
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
fn python_ctypes_example_calls_a_tool() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipped: python3 not found");
        return;
    }
    let lib = library_dir().join("libmcp_pool.so");
    let config = config_file("ffi-python.json");
    let out = run_ok(
        Command::new("python3")
            .arg(Path::new(ROOT).join("examples/mcp_ctypes.py"))
            .arg(&config)
            .args(["fake", "echo", r#"{"text": "hi from Python"}"#])
            .env("MCP_POOL_LIB", lib),
        "examples/mcp_ctypes.py",
    );
    assert_eq!(out, "hi from Python\n");
}

/// A cheap guard for machines without cbindgen; `.ci/run` compares the whole header.
#[test]
fn header_declares_every_exported_function() {
    let source = std::fs::read_to_string(Path::new(ROOT).join("src/ffi.rs")).unwrap();
    let header = std::fs::read_to_string(Path::new(ROOT).join("include/mcp_pool.h")).unwrap();
    let mut count = 0;
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
    assert!(count >= 13, "found only {count} exported functions");
}
