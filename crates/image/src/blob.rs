//! Layer blobs kept next to unpacked layers, so that `push` can send the exact
//! bytes whose digests the image's manifest and config name.
//!
//! Every layer that enters the store (import, load, pull) is teed while it is
//! unpacked: `layers/<diffid-hex>/blob` holds the stream as it arrived (gzip,
//! zstd or plain tar) and `layers/<diffid-hex>/blob.json` its [`BlobRecord`].
//! A pulled layer's blob is the registry's blob, byte for byte, so a later push
//! of the same image sends the same digests (OCI image spec `descriptor.md`).

use crate::fsutil::io_err;
use crate::ImageError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

/// File name of the kept blob inside a layer directory.
pub(crate) const BLOB_FILE: &str = "blob";
/// File name of the blob's record inside a layer directory.
pub(crate) const BLOB_RECORD_FILE: &str = "blob.json";

/// Docker image manifest v2 schema 2 media type of a gzip'd layer.
pub(crate) const MT_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// OCI media type of a zstd-compressed layer.
pub(crate) const MT_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI media type of an uncompressed layer.
pub(crate) const MT_OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// `layers/<hex>/blob.json`: what the kept blob is.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct BlobRecord {
    /// `sha256:<hex>` of the blob bytes.
    pub digest: String,
    /// Length of the blob in bytes.
    pub size: u64,
    /// Media type by content: gzip ([`MT_DOCKER_LAYER_GZIP`]), zstd, or plain tar.
    pub media_type: String,
}

impl BlobRecord {
    /// Whether the blob is a gzip stream (pushable as is in a schema 2 manifest).
    pub(crate) fn is_gzip(&self) -> bool {
        self.media_type == MT_DOCKER_LAYER_GZIP || self.media_type.ends_with("gzip")
    }
}

/// Media type of a layer blob from its first bytes.
pub(crate) fn media_type_of(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        MT_DOCKER_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MT_OCI_LAYER_ZSTD
    } else {
        MT_OCI_LAYER_TAR
    }
}

/// A reader that copies everything read through it into a file and a SHA-256.
pub(crate) struct TeeReader<R> {
    inner: R,
    out: io::BufWriter<fs::File>,
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
}

impl<R: Read> TeeReader<R> {
    /// Tees `inner` into a new file at `path`.
    pub(crate) fn create(inner: R, path: &Path) -> Result<TeeReader<R>, ImageError> {
        let f = fs::File::create(path).map_err(io_err(format!("creating {}", path.display())))?;
        Ok(TeeReader {
            inner,
            out: io::BufWriter::with_capacity(256 * 1024, f),
            hasher: Sha256::new(),
            size: 0,
            head: Vec::with_capacity(8),
        })
    }

    /// Reads the rest of the stream, flushes the file and returns its record.
    pub(crate) fn finish(mut self) -> io::Result<BlobRecord> {
        io::copy(&mut self, &mut io::sink())?;
        self.out.flush()?;
        Ok(BlobRecord {
            digest: format!("sha256:{}", hex::encode(self.hasher.finalize())),
            size: self.size,
            media_type: media_type_of(&self.head).to_string(),
        })
    }
}

impl<R: Read> Read for TeeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let chunk = &buf[..n];
            if self.head.len() < 8 {
                let k = (8 - self.head.len()).min(n);
                self.head.extend_from_slice(&chunk[..k]);
            }
            self.hasher.update(chunk);
            self.out.write_all(chunk)?;
            self.size += n as u64;
        }
        Ok(n)
    }
}

/// Writes `rec` as the `blob.json` of layer directory `layer_dir` (read back by
/// [`read_record`]). Errors name the file.
pub(crate) fn write_record(layer_dir: &Path, rec: &BlobRecord) -> Result<(), crate::ImageError> {
    let bytes = serde_json::to_vec(rec).map_err(|e| crate::json_io("encoding blob record", e))?;
    let path = layer_dir.join(BLOB_RECORD_FILE);
    fs::write(&path, bytes).map_err(|source| crate::ImageError::Io {
        what: format!("writing {}", path.display()),
        source,
    })
}

/// Reads `layers/<hex>/blob.json` of a layer directory, if there is one.
pub(crate) fn read_record(layer_dir: &Path) -> Option<BlobRecord> {
    let bytes = fs::read(layer_dir.join(BLOB_RECORD_FILE)).ok()?;
    serde_json::from_slice(&bytes).ok()
}
