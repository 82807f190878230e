//! Starting a program (runc) from a process that holds thousands of descriptors, at a
//! cost that does not grow with them.
//!
//! fork(2) and posix_spawn(3) (what `std::process::Command` uses) copy the parent's
//! descriptor table into the child, a reference per open file, and execve(2) then closes
//! every close-on-exec one (`filp_close`: flush and release each). With 1000 containers the
//! daemon holds about 5,000 descriptors and the monitor about 6,000, and each `runc create`
//! or `runc start` paid for all of them (measured with perf: `filp_flush`,
//! `dnotify_flush`; ~3.5 ms per container start at 1000 running).
//!
//! [`Command::spawn`] shares the parent's table instead (`clone(2)` with `CLONE_VM |
//! CLONE_VFORK | CLONE_FILES`, as posix_spawn plus the table), and the child's first act is
//! `close_range(LOW, ~0U, CLOSE_RANGE_UNSHARE)` (close_range(2), Linux 5.9): the kernel
//! gives the child a table of its own holding only the descriptors below `LOW`. The
//! child's stdio are put there first, in three slots reserved at first use (`F_DUPFD` of
//! /dev/null, the lowest free numbers then), under a lock, close-on-exec, and set back to
//! /dev/null as soon as the child has exec'd. Before exec the child resets every caught
//! signal and SIGPIPE to their defaults and unblocks all signals, as `std` does.

use std::ffi::{CString, OsStr, OsString};
use std::io::{Error, ErrorKind, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

/// `CLOSE_RANGE_UNSHARE` of linux/close_range.h.
const CLOSE_RANGE_UNSHARE: u32 = 1 << 1;
/// The child's stack until it execs (it only makes a few system calls).
const STACK: usize = 64 * 1024;

/// The reserved stdio slots and /dev/null.
struct Slots {
    null: OwnedFd,
    fds: [OwnedFd; 3],
    /// One above the highest slot: the child keeps the descriptors below it.
    low: u32,
}

static SLOTS: OnceLock<std::result::Result<Slots, i32>> = OnceLock::new();
/// Held while the slots hold a child's stdio.
static LOCK: Mutex<()> = Mutex::new(());

fn slots() -> Result<&'static Slots> {
    SLOTS
        .get_or_init(|| {
            let null = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
            let dup = || {
                // SAFETY: F_DUPFD_CLOEXEC of a descriptor we own; at least 3, so that a
                // process started with stdio closed does not hand its stdio numbers out.
                let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
                if fd < 0 {
                    Err(Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
                } else {
                    // SAFETY: a new descriptor that nothing else owns.
                    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
                }
            };
            let fds = [dup()?, dup()?, dup()?];
            let low = fds.iter().map(|f| f.as_raw_fd()).max().unwrap_or(2) as u32 + 1;
            Ok(Slots {
                null: OwnedFd::from(null),
                fds,
                low,
            })
        })
        .as_ref()
        .map_err(|e| Error::from_raw_os_error(*e))
}

/// Reserves the stdio slots now: call early, while the lowest free descriptor numbers
/// are small (the child keeps every descriptor below the slots).
pub fn reserve() -> Result<()> {
    slots().map(|_| ())
}

/// /dev/null, open for reading and writing, for a child's unused stdio.
pub fn null() -> Result<BorrowedFd<'static>> {
    slots().map(|s| s.null.as_fd())
}

/// A program and its arguments, as `std::process::Command` takes them; the environment
/// is the caller's at the time of [`Command::spawn`].
#[derive(Debug, Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
}

/// A started child: its pid and a pidfd (pidfd_open(2)) to wait for it.
#[derive(Debug)]
pub struct Child {
    /// The child's pid.
    pub pid: i32,
    /// A pidfd of the child, readable once it has exited.
    pub pidfd: OwnedFd,
}

fn cstring(s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("argument {:?} contains a NUL byte", s),
        )
    })
}

/// `program` itself when it names a path, else the first executable `program` in
/// `$PATH` (execvp(3)'s search). Errors: NotFound.
fn resolve(program: &Path) -> Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    for dir in std::env::split_paths(&path) {
        let cand = dir.join(program);
        if let Ok(c) = cstring(cand.as_os_str()) {
            // SAFETY: access(2) on a NUL-terminated path.
            if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 && cand.is_file() {
                return Ok(cand);
            }
        }
    }
    Err(Error::new(
        ErrorKind::NotFound,
        format!("{} not found in PATH", program.display()),
    ))
}

