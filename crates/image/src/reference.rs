//! Image reference parsing, following Docker's `distribution/reference` package
//! (`ParseNormalizedNamed` + the grammar in `reference.go`).
//!
//! Grammar (from distribution/reference):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] remote-name
//! domain           := host [':' port-number]
//! host             := domain-name | IPv4address | '[' IPv6address ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! remote-name      := path-component ['/' path-component]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex ; algorithm components /[A-Za-z][A-Za-z0-9]*/ joined by [+._-]
//! ```
//!
//! Familiar names are normalized as Docker does: a first component that has no
//! `.` or `:`, is not `localhost` and is lowercase is not a domain, so the domain
//! becomes `docker.io`; single-component names on `docker.io` get the
//! `library/` prefix.

use crate::ImageError;
use std::fmt;

/// The registry domain implied by familiar names (`tbox` => `docker.io/library/tbox`).
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker's legacy spelling of [`DEFAULT_DOMAIN`], normalized to it.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Path prefix of official images on the default domain.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// Tag implied when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Maximum length of `domain/path` (distribution/reference `NameTotalLengthMax`).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Docker's text for any reference that does not match the grammar.
pub(crate) const INVALID_FORMAT: &str = "invalid reference format";

/// A parsed, normalized image reference (distribution/reference `Named`,
/// optionally `Tagged` and/or `Digested`).
///
/// `domain` is always set (`docker.io` for familiar names), `path` always
/// includes `library/` for official images. `tag` is `None` when the input had
/// none; see [`Reference::with_default_tag`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port, e.g. `docker.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path below the domain, e.g. `library/tbox`.
    pub path: String,
    /// Tag (`[\w][\w.-]{0,127}`), e.g. `latest`.
    pub tag: Option<String>,
    /// Digest `algorithm:hex`, e.g. `sha256:<64 hex>`.
    pub digest: Option<String>,
}

impl Reference {
    /// Fully qualified repository name without tag/digest: `docker.io/library/tbox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Familiar repository name as Docker prints it: `tbox`, `user/app`,
    /// `localhost:5000/app` (distribution/reference `FamiliarName`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                if !rest.contains('/') {
                    return rest.to_string();
                }
            }
            return self.path.clone();
        }
        self.name()
    }

    /// Familiar string with tag and digest as present: `tbox:latest`
    /// (distribution/reference `FamiliarString`). Call
    /// [`Reference::with_default_tag`] first to get the `:latest` form for a bare name.
    pub fn familiar(&self) -> String {
        self.with_suffix(self.familiar_name())
    }

    /// Fully qualified string with tag and digest as present:
    /// `docker.io/library/tbox:latest`.
    pub fn full(&self) -> String {
        self.with_suffix(self.name())
    }

    /// Adds the tag `latest` when the reference has neither tag nor digest
    /// (distribution/reference `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    fn with_suffix(&self, mut s: String) -> String {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    /// Same as [`Reference::familiar`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar())
    }
}

