//! `mcp-fake-server`: a scriptable fake MCP (Model Context Protocol) stdio server used by the
//! tests, benchmarks and demo of `mcp-pool`.
//!
//! It speaks newline-delimited JSON-RPC 2.0 on stdin/stdout (or HTTP: `--http`, see HTTP
//! mode) and logs to stderr only. It never panics on bad input: a non-JSON line gets -32700,
//! a malformed message -32600, an unknown method -32601 and bad params -32602 (all with
//! `"id": null` when no valid id can be read).
//!
//! # Protocol generations
//!
//! * **handshake** (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25): `initialize` answers the
//!   client's offered version if it is one of those four, else `2025-11-25`. Requests other than
//!   `ping` are refused with -32600 until `notifications/initialized` arrives. The client's
//!   `capabilities` and `clientInfo` are remembered for the session.
//! * **per-request / stateless** (`2026-07-28`): `server/discover` returns `supportedVersions`,
//!   `capabilities` and `_meta["io.modelcontextprotocol/serverInfo"]`. Every request must carry
//!   `params._meta["io.modelcontextprotocol/protocolVersion"]`, one of `--supported-versions`
//!   (default `2026-07-28`; any listed version is served as this generation): missing gives
//!   -32602, another value gives -32022 with `data.supported` (the list) and `data.requested`.
//!   Client capabilities are read per request from
//!   `_meta["io.modelcontextprotocol/clientCapabilities"]`; a request that needs one it did not
//!   declare gets -32021 with `data.requiredCapabilities`. A `_meta` `logLevel` that is not a
//!   level name gives -32602. `ping` is -32601 here.
//!
//!   Every result carries `resultType` (`"complete"` unless the tool set another). The results
//!   of `server/discover`, `tools/list`, `prompts/list`, `resources/list`,
//!   `resources/templates/list` and `resources/read` also carry `ttlMs` (`--ttl-ms`) and
//!   `cacheScope` (`"public"`; `"private"` for `resources/read`), except `input_required` ones.
//!   `capabilities.extensions` offers the tasks extension `io.modelcontextprotocol/tasks`.
//!
//!   Notifications: `subscriptions/listen` (see Methods) carries the change notifications,
//!   tagged with `_meta["io.modelcontextprotocol/subscriptionId"]`. Until a stream is first
//!   opened on the connection, `notifications/{tools,prompts,resources}/list_changed` also go
//!   out untagged as in the handshake generation (so a client that never listens still hears
//!   of changes); after that, and always with `--strict-per-request`, only on the streams.
//!   Resource updates go untagged only to URIs given to `resources/subscribe`. `log` follows
//!   the request's `_meta["io.modelcontextprotocol/logLevel"]` (messages at or above it);
//!   without one it follows `logging/setLevel` as in the handshake generation, or sends
//!   nothing with `--strict-per-request`.
//!
//! With `--generation both` the first request locks the connection: an enveloped request
//! (e.g. `server/discover` with the `_meta` envelope) locks stateless, after which `initialize`
//! gets -32022 (`data.supported: ["2026-07-28"]`); `server/discover` without the envelope gets
//! -32601 and locks nothing; `initialize` locks handshake, after which `server/discover` is
//! -32601 and enveloped requests are served as ordinary requests (the envelope is ignored).
//!
//! # Flags
//!
//! | flag | effect |
//! |---|---|
//! | `--generation handshake\|stateless\|both` | generations served (default `both`). `handshake`: `server/discover` is -32601. `stateless`: `initialize` is -32022 |
//! | `--discover-silent` | never answer `server/discover` (like an old server); handshake still works |
//! | `--page-size N` | page size of `tools/list`, `resources/list`, `resources/templates/list`, `prompts/list` (0 = one page, default). Cursors are `"page-K"` (K from 1; `page-1` is the first page) |
//! | `--cursor-loop` | the last page's `nextCursor` is `"page-1"`, forever |
//! | `--extra-tools N` | add tools `extra_0 .. extra_{N-1}` (each echoes `text`, or its arguments as JSON) |
//! | `--slow-start-ms N` | sleep N ms before reading stdin |
//! | `--exit-during-handshake CODE` | on `initialize` or `server/discover`: stderr `dying in handshake`, exit CODE, no answer |
//! | `--hang-handshake` | read `initialize` / `server/discover` but never answer them |
//! | `--stderr-at-start BYTES` | write BYTES bytes of ~100-char lines to stderr before serving |
//! | `--banner` | write the non-JSON line `fake server banner` to stdout before serving |
//! | `--crlf` | end every stdout line with `\r\n` |
//! | `--bom` | write a UTF-8 BOM before the first stdout line |
//! | `--ignore-stdin-eof` | on stdin EOF do not exit: ignore SIGTERM and sleep forever (needs SIGKILL) |
//! | `--ignore-sigterm` | ignore SIGTERM from the start (still exits on stdin EOF) |
//! | `--spawn-grandchild` | spawn `sleep 1000` (stdio to /dev/null, same process group); stderr `grandchild pid N` |
//! | `--grandchild-holds-stdout` | spawn `sleep 1000` (same process group) with the server's stdout and stderr, so the pipes stay open after the server dies; stderr `grandchild pid N` |
//! | `--daemon` | spawn a daemon `sleep 1000` that leaves the process group and session (`setsid()`) and has the server's stdout and stderr; stderr `daemon pid N` |
//! | `--answer-after-exit` | on `crash`: write its answer (`isError: true`, text `crashed`) to stdout and flush, then exit, so the response is in the pipe when the process is gone (with `after_ms`, the answer is written just before the delayed exit) |
//! | `--record FILE` | append `{"tool":NAME,"arguments":ARGS,"pid":PID}` per `tools/call` to FILE, before the tool runs (`ARGS` is `{}` when absent) |
//! | `--verbose` | log one stderr line per message handled |
//! | `--ttl-ms N` | `ttlMs` of the cacheable per-request results (default 60000; 0 allowed) |
//! | `--supported-versions V1,V2,...` | versions the per-request generation accepts in the envelope, reported by `server/discover` and in -32022 `data.supported` (also for a refused `initialize`); default `2026-07-28`. An empty list refuses every version |
//! | `--strict-per-request` | the per-request generation follows `2026-07-28` to the letter: `logging/setLevel`, `resources/subscribe` and `resources/unsubscribe` are -32601, `log` sends only for requests whose `_meta` carries `io.modelcontextprotocol/logLevel`, and change notifications go only on `subscriptions/listen` streams |
//! | `--bad-tool-entry` | `tools/list` ends with three bad entries: `bad_readonly_hint` (`annotations.readOnlyHint: "yes"`), `bad_description` (`description: 42`) and one without `name`. The first two are callable (they echo `text`) |
//! | `--task-poll-ms N` | `pollInterval` (2025-11-25) / `pollIntervalMs` (2026) of tasks (default 100) |
//! | `--refuse-first N` | the first N requests that carry the per-request envelope's `protocolVersion` (the `server/discover` probe included; `initialize` never) get -32022 with `data: {supported, requested}` though the version is supported (a replica that has not caught up); stderr `refused ID`; nothing else is done for them (no generation is locked). A later request reusing a refused id gets -32602 (`... reuses refused request id ...`). See also the `refuse_next` tool |
//! | `--http ADDR` | serve MCP over HTTP at `http://ADDR/mcp` instead of stdio (`127.0.0.1:0`: a free port); stdout gets exactly one line, `listening on http://HOST:PORT/mcp`; exits on SIGTERM or stdin EOF. See HTTP mode. The `--http-*` flags below need it |
//! | `--http-sse` | answer every request with SSE (default: JSON, SSE only when a message comes before the response) |
//! | `--http-no-get` | GET `/mcp` is 405 |
//! | `--http-no-delete` | DELETE `/mcp` is 405 |
//! | `--http-legacy` | the 2024-11-05 HTTP+SSE transport instead: GET `/sse` (or `/mcp`) opens a session's stream, first event `endpoint` with data `/messages?session=ID`; POSTs there get 202 and everything goes on the stream; POST `/mcp` is 405 |
//! | `--http-bad-header-tools` | `tools/list` adds `bad_header_{empty,object,array,number,duplicate,space,colon,non_ascii,items,any_of}`, each with one invalid `x-mcp-header` (`""`; on an object, array or number property; `Dup` and `dup`; `Has Space`; `Has:Colon`; `Régión`; under `items`; under `anyOf`); callable (echo `text` or the arguments), headers unchecked. Also on stdio |
//! | `--http-404-after N` | a session that has received N requests (`initialize` included) is forgotten: 404 for its id from the next HTTP request on |
//! | `--http-cut-stream` | `tools/call`: SSE, the priming event (`id`, `retry: 300`, empty `data`), then the stream is closed; the answer comes on GET with `Last-Event-ID` (per-request generation: it is lost) |
//! | `--http-stall-sse` | `tools/call`: SSE, the priming event, then nothing; never closed by the server (per-request: the client closing it cancels the call) |
//! | `--http-401 always\|once` | `always`: a request without `Authorization: Bearer good` gets 401, `WWW-Authenticate: Bearer realm="fake", error="invalid_token", resource_metadata="http://HOST:PORT/.well-known/oauth-protected-resource"`; `once`: the first request gets it whatever its token, later ones need some Bearer token |
//! | `--http-503 N` | the first N POSTs get 503 with `Retry-After: 1` |
//! | `--http-503-bare` | with `--http-503`: the 503s carry no `Retry-After` (a proxy's) and go only to the first N `tools/call` POSTs |
//! | `--http-oversize BYTES` | once the tool has answered, `tools/call` gets a JSON body of exactly BYTES bytes: a valid response whose one text block is `x`s (never below the smallest such response) |
//! | `--http-bad-sse` | requests other than `initialize` and `server/discover` are not served but answered with SSE whose event data is invalid JSON, then a 2 MiB `data:` line without a newline, then the end of the body |
//! | `--http-redirect URL` | POSTs to `/mcp` get 307 with `Location: URL` (e.g. another instance: another origin) |
//! | `--http-slow-headers MS` | wait MS ms before every response head |
//! | `--http-record FILE` | append `{"method","path","headers","body"}` per HTTP request to FILE: `path` with its query, header names lowercased (repeats joined by `, `), `authorization` as `<redacted len N>`, `body` the parsed JSON or null |
//! | `--help` | usage on stderr, exit 0. Unknown or malformed flags: usage on stderr, exit 2. `--flag=value` also works |
//!
//! By default the server exits 0 on stdin EOF, after giving in-flight tool threads at most 100 ms.
//!
//! # HTTP mode
//!
//! With `--http ADDR` the same methods, tools and generation rules are served over Streamable
//! HTTP: a 2025-11-25 session (`Mcp-Session-Id`, one state per session, like one stdio
//! connection) per `initialize` POST, with JSON or SSE answers, a standalone GET stream,
//! `Last-Event-ID` replays and DELETE; per-request (2026-07-28) POSTs without sessions, their
//! `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` / `Mcp-Param-*` headers checked against
//! the body (400, -32020), cancelled when the client closes the connection, GET and DELETE
//! 405; or, with `--http-legacy`, the 2024-11-05 HTTP+SSE transport. Details in `http.rs`.
//! The stdout framing flags (`--banner`, `--crlf`, `--bom`) have no effect there.
//!
//! # Methods
//!
//! `initialize`, `server/discover`, `ping`, `tools/list`, `tools/call`, `resources/list` (five
//! resources `fake://r/0..4`), `resources/templates/list` (`fake://r/{n}`), `resources/read`
//! (text `resource N`; unknown uri -32002, in both generations), `resources/subscribe`,
//! `resources/unsubscribe`, `prompts/list` (`greet` with argument `name`), `prompts/get`
//! (`Hello NAME`), `completion/complete` (prefix match over `Alice Bob Carol Dave` for
//! `greet`/`name`, `0..4` for the template), `logging/setLevel`. Notifications handled:
//! `notifications/initialized`, `notifications/cancelled` (stops an in-flight threaded tool or
//! blocked `tasks/result`, or ends a listen stream; no response is sent; stderr `cancelled ID`
//! with ID as JSON); others are ignored. The server's own requests use integer ids from 0, a
//! separate id space.
//!
//! Per-request generation only:
//!
//! * `subscriptions/listen {notifications}`: opens a stream. First
//!   `notifications/subscriptions/acknowledged {_meta: {"io.modelcontextprotocol/subscriptionId":
//!   ID}, notifications: AGREED}` (ID = the request's id; AGREED = the filter without `false`
//!   flags, empty lists and unknown keys), then, tagged with the same `_meta`, the opted-in
//!   `notifications/tools/list_changed` (`toolsListChanged`), `notifications/prompts/list_changed`
//!   (`promptsListChanged`), `notifications/resources/list_changed` (`resourcesListChanged`),
//!   `notifications/resources/updated {uri}` (for the URIs of `resourceSubscriptions`) and
//!   `notifications/tasks` (`taskIds`; needs the tasks extension, else -32021). No response while
//!   open. The client's `notifications/cancelled {requestId: ID}` ends it silently; `end_listens`
//!   ends it from the server. A non-object `notifications` or mistyped field is -32602, as is an
//!   id of a stream still open. In the handshake generation: -32601.
//! * MRTR outside tools: `prompts/get {name: "mrtr_prompt"}` and `resources/read {uri:
//!   "fake://mrtr"}` (neither is listed) need one form elicitation, as `mrtr_elicit` (key
//!   `name`); then a user message `hello NAME`, or contents `[{uri: "fake://mrtr", mimeType:
//!   "text/plain", text: "hello NAME"}]`. In the handshake generation they are the unknown
//!   prompt (-32602) and resource (-32002).
//!
//! ## Multi round-trip requests (`mrtr_*` tools, `mrtr_prompt`, `fake://mrtr`)
//!
//! The first request (neither `inputResponses` nor `requestState` in params) answers
//! `{resultType: "input_required", inputRequests?: {KEY: {method, params?}}, requestState?}`.
//! Input requests: form elicitation `{method: "elicitation/create", params: {mode: "form",
//! message, requestedSchema: {type: "object", properties: {F: {type: "string"}}, required:
//! [F]}}}`; URL elicitation `{method: "elicitation/create", params: {mode: "url", message,
//! url: "https://example.com/mcp-fake-server/consent"}}`; sampling `{method:
//! "sampling/createMessage", params: {messages: [{role: "user", content: {type: "text", text:
//! "Say something."}}], maxTokens: 10}}`; roots `{method: "roots/list"}` (no params). Each
//! needs the client capability (`elicitation` with `form`, or neither mode; `elicitation.url`;
//! `sampling`; `roots`): without it -32021, `data.requiredCapabilities` naming all missing.
//!
//! `requestState` is opaque: base64 (standard alphabet, `+`, `/`, `==` padding; it starts with
//! `++//`) of a JSON binding it to the method, tool/prompt/uri, arguments, round and the id it
//! was issued to, followed by `.é🔒` (a precomposed `é`, and a character outside the BMP). A
//! retry (a request with `inputResponses` or `requestState`) gets -32602, with a message
//! saying which, if: its id is one that was answered `input_required` (`the retry reuses
//! request id ...`); `requestState` is missing though one was issued (`missing
//! requestState`), or present though none was (`unexpected requestState`), or not echoed byte
//! for byte (`requestState mismatch: it was modified`), or from another request (`...
//! belongs to another request`, `... issued for other arguments`); `inputResponses` is not an
//! object or lacks a key asked for (`missing inputResponses.KEY`), or an answer is malformed
//! (`action` not `accept`/`decline`/`cancel`, an accepted form without `content.F` string,
//! no text block in a sampling result, no `roots` array). Unknown keys are ignored. An
//! elicitation answer reads `hello NAME` (accept), `declined` or `cancelled`.
//!
//! ## Tasks
//!
//! Handshake generation (2025-11-25): capability `tasks: {list: {}, cancel: {}, requests:
//! {tools: {call: {}}}}`; `tools/list` gives the task tools `execution.taskSupport`.
//! `tools/call` with `params.task` (`{ttl?}`, default 300000) of `task_job`, `task_required` or
//! `task_input` answers `{task: TASK}`, TASK = `{taskId (a UUID), status, statusMessage,
//! createdAt, lastUpdatedAt (ISO 8601 UTC, ms), ttl, pollInterval}`; of another tool -32601.
//! `task_required` / `task_input` without `params.task`: -32601. `tasks/get {taskId}`: TASK;
//! `tasks/result {taskId}`: waits for the end, then the tool's result with
//! `_meta["io.modelcontextprotocol/related-task"] = {taskId}`, or its JSON-RPC error (failed),
//! or -32602 (cancelled); `tasks/list {cursor?}`: `{tasks: [TASK...]}` paginated like the other
//! lists; `tasks/cancel {taskId}`: status `cancelled`, answers TASK (-32602 if already ended);
//! `notifications/tasks/status` TASK on every change after creation. Statuses: `working`,
//! `input_required`, `completed`, `failed` (a JSON-RPC error, or a result with `isError`),
//! `cancelled`. Unknown `taskId`: -32602 `Failed to retrieve task: Task not found`.
//! `tasks/update`: -32601.
//!
//! Per-request generation, the 2026 tasks extension, only for requests whose
//! `clientCapabilities.extensions` has `io.modelcontextprotocol/tasks` (else -32021 with
//! `requiredCapabilities: {extensions: {"io.modelcontextprotocol/tasks": {}}}`): `task_job`,
//! `task_required` and `task_input` answer `{resultType: "task", taskId, status, statusMessage,
//! createdAt, lastUpdatedAt, ttlMs: 300000, pollIntervalMs}` (without the extension `task_job`
//! runs as a plain call, the others get -32021). `tasks/get {taskId}`: the task with
//! `resultType: "complete"`, plus `inputRequests` (input_required), `result` (completed: the
//! tool's result, `isError` ones too) or `error` (failed); `tasks/update {taskId,
//! inputResponses}`: responses for outstanding keys reach the task, others are ignored;
//! answers `{resultType: "complete"}`; `tasks/cancel {taskId}`: `cancelled` unless already
//! ended, answers `{resultType: "complete"}`; `notifications/tasks` (the same object as
//! `tasks/get`, without `resultType`) on listen streams naming the task. `tasks/result` and
//! `tasks/list`: -32601. Tasks are kept for the life of the process; `ttl` is not enforced.
//!
//! # Tools (`tools/call {name, arguments}`)
//!
//! Results are `{content:[{type:"text",text}], structuredContent?, isError?}`. Missing or
//! mistyped arguments give JSON-RPC -32602 (`data.tool`); an unknown tool gives a result with
//! `isError: true` and text `unknown tool: NAME`. Tools marked *thread* run on their own thread,
//! so many can be in flight at once and `notifications/cancelled` can stop them.
//!
//! | tool | arguments | behaviour |
//! |---|---|---|
//! | `echo` | `text` | text verbatim (readOnlyHint) |
//! | `add` | `a`, `b` numbers | text of the sum, structuredContent `{"sum"}` (readOnlyHint, outputSchema) |
//! | `structured` | — | structuredContent `{"answer":42,"items":[1,2,3]}`, text is its JSON (readOnlyHint, outputSchema) |
//! | `fail` | `message?` | `isError: true` with the message |
//! | `rpc_error` | `code?` (-32000), `message?` | JSON-RPC error with that code/message, data `{"tool":"rpc_error"}` |
//! | `sleep` *thread* | `ms`, `progress_steps?` | sleeps; with `_meta.progressToken` sends `progress_steps` `notifications/progress` `{progressToken, progress:i, total, message:"step i"}` spread over the sleep; text `slept MS` |
//! | `slow_read` *thread* | as `sleep` | as `sleep`, annotated readOnlyHint (safe to retry) |
//! | `slow_write` *thread* | as `sleep` | as `sleep`, annotated destructiveHint (not safe to retry) |
//! | `late` *thread* | `ms` | sleeps `ms` ignoring `notifications/cancelled`, then answers `late by MS` (a late response) |
//! | `stop_reading` | — | the main loop sleeps forever: stdin is never read again (its pipe fills up); no answer |
//! | `hang` *thread* | — | never answers (until cancelled) |
//! | `crash` | `code?` (3), `after_ms?` (0) | stderr `crashing`, exits with code after after_ms (other requests are served meanwhile); no answer (see `--answer-after-exit`) |
//! | `kill_self` | `signal?` (9) | kills itself with that signal; if it survives, isError result |
//! | `garbage` | — | writes the line `this is not json`, then text `ok` |
//! | `oversize` | `bytes` | text of `bytes` `x` characters (at most 1 GiB) |
//! | `stderr_flood` | `bytes` | writes `bytes` bytes of ~100-char lines to stderr, then text `flooded` |
//! | `ask_roots` *thread* | — | sends `roots/list`, waits, text = JSON of the result (or of the error object) |
//! | `ask_sampling` *thread* | — | same with `sampling/createMessage` |
//! | `ask_elicitation` *thread* | — | same with `elicitation/create` (form mode) |
//! | `ping_client` *thread* | — | sends `ping`, text `pong` on a result (isError with the error JSON otherwise) |
//! | `list_changed` | — | adds tool `added_N` (an echo tool), sends `notifications/tools/list_changed`, text `ok` |
//! | `touch` | `uri` | if `uri` is subscribed: `notifications/resources/updated {uri}` and text `ok`; else text `not subscribed: URI` and no notification |
//! | `log` | `level`, `message` | `notifications/message {level, logger:"fake", data:message}` unless below the level set by `logging/setLevel` (text `ok` / `suppressed`) |
//! | `wrong_id` | — | first a response with id 999999, then the real response, text `ok` |
//! | `duplicate_id` | — | the real response (text `ok`) twice |
//! | `string_id_echo` | — | text = the request id as JSON (e.g. `"abc"` with quotes, or `7`) |
//! | `count` | — | per-process counter, returns the new value (1, 2, …) (destructiveHint, idempotentHint:false) |
//! | `set` | `value` | text `ok` (idempotentHint) |
//! | `exit_stdout` | — | closes stdout (no answer), keeps running, exits 0 after 5 s |
//! | `env` | `name` | the env var's value or `<unset>` |
//! | `cwd` | — | current directory |
//! | `header_echo` | `region?` (`x-mcp-header: Region`), `count?` integer (`Count`), `flag?` boolean (`Flag`), `nested?.zone` (`Zone`) | text and structuredContent = JSON of the `Mcp-*` headers of its HTTP request, names lowercased, values as received (`{}` on stdio); in the per-request generation the marked arguments' headers are checked first (readOnlyHint) |
//! | `client_caps` | — | JSON `{generation, protocolVersion, capabilities, clientInfo}` the server holds for this request |
//! | `meta_echo` | — | text = JSON of the request's `params._meta` as received (`null` without one), also as structuredContent when it is an object (readOnlyHint) |
//! | `refuse_next` | `count?` (1) | the next `count` requests carrying the per-request envelope get -32022 as with `--refuse-first` (added to what is left of it); text `ok` |
//! | `spawn_background` | — | spawns `sleep 1000` in the server's process group with stdio to /dev/null (like a shell's background job; never waited for, default SIGTERM disposition); text = its pid in decimal |
//! | `block` | `ms` | runs on the main loop (not a thread): for `ms` ms nothing is read from stdin and nothing answered (tool threads already running still answer), like a single-threaded server stuck in a long call; then text `blocked MS` (destructiveHint: not safe to repeat) |
//! | `progress_burst` | `steps` | with `_meta.progressToken`, writes `steps` `notifications/progress` `{progressToken, progress:i, total:steps, message:"step i"}` (i = 1..=steps) back to back from the main loop, immediately followed by the answer, text `burst STEPS` (without a token: just the answer) |
//! | `flood_requests` | `count`, `id_bytes`, `method_bytes` | writes `count` requests `{"jsonrpc":"2.0","id":ID,"method":M}` to stdout, ids distinct strings of `id_bytes` base-62 digits (`0…0`, `0…1`, …; -32602 if `62^id_bytes < count`), methods `method_bytes` `m` characters (each length at most 1 GiB); then, like `stop_reading`, never reads stdin again; no answer |
//! | `blob` | `bytes` | as `oversize` (text of `bytes` `x` characters, at most 1 GiB), annotated readOnlyHint; for message-size benchmarks |
//! | `mrtr_elicit` | `with_state?` (true) | per-request MRTR: `inputRequests` `{"name": FORM}` (form elicitation of field `name`, message "What is your name?"), with a `requestState` unless `with_state` is false; the retry needs `inputResponses.name` (and the state, or none); text `hello NAME` / `declined` / `cancelled` |
//! | `mrtr_sampling` | — | MRTR: `{"sample": sampling}` + state; text = the first text block of the sampled message |
//! | `mrtr_roots` | — | MRTR: `{"roots": roots/list}` + state; text = JSON of the `inputResponses.roots` result (`{"roots":[...]}`) |
//! | `mrtr_multi` | — | MRTR: `name` (form), `sample` and `roots` in one round + state; text = JSON `{"elicitation": "hello NAME", "sampling": TEXT, "roots": [...]}` |
//! | `mrtr_many` | `count` | MRTR: `count` `roots/list` input requests (`roots_0`..) in one round + state; text `COUNT answered` |
//! | `mrtr_rounds` | `rounds` | MRTR: `rounds` input_required rounds, round K asking `{"round_K": FORM}` (field `answer`) with a new `requestState`; the retry of round K needs `inputResponses.round_K`; then text `rounds N` (0: at once). With `_meta.progressToken`, the retry of round K first sends `notifications/progress {progressToken, progress: K, total: N, message: "round K answered"}` on its own token |
//! | `mrtr_state_only` | `rounds?` (1) | MRTR load shedding: input_required with only a `requestState` (no `inputRequests`), a new one per round; the retry needs only the state; after `rounds` retries text `state only N`; progress as `mrtr_rounds` |
//! | `mrtr_forever` | — | MRTR: input_required forever (round K asks `again_K`, form field `answer`), for the client's round cap |
//! | `mrtr_url` | — | MRTR: `{"consent": URL-mode elicitation}` + state (needs `elicitation.url`); text = the answer's `action` |
//! | `result_type` | `value` | result `{"resultType": VALUE}` and nothing else |
//! | `no_content` | — | result `{"resultType": "complete"}` (per-request) / `{}` (handshake): no `content` |
//! | `opaque_content` | — | content `[{"type":"text","text":"visible"},{"type":"hologram","data":"AAECAw==","mimeType":"application/x-hologram"}]` |
//! | `bad_structured` | — | outputSchema `{type: object, properties: {count: {type: integer}}, required: [count]}`; structuredContent `{"count":"three"}` (violates it), text its JSON (readOnlyHint) |
//! | `good_structured` | — | same outputSchema; structuredContent `{"count":3}`, text its JSON (readOnlyHint) |
//! | `notify_changed` | `kind` (`tools`, `prompts`, `resources`) | sends `notifications/KIND/list_changed` as `list_changed` does (no tool added), text `ok` |
//! | `end_listens` | `id?`, `mode?` (`both`) | ends the listen stream with that id, or all: `response` = the listen request's response `{resultType: "complete", _meta: {"io.modelcontextprotocol/subscriptionId": ID}}`, `cancelled` = `notifications/cancelled {requestId: ID, reason, _meta: {subscriptionId: ID}}`, `both` = the response, then the notification; then text `ended N` |
//! | `listen_streams` | — | text = JSON array of the open listen streams' ids, in opening order (readOnlyHint) |
//! | `task_job` *thread* | `ms`, `fail?` | see Tasks (`execution.taskSupport: "optional"`); as a plain call like `sleep` (text `slept MS`), with `fail` the JSON-RPC error -32603 `job failed` after the sleep; as a task the same result / error |
//! | `task_required` | `ms`, `fail?` | as `task_job`, only as a task (`taskSupport: "required"`) |
//! | `task_input` | `settle_ms?` (0) | only as a task (`required`): `input_required` for an elicitation of `name` (2025-11-25: an `elicitation/create` request with `_meta["io.modelcontextprotocol/related-task"]`; 2026: `inputRequests: {"name": form}` answered by `tasks/update`, needs `elicitation`), then `hello NAME`. 2026: for `settle_ms` after `tasks/update` brought the answer, the task still shows `input_required` with the same `inputRequests` (the acknowledgement is eventually consistent), then moves on |
//! | `ask_then_cancel` *thread* | — | handshake: sends `elicitation/create` (form), 100 ms later `notifications/cancelled {requestId, reason}` for it, then text `cancelled-ask`; when the next request comes or at EOF, stderr `late answer to ID` (an answer came after the cancel), `early answer to ID` (before it) or `no late answer` |
//! | `ask_url` *thread* | `id?` (`fake-url-elicitation`) | handshake: sends `elicitation/create {mode: "url", elicitationId: ID, url: "https://example.com/mcp-fake-server/connect", message}`; text = JSON of the result (or of the error object) |
//! | `url_required` | `id?` (`fake-url-elicitation`) | handshake: JSON-RPC error -32042 `This request requires more information.`, `data: {elicitations: [{mode: "url", elicitationId: ID, url, message}]}` |
//! | `elicitation_complete` | `id` | handshake: sends `notifications/elicitation/complete {elicitationId: ID}`, text `ok` |
//!
//! The `mrtr_*` tools answer `isError` (`NAME: per-request generation (2026-07-28) only`) in the
//! handshake generation; `ask_then_cancel`, `ask_url`, `url_required` and
//! `elicitation_complete` answer `isError` (`NAME: handshake generation only`) in the
//! per-request one. In the per-request generation `list_changed` and `touch` (which also
//! counts URIs of listen streams as subscribed) deliver as described under Protocol
//! generations.
//!
//! Stderr lines: `fake-server: started pid N` at start, `grandchild pid N`, `daemon pid N`,
//! `crashing`, `dying in handshake`, `cancelled ID`, `late answer to ID`, `early answer to ID`,
//! `no late answer`, `refused ID`; in HTTP mode one per HTTP request, `auth header present`
//! (then `fake-server: authorization header length N`) or `auth header absent`; other
//! diagnostics start with `fake-server: `.
//!
//! # Source layout
//!
//! `main.rs` (flags, start-up, the main loop), `wire.rs` (stdin/stdout framing, JSON-RPC
//! errors, sending), `state.rs` (state shared with tool threads), `dispatch.rs` (methods and
//! protocol generations), `catalog.rs` (resources, prompts, completion, pagination),
//! `tools.rs` (the tool table and the well-behaved tools), `faults.rs` (the misbehaving ones),
//! `mrtr.rs` (multi round-trip requests), `listen.rs` (`subscriptions/listen` and change
//! notifications), `tasks.rs` (both generations' tasks), `elicit.rs` (URL elicitation and a
//! server-side cancel, handshake generation), `http.rs` and `http/` (HTTP mode: `wire.rs`
//! HTTP/1.1 framing, `hub.rs` SSE streams and where messages go, `mcp.rs` the Streamable HTTP
//! endpoint and sessions, `headers.rs` request metadata headers and the header tools,
//! `legacy.rs` HTTP+SSE, `faults.rs` the HTTP faults).

