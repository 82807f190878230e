//! In-process nftables batches through libnftables (libnftables(3)), loaded at run time.
//!
//! Spawning `nft -j -f -` costs ~2.5 ms per batch on this machine kind (process start,
//! dynamic loading, cache fetch); the same JSON batch handed to libnftables in the daemon
//! process costs a fraction of that. The library is opened with `dlopen` (the `libloading`
//! crate) as `libnftables.so.1`, the soname Debian's `libnftables1` package installs as a
//! dependency of `nftables`, so building tether needs no C headers and a host without the
//! library still works: [`Lib::get`] returns `None` and the caller spawns `nft` instead.
//!
//! Used entry points (libnftables(3), nftables 1.0.x):
//! `nft_ctx_new(NFT_CTX_DEFAULT)`, `nft_ctx_output_set_flags(ctx, NFT_CTX_OUTPUT_JSON)` (JSON
//! in and out, as `nft -j`), `nft_ctx_buffer_output`/`nft_ctx_buffer_error` and their
//! getters, `nft_ctx_set_dry_run` (as `nft -c`), `nft_run_cmd_from_buffer`.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

/// `NFT_CTX_DEFAULT` of libnftables.h.
const NFT_CTX_DEFAULT: u32 = 0;
/// `NFT_CTX_OUTPUT_JSON` of libnftables.h (1 << 4).
const NFT_CTX_OUTPUT_JSON: c_uint = 1 << 4;

type CtxNew = unsafe extern "C" fn(u32) -> *mut c_void;
type CtxInt = unsafe extern "C" fn(*mut c_void) -> c_int;
type CtxStr = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type SetFlags = unsafe extern "C" fn(*mut c_void, c_uint);
type SetDry = unsafe extern "C" fn(*mut c_void, bool);
type RunBuf = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;

/// The resolved functions. The `Library` is kept so they stay valid.
struct Api {
    _lib: libloading::Library,
    set_dry_run: SetDry,
    run: RunBuf,
    out: CtxStr,
    err: CtxStr,
}

/// One libnftables context, used by one batch at a time.
struct Ctx(*mut c_void);

// SAFETY: the context is only ever used under `Lib::ctx`'s mutex, one call at a time;
// libnftables keeps no thread-local state tied to the creating thread.
unsafe impl Send for Ctx {}

/// The loaded library and its context.
pub struct Lib {
    api: Api,
    ctx: Mutex<Ctx>,
}

/// A rejected batch: libnftables' error buffer (the same text `nft` prints).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LibnftError(pub String);

impl Lib {
    /// The process-wide instance, loaded on first use; `None` when libnftables.so.1 cannot
    /// be opened or lacks a symbol (then use the `nft` binary).
    ///
    /// The netlink socket libnftables opens belongs to the network namespace of the thread
    /// that first calls this: call it from a thread in the daemon's own namespace.
    pub fn get() -> Option<&'static Lib> {
        static LIB: OnceLock<Option<Lib>> = OnceLock::new();
        LIB.get_or_init(|| match Lib::load() {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::info!(error = %e, "libnftables not usable; spawning nft per batch");
                None
            }
        })
        .as_ref()
    }

    /// A fresh context, bound to the calling thread's network namespace (tests).
    pub(crate) fn load() -> Result<Lib, libloading::Error> {
        // SAFETY: libnftables.so.1 is a plain C library without load-time side effects
        // beyond its own initialisers; the symbol types follow libnftables(3).
        unsafe {
            let lib = libloading::Library::new("libnftables.so.1")?;
            let new: CtxNew = *lib.get(b"nft_ctx_new\0")?;
            let set_flags: SetFlags = *lib.get(b"nft_ctx_output_set_flags\0")?;
            let buf_out: CtxInt = *lib.get(b"nft_ctx_buffer_output\0")?;
            let buf_err: CtxInt = *lib.get(b"nft_ctx_buffer_error\0")?;
            let api = Api {
                set_dry_run: *lib.get(b"nft_ctx_set_dry_run\0")?,
                run: *lib.get(b"nft_run_cmd_from_buffer\0")?,
                out: *lib.get(b"nft_ctx_get_output_buffer\0")?,
                err: *lib.get(b"nft_ctx_get_error_buffer\0")?,
                _lib: lib,
            };
            let ctx = new(NFT_CTX_DEFAULT);
            if ctx.is_null() {
                return Err(libloading::Error::DlOpenUnknown);
            }
            set_flags(ctx, NFT_CTX_OUTPUT_JSON);
            buf_out(ctx);
            buf_err(ctx);
            Ok(Lib {
                api,
                ctx: Mutex::new(Ctx(ctx)),
            })
        }
    }

    /// Runs one JSON batch (libnftables-json(5)) atomically; with `dry_run` only checks it
    /// against the kernel, as `nft -c`. Returns the output buffer (JSON, often empty).
    ///
    /// Errors: the batch has a NUL byte, or libnftables rejected it (its error text).
    pub fn run(&self, batch: &str, dry_run: bool) -> Result<String, LibnftError> {
        let cmd = CString::new(batch).map_err(|e| LibnftError(e.to_string()))?;
        let ctx = self.ctx.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: ctx.0 is a live context from nft_ctx_new, used under the mutex; the
        // buffers returned are owned by the context and copied before the lock is released.
        unsafe {
            (self.api.set_dry_run)(ctx.0, dry_run);
            let rc = (self.api.run)(ctx.0, cmd.as_ptr());
            let text = |p: *const c_char| {
                if p.is_null() {
                    String::new()
                } else {
                    CStr::from_ptr(p).to_string_lossy().into_owned()
                }
            };
            let out = text((self.api.out)(ctx.0));
            let err = text((self.api.err)(ctx.0));
            if rc != 0 {
                let err = err.trim();
                return Err(LibnftError(if err.is_empty() {
                    format!("libnftables returned {rc}")
                } else {
                    err.to_string()
                }));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's nftables package depends on libnftables1, so the library is present
    /// wherever tether's firewall runs; a bad batch yields nft's error text.
    #[test]
    fn loads_and_reports_errors() {
        let lib = Lib::get().expect("libnftables.so.1 loads");
        let ok = lib.run(r#"{"nftables":[{"list":{"tables":{}}}]}"#, true);
        assert!(ok.is_ok(), "{ok:?}");
        let bad = lib.run(r#"{"nftables":[{"add":{"chain":{"family":"inet","table":"no-such-table-here","name":"c"}}}]}"#, true);
        let e = bad.expect_err("a chain in a missing table is refused");
        assert!(
            e.0.contains("No such file") || e.0.contains("no-such-table-here"),
            "{e}"
        );
    }
}
