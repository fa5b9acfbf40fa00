#!/usr/bin/env bash
# Drive the two reference servers over Streamable HTTP with curl and print what goes over
# the wire (request line + MCP headers + body, then the response's status, headers, body).
#
#   tests/interop/http_probe.sh python        # tests/interop/python_server.py --extra --http 0
#   tests/interop/http_probe.sh python-json   # the same with --json (application/json replies)
#   tests/interop/http_probe.sh everything    # server-everything streamableHttp (loopback.cjs)
#
# Every server started here binds 127.0.0.1 only, every curl has a time limit (-m), and the
# server is killed (by its pid) when the script exits. Needs .ci/install-reference-servers.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
INTEROP="${MCP_POOL_INTEROP_DIR:-$ROOT/target/interop}"
EVERYTHING="$INTEROP/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

ACCEPT='Accept: application/json, text/event-stream'
CT='Content-Type: application/json'
META='"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{},"url":{}},"sampling":{},"roots":{}},"io.modelcontextprotocol/clientInfo":{"name":"curl","version":"0"}}'
n=0

# post TITLE BODY [extra curl args: headers...]  — prints the exchange; the response headers
# land in $WORK/h.N and the body in $WORK/b.N (N = the exchange number, also in $LAST).
post() {
  local title="$1" body="$2"; shift 2
  n=$((n + 1)); LAST=$n
  echo
  echo "#### $n. $title"
  echo '```'
  echo "> POST /mcp"
  local a
  for a in "$@"; do [ "$a" != "-H" ] && echo "> $a"; done
  echo "> $body"
  touch "$WORK/b.$n"
  curl -s -m "${TIMEOUT:-5}" -N -D "$WORK/h.$n" -o "$WORK/b.$n" "$URL" -H "$CT" "$@" --data-binary "$body" \
    || echo "-- curl exit $? (28 = still open at the ${TIMEOUT:-5} s limit)"
  show "$n"
  echo '```'
}

# raw METHOD TITLE [curl args]  — GET / DELETE / anything without a body
raw() {
  local method="$1" title="$2"; shift 2
  n=$((n + 1)); LAST=$n
  echo
  echo "#### $n. $title"
  echo '```'
  echo "> $method /mcp"
  local a
  for a in "$@"; do [ "$a" != "-H" ] && echo "> $a"; done
  touch "$WORK/b.$n"
  curl -s -m "${TIMEOUT:-3}" -N -X "$method" -D "$WORK/h.$n" -o "$WORK/b.$n" "$URL" "$@" \
    || echo "-- curl exit $? (28 = still open at the ${TIMEOUT:-3} s limit)"
  show "$n"
  echo '```'
}

show() {
  # status line and the headers a client cares about, then the body (long lines cut)
  tr -d '\r' <"$WORK/h.$1" | grep -iE '^(HTTP/|content-type|mcp-|x-accel|cache-control|allow)' | sed 's/^/< /'
  sed 's/^/< /' "$WORK/b.$1" | cut -c1-"${CUT:-700}"
}

header() { tr -d '\r' <"$WORK/h.$1" | grep -i "^$2:" | head -1 | sed 's/^[^:]*: *//'; }

wait_for() { # wait_for FILE REGEX SECONDS
  local i
  for i in $(seq 1 $((${3} * 20))); do grep -qE "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "!! timed out waiting for /$2/ in $1" >&2; return 1
}

start_python() {
  "$INTEROP/venv/bin/python" "$ROOT/tests/interop/python_server.py" --extra --http 0 "$@" \
    >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  wait_for "$WORK/server.out" '^listening ' 20 || { cat "$WORK/server.err"; exit 1; }
  URL="$(sed -n 's/^listening //p' "$WORK/server.out")"
  echo "server: python_server.py --extra --http 0 $* → $URL"
}

