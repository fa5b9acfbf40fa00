/*
 * The C ABI of mcp-pool, exercised from C against the fake MCP server.
 *
 * Built and run by tests/ffi.rs (cc -Wall -Wextra -Werror -std=c11 -pthread, with
 * AddressSanitizer where the compiler has it; again with ThreadSanitizer for the threaded
 * part):
 *
 *     ffi_test PATH_TO_mcp-fake-server [HTTP_URL|-] [--threads]
 *
 * HTTP_URL is the /mcp endpoint of a fake server started with `--http ADDR --http-401
 * always` (the token callback is tested against it; `-` skips that). `--threads` runs only
 * the parts where library threads and the program's threads meet (several callers on one
 * handle, cancel from another thread, the handler callbacks), for ThreadSanitizer.
 *
 * Prints one line per check group and exits 0 when every check passed, 1 otherwise.
 * SIGPIPE keeps its default action (kill the process) on purpose: the library must not
 * let a write to a dead server kill its host.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mcp_pool.h"

static atomic_int failures;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            const char *last_ = mcp_last_error();                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                             \
            fprintf(stderr, " (last error: %s)\n", last_ ? last_ : "none");           \
            atomic_fetch_add(&failures, 1);                                           \
        }                                                                             \
    } while (0)

/* Checks a return code and, on failure, that the last error says the same. */
#define CHECK_CODE(rc, want)                                                          \
    do {                                                                              \
        mcp_status rc_ = (rc);                                                        \
        CHECK(rc_ == (want), "got %s, want %s", mcp_error_code_name(rc_),             \
              mcp_error_code_name(want));                                             \
        if ((want) == MCP_OK) {                                                       \
            CHECK(mcp_last_error() == NULL, "no last error after success");           \
        } else {                                                                      \
            CHECK(mcp_last_error() != NULL, "a message after a failure");             \
            CHECK(mcp_last_error_code() == rc_, "last error code %d", (int)rc_);      \
        }                                                                             \
    } while (0)

static double now_secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec pause = {ms / 1000, (ms % 1000) * 1000 * 1000};
    nanosleep(&pause, NULL);
}

/* Whether /proc/PID is the library's watchdog (one per process for its whole life; see
 * src/session/watchdog.rs), which is not a server's child. */
static int is_watchdog(const char *pid) {
    char path[300];
    snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        if (strcmp(buf + i, "mcp-pool-watchdog") == 0) return 1;
    }
    return 0;
}

/* Direct children of this process, zombies included; printed when `verbose`. */
static int count_children(int verbose) {
    DIR *proc = opendir("/proc");
    if (proc == NULL) return -1;
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(proc)) != NULL) {
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        char buf[1024];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *close_paren = strrchr(buf, ')');
        char state;
        int ppid;
        if (close_paren && sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 &&
            ppid == (int)getpid() && !is_watchdog(entry->d_name)) {
            if (verbose) fprintf(stderr, "child left: %s\n", buf);
            count++;
        }
    }
    closedir(proc);
    return count;
}

static char *json_string(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(2 * n + 3);
    char *p = out;
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *p++ = '\\';
        *p++ = *s;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

static mcp_pool *pool;
static char sentinel; /* outputs start as &sentinel: a failure must leave them so */

/* Frees an output unless it is still the sentinel. */
static void free_out(char *out) {
    if (out != &sentinel) mcp_string_free(out);
}

/* --- what callbacks saw: a log of events, shared by library threads ----------------- */

static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[1 << 16];
static size_t events_len;

/* Appends one line to the event log. */
static void note(const char *fmt, ...) {
    char line[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(line, sizeof line, fmt, args);
    va_end(args);
    pthread_mutex_lock(&events_lock);
    size_t n = strlen(line);
    if (events_len + n + 2 < sizeof events) {
        memcpy(events + events_len, line, n);
        events_len += n;
        events[events_len++] = '\n';
        events[events_len] = '\0';
    }
    pthread_mutex_unlock(&events_lock);
}

/* Whether the event log has a line containing `needle`. */
static int noted(const char *needle) {
    pthread_mutex_lock(&events_lock);
    int found = strstr(events, needle) != NULL;
    pthread_mutex_unlock(&events_lock);
    return found;
}

static void print_events(void) {
    pthread_mutex_lock(&events_lock);
    fprintf(stderr, "events:\n%s", events);
    pthread_mutex_unlock(&events_lock);
}

/* ===================================================================================== */

static void test_version_and_names(void) {
    CHECK(mcp_version() != NULL && strlen(mcp_version()) > 0, "version");
    CHECK(mcp_abi_version() == MCP_POOL_ABI_VERSION, "ABI %u, header %d", mcp_abi_version(),
          MCP_POOL_ABI_VERSION);
    CHECK(strcmp(mcp_error_code_name(MCP_OK), "MCP_OK") == 0, "name of MCP_OK");
    CHECK(strcmp(mcp_error_code_name(MCP_ERR_TIMEOUT), "MCP_ERR_TIMEOUT") == 0, "name");
    CHECK(strcmp(mcp_error_code_name(MCP_ERR_PANIC), "MCP_ERR_PANIC") == 0, "name");
    CHECK(strcmp(mcp_error_code_name(MCP_ERR_UNAUTHORIZED), "MCP_ERR_UNAUTHORIZED") == 0,
          "the last code");
    CHECK(strcmp(mcp_error_code_name(MCP_ERR_UNAUTHORIZED + 1), "MCP_UNKNOWN_CODE") == 0,
          "past the last code");
    CHECK(strcmp(mcp_error_code_name(-1), "MCP_UNKNOWN_CODE") == 0, "unknown code");
    CHECK(strcmp(mcp_error_code_name(1000), "MCP_UNKNOWN_CODE") == 0, "unknown code");
    CHECK(mcp_last_error_json() == NULL, "no last error yet");
    mcp_string_free(NULL);
    mcp_pool_free(NULL);
    mcp_pool_builder_free(NULL);
    mcp_session_free(NULL);
    mcp_call_options_free(NULL);
    mcp_batch_options_free(NULL);
    mcp_cancel_token_free(NULL);
    printf("ok: version %s, ABI %u, code names, free(NULL)\n", mcp_version(), mcp_abi_version());
}

static void test_bad_configs(void) {
    CHECK(mcp_pool_new(NULL) == NULL, "NULL config");
    CHECK(mcp_last_error_code() == MCP_ERR_INVALID_ARGUMENT, "NULL config code");
    CHECK(mcp_pool_new("{\"mcpServers\": {\"a\": {\"command\": \"\xff\"}}}") == NULL, "utf-8");
    CHECK(mcp_last_error_code() == MCP_ERR_INVALID_ARGUMENT, "invalid UTF-8 code");
    CHECK(mcp_pool_new("{\"mcpServers\": ") == NULL, "truncated JSON");
    CHECK(mcp_last_error_code() == MCP_ERR_CONFIG, "invalid JSON code");
    CHECK(mcp_pool_new("{\"mcpServers\": {\"a\": {\"args\": []}}}") == NULL, "no command");
    CHECK(mcp_last_error_code() == MCP_ERR_CONFIG, "no command code");
    CHECK(strstr(mcp_last_error(), "command") != NULL, "message names the key: %s",
          mcp_last_error());
    const char *json = mcp_last_error_json();
    CHECK(json && strstr(json, "\"name\":\"MCP_ERR_CONFIG\"") && strstr(json, "\"kind\":\"config\""),
          "the last error as JSON: %s", json ? json : "(null)");

    CHECK(mcp_pool_builder_new(NULL) == NULL, "builder of NULL");
    CHECK(mcp_last_error_code() == MCP_ERR_INVALID_ARGUMENT, "builder of NULL code");
    CHECK(mcp_pool_builder_new("{nope") == NULL, "builder of bad JSON");
    CHECK(mcp_last_error_code() == MCP_ERR_CONFIG, "builder of bad JSON code");
    /* A setting checked only when building: the builder is consumed and nothing written. */
    mcp_pool_builder *b =
        mcp_pool_builder_new("{\"mcpServers\": {\"a\": {\"command\": \"x\", \"pool\": "
                             "{\"maxSessions\": 0}}}}");
    CHECK(b != NULL, "builder: %s", mcp_last_error());
    mcp_pool *p = (mcp_pool *)&sentinel;
    CHECK_CODE(mcp_pool_builder_build(b, &p), MCP_ERR_CONFIG);
    CHECK(p == (mcp_pool *)&sentinel, "nothing written on failure");
    CHECK_CODE(mcp_pool_builder_build(NULL, &p), MCP_ERR_INVALID_ARGUMENT);
    b = mcp_pool_builder_new("{\"mcpServers\": {}}");
    CHECK_CODE(mcp_pool_builder_build(b, NULL), MCP_ERR_INVALID_ARGUMENT); /* frees b */
    printf("ok: bad configurations (pool and builder)\n");
}

static void test_list_and_call(void) {
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_list_tools(pool, "fake", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"name\":\"echo\"") != NULL, "tools: %s", out);
    CHECK(strstr(out, "\"inputSchema\"") != NULL, "schemas");
    free_out(out);

    out = &sentinel;
    CHECK_CODE(
        mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"h\xc3\xa9llo\"}", NULL, &out),
        MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"text\":\"h\xc3\xa9llo\"") != NULL, "echo: %s", out);
    CHECK(strstr(out, "\"isError\":false") != NULL, "isError false: %s", out);
    free_out(out);

    /* NULL arguments: none. */
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "structured", NULL, NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"structuredContent\":{") != NULL, "structured");
    free_out(out);

    /* The tool ran and failed: a distinct code, the result still written. */
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "fail", "{\"message\": \"boom\"}", NULL, &out),
               MCP_TOOL_ERROR);
    CHECK(out != &sentinel && strstr(out, "\"isError\":true") != NULL, "isError: %s", out);
    CHECK(out != &sentinel && strstr(out, "boom") != NULL, "the tool's text");
    CHECK(strstr(mcp_last_error(), "boom") != NULL, "message: %s", mcp_last_error());
    CHECK(strstr(mcp_last_error_json(), "\"kind\":\"tool_error\"") != NULL, "json: %s",
          mcp_last_error_json());
    free_out(out);

    char *servers = mcp_pool_servers_json(pool);
    CHECK(servers && strcmp(servers, "[\"broken\",\"deaf\",\"fake\",\"solo\"]") == 0,
          "servers: %s", servers);
    mcp_string_free(servers);
    printf("ok: list tools, call, NULL arguments, isError, servers\n");
}