impl Command {
    /// `program`: a path, or a name looked up in `$PATH` when spawned; argv[0] is
    /// `program`.
    pub fn new(program: impl AsRef<Path>) -> Command {
        Command {
            program: program.as_ref().to_path_buf(),
            args: Vec::new(),
        }
    }

    /// Adds one argument.
    pub fn arg(&mut self, a: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Starts the program with `stdio` as its descriptors 0, 1 and 2 and no other (see the
    /// module doc); returns once it has exec'd. The caller keeps its `stdio` descriptors
    /// (close the child's pipe ends after this). The child is the caller's to reap.
    ///
    /// Errors: NotFound (a name in no `$PATH` directory), InvalidInput (a NUL byte in
    /// an argument), clone(2) failed, or the child could not exec (its errno: ENOENT,
    /// EACCES, ...; the child is reaped then).
    pub fn spawn(&self, stdio: [BorrowedFd<'_>; 3]) -> Result<Child> {
        let slots = slots()?;
        let path = cstring(resolve(&self.program)?.as_os_str())?;
        let args = std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(cstring)
            .collect::<Result<Vec<CString>>>()?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let env: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut b = k.as_bytes().to_vec();
                b.push(b'=');
                b.extend_from_slice(v.as_bytes());
                CString::new(b).ok()
            })
            .collect();
        let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let mut stack = vec![0u8; STACK];
        let exec_err = AtomicI32::new(0);
        let args = ChildArgs {
            low: slots.low,
            slots: [
                slots.fds[0].as_raw_fd(),
                slots.fds[1].as_raw_fd(),
                slots.fds[2].as_raw_fd(),
            ],
            path: path.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            err: &exec_err,
        };
        let guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let fill = |from: &[RawFd; 3]| -> Result<()> {
            for (slot, fd) in slots.fds.iter().zip(from) {
                // SAFETY: dup3 onto a slot this module owns, from a descriptor the caller
                // (or this module) keeps open for the call.
                if unsafe { libc::dup3(*fd, slot.as_raw_fd(), libc::O_CLOEXEC) } < 0 {
                    return Err(Error::last_os_error());
                }
            }
            Ok(())
        };
        let null = slots.null.as_raw_fd();
        let filled = fill(&[
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ]);
        let mut pidfd: libc::c_int = -1;
        let pid = match filled {
            Err(e) => Err(e),
            Ok(()) => {
                // SAFETY: sigset operations on local sets; the clone below gets a stack of
                // STACK bytes (top, 16-byte aligned) that outlives it (CLONE_VFORK
                // suspends this thread until the child execs or exits) and `args`, which
                // points at values alive for the whole call.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    let mut old: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
                    let top = (stack.as_mut_ptr().add(STACK) as usize & !15) as *mut libc::c_void;
                    let pid = libc::clone(
                        child,
                        top,
                        libc::CLONE_VM
                            | libc::CLONE_VFORK
                            | libc::CLONE_FILES
                            | libc::CLONE_PIDFD
                            | libc::SIGCHLD,
                        &args as *const ChildArgs as *mut libc::c_void,
                        &mut pidfd as *mut libc::c_int,
                    );
                    let e = Error::last_os_error();
                    libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
                    if pid < 0 {
                        Err(e)
                    } else {
                        Ok(pid)
                    }
                }
            }
        };
        // the slots drop their references (a pipe's write end kept here would hide EOF)
        let _ = fill(&[null; 3]);
        drop(guard);
        let pid = pid?;
        // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
        match exec_err.load(Ordering::Relaxed) {
            0 => Ok(Child { pid, pidfd }),
            e => {
                let _ = wait_pidfd(pidfd.as_fd(), false);
                Err(Error::from_raw_os_error(e))
            }
        }
    }
}