start_everything() {
  PORT=0 node --require "$ROOT/tests/interop/loopback.cjs" "$EVERYTHING" streamableHttp \
    >"$WORK/server.out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  wait_for "$WORK/server.err" '^loopback: listening ' 20 || { cat "$WORK/server.err"; exit 1; }
  URL="http://$(sed -n 's/^loopback: listening //p' "$WORK/server.err")/mcp"
  echo "server: PORT=0 node --require tests/interop/loopback.cjs …/dist/index.js streamableHttp → $URL"
}

modern() { # modern METHOD [NAME] — the 2026-07-28 request headers
  printf '%s\n' -H "$ACCEPT" -H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: $1"
  [ -n "${2:-}" ] && printf '%s\n' -H "Mcp-Name: $2"
}

# --------------------------------------------------------------------------- python, 2026-07-28
python_modern() {
  echo
  echo "### python, 2026-07-28 generation"
  local IFS=$'\n'
  post "server/discover" '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{'"$META"'}}' $(modern server/discover)
  post "tools/call echo" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},'"$META"'}}' $(modern tools/call echo)
  post "tools/call slow with a progressToken (progress rides the response stream)" \
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2},"_meta":{"progressToken":"p","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"curl","version":"0"}}}}' $(modern tools/call slow)
  post "tools/call log_levels with io.modelcontextprotocol/logLevel error" \
    '{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"log_levels","arguments":{},"_meta":{"io.modelcontextprotocol/logLevel":"error","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"curl","version":"0"}}}}' $(modern tools/call log_levels)
  post "tools/call ask_name: input_required" '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ask_name","arguments":{},'"$META"'}}' $(modern tools/call ask_name)
  local state key
  state="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["requestState"])' "$WORK/b.$LAST")"
  key="$(python3 -c 'import json,sys; print(next(iter(json.load(open(sys.argv[1]))["result"]["inputRequests"])))' "$WORK/b.$LAST")"
  post "the retry: new id, inputResponses, requestState echoed" \
    '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"ask_name","arguments":{},"inputResponses":{"'"$key"'":{"action":"accept","content":{"name":"Ada"}}},"requestState":"'"$state"'",'"$META"'}}' $(modern tools/call ask_name)
  post "a tampered requestState" \
    '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ask_name","arguments":{},"inputResponses":{"'"$key"'":{"action":"accept","content":{"name":"Ada"}}},"requestState":"v1.AAAA'"${state:7}"'",'"$META"'}}' $(modern tools/call ask_name)
  post "Mcp-Name does not match params.name" '{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},'"$META"'}}' $(modern tools/call add)
  post "no Mcp-Method / Mcp-Name" '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},'"$META"'}}' -H "$ACCEPT" -H "MCP-Protocol-Version: 2026-07-28"
  post "MCP-Protocol-Version header 2025-11-25, body envelope 2026-07-28" '{"jsonrpc":"2.0","id":10,"method":"tools/list","params":{'"$META"'}}' -H "$ACCEPT" -H "MCP-Protocol-Version: 2025-11-25" -H "Mcp-Method: tools/list"
  post "unsupported version (header and envelope 2099-01-01)" '{"jsonrpc":"2.0","id":11,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}' -H "$ACCEPT" -H "MCP-Protocol-Version: 2099-01-01" -H "Mcp-Method: tools/list"
  post "unknown method" '{"jsonrpc":"2.0","id":12,"method":"nope/nope","params":{'"$META"'}}' $(modern nope/nope)
  post "Accept: application/json only" '{"jsonrpc":"2.0","id":13,"method":"tools/list","params":{'"$META"'}}' -H "Accept: application/json" -H "MCP-Protocol-Version: 2026-07-28" -H "Mcp-Method: tools/list"
  post "a notification POST" '{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}' $(modern notifications/cancelled)
  # subscriptions/listen: the response stream stays open; notify_changes from another POST
  echo
  echo "#### subscriptions/listen (stream read for 2 s, notify_changes POSTed meanwhile, then end_subscriptions)"
  echo '```'
  curl -s -m 4 -N -D "$WORK/listen.h" -o "$WORK/listen.b" "$URL" -H "$CT" $(modern subscriptions/listen) \
    --data-binary '{"jsonrpc":"2.0","id":20,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["interop://greeting"]},'"$META"'}}' &
  local lpid=$!
  wait_for "$WORK/listen.b" 'acknowledged' 5
  curl -sS -m 3 -o /dev/null "$URL" -H "$CT" $(modern tools/call notify_changes) \
    --data-binary '{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"name":"notify_changes","arguments":{},'"$META"'}}'
  sleep 0.5
  curl -sS -m 3 -o /dev/null "$URL" -H "$CT" $(modern tools/call end_subscriptions) \
    --data-binary '{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{"name":"end_subscriptions","arguments":{},'"$META"'}}'
  wait "$lpid"
  echo "> POST /mcp  Mcp-Method: subscriptions/listen  {…id 20, notifications:{toolsListChanged:true, resourceSubscriptions:[interop://greeting]}}"
  tr -d '\r' <"$WORK/listen.h" | grep -iE '^(HTTP/|content-type|mcp-|x-accel)' | sed 's/^/< /'
  sed 's/^/< /' "$WORK/listen.b" | cut -c1-700
  echo '```'
  TIMEOUT=2 raw GET "GET /mcp without a session" -H "Accept: text/event-stream"
  TIMEOUT=2 raw DELETE "DELETE /mcp without a session"
}

