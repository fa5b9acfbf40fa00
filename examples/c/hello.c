/*
 * hello: list the tools of an MCP server, or call one, through mcp-pool's C API.
 *
 *     hello CONFIG.json SERVER              # list the server's tools
 *     hello CONFIG.json SERVER TOOL [ARGS]  # call TOOL with the JSON object ARGS
 *
 * CONFIG.json is an `mcpServers` file as Claude Desktop or Cursor write it, e.g.
 *     {"mcpServers": {"files": {"command": "npx",
 *       "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]}}}
 *
 * Build and run: see README.md beside this file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "mcp_pool.h"

/* The whole file as a NUL-terminated string, or NULL. Free with free(). */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (cap - len < 4096) {
            cap = cap ? 2 * cap : 8192;
            char *grown = realloc(text, cap);
            if (grown == NULL) break;
            text = grown;
        }
        n = fread(text + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (text) text[len] = '\0';
    return text;
}

static int fail(const char *what, mcp_status code) {
    const char *why = mcp_last_error();
    fprintf(stderr, "hello: %s: %s (%s)\n", what, why ? why : "?", mcp_error_code_name(code));
    return 1;
}

static int run(const mcp_pool *pool, int argc, char **argv) {
    const char *server = argv[2];
    char *out = NULL;
    if (argc == 3) {
        mcp_status rc = mcp_pool_list_tools(pool, server, NULL /* default options */, &out);
        if (rc != MCP_OK) return fail("list tools", rc);
        printf("%s\n", out); /* a JSON array of tools */
        mcp_string_free(out);
        return 0;
    }
    const char *tool = argv[3];
    const char *arguments = argc > 4 ? argv[4] : NULL;
    mcp_status rc = mcp_pool_call_tool(pool, server, tool, arguments, NULL /* default options */,
                                       &out);
    if (rc != MCP_OK && rc != MCP_TOOL_ERROR) return fail(tool, rc);
    printf("%s\n", out); /* {"content": [...], "isError": ...} */
    mcp_string_free(out);
    return rc == MCP_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s CONFIG.json SERVER [TOOL [ARGUMENTS_JSON]]\n", argv[0]);
        return 2;
    }
    if (mcp_abi_version() != MCP_POOL_ABI_VERSION) {
        fprintf(stderr, "hello: built for ABI %d, the library has %u\n", MCP_POOL_ABI_VERSION,
                mcp_abi_version());
        return 1;
    }
    char *config = read_file(argv[1]);
    if (config == NULL) {
        perror(argv[1]);
        return 1;
    }
    mcp_pool *pool = mcp_pool_new(config);
    free(config);
    if (pool == NULL) return fail("configuration", mcp_last_error_code());
    int status = run(pool, argc, argv);
    mcp_pool_free(pool); /* closes the server processes */
    return status;
}