use std::fs::OpenOptions;
use std::process;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// Writes one line to stderr with a single write; errors (closed stderr) are ignored.
/// Defined before the modules so that all of them can use it.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let line = format!("{}\n", format_args!($($t)*));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

mod catalog;
mod dispatch;
mod elicit;
mod faults;
mod http;
mod listen;
mod mrtr;
mod state;
mod tasks;
mod tools;
mod wire;

use dispatch::Server;
use faults::{flood_stderr, spawn_sleeper, Sleeper};
use state::Shared;
use wire::LineReader;

const USAGE: &str =
    "usage: mcp-fake-server [--generation handshake|stateless|both] [--discover-silent]
  [--page-size N] [--cursor-loop] [--extra-tools N] [--slow-start-ms N]
  [--exit-during-handshake CODE] [--hang-handshake] [--stderr-at-start BYTES] [--banner]
  [--crlf] [--bom] [--ignore-stdin-eof] [--ignore-sigterm] [--spawn-grandchild]
  [--grandchild-holds-stdout] [--daemon] [--answer-after-exit] [--record FILE] [--verbose]
  [--ttl-ms N] [--supported-versions V1,V2,...] [--strict-per-request] [--bad-tool-entry]
  [--task-poll-ms N] [--refuse-first N] [--help]
  HTTP mode: --http ADDR [--http-sse] [--http-no-get] [--http-no-delete] [--http-legacy]
  [--http-bad-header-tools] [--http-404-after N] [--http-cut-stream] [--http-stall-sse]
  [--http-401 always|once] [--http-503 N] [--http-503-bare] [--http-oversize BYTES] [--http-bad-sse]
  [--http-redirect URL] [--http-slow-headers MS] [--http-record FILE]";

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
enum GenerationMode {
    Handshake,
    Stateless,
    #[default]
    Both,
}