# --------------------------------------------------------------------------- python, handshake
python_handshake() {
  echo
  echo "### python, handshake generation (2025-11-25)"
  post "initialize (no MCP-Protocol-Version, no session)" \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{},"sampling":{},"elicitation":{"form":{},"url":{}}},"clientInfo":{"name":"curl","version":"0"}}}' -H "$ACCEPT"
  local sid; sid="$(header "$LAST" mcp-session-id)"
  local S=(-H "$ACCEPT" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25")
  post "notifications/initialized" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "${S[@]}"
  post "tools/call echo" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}' "${S[@]}"
  post "tools/call slow with a progressToken" '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2},"_meta":{"progressToken":"p"}}}' "${S[@]}"
  post "a request without Mcp-Session-Id" '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{}}' -H "$ACCEPT" -H "MCP-Protocol-Version: 2025-11-25"
  post "an unknown Mcp-Session-Id" '{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{}}' -H "$ACCEPT" -H "Mcp-Session-Id: nope" -H "MCP-Protocol-Version: 2025-11-25"
  # A server->client request mid-call: elicitation/create arrives on the POST's SSE stream;
  # the client answers with its own POST (a JSON-RPC response), then the result follows.
  echo
  echo "#### tools/call ask_name: elicitation/create on the call's SSE stream, answered by a second POST"
  echo '```'
  curl -s -m 6 -N -D "$WORK/ask.h" -o "$WORK/ask.b" "$URL" -H "$CT" "${S[@]}" \
    --data-binary '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"ask_name","arguments":{}}}' &
  local apid=$!
  wait_for "$WORK/ask.b" 'elicitation/create' 5
  local rid; rid="$(sed -n 's/^data: //p' "$WORK/ask.b" | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("method")=="elicitation/create": print(json.dumps(m["id"]))')"
  echo "> POST /mcp  (tools/call ask_name, id 6)"
  curl -sS -m 3 -D "$WORK/ans.h" -o "$WORK/ans.b" "$URL" -H "$CT" "${S[@]}" \
    --data-binary '{"jsonrpc":"2.0","id":'"$rid"',"result":{"action":"accept","content":{"name":"Ada"}}}'
  wait "$apid"
  tr -d '\r' <"$WORK/ask.h" | grep -iE '^(HTTP/|content-type|mcp-)' | sed 's/^/< /'
  sed 's/^/< /' "$WORK/ask.b" | cut -c1-700
  echo "> POST /mcp  {\"jsonrpc\":\"2.0\",\"id\":$rid,\"result\":{\"action\":\"accept\",\"content\":{\"name\":\"Ada\"}}}"
  tr -d '\r' <"$WORK/ans.h" | grep -iE '^(HTTP/|content-type|mcp-)' | sed 's/^/< /'
  sed 's/^/< /' "$WORK/ans.b"
  echo '```'
  TIMEOUT=2 raw GET "GET /mcp with the session (standalone SSE stream; read for 2 s)" -H "Accept: text/event-stream" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25"
  raw DELETE "DELETE /mcp with the session" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25"
  post "the deleted session again" '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}' "${S[@]}"
}

