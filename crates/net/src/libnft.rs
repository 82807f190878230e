//! In-process nftables batches through libnftables (libnftables(3)), loaded at run time.
//!
//! Spawning `nft -j -f -` costs ~2.5 ms per batch on this machine kind (process start,
//! dynamic loading, cache fetch); the same JSON batch handed to libnftables in the daemon
//! process costs a fraction of that. The library is opened with `dlopen` (the `libloading`
//! crate) as `libnftables.so.1`, the soname Debian's `libnftables1` package installs as a
//! dependency of `nftables`, so building tether needs no C headers and a host without the
//! library still works: [`Lib::get`] returns `None` and [`run`] spawns `nft` instead.
//!
//! A statically linked tether (`crt-static`, see .cargo/config.toml) never `dlopen`s the
//! library: it would bring a second C library into the process, with its own allocator and
//! thread state. Such an executable runs its batches through `nft`; they are the table's
//! set-up, restore and tear-down only, since element changes go over nfnetlink
//! (`crate::nfelem`).
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
        LIB.get_or_init(|| {
            if cfg!(target_feature = "crt-static") {
                tracing::debug!("static executable: nft runs the table's batches");
                return None;
            }
            match Lib::load() {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::info!(error = %e, "libnftables not usable; spawning nft per batch");
                    None
                }
            }
        })
        .as_ref()
    }

    /// A fresh context, bound to the calling thread's network namespace (tests).
    ///
    /// Errors: the library or a symbol is missing, the context cannot be made, or this is
    /// a static executable (`DlOpenUnknown`: see the module's doc).
    pub(crate) fn load() -> Result<Lib, libloading::Error> {
        if cfg!(target_feature = "crt-static") {
            return Err(libloading::Error::DlOpenUnknown);
        }
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

/// Runs one batch (libnftables-json(5), or nft's text syntax: libnftables falls back to
/// it when the text is not JSON) in the calling thread's network namespace: through the
/// loaded library when [`Lib::get`] has one, else through the `nft` executable.
/// Returns the output (JSON, often empty).
///
/// Errors: the rejected batch's error text (the same as `nft` prints), or why `nft` could
/// not be run.
pub fn run(batch: &str, dry_run: bool) -> Result<String, LibnftError> {
    match Lib::get() {
        Some(lib) => lib.run(batch, dry_run),
        None => run_nft(batch, dry_run),
    }
}

/// How many of the most recent `nft` children [`our_nft_child`] remembers.
const CHILDREN_KEPT: usize = 64;

/// Pids of the `nft` children [`run_nft`] started, the most recent last.
static CHILDREN: Mutex<std::collections::VecDeque<u32>> =
    Mutex::new(std::collections::VecDeque::new());

/// Whether `pid` is an `nft` process this process ran through [`run_nft`]: one of the last
/// 64 it started, or a live (or not yet reaped) child of this process. The nftables
/// damage watch (`crate::nftwatch`) uses it to tell the daemon's own commits made through
/// `nft` (whose `NFTA_GEN_PROC_PID` is the child's) from anyone else's. Checking the
/// parent covers a commit seen before the child's pid was recorded; the record covers one
/// seen after the child was reaped.
pub fn our_nft_child(pid: u32) -> bool {
    if pid == 0 {
        return false;
    }
    let recorded = CHILDREN
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&pid);
    recorded || parent_of(pid) == Some(std::process::id())
}

/// The parent pid of `pid` from /proc/PID/stat (proc(5): the field after the state, which
/// follows the parenthesised command name); `None` when the process is gone.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The longest text batch [`run_nft`] passes as an argument (Linux takes at most 128 KiB
/// per argument, `MAX_ARG_STRLEN`).
const NFT_ARG_MAX: usize = 64 * 1024;

