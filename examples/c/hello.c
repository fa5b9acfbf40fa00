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
    /* The library reads the file: relative paths in it are the file's directory's, and
     * errors name the file. (mcp_pool_new takes the configuration as JSON text.) */
    mcp_pool_builder *builder = mcp_pool_builder_from_file(argv[1]);
    mcp_pool *pool = NULL;
    if (builder == NULL || mcp_pool_builder_build(builder, &pool) != MCP_OK)
        return fail("configuration", mcp_last_error_code());
    int status = run(pool, argc, argv);
    mcp_pool_free(pool); /* closes the server processes */
    return status;
}
