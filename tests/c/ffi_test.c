/*
 * The C ABI of mcp-pool, exercised from C against the fake MCP server.
 *
 * Built and run by tests/ffi.rs (cc -Wall -Wextra -Werror -std=c11 -pthread, with
 * AddressSanitizer where the compiler has it):
 *
 *     ffi_test PATH_TO_mcp-fake-server
 *
 * Prints one line per check group and exits 0 when every check passed, 1 otherwise.
 * SIGPIPE keeps its default action (kill the process) on purpose: the library must not
 * let a write to a dead server kill its host.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
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
        int rc_ = (rc);                                                               \
        CHECK(rc_ == (want), "got %s, want %s", mcp_error_code_name(rc_),             \
              mcp_error_code_name(want));                                             \
        if ((want) == MCP_OK) {                                                       \
            CHECK(mcp_last_error() == NULL, "no last error after success");           \
        } else {                                                                      \
            CHECK(mcp_last_error() != NULL, "a message after a failure");             \
            CHECK(mcp_last_error_code() == rc_, "last error code %d", rc_);           \
        }                                                                             \
    } while (0)

static double now_secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

static mcp_pool *pool;
static char sentinel; /* outputs start as &sentinel: a failure must leave them so */

static void test_version_and_names(void) {
    CHECK(mcp_version() != NULL && strlen(mcp_version()) > 0, "version");
    CHECK(strcmp(mcp_error_code_name(MCP_OK), "MCP_OK") == 0, "name of MCP_OK");
    CHECK(strcmp(mcp_error_code_name(MCP_ERR_TIMEOUT), "MCP_ERR_TIMEOUT") == 0, "name");
    CHECK(strcmp(mcp_error_code_name(MCP_ERR_PANIC), "MCP_ERR_PANIC") == 0, "name");
    CHECK(strcmp(mcp_error_code_name(-1), "MCP_UNKNOWN_CODE") == 0, "unknown code");
    CHECK(strcmp(mcp_error_code_name(1000), "MCP_UNKNOWN_CODE") == 0, "unknown code");
    mcp_string_free(NULL);
    mcp_pool_free(NULL);
    printf("ok: version %s, code names, free(NULL)\n", mcp_version());
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
    printf("ok: bad configurations\n");
}

static void test_list_and_call(void) {
    char *out = &sentinel;
    CHECK_CODE(mcp_pool_list_tools(pool, "fake", &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"name\":\"echo\"") != NULL, "tools: %s", out);
    CHECK(strstr(out, "\"inputSchema\"") != NULL, "schemas");
    mcp_string_free(out);

    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"h\xc3\xa9llo\"}", 0, &out),
               MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"text\":\"h\xc3\xa9llo\"") != NULL, "echo: %s", out);
    CHECK(strstr(out, "\"isError\":false") != NULL, "isError false: %s", out);
    mcp_string_free(out);

    /* NULL arguments: none. */
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "structured", NULL, 5000, &out), MCP_OK);
    CHECK(out != &sentinel && strstr(out, "\"structuredContent\":{") != NULL, "structured");
    mcp_string_free(out);

    /* The tool ran and failed: a distinct code, the result still written. */
    out = &sentinel;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "fail", "{\"message\": \"boom\"}", 0, &out),
               MCP_TOOL_ERROR);
    CHECK(out != &sentinel && strstr(out, "\"isError\":true") != NULL, "isError: %s", out);
    CHECK(out != &sentinel && strstr(out, "boom") != NULL, "the tool's text");
    CHECK(strstr(mcp_last_error(), "boom") != NULL, "message: %s", mcp_last_error());
    if (out != &sentinel) mcp_string_free(out);

    char *servers = mcp_pool_servers_json(pool);
    CHECK(servers && strcmp(servers, "[\"broken\",\"deaf\",\"fake\",\"solo\"]") == 0,
          "servers: %s", servers);
    mcp_string_free(servers);
    printf("ok: list tools, call, NULL arguments, isError, servers\n");
}

