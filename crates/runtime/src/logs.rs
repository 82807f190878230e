//! The container log: Docker's json-file format, one JSON object per line:
//! `{"log":"text\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`
//! (moby daemon/logger/jsonfilelog).

use serde::{Deserialize, Serialize};

/// One log entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// The text, with its trailing newline when the line was complete.
    pub log: String,
    /// "stdout" or "stderr".
    pub stream: String,
    /// RFC 3339 with nanoseconds, UTC.
    pub time: String,
}

/// Splits a chunk read from a stream into entries, one per line (a trailing partial line
/// becomes its own entry, as json-file does for partial messages).
pub fn entries(stream: &str, chunk: &[u8]) -> Vec<Entry> {
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let text = String::from_utf8_lossy(chunk);
    text.split_inclusive('\n')
        .map(|l| Entry {
            log: l.to_string(),
            stream: stream.to_string(),
            time: time.clone(),
        })
        .collect()
}

/// Writes the entries of `text` (one per line, a trailing partial line as its own entry,
/// as [`entries`] splits) to `w` as json-file lines, without building them in memory:
/// the bytes are those `serde_json` writes for each [`Entry`] followed by a newline.
///
/// The shim's log writer; errors are `w`'s.
pub fn write_entries<W: std::io::Write>(
    w: &mut W,
    stream: &str,
    text: &str,
    time: &str,
) -> std::io::Result<()> {
    for line in text.split_inclusive('\n') {
        w.write_all(b"{\"log\":\"")?;
        write_json_str(w, line)?;
        w.write_all(b"\",\"stream\":\"")?;
        write_json_str(w, stream)?;
        w.write_all(b"\",\"time\":\"")?;
        write_json_str(w, time)?;
        w.write_all(b"\"}\n")?;
    }
    Ok(())
}

/// Writes `s` escaped as the inside of a JSON string, as serde_json escapes: `"`, `\` and
/// the control characters below 0x20 (`\b \t \n \f \r` or `\u00XX`).
fn write_json_str<W: std::io::Write>(w: &mut W, s: &str) -> std::io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ],
            _ => continue,
        };
        w.write_all(&bytes[start..i])?;
        w.write_all(esc)?;
        start = i + 1;
    }
    w.write_all(&bytes[start..])
}

/// Parses a log file's content into entries, skipping lines that are not entries.
pub fn parse(content: &[u8]) -> Vec<Entry> {
    content
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn roundtrip_lines_and_partial() {
        let e = entries("stdout", b"a\nb\npartial");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].log, "a\n");
        assert_eq!(e[2].log, "partial");
        let mut file = Vec::new();
        for x in &e {
            file.extend(serde_json::to_vec(x).unwrap());
            file.push(b'\n');
        }
        file.extend(b"garbage\n");
        assert_eq!(parse(&file), e);
    }

    #[test]
    fn write_entries_is_serde_json() {
        let mut text = String::from("plain\n\"quoted\" back\\slash\ttab\r\n");
        text.extend((0u8..0x20).map(char::from));
        text.push_str("\u{7f} \u{e9}\u{1f600}\n\npartial");
        let time = "2024-01-02T03:04:05.123456789Z";
        let mut got = Vec::new();
        write_entries(&mut got, "stderr", &text, time).unwrap();
        let mut want = Vec::new();
        for e in entries("stderr", text.as_bytes()) {
            let e = Entry {
                time: time.to_string(),
                ..e
            };
            want.extend(serde_json::to_vec(&e).unwrap());
            want.push(b'\n');
        }
        assert_eq!(
            String::from_utf8(got).unwrap(),
            String::from_utf8(want).unwrap()
        );
    }
}
