//! Image references (`github.com/distribution/reference`): validation with
//! docker's error messages, and the repository/tag split the API wants.

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry domain when one was given ("localhost:5000").
    pub domain: Option<String>,
    /// Repository path as given ("tbox", "library/tbox", "me/app").
    pub path: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest ("sha256:..."), if any.
    pub digest: Option<String>,
}

/// The generic error text.
pub const INVALID: &str = "invalid reference format";

impl Reference {
    /// Repository name as given, with the domain (`localhost:5000/app`).
    pub fn name(&self) -> String {
        match &self.domain {
            Some(d) => format!("{d}/{}", self.path),
            None => self.path.clone(),
        }
    }

    /// docker's `FamiliarName`: without `docker.io/` and `library/`.
    pub fn familiar_name(&self) -> String {
        let domain = self.domain.as_deref();
        let path = if matches!(domain, None | Some("docker.io")) {
            self.path.strip_prefix("library/").unwrap_or(&self.path)
        } else {
            &self.path
        };
        match domain {
            None | Some("docker.io") => path.to_string(),
            Some(d) => format!("{d}/{path}"),
        }
    }

    /// The tag, `latest` when none and no digest (`TagNameOnly`).
    pub fn tag_or_latest(&self) -> String {
        self.tag.clone().unwrap_or_else(|| "latest".into())
    }

    /// `FamiliarString` after `TagNameOnly`: "tbox:latest".
    pub fn familiar_tagged(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(d) = &self.digest {
            if let Some(t) = &self.tag {
                s = format!("{s}:{t}");
            }
            return format!("{s}@{d}");
        }
        format!("{s}:{}", self.tag_or_latest())
    }
}

fn is_lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | __ | [-]+
fn valid_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !is_lower_alnum(b[0] as char) || !is_lower_alnum(b[b.len() - 1] as char) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if is_lower_alnum(c) {
            i += 1;
            continue;
        }
        // separator run
        let start = i;
        while i < b.len() && !is_lower_alnum(b[i] as char) {
            i += 1;
        }
        let sep = &s[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => {
                if h.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, p.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|c| {
                    !c.is_empty()
                        && c.chars().all(|x| x.is_ascii_alphanumeric() || x == '-')
                        && !c.starts_with('-')
                        && !c.ends_with('-')
                })
        }
    }
}

fn valid_tag(t: &str) -> bool {
    let mut it = t.chars();
    match it.next() {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' => {}
        _ => return false,
    }
    t.len() <= 128 && it.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn valid_digest(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = !algo.is_empty()
        && algo.split(['+', '.', '-', '_']).all(|c| {
            c.chars().next().is_some_and(|x| x.is_ascii_alphabetic())
                && c.chars().all(|x| x.is_ascii_alphanumeric())
        });
    algo_ok && hex.len() >= 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// Whether `s` is a full 64-hex image ID.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// `reference.ParseNormalizedNamed` with docker's messages.
pub fn parse_named(s: &str) -> Result<Reference, String> {
    if is_full_id(s) {
        return Err(format!(
            "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    // Split off the digest, then the tag (a ':' after the last '/').
    let (name_tag, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (
            &name_tag[..last_slash + i],
            Some(&name_tag[last_slash + i + 1..]),
        ),
        None => (name_tag, None),
    };
    if name.is_empty() {
        return Err(INVALID.into());
    }
    let (domain, remote) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first.to_string()), rest.to_string())
        }
        _ => (None, name.to_string()),
    };
    let display_remote = if domain.is_none() && !remote.contains('/') {
        format!("library/{remote}")
    } else {
        remote.clone()
    };
    if display_remote.to_lowercase() != display_remote {
        return Err(format!(
            "{INVALID}: repository name ({display_remote}) must be lowercase"
        ));
    }
    if let Some(d) = &domain {
        if !valid_domain(d) {
            return Err(INVALID.into());
        }
    }
    if !remote.split('/').all(valid_path_component) {
        return Err(INVALID.into());
    }
    if name.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(INVALID.into());
        }
    }
    if let Some(d) = digest {
        if !valid_digest(d) {
            return Err(INVALID.into());
        }
    }
    Ok(Reference {
        domain,
        path: remote,
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `reference.ParseAnyReference`: also accepts image IDs and bare digests.
/// Returns `None` for IDs/digests (nothing to pull), the name otherwise.
pub fn parse_any(s: &str) -> Result<Option<Reference>, String> {
    if is_full_id(s) || valid_digest(s) {
        return Ok(None);
    }
    parse_named(s).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_references() {
        let r = parse_named("tbox").unwrap();
        assert_eq!((r.path.as_str(), r.tag.as_deref()), ("tbox", None));
        assert_eq!(r.familiar_tagged(), "tbox:latest");
        let r = parse_named("tbox:1.0").unwrap();
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        let r = parse_named("localhost:5000/my-app/x_y:v2").unwrap();
        assert_eq!(r.domain.as_deref(), Some("localhost:5000"));
        assert_eq!(r.name(), "localhost:5000/my-app/x_y");
        let r = parse_named("docker.io/library/busybox:latest").unwrap();
        assert_eq!(r.familiar_name(), "busybox");
        assert!(parse_named(&format!("a@sha256:{}", "0".repeat(64))).is_ok());
        assert!(parse_any(&"a".repeat(64)).unwrap().is_none());
        assert!(parse_any(&format!("sha256:{}", "f".repeat(64)))
            .unwrap()
            .is_none());
        assert!(parse_named("abc123def456").is_ok());
    }

    #[test]
    fn invalid_references() {
        assert_eq!(
            parse_named("Tbox").unwrap_err(),
            "invalid reference format: repository name (library/Tbox) must be lowercase"
        );
        assert_eq!(parse_named("tbox:").unwrap_err(), INVALID);
        assert_eq!(parse_named("-tbox").unwrap_err(), INVALID);
        assert_eq!(parse_named("tb!ox").unwrap_err(), INVALID);
        assert_eq!(parse_named("tbox:-x").unwrap_err(), INVALID);
        assert_eq!(parse_named("a//b").unwrap_err(), INVALID);
        assert_eq!(parse_named("").unwrap_err(), INVALID);
        assert_eq!(parse_named("tbox@sha256:12").unwrap_err(), INVALID);
        assert!(parse_named(&"a".repeat(64)).is_err());
    }
}
