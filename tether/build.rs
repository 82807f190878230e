//! Link the `tether` executable as non-PIE.
//!
//! A PIE executable's pointers in `.data.rel.ro` and the GOT are fixed up by the dynamic
//! loader at every start, which dirties those pages (~500 KiB for this binary) in every
//! process: every `tether shim` (one per running container) and every CLI call paid for
//! them. Linked with `-no-pie` the loader has (almost) nothing to relocate, so the pages
//! stay clean and are shared between all tether processes, and the CLI starts faster.
//! The shared libraries (libc) are still loaded at random addresses.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
