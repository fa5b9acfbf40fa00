//! Gives the shared library (the `cdylib`) its `SONAME`, `libmcp_pool.so.N`, where N is
//! the C ABI version `MCP_POOL_ABI_VERSION` of `src/ffi/mod.rs` (read from that file, so the
//! number is written once). Only the cdylib is linked with it: binaries and tests are not.

use std::fs;

fn main() {
    const SOURCE: &str = "src/ffi/mod.rs";
    const DECLARATION: &str = "pub const MCP_POOL_ABI_VERSION: u32 = ";
    println!("cargo:rerun-if-changed={SOURCE}");
    let text = fs::read_to_string(SOURCE).unwrap_or_else(|e| panic!("cannot read {SOURCE}: {e}"));
    let version: u32 = text
        .lines()
        .find_map(|line| {
            line.strip_prefix(DECLARATION)?
                .strip_suffix(';')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("{SOURCE} has no line `{DECLARATION}N;`"));
    // `-soname` is an ELF linker option; the library runs on Linux only.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmcp_pool.so.{version}");
    }
}
