//! Build script: how the server binary is linked.
//!
//! Its debug sections (line tables, for file:line in backtraces) are compressed with zlib at
//! link time: the same information in a quarter of the bytes (the binary was 158 MiB with them
//! plain, README states the size now). Rust's backtraces read zlib-compressed sections (not
//! zstd ones, hence zlib). Only the binaries get the flag: test binaries link faster without.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    println!("cargo:rerun-if-changed=build.rs");
}