#[derive(Clone, Debug, Default)]
struct Config {
    generation: GenerationMode,
    /// The `--http*` flags (see `http.rs`).
    http: http::HttpConfig,
    discover_silent: bool,
    page_size: usize,
    cursor_loop: bool,
    extra_tools: usize,
    slow_start_ms: u64,
    exit_during_handshake: Option<i32>,
    hang_handshake: bool,
    stderr_at_start: u64,
    banner: bool,
    crlf: bool,
    bom: bool,
    ignore_stdin_eof: bool,
    ignore_sigterm: bool,
    spawn_grandchild: bool,
    grandchild_holds_stdout: bool,
    daemon: bool,
    answer_after_exit: bool,
    record: Option<String>,
    verbose: bool,
    ttl_ms: Option<u64>,
    supported_versions: Option<Vec<String>>,
    strict_per_request: bool,
    bad_tool_entry: bool,
    task_poll_ms: Option<u64>,
    refuse_first: u64,
}

enum ArgsError {
    Help,
    Bad(String),
}

fn parse_num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError::Bad(format!("{flag}: invalid number '{value}'")))
}

impl Config {
    /// `ttlMs` of cacheable per-request results (`--ttl-ms`, default 60000).
    fn ttl_ms(&self) -> u64 {
        self.ttl_ms.unwrap_or(60_000)
    }

