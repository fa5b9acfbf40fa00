//! HTTP sessions against a local server: the fake server's Streamable HTTP mode
//! (`mcp-fake-server --http`, JSON replies), handshake generation, warm `echo` calls.
//!
//! Latency (one caller, one call at a time), next to floors measured in the same run on the
//! same server: a minimal keep-alive HTTP client doing the same POSTs on one connection (the
//! floor), and the same client opening a new connection per call. mcp-pool is measured
//! through a warm `Pool`, a bare `Session`, and with a new session per call (direct mode:
//! start, call, close).
//!
//! Throughput at 1, 8 and 64 threads through one pooled session, next to the floor client
//! with one keep-alive connection per thread.
//!
//! `cargo bench --bench http`. The subjects run in alternating blocks so that the noise of a
//! shared machine lands on all of them alike.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::{ms, rate, ratio, table, Samples};
use mcp_pool::{Generation, Pool, PoolSettings, ServerConfig, Session};
use serde_json::{json, Value};

/// The fake server listening on loopback; killed on drop.
struct Server {
    child: Child,
    url: String,
    addr: String,
}

impl Server {
    fn start() -> Server {
        let mut child = Command::new(common::FAKE)
            .args(["--http", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the fake server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .expect("the fake server's first line")
            .to_owned();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/mcp")
            .to_owned();
        Server { child, url, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The floor: a minimal HTTP/1.1 client that POSTs JSON-RPC lines on a kept-alive
/// connection (or a new one per call) and reads `Content-Length` bodies.
struct Raw {
    addr: String,
    session: String,
    conn: Option<BufReader<TcpStream>>,
    keep_alive: bool,
    next_id: u64,
}

impl Raw {
    fn start(addr: &str, keep_alive: bool) -> Raw {
        let mut raw = Raw {
            addr: addr.to_owned(),
            session: String::new(),
            conn: None,
            keep_alive: true,
            next_id: 1,
        };
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}});
        let (headers, _) = raw.post(&init.to_string());
        raw.session = headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("mcp-session-id")
                    .then(|| v.trim().to_owned())
            })
            .expect("a session id");
        raw.post(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        raw.keep_alive = keep_alive;
        raw
    }

    fn post(&mut self, body: &str) -> (String, Vec<u8>) {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr).unwrap();
            stream.set_nodelay(true).unwrap();
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().unwrap();
        let mut request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !self.session.is_empty() {
            request.push_str(&format!(
                "Mcp-Session-Id: {}\r\nMCP-Protocol-Version: 2025-11-25\r\n",
                self.session
            ));
        }
        if !self.keep_alive {
            request.push_str("Connection: close\r\n");
        }
        request.push_str("\r\n");
        request.push_str(body);
        conn.get_mut().write_all(request.as_bytes()).unwrap();
        let mut headers = String::new();
        loop {
            let mut line = String::new();
            conn.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            headers.push_str(&line);
        }
        let length = headers
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())
                    .flatten()
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        conn.read_exact(&mut body).unwrap();
        if !self.keep_alive {
            self.conn = None;
        }
        (headers, body)
    }

    fn call(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"hello"}}}}}}"#
        );
        let (_, answer) = self.post(&body);
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["result"]["content"][0]["text"], "hello");
    }
}

fn config(url: &str) -> ServerConfig {
    ServerConfig::http(common::SERVER, url)
        .generation(Generation::Handshake)
        .standalone_stream(false)
        .idle_connections(64)
}

fn pool(url: &str, direct: bool) -> Pool {
    Pool::builder()
        .server_with(
            config(url),
            PoolSettings::new().max_sessions(1).direct(direct),
        )
        .build()
        .unwrap()
}

fn main() {
    common::header("HTTP sessions (Streamable HTTP, local fake server)");
    let quick = common::quick();
    let (rounds, block, cold_block) = if quick { (3, 100, 3) } else { (10, 1000, 20) };
    let server = Server::start();

    // ---- latency ----
    let mut keep = Raw::start(&server.addr, true);
    let mut fresh = Raw::start(&server.addr, false);
    let session = Session::start(config(&server.url)).unwrap();
    let warm = pool(&server.url, false);
    let direct = pool(&server.url, true);
    for _ in 0..block {
        keep.call();
        fresh.call();
        common::session_call(&session);
        common::pool_call(&warm);
    }
    let mut samples: [Samples; 5] = Default::default();
    common::rounds::<5>(rounds, |k| {
        let s = &mut samples[k];
        match k {
            0 => common::time_n(s, block, || keep.call()),
            1 => common::time_n(s, block, || fresh.call()),
            2 => common::time_n(s, block, || common::session_call(&session)),
            3 => common::time_n(s, block, || common::pool_call(&warm)),
            _ => common::time_n(s, cold_block, || common::pool_call(&direct)),
        };
    });
    session.close();
    warm.close();
    direct.close();
    let floor = samples[0].p50().as_secs_f64();
    let names = [
        "raw keep-alive POST loop (floor)",
        "raw POST, new connection per call",
        "mcp-pool Session (warm, kept-alive connections)",
        "mcp-pool Pool (warm)",
        "mcp-pool Pool, direct mode (new session per call)",
    ];
    let mut rows = Vec::new();
    let mut figures = serde_json::Map::new();
    for (k, name) in names.iter().enumerate() {
        let p50 = samples[k].p50();
        let p99 = samples[k].p99();
        rows.push(vec![
            (*name).to_owned(),
            ms(p50),
            ms(p99),
            ratio(p50.as_secs_f64(), floor),
            samples[k].len().to_string(),
        ]);
        figures.insert(
            format!("latency_p50_ms_{k}"),
            json!(p50.as_secs_f64() * 1e3),
        );
    }
    println!("### Warm sequential call latency\n");
    table(&["client", "p50", "p99", "p50 / floor", "calls"], &rows);

    // ---- throughput ----
    let threads_list: &[usize] = &[1, 8, 64];
    let window = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    let warm = pool(&server.url, false);
    common::pool_call(&warm);
    let mut rows = Vec::new();
    for &threads in threads_list {
        let raw_rate = throughput(threads, window, |_| {
            let mut raw = Raw::start(&server.addr, true);
            move || raw.call()
        });
        let pool_rate = throughput(threads, window, |_| {
            let pool = &warm;
            move || common::pool_call(pool)
        });
        rows.push(vec![
            threads.to_string(),
            rate(raw_rate),
            rate(pool_rate),
            format!("{:.2}×", pool_rate / raw_rate),
        ]);
        figures.insert(format!("throughput_{threads}_raw"), json!(raw_rate));
        figures.insert(format!("throughput_{threads}_pool"), json!(pool_rate));
    }
    warm.close();
    println!(
        "### Throughput (calls/s), one pooled session vs a keep-alive connection per thread\n"
    );
    table(
        &["threads", "raw floor", "mcp-pool Pool", "pool / floor"],
        &rows,
    );
    common::emit_json("http", Value::Object(figures));
    drop(server);
}

/// Calls per second over `window`, `threads` threads each running the closure `make` gives.
fn throughput<F, G>(threads: usize, window: Duration, make: F) -> f64
where
    F: Fn(usize) -> G + Sync,
    G: FnMut() + Send,
{
    let count = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(threads + 1);
    let elapsed = std::thread::scope(|scope| {
        for i in 0..threads {
            let (count, stop, barrier, make) = (&count, &stop, &barrier, &make);
            scope.spawn(move || {
                let mut call = make(i);
                call();
                barrier.wait();
                while !stop.load(Ordering::Relaxed) {
                    call();
                    count.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        start.elapsed()
    });
    count.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64()
}