/// Reaps the child behind `pidfd` (waitid(2) `P_PIDFD`); with `nohang`, None while it
/// runs. Returns its status as waitpid(2) gives it (for `WIFEXITED`, `WEXITSTATUS`,
/// `WTERMSIG`).
pub fn wait_pidfd(pidfd: BorrowedFd<'_>, nohang: bool) -> Result<Option<i32>> {
    loop {
        // SAFETY: waitid into a zeroed siginfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | if nohang { libc::WNOHANG } else { 0 };
        // SAFETY: as above; P_PIDFD (3) with a pidfd we borrow.
        let r = unsafe {
            libc::waitid(
                libc::P_PIDFD,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                flags,
            )
        };
        if r < 0 {
            let e = Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: siginfo filled by waitid (si_pid 0 with WNOHANG: still running).
        let (pid, code, st) = unsafe { (info.si_pid(), info.si_code, info.si_status()) };
        if pid == 0 {
            return Ok(None);
        }
        return Ok(Some(status_of(code, st)));
    }
}

/// A waitid(2) result (`si_code`, `si_status`) as the status word waitpid(2) gives, so
/// that `WIFEXITED`, `WEXITSTATUS` and `WTERMSIG` read it.
fn status_of(code: i32, st: i32) -> i32 {
    match code {
        libc::CLD_EXITED => (st & 0xff) << 8,
        libc::CLD_KILLED => st & 0x7f,
        libc::CLD_DUMPED => (st & 0x7f) | 0x80,
        _ => (st & 0xff) << 8 | 0x7f,
    }
}

/// What the child needs, prepared by the parent: it must not allocate.
struct ChildArgs {
    low: u32,
    slots: [RawFd; 3],
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    err: *const AtomicI32,
}

/// The child until exec: only system calls (it runs on the parent's memory, see
/// [`Command::spawn`]).
extern "C" fn child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's ChildArgs, alive while the parent waits (CLONE_VFORK);
    // everything below is a plain system call or libc wrapper that does not allocate.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let fail = |a: &ChildArgs| -> ! {
            (*a.err).store(*libc::__errno_location(), Ordering::Relaxed);
            libc::_exit(127)
        };
        // a table of our own with only the descriptors below `low` (the stdio slots)
        if libc::syscall(libc::SYS_close_range, a.low, u32::MAX, CLOSE_RANGE_UNSHARE) != 0 {
            // before Linux 5.9: a copy of the whole table, closed at exec
            if libc::unshare(libc::CLONE_FILES) != 0 {
                fail(a);
            }
        }
        for (i, fd) in a.slots.iter().enumerate() {
            if libc::dup2(*fd, i as libc::c_int) < 0 {
                fail(a);
            }
        }
        // caught signals and SIGPIPE back to their defaults, nothing blocked
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..65 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
                && old.sa_sigaction != libc::SIG_DFL
            {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(a.path, a.argv, a.envp);
        fail(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pipe() -> (std::fs::File, OwnedFd) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        (std::fs::File::from(r), w)
    }

    #[test]
    fn the_child_gets_its_stdio_and_a_table_of_its_own() {
        // 300 descriptors open here: a copied table would be sized for them (FDSize 512
        // with fork or posix_spawn); the child's holds 64 (the kernel's smallest). It may
        // inherit what other tests of this process left open without close-on-exec below
        // the slots, nothing at or above them.
        reserve().expect("slots");
        let low = slots().expect("slots").low;
        let held: Vec<std::fs::File> = (0..300)
            .map(|_| std::fs::File::open("/dev/null").expect("open"))
            .collect();
        let (mut out_r, out_w) = pipe();
        let (mut err_r, err_w) = pipe();
        let null = null().expect("null");
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "ls /proc/$$/fd; grep FDSize /proc/$$/status; echo status >&2; exit 3",
        ]);
        let child = c
            .spawn([null, out_w.as_fd(), err_w.as_fd()])
            .expect("spawn");
        drop((out_w, err_w));
        let mut out = String::new();
        out_r.read_to_string(&mut out).expect("read");
        let mut err = String::new();
        err_r.read_to_string(&mut err).expect("read");
        let st = wait_pidfd(child.pidfd.as_fd(), false)
            .expect("wait")
            .expect("status");
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 3, "{st:#x}");
        assert_eq!(err, "status\n");
        let fds: Vec<u32> = out.lines().filter_map(|l| l.parse().ok()).collect();
        for stdio in [0, 1, 2] {
            assert!(fds.contains(&stdio), "the child's stdio: {out}");
        }
        assert!(
            fds.iter().all(|f| *f < low),
            "the child inherited a descriptor at or above the slots ({low}): {out}"
        );
        assert!(out.contains("FDSize:\t64\n"), "the child's table: {out}");
        drop(held);
    }

    #[test]
    fn a_missing_program_is_not_found_and_a_bad_one_reports_its_errno() {
        let null = null().expect("null");
        let e = Command::new("no-such-program-here")
            .spawn([null, null, null])
            .expect_err("missing");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let c = Command::new("/proc/self/fd");
        let e = c.spawn([null, null, null]).expect_err("not executable");
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    }

    #[test]
    fn a_signalled_child_reads_as_killed() {
        let null = null().expect("null");
        let mut c = Command::new("sh");
        c.args(["-c", "kill -9 $$"]);
        let child = c.spawn([null, null, null]).expect("spawn");
        let st = wait_pidfd(child.pidfd.as_fd(), false)
            .expect("wait")
            .expect("status");
        assert!(libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == 9, "{st:#x}");
    }
}
