//! The progress display of `compose up` / `down`: on a terminal, Compose's
//! ` ✔ Container p-web-1  Started` lines (the step in progress shown and then
//! replaced); otherwise plain ` Container p-web-1  Starting` / `... Started` lines.
//! Written to stderr, as Compose does.

use std::io::{IsTerminal, Write};

/// Where progress lines go and how they look.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    tty: bool,
    quiet: bool,
}

/// The kind of object a progress line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A network.
    Network,
    /// A volume.
    Volume,
    /// A container.
    Container,
    /// A service (its image being pulled, built or pushed).
    Service,
}

impl Kind {
    /// The kind's name as a progress line shows it (`Network`, ...).
    pub fn word(self) -> &'static str {
        match self {
            Kind::Network => "Network",
            Kind::Volume => "Volume",
            Kind::Container => "Container",
            Kind::Service => "Service",
        }
    }
}

impl Progress {
    /// A display for `mode`: `auto` (terminal when stderr is one), `tty`, `plain` or `quiet`.
    pub fn new(mode: &str) -> Progress {
        let tty = match mode {
            "tty" => true,
            "plain" | "quiet" => false,
            _ => std::io::stderr().is_terminal(),
        };
        Progress {
            tty,
            quiet: mode == "quiet",
        }
    }

    /// The text of one line (without colors or cursor control).
    pub fn line(kind: Kind, name: &str, status: &str, done: Option<bool>) -> String {
        let mark = match done {
            Some(true) => " ✔",
            Some(false) => " ✘",
            None => "",
        };
        format!("{mark} {} {name}  {status}", kind.word())
    }

    fn write(&self, s: &str) {
        if self.quiet {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(s.as_bytes());
        let _ = e.flush();
    }

    /// A step has begun (`Creating`, `Starting`, `Waiting`...).
    pub fn begin(&self, kind: Kind, name: &str, status: &str) {
        if self.tty {
            self.write(&format!(
                "\r\x1b[2K \x1b[34m⠿\x1b[0m {} {name}  {status}",
                kind.word()
            ));
        } else {
            self.write(&format!("{}\n", Self::line(kind, name, status, None)));
        }
    }

    /// A step has ended well (`Created`, `Started`, `Healthy`, `Running`...).
    pub fn done(&self, kind: Kind, name: &str, status: &str) {
        self.end(kind, name, status, '✔', 32);
    }

    /// A step has failed.
    pub fn failed(&self, kind: Kind, name: &str, status: &str) {
        self.end(kind, name, status, '✘', 31);
    }

    /// A step has ended: on a terminal, the line is finished with `mark` and
    /// `status` in the ANSI foreground `color`; otherwise a plain line.
    fn end(&self, kind: Kind, name: &str, status: &str, mark: char, color: u8) {
        if self.tty {
            self.write(&format!(
                "\r\x1b[2K \x1b[{color}m{mark}\x1b[0m {} {name}  \x1b[{color}m{status}\x1b[0m\n",
                kind.word()
            ));
        } else {
            self.write(&format!("{}\n", Self::line(kind, name, status, None)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            Progress::line(Kind::Network, "p_default", "Created", Some(true)),
            " ✔ Network p_default  Created"
        );
        assert_eq!(
            Progress::line(Kind::Container, "p-web-1", "Starting", None),
            " Container p-web-1  Starting"
        );
    }
}
