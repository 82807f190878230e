//! Pseudo-terminals for containers and exec processes: runc's `--console-socket` protocol
//! (runc docs/terminals.md): runc connects to a unix socket and sends the pty master as an
//! SCM_RIGHTS message; the receiver then owns the terminal.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use crate::{io_err, RuntimeError};

/// Binds the console socket at `path` (replacing a stale one).
pub fn bind(path: &Path) -> Result<UnixListener, RuntimeError> {
    let _ = std::fs::remove_file(path);
    UnixListener::bind(path).map_err(io_err(format!("bind console socket {}", path.display())))
}

/// Accepts runc's connection on `listener` and receives the pty master, waiting at most
/// `timeout` (runc may fail before it connects).
///
/// Errors: timeout, or a message without a file descriptor.
pub fn receive_master(listener: &UnixListener, timeout: Duration) -> Result<OwnedFd, RuntimeError> {
    listener
        .set_nonblocking(true)
        .map_err(io_err("console socket"))?;
    let deadline = std::time::Instant::now() + timeout;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() > deadline {
                    return Err(RuntimeError::Runc {
                        op: "console".into(),
                        msg: "runc did not send the terminal".into(),
                    });
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(io_err("accept on console socket")(e)),
        }
    };
    receive(&stream)
}

/// Receives the pty master runc sends on an accepted console-socket connection `stream`
/// (one SCM_RIGHTS message; blocks until it arrives).
///
/// Errors: the message cannot be read or carries no file descriptor.
pub fn receive(stream: &UnixStream) -> Result<OwnedFd, RuntimeError> {
    stream
        .set_nonblocking(false)
        .map_err(io_err("console socket"))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(|e| RuntimeError::Io {
        what: "receive the terminal".into(),
        source: e.into(),
    })?;
    for c in msg.cmsgs().map_err(|e| RuntimeError::Io {
        what: "receive the terminal".into(),
        source: e.into(),
    })? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(fd) = fds.first() {
                // SAFETY: the kernel just gave us this descriptor.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
    }
    Err(RuntimeError::Runc {
        op: "console".into(),
        msg: "console message carried no terminal".into(),
    })
}

/// The terminal size of pty `fd` (TIOCGWINSZ) as (rows, columns), if it can be read.
pub fn size(fd: &impl AsRawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the valid pointer given.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets the terminal size of pty `fd` (TIOCSWINSZ), rows x columns.
pub fn resize(fd: &impl AsRawFd, rows: u16, cols: u16) -> Result<(), RuntimeError> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ with a valid winsize pointer.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(io_err("resize terminal")(std::io::Error::last_os_error()));
    }
    Ok(())
}