/* Every other call kind, and their bad input. */
static void test_call_kinds(void) {
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_list_resources(pool, "fake", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "fake://r/0") && strstr(out, "fake://r/4"),
          "resources: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_list_resource_templates(pool, "fake", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "fake://r/{n}"), "templates: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_read_resource(pool, "fake", "fake://r/3", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"contents\"") && strstr(out, "resource 3"),
          "read: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_read_resource(pool, "fake", "fake://nothing", NULL, &out),
               MCP_ERR_SERVER);
    CHECK(strstr(mcp_last_error_json(), "\"rpcError\":{\"code\":-32002") != NULL,
          "the JSON-RPC error: %s", mcp_last_error_json());
    CHECK(out == &sentinel, "nothing written on failure");
    CHECK_CODE(mcp_pool_list_prompts(pool, "fake", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"name\":\"greet\""), "prompts: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_get_prompt(pool, "fake", "greet", "{\"name\": \"C\"}", NULL, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "Hello C") && strstr(out, "\"messages\""),
          "prompt: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_complete(pool, "fake", "{\"type\": \"ref/prompt\", \"name\": \"greet\"}",
                                 "{\"name\": \"name\", \"value\": \"Ca\"}", NULL, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"values\":[\"Carol\"]"), "completion: %s", out);
    free_out(out);
    uint64_t micros = 0;
    CHECK_CODE(mcp_pool_ping(pool, "fake", NULL, &micros), MCP_OK);
    CHECK(micros > 0 && micros < 10 * 1000 * 1000, "ping took %llu us",
          (unsigned long long)micros);
    CHECK_CODE(mcp_pool_ping(pool, "fake", NULL, NULL), MCP_OK);
    out = &sentinel;
    CHECK_CODE(mcp_pool_request(pool, "fake", "tools/list", NULL, NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"tools\":["), "raw tools/list: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_request(pool, "fake", "resources/read", "{\"uri\": \"fake://r/1\"}",
                                NULL, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "resource 1"), "raw read: %s", out);
    free_out(out);
    CHECK_CODE(mcp_pool_notify(pool, "fake", "notifications/roots/list_changed", NULL), MCP_OK);
    CHECK_CODE(mcp_pool_notify(pool, "fake", "notifications/x", "{\"a\": 1}"), MCP_OK);

    /* Bad input, nothing written. */
    out = &sentinel;
    CHECK_CODE(mcp_pool_list_resources(NULL, "fake", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_resources(pool, "fake", NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_resource_templates(pool, NULL, NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_prompts(pool, "nope", NULL, &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_read_resource(pool, "fake", NULL, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_read_resource(pool, "fake", "fake://r/\xff", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_get_prompt(pool, "fake", NULL, NULL, NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_get_prompt(pool, "fake", "greet", "{\"name\": ", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_complete(pool, "fake", NULL, "{}", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_complete(pool, "fake", "{}", "not json", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_ping(pool, "nope", NULL, &micros), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_request(pool, "fake", NULL, NULL, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_request(pool, "fake", "tools/list", "[", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_request(pool, "fake", "no/such/method", NULL, NULL, &out),
               MCP_ERR_SERVER);
    CHECK_CODE(mcp_pool_notify(pool, "fake", NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_notify(pool, "fake", "notifications/x", "[1]"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_notify(pool, "nope", "notifications/x", NULL), MCP_ERR_UNKNOWN_SERVER);
    CHECK(out == &sentinel, "nothing written on failure");
    printf("ok: resources, templates, read, prompts, get, complete, ping, request, notify "
           "(and their bad input)\n");
}

static void test_details(void) {
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_details_json(pool, "fake", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"protocolVersion\":\"") &&
              strstr(out, "\"serverInfo\":{\"name\":\"mcp-fake-server\"") &&
              strstr(out, "\"capabilities\":{") && strstr(out, "\"transport\":\"stdio\""),
          "details: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_details_json(pool, "nope", NULL, &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_details_json(pool, "fake", NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_details_json(NULL, "fake", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK(out == &sentinel, "nothing written on failure");
    printf("ok: server details\n");
}

/* --- call options ------------------------------------------------------------------ */

static void test_options(void) {
    mcp_call_options *opts = mcp_call_options_new();
    CHECK(opts != NULL, "options");
    CHECK_CODE(mcp_call_options_set_meta_json(opts, "{\"traceparent\": \"00-c-test\"}"), MCP_OK);
    CHECK_CODE(mcp_call_options_set_timeout_ms(opts, 5000), MCP_OK);
    CHECK_CODE(mcp_call_options_set_start_timeout_ms(opts, 20000), MCP_OK);
    CHECK_CODE(mcp_call_options_set_keep_deadline(opts, true), MCP_OK);
    CHECK_CODE(mcp_call_options_set_caller(opts, "alice"), MCP_OK); /* a shared server ignores it */
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "meta_echo", NULL, opts, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "00-c-test"), "the _meta reached the server: %s", out);
    free_out(out);

    /* Bad values leave the options as they were. */
    CHECK_CODE(mcp_call_options_set_meta_json(opts, "[1, 2]"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_meta_json(opts, "{\"a\": "), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_meta_json(opts, "{\"a\": \"\xff\"}"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_log_level(opts, "loud"), MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "warning") != NULL, "names the levels: %s", mcp_last_error());
    CHECK_CODE(mcp_call_options_set_log_level(opts, "warning"), MCP_OK);
    CHECK_CODE(mcp_call_options_set_log_level(opts, NULL), MCP_OK);
    CHECK_CODE(mcp_call_options_set_caller(opts, "\xc3"), MCP_ERR_INVALID_ARGUMENT);
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "meta_echo", NULL, opts, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "00-c-test"), "the _meta kept: %s", out);
    free_out(out);
    CHECK_CODE(mcp_call_options_set_meta_json(opts, NULL), MCP_OK);
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "meta_echo", NULL, opts, &out), MCP_OK);
    CHECK(out != &sentinel && !strstr(out, "00-c-test"), "the _meta removed: %s", out);
    free_out(out);

    /* NULL options for every setter. */
    CHECK_CODE(mcp_call_options_set_timeout_ms(NULL, 1), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_start_timeout_ms(NULL, 1), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_keep_deadline(NULL, false), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_progress(NULL, NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_cancel(NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_meta_json(NULL, "{}"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_log_level(NULL, "info"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_call_options_set_caller(NULL, "a"), MCP_ERR_INVALID_ARGUMENT);

    /* The timeout: the call ends on time, and the session stays usable. */
    CHECK_CODE(mcp_call_options_set_timeout_ms(opts, 300), MCP_OK);
    double start = now_secs();
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "hang", NULL, opts, &out), MCP_ERR_TIMEOUT);
    double took = now_secs() - start;
    CHECK(took >= 0.25 && took < 5.0, "hang with a 300 ms timeout took %.3f s", took);
    CHECK(out == &sentinel, "nothing written on failure");
    mcp_call_options_free(opts);
    out = NULL;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"after\"}", NULL, &out),
               MCP_OK);
    mcp_string_free(out);
    printf("ok: call options (_meta, timeout, keep deadline, caller, log level, bad values)\n");
}

/* --- progress -------------------------------------------------------------------- */

struct progress_seen {
    int count;
    int in_order;
    double total;
    int messages;
};

static void on_progress(void *userdata, double progress, double total, const char *message) {
    struct progress_seen *seen = userdata;
    seen->count++;
    if (progress != (double)seen->count) seen->in_order = 0;
    seen->total = total;
    char want[32];
    snprintf(want, sizeof want, "step %d", seen->count);
    if (message && strcmp(message, want) == 0) seen->messages++;
}

static void test_progress(void) {
    struct progress_seen seen = {0, 1, 0, 0};
    mcp_call_options *opts = mcp_call_options_new();
    CHECK_CODE(mcp_call_options_set_progress(opts, on_progress, &seen), MCP_OK);
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "progress_burst", "{\"steps\": 50}", opts, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "burst 50"), "the answer: %s", out);
    free_out(out);
    CHECK(seen.count == 50, "every report before the call returned: %d", seen.count);
    CHECK(seen.in_order, "in order");
    CHECK(seen.total == 50.0, "total %f", seen.total);
    CHECK(seen.messages == 50, "messages %d", seen.messages);

    /* Reports spread over a call (another thread may be reading: same order). */
    memset(&seen, 0, sizeof seen);
    seen.in_order = 1;
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "sleep", "{\"ms\": 100, \"progress_steps\": 5}",
                                  opts, &out),
               MCP_OK);
    free_out(out);
    CHECK(seen.count == 5 && seen.in_order, "5 reports in order: %d", seen.count);

    /* Removed: no more reports. */
    CHECK_CODE(mcp_call_options_set_progress(opts, NULL, NULL), MCP_OK);
    memset(&seen, 0, sizeof seen);
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "progress_burst", "{\"steps\": 3}", opts, &out),
               MCP_OK);
    free_out(out);
    CHECK(seen.count == 0, "no callback: %d", seen.count);
    mcp_call_options_free(opts);
    printf("ok: progress callbacks, in order, before the call returns\n");
}

/* --- cancel from another thread -------------------------------------------------- */

struct cancel_call {
    mcp_call_options *opts;
    mcp_status rc;
    double ended;
    int wrote;
};

static void *call_hang(void *arg) {
    struct cancel_call *call = arg;
    char *out = &sentinel;
    call->rc = mcp_pool_call_tool(pool, "fake", "hang", NULL, call->opts, &out);
    call->ended = now_secs();
    call->wrote = out != &sentinel;
    free_out(out);
    return NULL;
}

static void test_cancel(void) {
    mcp_cancel_token *token = mcp_cancel_token_new();
    CHECK(token && !mcp_cancel_token_is_cancelled(token), "a fresh token");
    struct cancel_call call = {mcp_call_options_new(), MCP_OK, 0, 0};
    CHECK_CODE(mcp_call_options_set_timeout_ms(call.opts, 30000), MCP_OK);
    CHECK_CODE(mcp_call_options_set_cancel(call.opts, token), MCP_OK);
    pthread_t caller;
    pthread_create(&caller, NULL, call_hang, &call);
    sleep_ms(300); /* the call is in flight */
    double fired = now_secs();
    CHECK_CODE(mcp_cancel_token_cancel(token), MCP_OK);
    pthread_join(caller, NULL);
    double took = call.ended - fired;
    CHECK(call.rc == MCP_ERR_CANCELLED, "the call ended with %s", mcp_error_code_name(call.rc));
    CHECK(took < 0.5, "at once: %.3f s after the cancel", took);
    CHECK(!call.wrote, "nothing written");
    CHECK(mcp_cancel_token_is_cancelled(token), "fired");
    CHECK_CODE(mcp_cancel_token_cancel(token), MCP_OK); /* idempotent */

    /* A fired token fails a new call at once; freeing the token keeps the options working. */
    mcp_cancel_token_free(token);
    double start = now_secs();
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"x\"}", call.opts, &out),
               MCP_ERR_CANCELLED);
    CHECK(now_secs() - start < 0.5, "at once");
    CHECK(out == &sentinel, "nothing written");
    CHECK_CODE(mcp_call_options_set_cancel(call.opts, NULL), MCP_OK);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"x\"}", call.opts, &out),
               MCP_OK);
    free_out(out);
    CHECK_CODE(mcp_cancel_token_cancel(NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK(!mcp_cancel_token_is_cancelled(NULL), "NULL is not cancelled");
    mcp_call_options_free(call.opts);
    printf("ok: cancel from another thread ended the call in %.0f ms with MCP_ERR_CANCELLED\n",
           took * 1000);
}

/* --- batches --------------------------------------------------------------------- */

struct results_seen {
    int count;
    int ok;
    int timeouts;
    int tool_errors;
    int server_errors;
};

static void on_result(void *userdata, size_t index, mcp_status status, const char *result_json) {
    struct results_seen *seen = userdata;
    seen->count++;
    if (status == MCP_OK && strstr(result_json, "\"isError\":false")) seen->ok++;
    if (status == MCP_ERR_TIMEOUT && strstr(result_json, "\"MCP_ERR_TIMEOUT\"")) seen->timeouts++;
    if (status == MCP_TOOL_ERROR) seen->tool_errors++;
    if (status == MCP_ERR_SERVER) seen->server_errors++;
    (void)index;
}

static void test_batch(void) {
    char *out = &sentinel;
    const char *calls =
        "[{\"tool\": \"echo\", \"arguments\": {\"text\": \"first\"}},"
        " {\"tool\": \"fail\", \"arguments\": {\"message\": \"second\"}},"
        " {\"tool\": \"rpc_error\"},"
        " {\"tool\": \"echo\", \"arguments\": {\"text\": \"fourth\"}}]";
    struct results_seen seen = {0};
    mcp_batch_options *opts = mcp_batch_options_new();
    CHECK_CODE(mcp_batch_options_set_on_result(opts, on_result, &seen), MCP_OK);
    CHECK_CODE(mcp_pool_batch(pool, "fake", calls, opts, &out), MCP_OK);
    CHECK(out != &sentinel && out[0] == '[', "an array: %s", out);
    if (out != &sentinel) {
        char *first = strstr(out, "first");
        char *second = strstr(out, "second");
        char *third = strstr(out, "\"error\":{");
        char *fourth = strstr(out, "fourth");
        CHECK(first && second && third && fourth, "all four: %s", out);
        CHECK(first < second && second < third && third < fourth, "in order: %s", out);
        CHECK(strstr(out, "\"isError\":true") != NULL, "the tool error: %s", out);
        CHECK(strstr(out, "\"name\":\"MCP_ERR_SERVER\"") != NULL, "error name: %s", out);
        CHECK(strstr(out, "\"kind\":\"server\"") != NULL, "error kind: %s", out);
        CHECK(strstr(out, "\"rpcError\":{\"code\":-32000") != NULL, "rpc error: %s", out);
        mcp_string_free(out);
    }
    CHECK(seen.count == 4 && seen.ok == 2 && seen.tool_errors == 1 && seen.server_errors == 1,
          "a callback per call: %d %d %d %d", seen.count, seen.ok, seen.tool_errors,
          seen.server_errors);

    /* The batch's deadline holds: an answer that never comes ends as a timeout. */
    memset(&seen, 0, sizeof seen);
    CHECK_CODE(mcp_batch_options_set_timeout_ms(opts, 300), MCP_OK);
    out = &sentinel;
    double start = now_secs();
    CHECK_CODE(mcp_pool_batch(pool, "fake",
                              "[{\"tool\": \"sleep\", \"arguments\": {\"ms\": 5000}},"
                              " {\"tool\": \"echo\", \"arguments\": {\"text\": \"quick\"}}]",
                              opts, &out),
               MCP_OK);
    double took = now_secs() - start;
    CHECK(took >= 0.25 && took < 2.0, "the batch took %.3f s with a 300 ms deadline", took);
    CHECK(out != &sentinel && strstr(out, "\"name\":\"MCP_ERR_TIMEOUT\"") && strstr(out, "quick"),
          "one timed out, one answered: %s", out);
    free_out(out);
    CHECK(seen.count == 2 && seen.timeouts == 1 && seen.ok == 1, "callbacks %d %d %d",
          seen.count, seen.timeouts, seen.ok);

    /* A fired token: every call cancelled, the batch itself fine. */
    mcp_cancel_token *token = mcp_cancel_token_new();
    mcp_cancel_token_cancel(token);
    CHECK_CODE(mcp_batch_options_set_cancel(opts, token), MCP_OK);
    CHECK_CODE(mcp_batch_options_set_caller(opts, "bob"), MCP_OK);
    mcp_cancel_token_free(token);
    out = &sentinel;
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"tool\": \"echo\"}]", opts, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "MCP_ERR_CANCELLED"), "cancelled: %s", out);
    free_out(out);
    CHECK_CODE(mcp_batch_options_set_cancel(opts, NULL), MCP_OK);
    CHECK_CODE(mcp_batch_options_set_caller(opts, NULL), MCP_OK);

    /* A failure of the pool, not of a call: one status, nothing written, no callback. */
    memset(&seen, 0, sizeof seen);
    out = &sentinel;
    CHECK_CODE(mcp_pool_batch(pool, "nope", "[{\"tool\": \"echo\"}]", opts, &out),
               MCP_ERR_UNKNOWN_SERVER);
    CHECK(out == &sentinel && seen.count == 0, "nothing written, no callback");

    out = &sentinel;
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[]", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strcmp(out, "[]") == 0, "empty batch: %s", out);
    free_out(out);

    out = &sentinel;
    CHECK_CODE(mcp_pool_batch(pool, "fake", "{\"tool\": \"echo\"}", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"arguments\": {}}]", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"tool\": ", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "nope", "[]", NULL, &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_batch(pool, "fake", NULL, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[]", NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK(out == &sentinel, "nothing written on failure");
    CHECK_CODE(mcp_batch_options_set_timeout_ms(NULL, 1), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_batch_options_set_cancel(NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_batch_options_set_on_result(NULL, NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_batch_options_set_caller(NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    mcp_batch_options_free(opts);
    printf("ok: batch (results in order, a callback per call, a %.0f ms deadline held, cancel, "
           "one status for a pool failure, bad input)\n",
           took * 1000);
}

static void test_stats(void) {
    char *stats = mcp_pool_stats_json(pool);
    CHECK(stats != NULL, "stats");
    if (stats) {
        CHECK(strstr(stats, "\"servers\":{") && strstr(stats, "\"fake\":{"), "%s", stats);
        CHECK(strstr(stats, "\"calls\":") && strstr(stats, "\"total\":{"), "%s", stats);
        mcp_string_free(stats);
    }
    CHECK(mcp_last_error() == NULL, "no error after stats");
    CHECK(mcp_pool_stats_json(NULL) == NULL, "stats of NULL");
    CHECK(mcp_last_error_code() == MCP_ERR_INVALID_ARGUMENT, "stats of NULL code");
    CHECK(mcp_pool_servers_json(NULL) == NULL, "servers of NULL");
    printf("ok: stats\n");
}

static void test_error_paths(void) {
    char *out = &sentinel;
    /* NULL pointers. */
    CHECK_CODE(mcp_pool_call_tool(NULL, "fake", "echo", "{}", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "pool") != NULL, "names the argument");
    CHECK_CODE(mcp_pool_call_tool(pool, NULL, "echo", "{}", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", NULL, "{}", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{}", NULL, NULL),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(NULL, "fake", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(pool, NULL, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(pool, "fake", NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(NULL, "fake", "[]", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_close(NULL), MCP_ERR_INVALID_ARGUMENT);

    /* Invalid UTF-8 and invalid JSON. */
    CHECK_CODE(mcp_pool_call_tool(pool, "fa\xffke", "echo", "{}", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "UTF-8") != NULL, "says UTF-8: %s", mcp_last_error());
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "ech\xc3", "{}", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"\xfe\"}", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(pool, "\xc0\xaf", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": ", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "JSON") != NULL, "says JSON: %s", mcp_last_error());
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "[1, 2]", NULL, &out),
               MCP_ERR_INVALID_ARGUMENT);

    /* Unknown server, a JSON-RPC error, a server that cannot start. */
    CHECK_CODE(mcp_pool_call_tool(pool, "nope", "echo", "{}", NULL, &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_list_tools(pool, "nope", NULL, &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "rpc_error", "{\"message\": \"no\"}", NULL, &out),
               MCP_ERR_SERVER);
    CHECK(strstr(mcp_last_error_json(), "\"rpcError\":{\"code\":-32000,") &&
              strstr(mcp_last_error_json(), "\"message\":\"no\"}"),
          "the JSON-RPC error: %s", mcp_last_error_json());
    CHECK_CODE(mcp_pool_call_tool(pool, "broken", "echo", "{}", NULL, &out), MCP_ERR_SPAWN);
    CHECK(strstr(mcp_last_error(), "/nonexistent/mcp-server") != NULL, "names the command: %s",
          mcp_last_error());
    CHECK(out == &sentinel, "nothing written on failure");
    printf("ok: error paths (NULL, UTF-8, JSON, unknown server, server error, spawn)\n");
}

/* --- sessions handed out --------------------------------------------------------- */

static void test_session(mcp_pool *p) {
    mcp_session *session = (mcp_session *)&sentinel;
    CHECK_CODE(mcp_pool_session(p, "nope", NULL, &session), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_session(p, "hs", NULL, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_session(NULL, "hs", NULL, &session), MCP_ERR_INVALID_ARGUMENT);
    CHECK(session == (mcp_session *)&sentinel, "nothing written on failure");
    CHECK_CODE(mcp_pool_session(p, "hs", NULL, &session), MCP_OK);
    if (session == (mcp_session *)&sentinel) return;

    char *out = &sentinel;
    CHECK_CODE(mcp_session_details_json(session, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"generation\":\"handshake\"") &&
              strstr(out, "\"protocolVersion\":\"2025-11-25\"") && strstr(out, "\"pid\":"),
          "details: %s", out);
    free_out(out);

    /* A subscription lives on its session: the update reaches the handler. */
    CHECK_CODE(mcp_session_subscribe(session, "fake://r/2"), MCP_OK);
    out = &sentinel;
    CHECK_CODE(mcp_session_call_tool(session, "touch", "{\"uri\": \"fake://r/2\"}", NULL, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"text\":\"ok\""), "touched: %s", out);
    free_out(out);
    CHECK(noted("updated hs fake://r/2"), "on_resource_updated");
    CHECK_CODE(mcp_session_unsubscribe(session, "fake://r/2"), MCP_OK);
    out = &sentinel;
    CHECK_CODE(mcp_session_call_tool(session, "touch", "{\"uri\": \"fake://r/2\"}", NULL, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "not subscribed"), "unsubscribed: %s", out);
    free_out(out);

    out = &sentinel;
    CHECK_CODE(mcp_session_request(session, "prompts/get",
                                   "{\"name\": \"greet\", \"arguments\": {\"name\": \"S\"}}",
                                   NULL, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "Hello S"), "a request on the session: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_session_call_tool(session, "fail", NULL, NULL, &out), MCP_TOOL_ERROR);
    free_out(out);
    CHECK_CODE(mcp_session_notify(session, "notifications/roots/list_changed", NULL), MCP_OK);

    out = &sentinel;
    CHECK_CODE(mcp_session_call_tool(NULL, "echo", NULL, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_call_tool(session, NULL, NULL, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_call_tool(session, "echo", "{", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_request(session, "tools/list", NULL, NULL, NULL),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_request(session, "x/y", NULL, NULL, &out), MCP_ERR_SERVER);
    CHECK_CODE(mcp_session_notify(session, "notifications/x", "3"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_subscribe(session, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_unsubscribe(NULL, "fake://r/2"), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_session_details_json(session, NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK(out == &sentinel, "nothing written on failure");
    mcp_session_free(session);
    printf("ok: a session handed out (details, subscribe, calls, requests, notify, bad input)\n");
}

/* --- handler callbacks ----------------------------------------------------------- */

static atomic_int releases;
static atomic_int reply_checks;

static int roots_cb(void *userdata, const char *server, const char *params_json,
                    mcp_reply *reply) {
    (void)params_json;
    /* The reply functions' own bad input, once per run. */
    if (atomic_fetch_add(&reply_checks, 1) == 0) {
        int bad = mcp_reply_json(reply, "[1]") == MCP_ERR_INVALID_ARGUMENT &&
                  mcp_reply_json(reply, "{\"a\": ") == MCP_ERR_INVALID_ARGUMENT &&
                  mcp_reply_json(reply, NULL) == MCP_ERR_INVALID_ARGUMENT &&
                  mcp_reply_json(NULL, "{}") == MCP_ERR_INVALID_ARGUMENT &&
                  mcp_reply_error(reply, 1, NULL) == MCP_ERR_INVALID_ARGUMENT &&
                  mcp_reply_text(NULL, "x") == MCP_ERR_INVALID_ARGUMENT &&
                  !mcp_reply_is_cancelled(NULL) && !mcp_reply_is_cancelled(reply);
        note("reply checks %s", bad ? "passed" : "FAILED");
    }
    note("roots asked by %s (%s)", server, (const char *)userdata);
    return mcp_reply_json(reply, "{\"roots\": [{\"uri\": \"file:///tmp/from-c\", \"name\": \"c\"}]}");
}

static int sampling_cb(void *userdata, const char *server, const char *params_json,
                       mcp_reply *reply) {
    (void)userdata;
    note("sampling asked by %s: %s", server, strstr(params_json, "\"messages\"") ? "messages" : "?");
    return mcp_reply_json(reply, "{\"role\": \"assistant\", \"content\": {\"type\": \"text\", "
                                 "\"text\": \"sampled in C\"}, \"model\": \"c-test\"}");
}

static int elicitation_cb(void *userdata, const char *server, const char *params_json,
                          mcp_reply *reply) {
    (void)userdata;
    note("form asked by %s", server);
    (void)params_json;
    return mcp_reply_json(reply, "{\"action\": \"accept\", \"content\": {\"name\": \"Ada\"}}");
}

static int url_cb(void *userdata, const char *server, const char *params_json,
                  mcp_reply *reply) {
    (void)userdata;
    note("url asked by %s: %s", server,
         strstr(params_json, "https://example.com/mcp-fake-server/") ? "example.com" : "?");
    return mcp_reply_json(reply, "{\"action\": \"decline\"}");
}

static void on_list_changed(void *userdata, const char *server, const char *kind) {
    (void)userdata;
    note("list changed %s %s", server, kind);
}

static void on_resource_updated(void *userdata, const char *server, const char *uri) {
    (void)userdata;
    note("updated %s %s", server, uri);
}

static void on_log(void *userdata, const char *server, const char *level, const char *logger,
                   const char *data_json) {
    (void)userdata;
    note("log %s %s %s %s", server, level, logger ? logger : "(none)", data_json);
}

static void on_task_status(void *userdata, const char *server, const char *task_json) {
    (void)userdata;
    note("task %s %s", server, strstr(task_json, "\"status\":\"completed\"") ? "completed" : "moved");
}

static void on_elicitation_complete(void *userdata, const char *server, const char *id) {
    (void)userdata;
    note("elicitation complete %s %s", server, id);
}

static void on_notification(void *userdata, const char *server, const char *method,
                            const char *params_json) {
    (void)userdata;
    note("notification %s %s %s", server, method, params_json);
}

static void release_cb(void *userdata) {
    (void)userdata;
    atomic_fetch_add(&releases, 1);
}

/* Callbacks that fail: a status (the spec's error goes to the server) or an error of their
 * own choosing. */
static int refuse_cb(void *userdata, const char *server, const char *params_json,
                     mcp_reply *reply) {
    (void)userdata, (void)server, (void)params_json, (void)reply;
    return MCP_ERR_INPUT_REFUSED;
}

static int own_error_cb(void *userdata, const char *server, const char *params_json,
                        mcp_reply *reply) {
    (void)userdata, (void)server, (void)params_json;
    mcp_reply_error(reply, -32001, "no form from this client");
    return MCP_OK; /* the error set wins */
}

static int silent_cb(void *userdata, const char *server, const char *params_json,
                     mcp_reply *reply) {
    (void)userdata, (void)server, (void)params_json, (void)reply;
    return MCP_OK; /* no answer set */
}

/* An HTTP server's bearer token: a wrong one first, the right one when refused. */
static int token_cb(void *userdata, const char *server, const char *url, const char *challenge,
                    mcp_reply *reply) {
    (void)userdata;
    note("token for %s at %s, challenge %s", server, strstr(url, "/mcp") ? "/mcp" : url,
         challenge ? "given" : "none");
    return mcp_reply_text(reply, challenge ? "good" : "stale");
}

static int no_token_cb(void *userdata, const char *server, const char *url,
                       const char *challenge, mcp_reply *reply) {
    (void)userdata, (void)server, (void)url, (void)challenge, (void)reply;
    return MCP_ERR_UNAUTHORIZED;
}

/* Calls a tool on a server of `p` and returns its result text (to be freed), or NULL. */
static char *call(mcp_pool *p, const char *server, const char *tool, const char *args,
                  mcp_status want) {
    char *out = &sentinel;
    mcp_status rc = mcp_pool_call_tool(p, server, tool, args, NULL, &out);
    CHECK(rc == want, "%s %s: got %s, want %s", server, tool, mcp_error_code_name(rc),
          mcp_error_code_name(want));
    return out == &sentinel ? NULL : out;
}

/* Whether the call's result contains `needle`; frees it. */
static int call_has(mcp_pool *p, const char *server, const char *tool, const char *args,
                    mcp_status want, const char *needle) {
    char *out = call(p, server, tool, args, want);
    int found = out && strstr(out, needle) != NULL;
    if (!found) fprintf(stderr, "%s %s: no `%s` in %s\n", server, tool, needle, out ? out : "(none)");
    mcp_string_free(out);
    return found;
}

static void test_handlers(const char *fake, const char *http_url) {
    int failed_before = atomic_load(&failures);
    char *f = json_string(fake);
    /* A server of our own that sends a notification nobody defined before each answer. */
    char *custom = json_string(
        "read -r line; id=$(printf '%s' \"$line\" | sed -n 's/.*\"id\":\\([0-9]*\\).*/\\1/p'); "
        "printf '{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"protocolVersion\":\"2025-11-25\","
        "\"capabilities\":{},\"serverInfo\":{\"name\":\"custom\",\"version\":\"1\"}}}\\n' \"$id\"; "
        "read -r line; while read -r line; do "
        "id=$(printf '%s' \"$line\" | sed -n 's/.*\"id\":\\([0-9]*\\).*/\\1/p'); "
        "printf '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/custom\",\"params\":{\"n\":7}}\\n'; "
        "printf '{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{}}\\n' \"$id\"; done");
    char http[2048] = "";
    if (http_url) {
        snprintf(http, sizeof http,
                 ", \"web\": {\"type\": \"http\", \"url\": \"%s\"},"
                 " \"web_refused\": {\"type\": \"http\", \"url\": \"%s\"}",
                 http_url, http_url);
    }
    char config[8192];
    snprintf(config, sizeof config,
             "{\"pool\": {\"closeGraceSecs\": 0.5}, \"mcpServers\": {"
             " \"hs\": {\"command\": %s, \"pool\": {\"generation\": \"handshake\"}},"
             " \"pr\": {\"command\": %s, \"pool\": {\"generation\": \"per-request\"}},"
             " \"hs_err\": {\"command\": %s, \"pool\": {\"generation\": \"handshake\"}},"
             " \"pr_err\": {\"command\": %s, \"pool\": {\"generation\": \"per-request\"}},"
             " \"quiet\": {\"command\": %s, \"pool\": {\"generation\": \"handshake\"}},"
             " \"custom\": {\"command\": \"/bin/sh\", \"args\": [\"-c\", %s],"
             "             \"pool\": {\"generation\": \"handshake\"}}%s"
             "}}",
             f, f, f, f, f, custom, http);
    free(f);
    free(custom);

    mcp_handler full = {0};
    full.userdata = (void *)"full";
    full.roots = roots_cb;
    full.roots_list_changed = true;
    full.sampling = sampling_cb;
    full.elicitation = elicitation_cb;
    full.elicitation_url = url_cb;
    full.token = token_cb;
    full.on_list_changed = on_list_changed;
    full.on_resource_updated = on_resource_updated;
    full.on_log = on_log;
    full.on_task_status = on_task_status;
    full.on_elicitation_complete = on_elicitation_complete;
    full.on_notification = on_notification;
    full.release = release_cb;

    mcp_handler failing = {0};
    failing.roots = refuse_cb;
    failing.sampling = refuse_cb;
    failing.elicitation = own_error_cb;
    failing.elicitation_url = silent_cb;
    failing.token = no_token_cb;
    failing.release = release_cb;

    mcp_handler listening = {0}; /* notifications only: no capability declared */
    listening.on_log = on_log;
    listening.release = release_cb;

    mcp_pool_builder *builder = mcp_pool_builder_new(config);
    CHECK(builder != NULL, "builder: %s", mcp_last_error());
    if (builder == NULL) return;
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "nope", &full), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "hs", NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_builder_set_handler(NULL, "hs", &full), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "h\xffs", &full), MCP_ERR_INVALID_ARGUMENT);
    CHECK(atomic_load(&releases) == 0, "nothing kept on failure");
    CHECK_CODE(mcp_pool_builder_set_handler(builder, NULL, &full), MCP_OK); /* every server */
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "hs_err", &listening), MCP_OK);
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "hs_err", &failing), MCP_OK); /* replaces */
    CHECK(atomic_load(&releases) == 1, "the replaced copy released: %d", atomic_load(&releases));
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "pr_err", &failing), MCP_OK);
    CHECK_CODE(mcp_pool_builder_set_handler(builder, "quiet", &listening), MCP_OK);
    if (http_url) CHECK_CODE(mcp_pool_builder_set_handler(builder, "web_refused", &failing), MCP_OK);
    mcp_pool *p = NULL;
    CHECK_CODE(mcp_pool_builder_build(builder, &p), MCP_OK);
    if (p == NULL) return;

    /* Capabilities follow the callbacks that are set. */
    CHECK(call_has(p, "hs", "client_caps", NULL, MCP_OK, "\\\"roots\\\":{\\\"listChanged\\\":true}"),
          "roots with listChanged declared");
    CHECK(call_has(p, "hs", "client_caps", NULL, MCP_OK, "\\\"elicitation\\\":{\\\"form\\\":{},\\\"url\\\":{}}"),
          "both elicitation modes declared");
    CHECK(call_has(p, "hs", "client_caps", NULL, MCP_OK, "\\\"sampling\\\":{}"), "sampling");
    CHECK(call_has(p, "quiet", "client_caps", NULL, MCP_OK, "\\\"capabilities\\\":{}"),
          "nothing declared for notification callbacks only");

    /* Handshake generation: server-to-client requests. */
    CHECK(call_has(p, "hs", "ask_roots", NULL, MCP_OK, "file:///tmp/from-c"), "roots answered");
    CHECK(noted("roots asked by hs (full)"), "the roots callback ran with its userdata");
    CHECK(noted("reply checks passed"), "the reply functions refuse bad input");
    CHECK(call_has(p, "hs", "ask_sampling", NULL, MCP_OK, "sampled in C"), "sampling answered");
    CHECK(noted("sampling asked by hs: messages"), "the sampling callback saw the params");
    CHECK(call_has(p, "hs", "ask_elicitation", NULL, MCP_OK, "Ada"), "elicitation answered");
    CHECK(call_has(p, "hs", "ask_url", NULL, MCP_OK, "decline"), "URL elicitation answered");
    CHECK(noted("url asked by hs: example.com"), "the URL callback saw the URL");

    /* Failing callbacks: the server gets the spec's error, or the callback's own. */
    CHECK(call_has(p, "hs_err", "ask_roots", NULL, MCP_OK, "-32603"), "internal error for roots");
    CHECK(call_has(p, "hs_err", "ask_roots", NULL, MCP_OK, "MCP_ERR_INPUT_REFUSED"),
          "the message names the status");
    CHECK(call_has(p, "hs_err", "ask_sampling", NULL, MCP_OK, "User rejected sampling request"),
          "the spec's sampling refusal");
    CHECK(call_has(p, "hs_err", "ask_elicitation", NULL, MCP_OK, "no form from this client"),
          "the callback's own error");
    CHECK(call_has(p, "hs_err", "ask_url", NULL, MCP_OK, "without mcp_reply_json"),
          "MCP_OK with no answer is an error");

    /* Per-request generation: input requests, answered by the same callbacks. */
    CHECK(call_has(p, "pr", "mrtr_roots", NULL, MCP_OK, "file:///tmp/from-c"), "mrtr roots");
    CHECK(call_has(p, "pr", "mrtr_sampling", NULL, MCP_OK, "sampled in C"), "mrtr sampling");
    CHECK(call_has(p, "pr", "mrtr_elicit", NULL, MCP_OK, "hello Ada"), "mrtr elicitation");
    CHECK(call_has(p, "pr", "mrtr_url", NULL, MCP_OK, "decline"), "mrtr URL elicitation");
    CHECK(noted("roots asked by pr (full)"), "the per-request roots callback ran");
    char *out = call(p, "pr_err", "mrtr_roots", NULL, MCP_ERR_INPUT_REFUSED);
    CHECK(out == NULL, "nothing written");
    CHECK(strstr(mcp_last_error(), "MCP_ERR_INPUT_REFUSED") != NULL, "why: %s", mcp_last_error());

    /* Notifications and log messages. */
    CHECK(call_has(p, "hs", "log", "{\"level\": \"warning\", \"message\": \"from the fake\"}",
                   MCP_OK, "ok"),
          "log sent");
    CHECK(noted("log hs warning fake \"from the fake\""), "on_log");
    mcp_call_options *debug = mcp_call_options_new();
    mcp_call_options_set_log_level(debug, "debug");
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(p, "pr", "log", "{\"level\": \"debug\", \"message\": \"per\"}",
                                  debug, &out),
               MCP_OK);
    free_out(out);
    mcp_call_options_free(debug);
    CHECK(noted("log pr debug fake \"per\""), "on_log in the per-request generation");
    CHECK(call_has(p, "quiet", "log", "{\"level\": \"info\", \"message\": \"quiet\"}", MCP_OK, "ok"),
          "log sent");
    CHECK(noted("log quiet info fake \"quiet\""), "on_log of a handler with nothing else");
    CHECK(call_has(p, "hs", "notify_changed", "{\"kind\": \"prompts\"}", MCP_OK, "ok"), "sent");
    CHECK(noted("list changed hs prompts"), "on_list_changed");
    CHECK(call_has(p, "hs", "list_changed", NULL, MCP_OK, "ok"), "sent");
    CHECK(noted("list changed hs tools"), "on_list_changed for tools");
    CHECK(call_has(p, "hs", "elicitation_complete", "{\"id\": \"e-42\"}", MCP_OK, "ok"), "sent");
    CHECK(noted("elicitation complete hs e-42"), "on_elicitation_complete");
    CHECK(call_has(p, "hs", "task_required", "{\"ms\": 20}", MCP_OK, "slept 20"), "a task");
    CHECK(noted("task hs completed"), "on_task_status");
    CHECK_CODE(mcp_pool_ping(p, "custom", NULL, NULL), MCP_OK);
    CHECK(noted("notification custom notifications/custom {\"n\":7}"), "on_notification");

    test_session(p);

    /* HTTP: the token callback, asked again with the challenge after a refusal. */
    if (http_url) {
        CHECK(call_has(p, "web", "echo", "{\"text\": \"over http\"}", MCP_OK, "over http"),
              "a call with the refreshed token");
        CHECK(noted("token for web at /mcp, challenge none"), "asked first without a challenge");
        CHECK(noted("token for web at /mcp, challenge given"), "asked again with the challenge");
        out = call(p, "web_refused", "echo", "{}", MCP_ERR_UNAUTHORIZED);
        CHECK(out == NULL, "nothing written");
    }

    mcp_pool_free(p);
    /* Copies: full (every server), listening (hs_err, replaced), failing (hs_err, pr_err and
     * web_refused), listening (quiet). Each released once, when nothing can call it. */
    int want = http_url ? 6 : 5;
    for (int i = 0; i < 100 && atomic_load(&releases) < want; i++) sleep_ms(20);
    CHECK(atomic_load(&releases) == want, "each copy released once: %d of %d",
          atomic_load(&releases), want);
    if (atomic_load(&failures) > failed_before) print_events();
    printf("ok: handler callbacks (capabilities, roots, sampling, elicitation form and URL in "
           "both generations, failing callbacks, log, list changes, resource updates, task "
           "status, elicitation complete, other notifications%s, release)\n",
           http_url ? ", HTTP token" : "");
}

/* --- a server that dies: the host must survive ------------------------------------ */

static atomic_int stop_load;

static void *load(void *arg) {
    (void)arg;
    long calls = 0;
    mcp_call_options *opts = mcp_call_options_new();
    mcp_call_options_set_timeout_ms(opts, 5000);
    while (!atomic_load(&stop_load)) {
        char *out = NULL;
        mcp_status rc = mcp_pool_call_tool(pool, "solo", "echo", "{\"text\": \"load\"}", opts, &out);
        CHECK(rc == MCP_OK || rc == MCP_ERR_OUTCOME_UNKNOWN || rc == MCP_ERR_SESSION_CLOSED,
              "load call: %s", mcp_error_code_name(rc));
        mcp_string_free(out);
        calls++;
    }
    mcp_call_options_free(opts);
    return (void *)calls;
}

static void test_crash_and_sigpipe(void) {
    /* Calls keep arriving on the same session while its server exits mid-call, so some are
     * written to a dead pipe. */
    pthread_t loaders[3];
    atomic_store(&stop_load, 0);
    for (int i = 0; i < 3; i++) pthread_create(&loaders[i], NULL, load, NULL);
    char *out = &sentinel;
    mcp_status rc = mcp_pool_call_tool(pool, "solo", "crash", "{\"code\": 7, \"after_ms\": 100}",
                                       NULL, &out);
    CHECK_CODE(rc, MCP_ERR_OUTCOME_UNKNOWN);
    CHECK(strstr(mcp_last_error(), "code 7") != NULL, "the exit code: %s", mcp_last_error());
    CHECK(out == &sentinel, "nothing written on failure");
    sleep_ms(200);
    atomic_store(&stop_load, 1);
    long load_calls = 0;
    for (int i = 0; i < 3; i++) {
        void *calls;
        pthread_join(loaders[i], &calls);
        load_calls += (long)calls;
    }

    /* The next call gets a fresh session. */
    out = NULL;
    CHECK_CODE(mcp_pool_call_tool(pool, "solo", "count", NULL, NULL, &out), MCP_OK);
    CHECK(out && strstr(out, "\"text\":\"1\"") != NULL, "a fresh process counts from 1: %s",
          out);
    mcp_string_free(out);

    /* A server that stops reading but stays alive: the write of `notifications/initialized`
     * always meets a pipe with no reader (EPIPE; SIGPIPE for the writing thread). */
    out = &sentinel;
    rc = mcp_pool_call_tool(pool, "deaf", "echo", "{}", NULL, &out);
    CHECK_CODE(rc, MCP_ERR_HANDSHAKE);
    CHECK(strstr(mcp_last_error(), "roken pipe") != NULL, "EPIPE: %s", mcp_last_error());
    CHECK(out == &sentinel, "nothing written on failure");
    printf("ok: crash mid-call -> outcome unknown (%ld load calls meanwhile), fresh session "
           "after, writes to dead servers did not kill the host (%s)\n",
           load_calls, mcp_error_code_name(rc));
}

/* --- many threads on one handle ---------------------------------------------------- */

enum { THREADS = 8, CALLS = 50 };

static void *hammer(void *arg) {
    int id = (int)(long)arg;
    for (int i = 0; i < CALLS; i++) {
        char args[64], want[64];
        snprintf(args, sizeof args, "{\"text\": \"t%d-%d\"}", id, i);
        snprintf(want, sizeof want, "\"text\":\"t%d-%d\"", id, i);
        char *out = NULL;
        mcp_status rc = mcp_pool_call_tool(pool, "fake", "echo", args, NULL, &out);
        CHECK(rc == MCP_OK, "thread %d call %d: %s", id, i, mcp_error_code_name(rc));
        CHECK(out && strstr(out, want) != NULL, "thread %d call %d got %s", id, i, out);
        mcp_string_free(out);
        if (i % 10 == 0) {
            /* The last error is per thread: another thread's failure must not show here. */
            CHECK(mcp_last_error() == NULL, "thread %d sees no error", id);
        } else if (i % 10 == 5) {
            rc = mcp_pool_call_tool(pool, "nope", "echo", NULL, NULL, &out);
            CHECK(rc == MCP_ERR_UNKNOWN_SERVER && strstr(mcp_last_error(), "nope"),
                  "thread %d own error", id);
        }
    }
    return NULL;
}

static void test_threads(void) {
    pthread_t threads[THREADS];
    double start = now_secs();
    for (long i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, hammer, (void *)i);
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    printf("ok: %d threads x %d calls on one handle in %.2f s\n", THREADS, CALLS,
           now_secs() - start);
}

static void test_close(void) {
    CHECK_CODE(mcp_pool_close(pool), MCP_OK);
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{}", NULL, &out), MCP_ERR_POOL_CLOSED);
    CHECK_CODE(mcp_pool_list_tools(pool, "fake", NULL, &out), MCP_ERR_POOL_CLOSED);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"tool\": \"echo\"}]", NULL, &out),
               MCP_ERR_POOL_CLOSED);
    CHECK_CODE(mcp_pool_read_resource(pool, "fake", "fake://r/1", NULL, &out), MCP_ERR_POOL_CLOSED);
    CHECK_CODE(mcp_pool_details_json(pool, "fake", NULL, &out), MCP_ERR_POOL_CLOSED);
    mcp_session *session = (mcp_session *)&sentinel;
    CHECK_CODE(mcp_pool_session(pool, "fake", NULL, &session), MCP_ERR_POOL_CLOSED);
    CHECK(out == &sentinel && session == (mcp_session *)&sentinel, "nothing written on failure");
    char *stats = mcp_pool_stats_json(pool);
    CHECK(stats != NULL, "stats after close");
    mcp_string_free(stats);
    CHECK_CODE(mcp_pool_close(pool), MCP_OK);
    printf("ok: close (later calls get MCP_ERR_POOL_CLOSED, close is idempotent)\n");
}

/* Configuration warnings reach C: an unknown key is reported, not silently dropped. */
/* A configuration file read by the library: a broken entry is skipped alone (a handler for
 * it is accepted and kept nowhere), a call to it says why, and a missing file is named. */
static void test_from_file(const char *fake_json) {
    char path[256];
    snprintf(path, sizeof path, "/tmp/mcp-pool-ffi-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "write %s", path);
    if (f == NULL) return;
    fprintf(f,
            "{\"pool\": {\"closeGraceSecs\": 0.5}, \"mcpServers\": {"
            " \"ok\": {\"command\": %s},"
            " \"broken\": {\"command\": \"x\", \"env\": {\"T\": \"${MCP_POOL_FFI_UNSET_VAR}\"}}}}",
            fake_json);
    fclose(f);
    mcp_pool_builder *b = mcp_pool_builder_from_file(path);
    CHECK(b != NULL, "mcp_pool_builder_from_file: %s", mcp_last_error());
    if (b == NULL) return;
    mcp_handler h = {0};
    CHECK_CODE(mcp_pool_builder_set_handler(b, "broken", &h), MCP_OK);
    CHECK_CODE(mcp_pool_builder_set_handler(b, "nope", &h), MCP_ERR_UNKNOWN_SERVER);
    mcp_pool *p = NULL;
    CHECK_CODE(mcp_pool_builder_build(b, &p), MCP_OK);
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(p, "ok", "echo", "{\"text\": \"filed\"}", NULL, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "filed"), "the file's server answers: %s", out);
    free_out(out);
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(p, "broken", "echo", NULL, NULL, &out), MCP_ERR_CONFIG);
    CHECK(strstr(mcp_last_error(), "MCP_POOL_FFI_UNSET_VAR") != NULL,
          "the skipped server's reason: %s", mcp_last_error());
    CHECK(out == &sentinel, "nothing written on failure");
    mcp_pool_free(p);
    unlink(path);
    CHECK(mcp_pool_builder_from_file(path) == NULL, "a missing file");
    CHECK(mcp_last_error_code() == MCP_ERR_CONFIG, "a missing file's code");
    CHECK(strstr(mcp_last_error(), path) != NULL, "names the file: %s", mcp_last_error());
    CHECK(mcp_pool_builder_from_file(NULL) == NULL, "NULL path");
    CHECK(mcp_last_error_code() == MCP_ERR_INVALID_ARGUMENT, "NULL path code");
    printf("ok: a configuration file read by the library\n");
}

/* A per-caller server's callbacks are told whose request it is. */
static int caller_roots_cb(void *userdata, const char *server, const char *params_json,
                           mcp_reply *reply) {
    (void)server;
    (void)params_json;
    const char *who = mcp_reply_caller(reply);
    snprintf((char *)userdata, 64, "%s", who ? who : "(none)");
    return mcp_reply_json(reply, "{\"roots\": []}");
}

static void test_caller_key(const char *fake_json) {
    char config[1024];
    snprintf(config, sizeof config,
             "{\"pool\": {\"closeGraceSecs\": 0.5}, \"mcpServers\": {\"mine\": {\"command\": %s,"
             " \"pool\": {\"sharing\": \"per-caller\", \"generation\": \"handshake\"}}}}",
             fake_json);
    mcp_pool_builder *b = mcp_pool_builder_new(config);
    CHECK(b != NULL, "builder: %s", mcp_last_error());
    if (b == NULL) return;
    char who[64] = "";
    mcp_handler h = {0};
    h.userdata = who;
    h.roots = caller_roots_cb;
    CHECK_CODE(mcp_pool_builder_set_handler(b, "mine", &h), MCP_OK);
    mcp_pool *p = NULL;
    CHECK_CODE(mcp_pool_builder_build(b, &p), MCP_OK);
    mcp_call_options *opts = mcp_call_options_new();
    CHECK_CODE(mcp_call_options_set_caller(opts, "carol"), MCP_OK);
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(p, "mine", "ask_roots", NULL, opts, &out), MCP_OK);
    free_out(out);
    CHECK(strcmp(who, "carol") == 0, "the callback saw caller %s", who);
    CHECK(mcp_reply_caller(NULL) == NULL, "caller of NULL");
    mcp_call_options_free(opts);
    mcp_pool_free(p);
    printf("ok: a per-caller server's callbacks know the caller\n");
}

static void test_warnings(void) {
    mcp_pool *p = mcp_pool_new("{\"mcpServers\": {\"x\": {\"command\": \"true\", \"minIdle\": 1}}}");
    CHECK(p != NULL, "mcp_pool_new with an unknown key: %s", mcp_last_error());
    if (p == NULL) return;
    char *warnings = mcp_pool_warnings_json(p);
    CHECK(warnings != NULL && strstr(warnings, "minIdle") != NULL, "warnings name the key: %s",
          warnings ? warnings : "(null)");
    mcp_string_free(warnings);
    CHECK(mcp_pool_warnings_json(NULL) == NULL, "warnings of NULL");
    mcp_pool_free(p);
    printf("ok: configuration warnings\n");
}

/* A pool closed from an atexit handler, after this thread's locals may be gone: the library
 * must not panic across the boundary (that would abort the process with SIGABRT). */
static mcp_pool *exit_pool;

static void close_at_exit(void) {
    mcp_status rc = mcp_pool_close(exit_pool);
    if (rc != MCP_OK) {
        fprintf(stderr, "FAIL: mcp_pool_close at exit: %d\n", (int)rc);
        _exit(1);
    }
    mcp_pool_free(exit_pool);
    printf("ok: closed from atexit\n");
}

static void test_close_at_exit(const char *config) {
    exit_pool = mcp_pool_new(config);
    CHECK(exit_pool != NULL, "mcp_pool_new for atexit: %s", mcp_last_error());
    if (exit_pool == NULL) return;
    char *result = NULL;
    mcp_status rc = mcp_pool_call_tool(exit_pool, "fake", "echo", "{\"text\": \"bye\"}", NULL,
                                       &result);
    CHECK(rc == MCP_OK, "call before exit: %d", (int)rc);
    mcp_string_free(result);
    atexit(close_at_exit);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s PATH_TO_mcp-fake-server [HTTP_URL|-] [--threads]\n", argv[0]);
        return 2;
    }
    const char *http_url = argc > 2 && strcmp(argv[2], "-") != 0 ? argv[2] : NULL;
    int threads_only = argc > 3 && strcmp(argv[3], "--threads") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress survives a crash */
    /* The host's SIGPIPE as a C program has it: default action, not blocked. */
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_UNBLOCK, &pipe_set, NULL);

    char *fake = json_string(argv[1]);
    /* A server that reads `initialize`, closes its stdin, answers, and stays alive: the
     * client's next write (`notifications/initialized`) meets a pipe with no reader. */
    char *deaf = json_string(
        "read -r line; exec 0<&-; "
        "echo '{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"protocolVersion\":\"2025-11-25\","
        "\"capabilities\":{\"tools\":{}},\"serverInfo\":{\"name\":\"deaf\",\"version\":\"1\"}}}'; "
        "exec sleep 5");
    char config[4096];
    snprintf(config, sizeof config,
             "{\"pool\": {\"closeGraceSecs\": 0.5},"
             " \"mcpServers\": {"
             "  \"fake\": {\"command\": %s, \"pool\": {\"maxSessions\": 2}},"
             "  \"solo\": {\"command\": %s, \"pool\": {\"maxSessions\": 1}},"
             "  \"broken\": {\"command\": \"/nonexistent/mcp-server\"},"
             "  \"deaf\": {\"command\": \"/bin/sh\", \"args\": [\"-c\", %s],"
             "            \"pool\": {\"generation\": \"handshake\", \"retry\": \"never\"}}"
             "}}",
             fake, fake, deaf);
    free(fake);
    free(deaf);

    if (!threads_only) {
        test_version_and_names();
        test_bad_configs();
    }

    pool = mcp_pool_new(config);
    if (pool == NULL) {
        fprintf(stderr, "FAIL: mcp_pool_new: %s\n", mcp_last_error());
        return 1;
    }
    CHECK(mcp_last_error() == NULL, "no error after mcp_pool_new");

    if (threads_only) {
        test_threads();
        test_cancel();
        test_handlers(argv[1], http_url);
        mcp_pool_free(pool);
    } else {
        test_list_and_call();
        test_call_kinds();
        test_details();
        test_options();
        test_progress();
        test_cancel();
        test_batch();
        test_stats();
        test_error_paths();
        test_handlers(argv[1], http_url);
        test_crash_and_sigpipe();
        test_threads();
        test_close();
        mcp_pool_free(pool);

        /* Every child is reaped by the time closing returns, even those of failed starts. */
        int children = count_children(1);
        CHECK(children == 0, "%d child processes left after mcp_pool_free", children);
        printf("ok: no child process left after mcp_pool_free\n");

        test_warnings();
        char *fake_json = json_string(argv[1]);
        test_from_file(fake_json);
        test_caller_key(fake_json);
        free(fake_json);
        test_close_at_exit(config);
    }

    int failed = atomic_load(&failures);
    if (failed > 0) {
        fprintf(stderr, "%d check(s) failed\n", failed);
        return 1;
    }
    printf("all C ABI checks passed%s\n", threads_only ? " (threaded part)" : "");
    return 0;
}
