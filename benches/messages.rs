//! Message sizes: answers of 1 KiB, 64 KiB, 1 MiB and 8 MiB (quick run: 1 KiB and 1 MiB)
//! through `Session::call_tool` of the fake server's `blob` tool (`{bytes}`: a text of that
//! many `x`, read-only), and requests of those sizes (its `echo` tool with a `text` argument of
//! that size, which comes back in the answer: both directions carry it).
//!
//! The floor, measured in the same run on the same server binary, is the raw client
//! (`common::Raw::request`) doing what any client must: the request serialized from a
//! `serde_json::Value`, one write, the answer line read as bytes (64 KiB reads, a pipe's
//! capacity) and parsed with `serde_json::from_slice::<serde_json::Value>`. A row without the
//! parse shows what the parse costs.
//!
//! `cargo bench --bench messages`. The subjects take turns, so that the noise of a shared
//! machine lands on all of them alike. The session's `max_message_size` is 64 MiB.

mod common;

use common::{ms, ratio, table, Raw, Samples, Usage};
use mcp_pool::{Content, Session};
use serde_json::{json, Value};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn size_name(bytes: usize) -> String {
    if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

fn text_len(r: &mcp_pool::CallToolResult) -> usize {
    assert!(!r.is_error);
    match r.content.first() {
        Some(Content::Text { text, .. }) => text.len(),
        _ => panic!("no text in the answer"),
    }
}

/// What a subject does once: a call of one size.
type Subject<'a> = Box<dyn FnMut() + 'a>;

fn main() {
    common::header("Message sizes: big answers and big requests on one session");
    let quick = common::quick();
    let (sizes, rounds): (&[usize], usize) = if quick {
        (&[KIB, MIB], 3)
    } else {
        (&[KIB, 64 * KIB, MIB, 8 * MIB], 10)
    };
    // Calls per block: about 32 MiB of answers (16 MiB in the quick run), 4 to 300 calls.
    let budget = if quick { 16 * MIB } else { 32 * MIB };
    let block = |size: usize| (budget / size).clamp(4, 300);

    let mut raw = Raw::start();
    let session =
        Session::start(common::config().max_message_size(64 * MIB)).expect("start the fake server");

    let names = [
        "`blob` answer: raw, read + `serde_json::from_slice::<Value>` (floor)",
        "`blob` answer: raw, read only, no parse",
        "`blob` answer: `Session::call_tool`",
        "`echo` request and answer: raw, serialize + read + parse (floor)",
        "`echo` request and answer: `Session::call_tool`",
    ];
    let mut rows = Vec::new();
    // (size, blob floor, blob session, echo floor, echo session) p50 seconds per call.
    let mut figures: Vec<(usize, [f64; 5])> = Vec::new();
    for &size in sizes {
        let blob = json!({ "bytes": size });
        let text = Value::String("x".repeat(size));
        let echo = json!({ "text": text });
        let raw = std::cell::RefCell::new(&mut raw);
        let mut subjects: [Subject<'_>; 5] = [
            Box::new(|| {
                let n = raw.borrow_mut().request("blob", &blob, true);
                assert!(n > size);
            }),
            Box::new(|| {
                let n = raw.borrow_mut().request("blob", &blob, false);
                assert!(n > size);
            }),
            Box::new(|| {
                let r = session.call_tool("blob", blob.clone()).unwrap();
                assert_eq!(text_len(&r), size);
            }),
            Box::new(|| {
                // The library takes the arguments by value: both clone them per call.
                let args = echo.clone();
                let n = raw.borrow_mut().request("echo", &args, true);
                assert!(n > size);
            }),
            Box::new(|| {
                let r = session.call_tool("echo", echo.clone()).unwrap();
                assert_eq!(text_len(&r), size);
            }),
        ];
        let n = block(size);
        // Warm-up: page faults, the buffers' growth, the servers' allocators.
        for f in subjects.iter_mut() {
            for _ in 0..n.div_ceil(4) {
                f();
            }
        }
        let mut samples: [Samples; 5] = Default::default();
        let mut usage = [Usage::default(); 5];
        common::rounds::<5>(rounds, |k| {
            usage[k] += common::time_n(&mut samples[k], n, &mut subjects[k]);
        });
        let mut p50 = [0f64; 5];
        for (k, s) in samples.iter_mut().enumerate() {
            p50[k] = s.p50().as_secs_f64();
        }
        for (k, s) in samples.iter_mut().enumerate() {
            let floor = if k < 3 { p50[0] } else { p50[3] };
            let calls = s.len() as f64;
            rows.push(vec![
                size_name(size),
                names[k].to_string(),
                s.len().to_string(),
                ms(s.p50()),
                ms(s.p99()),
                format!("{:.0} MiB/s", size as f64 / MIB as f64 / p50[k]),
                ratio(p50[k], floor),
                usage[k].cpu_per(calls),
                usage[k].switches_per(calls),
            ]);
        }
        figures.push((size, p50));
    }
    raw.close();
    session.close();

    table(
        &[
            "size",
            "one call",
            "calls",
            "p50",
            "p99",
            "payload MiB/s (at p50)",
            "vs its floor",
            "client CPU per call",
            "client context switches per call",
        ],
        &rows,
    );
    println!(
        "The floors parse every answer into a `serde_json::Value`, as any client must; the \
         row without the parse is for reference only. `echo` carries the text both ways. \
         Client CPU time and context switches are this process's (getrusage), all threads; the \
         server's are not counted.\n"
    );

    // Targets: the session at 1 and 8 MiB against the floor; time linear in size.
    for &(size, p) in &figures {
        if size == MIB || size == 8 * MIB {
            let r = p[2] / p[0];
            println!(
                "target: a {} answer ≤ 1.1× the raw floor: {r:.2}×, {}",
                size_name(size),
                common::verdict(r <= 1.1)
            );
        }
    }
    let per_byte = |size: usize, k: usize| {
        figures
            .iter()
            .find(|(s, _)| *s == size)
            .map(|(s, p)| p[k] / *s as f64)
    };
    // Linear: the time per byte at 8 MiB against 1 MiB (full run only).
    if let (Some(small), Some(big)) = (per_byte(MIB, 2), per_byte(8 * MIB, 2)) {
        let r = big / small;
        let floor = per_byte(8 * MIB, 0).unwrap() / per_byte(MIB, 0).unwrap();
        println!(
            "target: linear in size (time per byte at 8 MiB ≤ 1.2× at 1 MiB): {r:.2}×, {} \
             (the floor: {floor:.2}×)",
            common::verdict(r <= 1.2)
        );
    } else {
        println!("linear in size: checked by the full run (8 MiB against 1 MiB)");
    }
    let json: serde_json::Map<String, Value> = figures
        .iter()
        .map(|(size, p)| {
            (
                size.to_string(),
                json!({
                    "raw_blob_ms": p[0] * 1e3,
                    "session_blob_ms": p[2] * 1e3,
                    "raw_echo_ms": p[3] * 1e3,
                    "session_echo_ms": p[4] * 1e3,
                }),
            )
        })
        .collect();
    common::emit_json("messages", Value::Object(json));
}