# --------------------------------------------------------------------------- everything
everything_flow() {
  echo
  echo "### server-everything 2026.8.31, streamableHttp (handshake generation only)"
  local IFS=$'\n'
  post "server/discover with the envelope, no session (a 2026-07-28 client's first request)" \
    '{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{'"$META"'}}' $(modern server/discover)
  post "initialize" \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{},"sampling":{},"elicitation":{"form":{},"url":{}}},"clientInfo":{"name":"curl","version":"0"}}}' -H "$ACCEPT"
  local sid; sid="$(header "$LAST" mcp-session-id)"
  local S=(-H "$ACCEPT" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25")
  # the standalone GET stream first, so the server's own roots/list (~350 ms after initialized)
  # and its list_changed notifications have somewhere to go
  curl -s -m 3 -N -D "$WORK/get.h" -o "$WORK/get.b" "$URL" -H "Accept: text/event-stream" \
    -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25" &
  local gpid=$!
  sleep 0.3
  post "notifications/initialized" '{"jsonrpc":"2.0","method":"notifications/initialized"}' "${S[@]}"
  post "tools/call echo" '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}' "${S[@]}"
  post "tools/call trigger-long-running-operation with a progressToken" \
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"trigger-long-running-operation","arguments":{"duration":1,"steps":2},"_meta":{"progressToken":"p"}}}' "${S[@]}"
  wait "$gpid"
  echo
  echo "#### GET /mcp with the session, opened before notifications/initialized, read for 3 s"
  echo '```'
  tr -d '\r' <"$WORK/get.h" | grep -iE '^(HTTP/|content-type|mcp-)' | sed 's/^/< /'
  sed 's/^/< /' "$WORK/get.b" | cut -c1-700
  echo '```'
  post "the roots/list answer POSTed back (id 0)" '{"jsonrpc":"2.0","id":0,"result":{"roots":[{"uri":"file:///tmp/curl","name":"curl"}]}}' "${S[@]}"
  post "a request without Mcp-Session-Id" '{"jsonrpc":"2.0","id":4,"method":"tools/list","params":{}}' -H "$ACCEPT" -H "MCP-Protocol-Version: 2025-11-25"
  post "without MCP-Protocol-Version" '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}' -H "$ACCEPT" -H "Mcp-Session-Id: $sid"
  post "MCP-Protocol-Version: 2026-07-28 on the session" '{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}' -H "$ACCEPT" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2026-07-28"
  post "Accept: application/json only" '{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}' -H "Accept: application/json" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25"
  raw DELETE "DELETE /mcp with the session" -H "Mcp-Session-Id: $sid" -H "MCP-Protocol-Version: 2025-11-25"
  post "the deleted session again" '{"jsonrpc":"2.0","id":8,"method":"tools/list","params":{}}' "${S[@]}"
}

python_json() {
  local IFS=$'\n'
  echo
  echo "### python with --json (json_response=True)"
  post "tools/call slow with a progressToken" \
    '{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{"steps":2},"_meta":{"progressToken":"p","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"curl","version":"0"}}}}' $(modern tools/call slow)
  TIMEOUT=3 post "subscriptions/listen (read for 3 s)" '{"jsonrpc":"2.0","id":4,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},'"$META"'}}' $(modern subscriptions/listen)
  post "initialize" \
    '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"curl","version":"0"}}}' -H "$ACCEPT"
}

case "${1:-}" in
  python) start_python; python_modern; python_handshake ;;
  python-json) start_python --json; python_json ;;
  everything) start_everything; everything_flow ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
echo
echo "server stderr (last lines):"
tail -n 8 "$WORK/server.err" | sed 's/^/  /'