    /// Versions the per-request generation accepts (`--supported-versions`).
    fn supported_versions(&self) -> Vec<String> {
        match &self.supported_versions {
            Some(list) => list.clone(),
            None => vec![dispatch::STATELESS_VERSION.to_string()],
        }
    }

    /// `pollInterval` / `pollIntervalMs` of tasks (`--task-poll-ms`, default 100).
    fn task_poll_ms(&self) -> u64 {
        self.task_poll_ms.unwrap_or(100)
    }

    fn from_args<I: Iterator<Item = String>>(mut args: I) -> Result<Self, ArgsError> {
        let mut cfg = Config::default();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ArgsError::Bad(format!("{flag} needs a value")))
            };
            let switch = |field: &mut bool| match inline {
                None => {
                    *field = true;
                    Ok(())
                }
                Some(_) => Err(ArgsError::Bad(format!("{flag} takes no value"))),
            };
            match flag.as_str() {
                "--generation" => {
                    cfg.generation = match value()?.as_str() {
                        "handshake" => GenerationMode::Handshake,
                        "stateless" => GenerationMode::Stateless,
                        "both" => GenerationMode::Both,
                        other => return Err(ArgsError::Bad(format!("bad --generation '{other}'"))),
                    }
                }
                "--page-size" => cfg.page_size = parse_num(&flag, &value()?)?,
                "--extra-tools" => cfg.extra_tools = parse_num(&flag, &value()?)?,
                "--slow-start-ms" => cfg.slow_start_ms = parse_num(&flag, &value()?)?,
                "--exit-during-handshake" => {
                    cfg.exit_during_handshake = Some(parse_num(&flag, &value()?)?)
                }
                "--stderr-at-start" => cfg.stderr_at_start = parse_num(&flag, &value()?)?,
                "--record" => cfg.record = Some(value()?),
                "--ttl-ms" => cfg.ttl_ms = Some(parse_num(&flag, &value()?)?),
                "--task-poll-ms" => cfg.task_poll_ms = Some(parse_num(&flag, &value()?)?),
                "--refuse-first" => cfg.refuse_first = parse_num(&flag, &value()?)?,
                "--supported-versions" => {
                    let list = value()?;
                    let versions = list.split(',').map(str::trim).filter(|v| !v.is_empty());
                    cfg.supported_versions = Some(versions.map(String::from).collect());
                }
                "--strict-per-request" => switch(&mut cfg.strict_per_request)?,
                "--bad-tool-entry" => switch(&mut cfg.bad_tool_entry)?,
                "--discover-silent" => switch(&mut cfg.discover_silent)?,
                "--cursor-loop" => switch(&mut cfg.cursor_loop)?,
                "--hang-handshake" => switch(&mut cfg.hang_handshake)?,
                "--banner" => switch(&mut cfg.banner)?,
                "--crlf" => switch(&mut cfg.crlf)?,
                "--bom" => switch(&mut cfg.bom)?,
                "--ignore-stdin-eof" => switch(&mut cfg.ignore_stdin_eof)?,
                "--ignore-sigterm" => switch(&mut cfg.ignore_sigterm)?,
                "--spawn-grandchild" => switch(&mut cfg.spawn_grandchild)?,
                "--grandchild-holds-stdout" => switch(&mut cfg.grandchild_holds_stdout)?,
                "--daemon" => switch(&mut cfg.daemon)?,
                "--answer-after-exit" => switch(&mut cfg.answer_after_exit)?,
                "--verbose" => switch(&mut cfg.verbose)?,
                f if f.starts_with("--http") => {
                    http::parse_flag(&mut cfg.http, f, inline.is_some(), &mut value)?
                }
                "--help" | "-h" => return Err(ArgsError::Help),
                _ => return Err(ArgsError::Bad(format!("unknown argument '{flag}'"))),
            }
        }
        cfg.http.validate()?;
        Ok(cfg)
    }
}

