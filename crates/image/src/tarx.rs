//! Tar helpers shared by the engine (`docker cp`'s archive endpoint, export) and the
//! CLI (`tether cp` uploads): entries written with their names exactly as given.
//! Format: POSIX ustar headers with GNU long-name (`L`) and long-link (`K`) records,
//! as GNU tar and moby's `archive` package write them.

use std::io::{self, Read, Write};

/// Appends one entry named `name` (raw bytes, kept as given: `./x` stays `./x`, which
/// the tar crate's path handling would rewrite), with a GNU long-name (`L`) or
/// long-link (`K`) record before it when a name is over 100 bytes. `h` must carry
/// everything else (type, mode, owner, size, times); its checksum is set here.
///
/// # Errors
/// What writing to the builder's writer or reading `data` returns.
pub fn append_raw<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> io::Result<()> {
    let long = |b: &mut tar::Builder<W>, kind: u8, v: &[u8]| -> io::Result<()> {
        let mut lh = tar::Header::new_gnu();
        let tag = b"././@LongLink";
        lh.as_old_mut().name[..tag.len()].copy_from_slice(tag);
        lh.set_mode(0o644);
        lh.set_uid(0);
        lh.set_gid(0);
        lh.set_mtime(0);
        lh.set_size(v.len() as u64 + 1);
        lh.set_entry_type(tar::EntryType::new(kind));
        lh.set_cksum();
        b.append(&lh, Read::chain(v, &[0u8][..]))
    };
    if name.len() > 100 {
        long(b, b'L', name)?;
    }
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    let n = name.len().min(100);
    field[..n].copy_from_slice(&name[..n]);
    if let Some(l) = link {
        if l.len() > 100 {
            long(b, b'K', l)?;
        }
        let field = &mut h.as_old_mut().linkname;
        field.fill(0);
        let n = l.len().min(100);
        field[..n].copy_from_slice(&l[..n]);
    }
    h.set_cksum();
    b.append(h, data)
}
