//! Tools and start-up behaviours that misbehave on purpose: answering late, twice, with a
//! stray id or never; not reading stdin any more; crashing, killing itself, closing stdout;
//! writing garbage, huge lines or floods of stderr; leaving helper processes behind; results
//! that must not be read as success (an odd `resultType`, no `content`, an unknown block);
//! refusing a supported protocol version (`refuse_next`).

use serde_json::json;
use std::io::{self, BufWriter, Write};
use std::os::unix::process::CommandExt;
use std::process::{self, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use super::state::{lock, Shared};
use super::tools::{arg_i64, arg_str, arg_u64, bad_arg, error_result, ok, Call};
use super::wire::{encode, response, Outcome};

const MAX_OVERSIZE: u64 = 1 << 30;

pub(super) fn tool_hang(_: &Shared, call: &Call) -> Outcome {
    call.slot.sleep_until(None);
    Ok(None)
}

pub(super) fn tool_late(shared: &Shared, call: &Call) -> Outcome {
    // Ignores `notifications/cancelled`: the answer comes late, after the client gave up
    // (sent here, since the dispatcher drops the answers of cancelled calls).
    let ms = arg_u64(call, "ms", None)?;
    thread::sleep(Duration::from_millis(ms));
    shared.respond(&call.id, ok(&format!("late by {ms}")));
    Ok(None)
}

pub(super) fn tool_stop_reading(_: &Shared, _: &Call) -> Outcome {
    stop_reading()
}

/// Called on the main loop: nothing more is read from stdin, ever.
fn stop_reading() -> ! {
    loop {
        thread::sleep(Duration::from_secs(3600));
    }
}

/// The characters of `flood_requests` ids, base-62 digits: none needs escaping in JSON.
const ID_DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

pub(super) fn tool_flood_requests(shared: &Shared, call: &Call) -> Outcome {
    let count = arg_u64(call, "count", None)?;
    let length = |name: &str| -> Result<usize, _> {
        let n = arg_u64(call, name, None)?;
        match usize::try_from(n) {
            Ok(n) if n as u64 <= MAX_OVERSIZE => Ok(n),
            _ => Err(bad_arg(call, name, "at most 1 GiB")),
        }
    };
    let (id_len, method_len) = (length("id_bytes")?, length("method_bytes")?);
    // Ids are `count` distinct numbers written in `id_len` base-62 digits.
    let distinct = u32::try_from(id_len)
        .ok()
        .and_then(|n| 62u64.checked_pow(n))
        .unwrap_or(u64::MAX);
    if count > distinct {
        return Err(bad_arg(
            call,
            "id_bytes",
            "long enough for `count` distinct ids",
        ));
    }
    let mut line = Vec::with_capacity(id_len + method_len + 40);
    line.extend_from_slice(br#"{"jsonrpc":"2.0","id":""#);
    let id_end = line.len() + id_len;
    line.resize(id_end, b'0');
    line.extend_from_slice(br#"","method":""#);
    line.resize(line.len() + method_len, b'm');
    line.extend_from_slice(br#""}"#);
    for i in 0..count {
        // i only grows, so the digits left of i's own are still the '0' padding.
        let (mut n, mut at) = (i, id_end);
        while n > 0 {
            at -= 1;
            line[at] = ID_DIGITS[(n % 62) as usize];
            n /= 62;
        }
        shared.emit(&line);
    }
    stop_reading()
}

pub(super) fn tool_block(_: &Shared, call: &Call) -> Outcome {
    // Runs on the main loop, like a single-threaded server stuck in a long tool call:
    // meanwhile nothing is read from stdin and no request is answered.
    let ms = arg_u64(call, "ms", None)?;
    thread::sleep(Duration::from_millis(ms));
    ok(&format!("blocked {ms}"))
}

pub(super) fn tool_crash(shared: &Shared, call: &Call) -> Outcome {
    let code = arg_i64(call, "code", 3)?;
    let code = i32::try_from(code).map_err(|_| bad_arg(call, "code", "a 32-bit integer"))?;
    let after_ms = arg_u64(call, "after_ms", Some(0))?;
    say!("crashing");
    // --answer-after-exit: the answer is written and flushed right before the exit (holding the
    // writer, so it is the last line), so it is in the pipe when the process is gone.
    let last_words = if shared.cfg.answer_after_exit {
        encode(&response(&call.id, shared.finish(error_result("crashed"))))
    } else {
        None
    };
    let die = || {
        let (out, last_words) = (Arc::clone(&shared.out), last_words.clone());
        move || {
            thread::sleep(Duration::from_millis(after_ms));
            let _held = last_words.map(|line| {
                let mut out = lock(&out);
                out.emit(&line);
                out
            });
            process::exit(code)
        }
    };
    if after_ms == 0 || thread::Builder::new().spawn(die()).is_err() {
        die()();
    }
    Ok(None)
}

pub(super) fn tool_kill_self(_: &Shared, call: &Call) -> Outcome {
    let signal = arg_i64(call, "signal", 9)?;
    let signal = i32::try_from(signal).map_err(|_| bad_arg(call, "signal", "a signal number"))?;
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    let rc = unsafe { libc::kill(libc::getpid(), signal) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Ok(Some(error_result(&format!("kill({signal}) failed: {err}"))));
    }
    thread::sleep(Duration::from_millis(100));
    Ok(Some(error_result(&format!(
        "signal {signal} did not terminate the process"
    ))))
}

/// A result that is only `{"resultType": value}`.
pub(super) fn tool_result_type(_: &Shared, call: &Call) -> Outcome {
    Ok(Some(json!({"resultType": arg_str(call, "value")?})))
}

/// A result without `content`: `{"resultType": "complete"}` (per-request generation) or `{}`.
pub(super) fn tool_no_content(_: &Shared, call: &Call) -> Outcome {
    match call.client.is_stateless() {
        true => Ok(Some(json!({"resultType": "complete"}))),
        false => Ok(Some(json!({}))),
    }
}

/// A text block next to a block of a type no specification defines.
pub(super) fn tool_opaque_content(_: &Shared, _: &Call) -> Outcome {
    Ok(Some(json!({"content": [
        {"type": "text", "text": "visible"},
        {"type": "hologram", "data": "AAECAw==", "mimeType": "application/x-hologram"}
    ]})))
}

pub(super) fn tool_garbage(shared: &Shared, _: &Call) -> Outcome {
    shared.emit(b"this is not json");
    ok("ok")
}

pub(super) fn tool_oversize(_: &Shared, call: &Call) -> Outcome {
    let bytes = arg_u64(call, "bytes", None)?;
    if bytes > MAX_OVERSIZE {
        return Err(bad_arg(call, "bytes", "at most 1 GiB"));
    }
    ok(&"x".repeat(usize::try_from(bytes).unwrap_or(0)))
}

/// Writes exactly `bytes` bytes of ~100-character lines to stderr.
pub(super) fn flood_stderr(bytes: u64) {
    let mut err = BufWriter::with_capacity(64 * 1024, io::stderr().lock());
    let mut left = bytes;
    let mut n = 0u64;
    while left > 0 {
        let mut line = format!("fake-server: stderr flood line {n:08} ");
        let len = usize::try_from(left.min(100)).unwrap_or(100);
        line.truncate(len - 1);
        while line.len() < len - 1 {
            line.push('.');
        }
        line.push('\n');
        if err.write_all(line.as_bytes()).is_err() {
            return;
        }
        left -= len as u64;
        n += 1;
    }
    let _ = err.flush();
}

pub(super) fn tool_stderr_flood(_: &Shared, call: &Call) -> Outcome {
    flood_stderr(arg_u64(call, "bytes", None)?);
    ok("flooded")
}

pub(super) fn tool_wrong_id(shared: &Shared, _: &Call) -> Outcome {
    shared.respond(&json!(999_999), ok("wrong id"));
    ok("ok")
}

pub(super) fn tool_duplicate_id(shared: &Shared, call: &Call) -> Outcome {
    shared.respond(&call.id, ok("ok"));
    ok("ok")
}

pub(super) fn tool_exit_stdout(shared: &Shared, _: &Call) -> Outcome {
    shared.close_stdout();
    let exit_later = || {
        thread::sleep(Duration::from_secs(5));
        process::exit(0)
    };
    if thread::Builder::new().spawn(exit_later).is_err() {
        exit_later();
    }
    Ok(None)
}

pub(super) fn tool_spawn_background(_: &Shared, _: &Call) -> Outcome {
    match spawn_sleeper(Sleeper::Quiet) {
        Ok(pid) => ok(&pid.to_string()),
        Err(e) => Ok(Some(error_result(&format!("cannot spawn sleep: {e}")))),
    }
}

/// The `sleep 1000` helper processes the server can leave behind.
#[derive(Clone, Copy)]
pub(super) enum Sleeper {
    /// In the server's process group, stdio to /dev/null (`--spawn-grandchild`, and
    /// `spawn_background` like a shell's background job).
    Quiet,
    /// In the server's process group, with the server's stdout and stderr: the pipes stay
    /// open after the server dies (`--grandchild-holds-stdout`).
    HoldsOutput,
    /// In a session and process group of its own (`setsid()`), with the server's stdout and
    /// stderr (`--daemon`).
    Daemon,
}

/// Spawns `sleep 1000` (stdin from /dev/null) and returns its pid; it is never waited for.
/// Its SIGTERM disposition is the default one, even when the server ignores SIGTERM.
pub(super) fn spawn_sleeper(kind: Sleeper) -> io::Result<u32> {
    let mut command = Command::new("sleep");
    command.arg("1000").stdin(Stdio::null());
    if let Sleeper::Quiet = kind {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let new_session = matches!(kind, Sleeper::Daemon);
    // SAFETY: the hook runs in the forked child before exec and only calls signal(2) and
    // setsid(2), both async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            if new_session && libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn().map(|child| child.id())
}

/// `refuse_next {count?}`: the next `count` (1) enveloped requests get -32022 (see
/// `--refuse-first`).
pub(super) fn tool_refuse_next(shared: &Shared, call: &Call) -> Outcome {
    let count = arg_u64(call, "count", Some(1))?;
    shared.refusals_left.fetch_add(count, Ordering::SeqCst);
    ok("ok")
}
