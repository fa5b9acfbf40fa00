//! Reading tool results: a failed tool as an `Err` (`CallToolResult::into_result`) and the
//! structured result as a type of the caller's (`CallToolResult::structured`), against the
//! fake server.

mod common;

use common::{fake, Clean};
use mcp_pool::{Error, ErrorKind, Pool};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize, PartialEq)]
struct Answer {
    answer: u32,
    items: Vec<u32>,
}

#[test]
fn a_failed_tool_ends_a_chain_of_question_marks() {
    let _clean = Clean::new();
    let pool = Pool::builder().server(fake(&[])).build().unwrap();
    let run = |tool: &str, args| -> Result<String, Error> {
        Ok(pool.call_tool("fake", tool, args)?.into_result()?.text())
    };
    assert_eq!(run("echo", json!({"text": "fine"})).unwrap(), "fine");
    let e = run("fail", json!({"message": "disk full"})).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tool);
    assert_eq!(e.to_string(), "the tool failed: disk full");
    let Error::Tool { result, .. } = e else {
        unreachable!()
    };
    assert!(result.is_error);

    let answer: Answer = pool
        .call_tool("fake", "structured", json!({}))
        .unwrap()
        .structured()
        .unwrap();
    assert_eq!(
        answer,
        Answer {
            answer: 42,
            items: vec![1, 2, 3]
        }
    );
    let e = pool
        .call_tool("fake", "structured", json!({}))
        .unwrap()
        .structured::<Vec<String>>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    let e = pool
        .call_tool("fake", "fail", json!({}))
        .unwrap()
        .structured::<Answer>()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tool, "{e}");
    pool.close();
}