/// Parses a reference the way `docker` does for user input
/// (distribution/reference `ParseNormalizedNamed`).
///
/// Accepts familiar (`tbox`, `tbox:1.0`, `user/app@sha256:..`) and fully
/// qualified (`docker.io/library/tbox:latest`, `localhost:5000/app`) forms. The
/// tag is left `None` when absent (see [`Reference::with_default_tag`]).
///
/// # Errors
/// [`ImageError::InvalidReference`] with Docker's texts:
/// - `invalid reference format` for anything outside the grammar,
/// - `invalid reference format: repository name (library/Tbox) must be lowercase`,
/// - `invalid repository name (<hex>), cannot specify 64-byte hexadecimal strings`,
/// - `repository name must not be more than 255 characters`,
/// - `invalid checksum digest length` / `invalid checksum digest format` /
///   `unsupported digest algorithm` for a malformed `@digest`.
pub fn parse_reference(s: &str) -> Result<Reference, ImageError> {
    if is_hex64(s) {
        return Err(ImageError::InvalidReference(format!(
            "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        )));
    }
    let (domain, remainder) = split_docker_domain(s);
    let remote = match remainder.find(':') {
        Some(i) => &remainder[..i],
        None => remainder.as_str(),
    };
    if remote.to_lowercase() != remote {
        return Err(ImageError::InvalidReference(format!(
            "{INVALID_FORMAT}: repository name ({remote}) must be lowercase"
        )));
    }
    parse_qualified(&domain, &remainder)
}

/// Splits a familiar name into (domain, remainder) as distribution/reference
/// `splitDockerDomain` does.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            if !first.contains(['.', ':']) && first != "localhost" && first.to_lowercase() == first
            {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            } else {
                (first.to_string(), name[i + 1..].to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn invalid() -> ImageError {
    ImageError::InvalidReference(INVALID_FORMAT.to_string())
}

/// Validates `domain/remainder` against the full grammar.
fn parse_qualified(domain: &str, remainder: &str) -> Result<Reference, ImageError> {
    if !valid_domain(domain) {
        return Err(invalid());
    }
    let (rest, digest) = match remainder.find('@') {
        Some(i) => (&remainder[..i], Some(&remainder[i + 1..])),
        None => (remainder, None),
    };
    let (path, tag) = match rest.rfind(':') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if path.is_empty() || !path.split('/').all(valid_path_component) {
        return Err(invalid());
    }
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(invalid());
        }
    }
    if let Some(d) = digest {
        validate_digest(d)?;
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ImageError::InvalidReference(format!(
            "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        )));
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(str::to_string),
    })
}

/// `host[:port]` where host is a domain name, IPv4 address or `[IPv6]`.
fn valid_domain(d: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.find(']') {
            Some(i) => {
                let inner = &rest[..i];
                let ok =
                    !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
                let after = &rest[i + 1..];
                match after.strip_prefix(':') {
                    Some(p) => (ok, Some(p)),
                    None if after.is_empty() => (ok, None),
                    None => (false, None),
                }
            }
            None => (false, None),
        }
    } else {
        let (host, port) = match d.find(':') {
            Some(i) => (&d[..i], Some(&d[i + 1..])),
            None => (d, None),
        };
        (
            !host.is_empty() && host.split('.').all(valid_domain_component),
            port,
        )
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match b.len() {
        0 => false,
        1 => b[0].is_ascii_alphanumeric(),
        n => {
            b[0].is_ascii_alphanumeric()
                && b[n - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        }
    }
}

/// `[a-z0-9]+((?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && alnum(b[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !run(&mut i) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// Digest grammar plus go-digest validation of the known algorithms.
fn validate_digest(d: &str) -> Result<(), ImageError> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(invalid());
    };
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphabetic()
                && b.iter().all(|x| x.is_ascii_alphanumeric())
        });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(ImageError::InvalidReference(
                "unsupported digest algorithm".to_string(),
            ))
        }
    };
    if hex.len() != want {
        return Err(ImageError::InvalidReference(
            "invalid checksum digest length".to_string(),
        ));
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ImageError::InvalidReference(
            "invalid checksum digest format".to_string(),
        ));
    }
    Ok(())
}