static void test_batch(void) {
    char *out = &sentinel;
    const char *calls =
        "[{\"tool\": \"echo\", \"arguments\": {\"text\": \"first\"}},"
        " {\"tool\": \"fail\", \"arguments\": {\"message\": \"second\"}},"
        " {\"tool\": \"rpc_error\"},"
        " {\"tool\": \"echo\", \"arguments\": {\"text\": \"fourth\"}}]";
    CHECK_CODE(mcp_pool_batch(pool, "fake", calls, &out), MCP_OK);
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
        mcp_string_free(out);
    }

    out = &sentinel;
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[]", &out), MCP_OK);
    CHECK(out != &sentinel && strcmp(out, "[]") == 0, "empty batch: %s", out);
    if (out != &sentinel) mcp_string_free(out);

    out = &sentinel;
    CHECK_CODE(mcp_pool_batch(pool, "fake", "{\"tool\": \"echo\"}", &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"arguments\": {}}]", &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"tool\": ", &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "nope", "[]", &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_batch(pool, "fake", NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[]", NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK(out == &sentinel, "nothing written on failure");
    printf("ok: batch (results in order, per-call errors, bad input)\n");
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
    CHECK_CODE(mcp_pool_call_tool(NULL, "fake", "echo", "{}", 0, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "pool") != NULL, "names the argument");
    CHECK_CODE(mcp_pool_call_tool(pool, NULL, "echo", "{}", 0, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", NULL, "{}", 0, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{}", 0, NULL),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(NULL, "fake", &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(pool, NULL, &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(pool, "fake", NULL), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_batch(NULL, "fake", "[]", &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_close(NULL), MCP_ERR_INVALID_ARGUMENT);

    /* Invalid UTF-8 and invalid JSON. */
    CHECK_CODE(mcp_pool_call_tool(pool, "fa\xffke", "echo", "{}", 0, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "UTF-8") != NULL, "says UTF-8: %s", mcp_last_error());
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "ech\xc3", "{}", 0, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"\xfe\"}", 0, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_list_tools(pool, "\xc0\xaf", &out), MCP_ERR_INVALID_ARGUMENT);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": ", 0, &out),
               MCP_ERR_INVALID_ARGUMENT);
    CHECK(strstr(mcp_last_error(), "JSON") != NULL, "says JSON: %s", mcp_last_error());
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "[1, 2]", 0, &out),
               MCP_ERR_INVALID_ARGUMENT);

    /* Unknown server, a JSON-RPC error, a server that cannot start. */
    CHECK_CODE(mcp_pool_call_tool(pool, "nope", "echo", "{}", 0, &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_list_tools(pool, "nope", &out), MCP_ERR_UNKNOWN_SERVER);
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "rpc_error", "{\"message\": \"no\"}", 0, &out),
               MCP_ERR_SERVER);
    CHECK_CODE(mcp_pool_call_tool(pool, "broken", "echo", "{}", 0, &out), MCP_ERR_SPAWN);
    CHECK(strstr(mcp_last_error(), "/nonexistent/mcp-server") != NULL, "names the command: %s",
          mcp_last_error());

    /* A deadline: the call ends on time, and the session stays usable. */
    double start = now_secs();
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "hang", NULL, 300, &out), MCP_ERR_TIMEOUT);
    double took = now_secs() - start;
    CHECK(took >= 0.25 && took < 5.0, "hang with timeout_ms 300 took %.3f s", took);
    CHECK(out == &sentinel, "nothing written on failure");

    out = NULL;
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{\"text\": \"after\"}", 0, &out),
               MCP_OK);
    mcp_string_free(out);
    printf("ok: error paths (NULL, UTF-8, JSON, unknown server, server error, spawn, timeout)\n");
}

/* --- a server that dies: the host must survive ------------------------------------ */

static atomic_int stop_load;

static void *load(void *arg) {
    (void)arg;
    long calls = 0;
    while (!atomic_load(&stop_load)) {
        char *out = NULL;
        int rc = mcp_pool_call_tool(pool, "solo", "echo", "{\"text\": \"load\"}", 5000, &out);
        CHECK(rc == MCP_OK || rc == MCP_ERR_OUTCOME_UNKNOWN || rc == MCP_ERR_SESSION_CLOSED,
              "load call: %s", mcp_error_code_name(rc));
        mcp_string_free(out);
        calls++;
    }
    return (void *)calls;
}

