//! Small filesystem helpers: atomic writes, self-removing temp dirs, hashing.

use crate::ImageError;
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Builds a closure mapping an `io::Error` to [`ImageError::Io`] with context.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ImageError {
    let what = what.into();
    move |source| ImageError::Io { what, source }
}

/// A random 16-hex-char name for temp files and dirs.
pub(crate) fn random_name() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// `"sha256:" + hex(sha256(data))`.
pub(crate) fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Fsyncs a directory so a rename inside it is durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), ImageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("syncing directory {}", dir.display())))
}

/// Writes `data` to `path` atomically: temp file in the same directory,
/// fsync, rename over `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), ImageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", random_name()));
    let res = (|| -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(ImageError::Io {
            what: format!("writing {}", path.display()),
            source: e,
        });
    }
    fsync_dir(dir)
}

/// Removes a file, symlink or directory tree; missing is fine.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A directory that is removed on drop unless [`TempDir::keep`] was called.
pub(crate) struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    /// Creates `<parent>/<random>`.
    pub(crate) fn new_in(parent: &Path) -> Result<TempDir, ImageError> {
        let path = parent.join(random_name());
        fs::create_dir(&path).map_err(io_err(format!("creating {}", path.display())))?;
        Ok(TempDir { path, keep: false })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Disarms the removal (the directory was renamed into place).
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = remove_any(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "removing temp dir");
            }
        }
    }
}

/// A reader that feeds everything read through it into a SHA-256.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Reads the rest of the stream (into the hash) and returns
    /// `"sha256:<hex>"`.
    pub(crate) fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(format!("sha256:{}", hex::encode(self.hasher.finalize())))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads a whole (small) file, refusing more than `limit` bytes.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ImageError> {
    let f = fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let mut buf = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(io_err(format!("reading {}", path.display())))?;
    if buf.len() as u64 > limit {
        return Err(ImageError::BadArchive(format!(
            "{} is larger than the {limit}-byte limit for metadata files",
            path.display()
        )));
    }
    Ok(buf)
}

/// A writer that feeds everything written through it into a SHA-256 and counts it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Flushes and returns `("sha256:<hex>", bytes written)`.
    pub(crate) fn finish(mut self) -> io::Result<(String, u64)> {
        self.inner.flush()?;
        Ok((
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.size,
        ))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