/// Runs one batch through the `nft` executable; the child inherits the calling thread's
/// network namespace. A JSON batch goes to `nft -j [-c] -f -` on its standard input. Text
/// goes as the argument of `nft -j [-c] -- TEXT`, so that a listing is JSON as libnftables
/// gives it (`nft -j -f -` takes JSON input only: given text it does nothing and exits 0);
/// a text batch longer than 64 KiB goes to `nft [-c] -f -` and its output is nft's text.
///
/// Errors: `nft` cannot be started or waited for, or it rejected the batch (its standard
/// error, trimmed).
pub fn run_nft(batch: &str, dry_run: bool) -> Result<String, LibnftError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let json = batch.trim_start().starts_with('{');
    let as_arg = !json && batch.len() <= NFT_ARG_MAX;
    let mut cmd = Command::new("nft");
    if json || as_arg {
        cmd.arg("-j");
    }
    if dry_run {
        cmd.arg("-c");
    }
    if as_arg {
        cmd.args(["--", batch]).stdin(Stdio::null());
    } else {
        cmd.args(["-f", "-"]).stdin(Stdio::piped());
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LibnftError(format!("cannot run nft: {e}")))?;
    {
        let mut kids = CHILDREN.lock().unwrap_or_else(|p| p.into_inner());
        if kids.len() == CHILDREN_KEPT {
            kids.pop_front();
        }
        kids.push_back(child.id());
    }
    // A failed write (nft exited early) is reported after nft is reaped, with its error.
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(batch.as_bytes()),
        None => Ok(()),
    };
    let out = child
        .wait_with_output()
        .map_err(|e| LibnftError(format!("waiting for nft: {e}")))?;
    if out.status.success() {
        if let Err(e) = written {
            return Err(LibnftError(format!("writing to nft: {e}")));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(LibnftError(if err.is_empty() {
            format!("nft exited with {}", out.status)
        } else {
            err
        }))
    }
}

/// A batch runner bound to the calling thread's network namespace (tests): a fresh
/// libnftables context, or `nft` in a static executable. Errors: libnftables does not load
/// in a dynamic executable.
#[cfg(test)]
pub(crate) type Runner = Box<dyn Fn(&str, bool) -> Result<String, LibnftError> + Send>;

/// See [`Runner`].
#[cfg(test)]
pub(crate) fn runner_here() -> Result<Runner, String> {
    match Lib::load() {
        Ok(lib) => Ok(Box::new(move |b, dry| lib.run(b, dry))),
        Err(_) if cfg!(target_feature = "crt-static") => Ok(Box::new(run_nft)),
        Err(e) => Err(format!("libnftables.so.1 does not load: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debian's nftables package depends on libnftables1, so the library is present
    /// wherever tether's firewall runs; a bad batch yields nft's error text.
    /// (A static executable never loads it: then only `nft` is checked.)
    #[test]
    fn loads_and_reports_errors() {
        let runners: [Runner; 2] = [runner_here().expect("a runner"), Box::new(run_nft)];
        for run in runners {
            let ok = run(r#"{"nftables":[{"list":{"tables":{}}}]}"#, true);
            assert!(ok.is_ok(), "{ok:?}");
            let bad = run(
                r#"{"nftables":[{"add":{"chain":{"family":"inet","table":"no-such-table-here","name":"c"}}}]}"#,
                true,
            );
            let e = bad.expect_err("a chain in a missing table is refused");
            assert!(
                e.0.contains("No such file") || e.0.contains("no-such-table-here"),
                "{e}"
            );
            let text = run("list tables", true);
            assert!(text.is_ok(), "nft's text syntax is taken too: {text:?}");
            let bad = run("list set inet no-such-table-here s", false);
            let e = bad.expect_err("text naming a missing table is refused");
            assert!(e.0.contains("No such file"), "{e}");
        }
        // A text batch too long for an argument goes to nft's standard input.
        let long = "list tables\n".repeat(NFT_ARG_MAX / 12 + 1);
        assert!(run_nft(&long, true).is_ok());
        let long_bad = long + "list set inet no-such-table-here s\n";
        assert!(run_nft(&long_bad, true).is_err());
    }

    /// The `nft` children are recognised as this process's own, anyone else is not.
    #[test]
    fn nft_children_are_ours() {
        run_nft("list tables", true).expect("nft runs");
        let last = *CHILDREN
            .lock()
            .expect("not poisoned")
            .back()
            .expect("a child recorded");
        assert!(our_nft_child(last));
        let mut sleeper = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        assert!(our_nft_child(sleeper.id()), "a live child, not recorded");
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert_eq!(parent_of(1), Some(0));
        assert!(!our_nft_child(1));
        assert!(!our_nft_child(0));
    }
}
