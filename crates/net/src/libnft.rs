//! nftables batches through the `nft` executable (nft(8)), run in the calling thread's
//! network namespace.
//!
//! Only the table's set-up, restore and tear-down go through here: element changes (a
//! network's subnets, published ports, isolated ports) go over nfnetlink from the daemon
//! itself (`crate::nfelem`). tether is a static executable (see .cargo/config.toml), so
//! loading libnftables in process (`dlopen`) is not an option: it would bring a second C
//! library into the process, with its own allocator and thread state.

use std::sync::Mutex;

/// A rejected batch: `nft`'s standard error, or why `nft` could not be run.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LibnftError(pub String);

/// How many of the most recent `nft` children [`our_nft_child`] remembers.
const CHILDREN_KEPT: usize = 64;

/// Pids of the `nft` children [`run`] started, the most recent last.
static CHILDREN: Mutex<std::collections::VecDeque<u32>> =
    Mutex::new(std::collections::VecDeque::new());

/// Whether `pid` is an `nft` process this process ran through [`run`]: one of the last
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

/// The longest text batch [`run`] passes as an argument (Linux takes at most 128 KiB
/// per argument, `MAX_ARG_STRLEN`).
const NFT_ARG_MAX: usize = 64 * 1024;

/// Runs one batch (libnftables-json(5), or nft's text syntax) through the `nft`
/// executable; the child inherits the calling thread's network namespace. A JSON batch
/// goes to `nft -j [-c] -f -` on its standard input. Text goes as the argument of
/// `nft -j [-c] -- TEXT`, so that a listing is JSON as libnftables gives it (`nft -j -f -`
/// takes JSON input only: given text it does nothing and exits 0); a text batch longer
/// than 64 KiB goes to `nft [-c] -f -` and its output is nft's text.
///
/// Errors: `nft` cannot be started or waited for, or it rejected the batch (its standard
/// error, trimmed).
pub fn run(batch: &str, dry_run: bool) -> Result<String, LibnftError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON and text batches run; a bad batch yields nft's error text.
    #[test]
    fn runs_and_reports_errors() {
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
        // A text batch too long for an argument goes to nft's standard input.
        let long = "list tables\n".repeat(NFT_ARG_MAX / 12 + 1);
        assert!(run(&long, true).is_ok());
        let long_bad = long + "list set inet no-such-table-here s\n";
        assert!(run(&long_bad, true).is_err());
    }

    /// The `nft` children are recognised as this process's own, anyone else is not.
    #[test]
    fn nft_children_are_ours() {
        run("list tables", true).expect("nft runs");
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