static void test_crash_and_sigpipe(void) {
    /* Calls keep arriving on the same session while its server exits mid-call, so some are
     * written to a dead pipe. */
    pthread_t loaders[3];
    atomic_store(&stop_load, 0);
    for (int i = 0; i < 3; i++) pthread_create(&loaders[i], NULL, load, NULL);
    char *out = &sentinel;
    int rc = mcp_pool_call_tool(pool, "solo", "crash", "{\"code\": 7, \"after_ms\": 100}", 0,
                                &out);
    CHECK_CODE(rc, MCP_ERR_OUTCOME_UNKNOWN);
    CHECK(strstr(mcp_last_error(), "code 7") != NULL, "the exit code: %s", mcp_last_error());
    CHECK(out == &sentinel, "nothing written on failure");
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL);
    atomic_store(&stop_load, 1);
    long load_calls = 0;
    for (int i = 0; i < 3; i++) {
        void *calls;
        pthread_join(loaders[i], &calls);
        load_calls += (long)calls;
    }

    /* The next call gets a fresh session. */
    out = NULL;
    CHECK_CODE(mcp_pool_call_tool(pool, "solo", "count", NULL, 0, &out), MCP_OK);
    CHECK(out && strstr(out, "\"text\":\"1\"") != NULL, "a fresh process counts from 1: %s",
          out);
    mcp_string_free(out);

    /* A server that stops reading but stays alive: the write of `notifications/initialized`
     * always meets a pipe with no reader (EPIPE; SIGPIPE for the writing thread). */
    out = &sentinel;
    rc = mcp_pool_call_tool(pool, "deaf", "echo", "{}", 0, &out);
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
        int rc = mcp_pool_call_tool(pool, "fake", "echo", args, 0, &out);
        CHECK(rc == MCP_OK, "thread %d call %d: %s", id, i, mcp_error_code_name(rc));
        CHECK(out && strstr(out, want) != NULL, "thread %d call %d got %s", id, i, out);
        mcp_string_free(out);
        if (i % 10 == 0) {
            /* The last error is per thread: another thread's failure must not show here. */
            CHECK(mcp_last_error() == NULL, "thread %d sees no error", id);
        } else if (i % 10 == 5) {
            rc = mcp_pool_call_tool(pool, "nope", "echo", NULL, 0, &out);
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
    CHECK_CODE(mcp_pool_call_tool(pool, "fake", "echo", "{}", 0, &out), MCP_ERR_POOL_CLOSED);
    CHECK_CODE(mcp_pool_list_tools(pool, "fake", &out), MCP_ERR_POOL_CLOSED);
    CHECK_CODE(mcp_pool_batch(pool, "fake", "[{\"tool\": \"echo\"}]", &out),
               MCP_ERR_POOL_CLOSED);
    CHECK(out == &sentinel, "nothing written on failure");
    char *stats = mcp_pool_stats_json(pool);
    CHECK(stats != NULL, "stats after close");
    mcp_string_free(stats);
    CHECK_CODE(mcp_pool_close(pool), MCP_OK);
    printf("ok: close (later calls get MCP_ERR_POOL_CLOSED, close is idempotent)\n");
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

/* Configuration warnings reach C: an unknown key is reported, not silently dropped. */
static void test_warnings(const char *config) {
    (void)config;
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
    int rc = mcp_pool_close(exit_pool);
    if (rc != MCP_OK) {
        fprintf(stderr, "FAIL: mcp_pool_close at exit: %d\n", rc);
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
    int rc = mcp_pool_call_tool(exit_pool, "fake", "echo", "{\"text\": \"bye\"}", 0, &result);
    CHECK(rc == MCP_OK, "call before exit: %d", rc);
    mcp_string_free(result);
    atexit(close_at_exit);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH_TO_mcp-fake-server\n", argv[0]);
        return 2;
    }
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

    test_version_and_names();
    test_bad_configs();

    pool = mcp_pool_new(config);
    if (pool == NULL) {
        fprintf(stderr, "FAIL: mcp_pool_new: %s\n", mcp_last_error());
        return 1;
    }
    CHECK(mcp_last_error() == NULL, "no error after mcp_pool_new");

    test_list_and_call();
    test_batch();
    test_stats();
    test_error_paths();
    test_crash_and_sigpipe();
    test_threads();
    test_close();
    mcp_pool_free(pool);

    /* Every child is reaped by the time closing returns, even those of failed starts. */
    int children = count_children(1);
    CHECK(children == 0, "%d child processes left after mcp_pool_free", children);
    printf("ok: no child process left after mcp_pool_free\n");

    test_warnings(config);
    test_close_at_exit(config);

    int failed = atomic_load(&failures);
    if (failed > 0) {
        fprintf(stderr, "%d check(s) failed\n", failed);
        return 1;
    }
    printf("all C ABI checks passed\n");
    return 0;
}
