//! The demo's command line, its server and the tool it calls.

use mcp_pool::{Pool, PoolBuilder, ServerConfig, Tool};
use serde_json::{json, Map, Value};

const USAGE: &str = "usage: demo [--calls N] [--threads N] [SERVER] [--tool NAME] [--args JSON]
  --calls N                 calls per mode (default 1000; spawn per call makes at most 50, 3 s)
  --threads N               caller threads of the last mode (default 8)
  SERVER is the embedded fake server unless one of:
  --server-command 'CMD'    a command line (quotes group words; no shell)
  --config FILE [--server NAME]  a server of an mcpServers config file
  --tool NAME --args JSON   the tool to call (default: `echo`, else a read-only tool)";

pub enum Server {
    Embedded,
    Command(Vec<String>),
    Config(String, Option<String>),
}

pub struct Options {
    pub calls: usize,
    pub threads: usize,
    pub server: Server,
    pub tool: Option<String>,
    pub args: Option<Value>,
}

pub fn parse() -> Result<Options, String> {
    let mut o = Options {
        calls: 1000,
        threads: 8,
        server: Server::Embedded,
        tool: None,
        args: None,
    };
    let (mut config, mut name) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value\n{USAGE}"));
        let number = |v: String| match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("{flag} must be a positive number, not {v:?}")),
        };
        match flag.as_str() {
            "--calls" => o.calls = number(value()?)?,
            "--threads" => o.threads = number(value()?)?,
            "--server-command" => o.server = Server::Command(split_command(&value()?)?),
            "--config" => config = Some(value()?),
            "--server" => name = Some(value()?),
            "--tool" => o.tool = Some(value()?),
            "--args" => {
                let args = value()?;
                let v: Value = serde_json::from_str(&args)
                    .map_err(|e| format!("--args is not JSON ({e}): {args}"))?;
                o.args = Some(
                    v.is_object()
                        .then_some(v)
                        .ok_or("--args must be an object")?,
                );
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    match (config, name, &o.server) {
        (Some(_), _, Server::Command(_)) => return Err("give --config or --server-command".into()),
        (Some(file), name, _) => o.server = Server::Config(file, name),
        (None, Some(_), _) => return Err("--server names a server of a --config file".into()),
        (None, None, _) => {}
    }
    Ok(o)
}

/// Splits a command line into words: whitespace separates, '…' and "…" group, no shell.
fn split_command(line: &str) -> Result<Vec<String>, String> {
    let (mut words, mut word, mut quote, mut in_word) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => (quote, in_word) = (Some(c), true),
            (None, c) if c.is_whitespace() => {
                if std::mem::take(&mut in_word) {
                    words.push(std::mem::take(&mut word));
                }
            }
            (None, c) => (word, in_word) = (word + &c.to_string(), true),
        }
    }
    if quote.is_some() {
        return Err(format!("unclosed quote in --server-command {line:?}"));
    }
    words.extend(in_word.then_some(word));
    if words.is_empty() {
        return Err("--server-command is empty".into());
    }
    Ok(words)
}

/// The pool and the name of the server the demo calls.
pub fn build_pool(server: &Server) -> Result<(Pool, String), Box<dyn std::error::Error>> {
    let config = match server {
        Server::Embedded => {
            let me = std::env::current_exe()?;
            ServerConfig::new("fake-server", me.to_string_lossy()).args(["--fake-server"])
        }
        Server::Command(argv) => ServerConfig::new("server", &argv[0]).args(&argv[1..]),
        Server::Config(file, name) => {
            let pool = PoolBuilder::from_file(file)?.build()?;
            let names = pool.servers();
            let chosen = match name {
                Some(n) if names.contains(n) => Ok(n.clone()),
                Some(n) => Err(format!("no server `{n}` in {file}; it has {names:?}")),
                None if names.len() == 1 => Ok(names[0].clone()),
                None => Err(format!(
                    "{file} has several servers, pick one with --server: {names:?}"
                )),
            };
            return match chosen {
                Ok(n) => Ok((pool, n)),
                Err(e) => {
                    pool.close();
                    Err(e.into())
                }
            };
        }
    };
    let name = config.name().to_owned();
    Ok((Pool::builder().server(config).build()?, name))
}

/// The tool and its arguments, and why that one.
pub fn choose_tool(
    pool: &Pool,
    server: &str,
    o: &Options,
) -> Result<(String, Value, String), String> {
    let tools = pool
        .list_tools(server)
        .map_err(|e| format!("listing tools: {e}"))?;
    let named = |name: &str| tools.iter().find(|t| t.name == name);
    let (tool, why) = match &o.tool {
        Some(name) => (name.clone(), "as asked".to_owned()),
        None => {
            let read_only = |t: &&Tool| t.annotations.as_ref().and_then(|a| a.read_only_hint);
            let pick = named("echo")
                .map(|t| (t, "the server has `echo`"))
                .or_else(|| {
                    let t = tools.iter().filter(|t| read_only(t) == Some(true));
                    let mut t = t.filter(|t| sample_args(&t.input_schema).is_some());
                    t.next().map(|t| (t, "no `echo`; the first read-only tool"))
                });
            let Some((t, why)) = pick else {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                return Err(format!(
                    "no `echo` and no read-only tool to call over and over; pick one with --tool and --args (tools: {names:?})"
                ));
            };
            (t.name.clone(), why.to_owned())
        }
    };
    let args = match (&o.args, named(&tool)) {
        (Some(args), _) => args.clone(),
        (None, Some(t)) => sample_args(&t.input_schema).ok_or(format!(
            "cannot make up arguments for `{tool}`: give --args"
        ))?,
        (None, None) => json!({}),
    };
    Ok((tool, args, why))
}

/// Arguments for a schema: each required property gets a plain value of its type.
fn sample_args(schema: &Value) -> Option<Value> {
    let mut args = Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let name = name.as_str()?;
        let prop = &schema["properties"][name];
        let value = match prop["type"].as_str()? {
            _ if prop["enum"].is_array() => prop["enum"].get(0)?.clone(),
            "string" => json!("hello"),
            "integer" | "number" => prop.get("minimum").cloned().unwrap_or(json!(1)),
            "boolean" => json!(false),
            _ => return None,
        };
        args.insert(name.to_owned(), value);
    }
    Some(Value::Object(args))
}