/// True for exactly 64 lowercase hex characters (an image ID without `sha256:`).
pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// input, domain, path, tag, digest, familiar
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
    );

    #[test]
    fn valid_references() {
        let cases: &[Case] = &[
            // input, domain, path, tag, digest, familiar
            ("tbox", "docker.io", "library/tbox", None, None, "tbox"),
            (
                "tbox:latest",
                "docker.io",
                "library/tbox",
                Some("latest"),
                None,
                "tbox:latest",
            ),
            (
                "docker.io/library/tbox:1.0",
                "docker.io",
                "library/tbox",
                Some("1.0"),
                None,
                "tbox:1.0",
            ),
            (
                "index.docker.io/tbox",
                "docker.io",
                "library/tbox",
                None,
                None,
                "tbox",
            ),
            (
                "user/app:v1_2-3",
                "docker.io",
                "user/app",
                Some("v1_2-3"),
                None,
                "user/app:v1_2-3",
            ),
            (
                "localhost/app",
                "localhost",
                "app",
                None,
                None,
                "localhost/app",
            ),
            (
                "localhost:5000/a/b/c:t",
                "localhost:5000",
                "a/b/c",
                Some("t"),
                None,
                "localhost:5000/a/b/c:t",
            ),
            (
                "my.registry.example/x__y.z--w",
                "my.registry.example",
                "x__y.z--w",
                None,
                None,
                "my.registry.example/x__y.z--w",
            ),
            (
                "[::1]:5000/app:TAG",
                "[::1]:5000",
                "app",
                Some("TAG"),
                None,
                "[::1]:5000/app:TAG",
            ),
            (
                "Registry.Example/app",
                "Registry.Example",
                "app",
                None,
                None,
                "Registry.Example/app",
            ),
            (
                "docker.io/library/a/b",
                "docker.io",
                "library/a/b",
                None,
                None,
                "library/a/b",
            ),
        ];
        for (input, domain, path, tag, digest, familiar) in cases {
            let r = parse_reference(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.domain, *domain, "{input}");
            assert_eq!(r.path, *path, "{input}");
            assert_eq!(r.tag.as_deref(), *tag, "{input}");
            assert_eq!(r.digest.as_deref(), *digest, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse_reference(&format!("tbox:1@{d}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(
            r.full(),
            format!("docker.io/library/tbox:1@{d}"),
            "full form"
        );
        assert_eq!(
            parse_reference("tbox")
                .unwrap()
                .with_default_tag()
                .familiar(),
            "tbox:latest"
        );
        assert_eq!(
            parse_reference("tbox").unwrap().with_default_tag().full(),
            "docker.io/library/tbox:latest"
        );
        let long_tag = "t".repeat(128);
        assert!(parse_reference(&format!("tbox:{long_tag}")).is_ok());
    }

    #[test]
    fn invalid_references() {
        let cases = [
            "DB_SOURCE=postgresql://root:secret@172.17.0.3:5432/simple_bank?sslmode=disable",
            "",
            ":latest",
            "tbox:",
            "tbox:-bad",
            "tbox::x",
            "a..b",
            "a___b",
            "-a",
            "a-",
            "a/",
            "/a",
            "a//b",
            "tbox@sha256:short",
            "tbox@",
            "localhost:port/app",
            "[zz]/app",
            "bad-.domain/app",
            "tbox latest",
            "tbox/😀",
        ];
        for c in cases {
            let e = parse_reference(c).expect_err(c);
            assert!(matches!(e, ImageError::InvalidReference(_)), "{c}: {e:?}");
            assert!(e.to_string().starts_with("invalid"), "{c}: {e}");
        }
        let e = parse_reference(
            "DB_SOURCE=postgresql://root:secret@172.17.0.3:5432/simple_bank?sslmode=disable",
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "invalid reference format");
        assert_eq!(e.status(), 400);
        assert_eq!(
            parse_reference("TBOX").unwrap_err().to_string(),
            "invalid reference format: repository name (library/TBOX) must be lowercase"
        );
        assert_eq!(
            parse_reference("user/App:latest").unwrap_err().to_string(),
            "invalid reference format: repository name (user/App) must be lowercase"
        );
        assert!(parse_reference(&"a".repeat(64))
            .unwrap_err()
            .to_string()
            .contains("cannot specify 64-byte hexadecimal strings"));
        assert_eq!(
            parse_reference(&format!("tbox:{}", "t".repeat(129)))
                .unwrap_err()
                .to_string(),
            "invalid reference format"
        );
        assert_eq!(
            parse_reference(&"a".repeat(250)).unwrap_err().to_string(),
            "repository name must not be more than 255 characters"
        );
        assert_eq!(
            parse_reference(&format!("tbox@sha256:{}", "a".repeat(40)))
                .unwrap_err()
                .to_string(),
            "invalid checksum digest length"
        );
        assert_eq!(
            parse_reference(&format!("tbox@md5:{}", "a".repeat(32)))
                .unwrap_err()
                .to_string(),
            "unsupported digest algorithm"
        );
    }
}
