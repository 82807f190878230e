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
}