// ---------------------------------------------------------------------------------------------
// Start-up and the main loop
// ---------------------------------------------------------------------------------------------

fn main() {
    main_with_args(std::env::args_os().skip(1));
}

/// Runs the server with these arguments (without the program name). The demo example embeds
/// this module tree (`#[path]` to this file) and calls it to act as the server.
pub fn main_with_args(args: impl Iterator<Item = std::ffi::OsString>) {
    let args = args.map(|a| a.to_string_lossy().into_owned());
    let cfg = match Config::from_args(args) {
        Ok(cfg) => cfg,
        Err(ArgsError::Help) => {
            say!("{USAGE}");
            process::exit(0)
        }
        Err(ArgsError::Bad(msg)) => {
            say!("mcp-fake-server: {msg}\n{USAGE}");
            process::exit(2)
        }
    };
    say!("fake-server: started pid {}", process::id());

    let record = cfg.record.as_ref().map(|path| {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Mutex::new(f),
            Err(e) => {
                say!("mcp-fake-server: cannot open record file {path}: {e}");
                process::exit(2)
            }
        }
    });
    // Spawned before SIGTERM is ignored (helpers reset it to the default disposition anyway).
    if cfg.spawn_grandchild {
        start_helper("grandchild", Sleeper::Quiet);
    }
    if cfg.grandchild_holds_stdout {
        start_helper("grandchild", Sleeper::HoldsOutput);
    }
    if cfg.daemon {
        start_helper("daemon", Sleeper::Daemon);
    }
    if cfg.ignore_sigterm {
        // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if cfg.slow_start_ms > 0 {
        thread::sleep(Duration::from_millis(cfg.slow_start_ms));
    }
    if cfg.stderr_at_start > 0 {
        flood_stderr(cfg.stderr_at_start);
    }

    if cfg.http.addr.is_some() {
        http::serve(cfg, record)
    }
    let banner = cfg.banner;
    let shared = Arc::new(Shared::new(cfg, record));
    if banner {
        shared.emit(b"fake server banner");
    }
    serve(Server::new(shared))
}

/// Spawns a `sleep 1000` helper and names it on stderr: `grandchild pid N`, `daemon pid N`.
fn start_helper(what: &str, kind: Sleeper) {
    match spawn_sleeper(kind) {
        Ok(pid) => say!("{what} pid {pid}"),
        Err(e) => say!("fake-server: cannot spawn the {what}: {e}"),
    }
}

/// The main loop: one line at a time, until stdin ends.
fn serve(mut server: Server) -> ! {
    let mut lines = LineReader::stdin();
    while let Some(line) = lines.next_line() {
        server.handle_line(line);
    }
    on_stdin_eof(server.shared())
}

fn on_stdin_eof(shared: &Shared) -> ! {
    if shared.cfg.ignore_stdin_eof {
        // SAFETY: installing SIG_IGN for SIGTERM has no memory-safety preconditions.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        say!("fake-server: stdin closed; ignoring it and SIGTERM");
        loop {
            thread::park();
        }
    }
    shared.wait_for_tools(Duration::from_millis(100));
    shared.report_late_answers();
    shared.flush_output();
    if shared.cfg.verbose {
        say!("fake-server: stdin closed, exiting");
    }
    process::exit(0)
}
