//! The log files to read and how far each was read: files are known by
//! identity (device and inode) and by a fingerprint of their first bytes, so
//! that rotation by rename, `log_truncate_on_rotation` and copytruncate are
//! all followed without losing or counting a line twice.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Entry, Format};
use crate::error::Error;

/// How far a file was read, and what it started with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark {
    pub offset: u64,
    pub fingerprint_len: u64,
    pub fingerprint: u64,
}

/// Files by (device, inode).
pub type Marks = HashMap<(u64, u64), Mark>;

const FINGERPRINT_LEN: u64 = 1024;
const CHUNK: usize = 2 << 20;
/// An entry longer than this is skipped rather than held in memory whole.
const MAX_ENTRY: usize = 24 << 20;

/// The files named by `--log` values: a file, a directory (its files of the
/// format), or a pattern with `*` and `?` in the file name.
pub fn discover(
    inputs: &[PathBuf],
    format: Option<Format>,
) -> Result<Vec<(PathBuf, Format)>, Error> {
    let mut found = Vec::new();
    for input in inputs {
        let text = input.to_string_lossy();
        if text.contains(['*', '?']) {
            let dir = input
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let pattern = input
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            for path in list_dir(dir)? {
                let name = path
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if glob_match(pattern.as_bytes(), name.as_bytes()) {
                    found.push(path);
                }
            }
        } else if input.is_dir() {
            let format = match format {
                Some(f) => f,
                None => dir_format(input)?,
            };
            found.extend(
                list_dir(input)?
                    .into_iter()
                    .filter(|p| Format::from_extension(p) == Some(format)),
            );
        } else {
            found.push(input.clone());
        }
    }
    let mut files = Vec::new();
    for path in found {
        let file_format = format
            .or_else(|| Format::from_extension(&path))
            .unwrap_or(Format::Stderr);
        if !files.iter().any(|(p, _)| *p == path) {
            files.push((path, file_format));
        }
    }
    Ok(files)
}

/// A directory with several formats side by side is read in the richest.
fn dir_format(dir: &Path) -> Result<Format, Error> {
    let formats: Vec<Format> = list_dir(dir)?
        .iter()
        .filter_map(|p| Format::from_extension(p))
        .collect();
    Ok([Format::Jsonlog, Format::Csvlog, Format::Stderr]
        .into_iter()
        .find(|f| formats.contains(f))
        .unwrap_or(Format::Stderr))
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| cannot_read(dir, &e))?;
    let mut paths = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            paths.push(path);
        }
    }
    Ok(paths)
}

/// The one-line reason a log cannot be read, with what would fix it.
pub fn cannot_read(path: &Path, error: &std::io::Error) -> Error {
    let hint = if error.kind() == std::io::ErrorKind::PermissionDenied {
        " (the server writes its logs mode 0600 by default: set log_file_mode = 0640 and put the monitoring user in the server's group)"
    } else {
        ""
    };
    Error::CannotMeasure(format!("cannot read log {}: {error}{hint}", path.display()))
}

/// `*` and `?` against a file name, as a shell matches them. Linear
/// backtracking to the last `*`, so no pattern can make it exponential.
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(b'?') => {
                p += 1;
                n += 1;
            }
            Some(c) if *c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` take one more byte and try again.
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// FNV-1a of the first `len` bytes of `file`.
fn fingerprint(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut head = vec![0; len as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    Ok(head.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    }))
}

/// What a run read.
#[derive(Debug, Default)]
pub struct Progress {
    pub files: usize,
    pub bytes: u64,
    pub marks: Marks,
}

struct Candidate {
    path: PathBuf,
    format: Format,
    file: File,
    key: (u64, u64),
    len: u64,
    mtime: i64,
}

/// Reads what is new in `files` since `previous` (no previous: a first run,
/// which starts at the end unless `from_start`), oldest file first, feeding
/// every complete entry to `each`.
pub fn read_new(
    files: &[(PathBuf, Format)],
    previous: Option<&Marks>,
    from_start: bool,
    each: &mut dyn FnMut(Entry<'_>),
) -> Result<Progress, Error> {
    let mut candidates = Vec::new();
    for (path, format) in files {
        let file = File::open(path).map_err(|e| cannot_read(path, &e))?;
        let meta = file.metadata().map_err(|e| cannot_read(path, &e))?;
        candidates.push(Candidate {
            path: path.clone(),
            format: *format,
            file,
            key: (meta.dev(), meta.ino()),
            len: meta.len(),
            mtime: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        });
    }
    // Rotated files are older: finish them before their successors.
    candidates.sort_by(|a, b| a.mtime.cmp(&b.mtime).then(a.path.cmp(&b.path)));

    // Which marks still hold: the same file, not truncated or replaced.
    let mut intact = HashMap::new();
    if let Some(previous) = previous {
        for c in &mut candidates {
            if let Some(mark) = previous.get(&c.key) {
                let same = c.len >= mark.offset
                    && c.len >= mark.fingerprint_len
                    && fingerprint(&mut c.file, mark.fingerprint_len)
                        .is_ok_and(|f| f == mark.fingerprint);
                intact.insert(c.key, same);
            }
        }
    }

    let mut read = Progress::default();
    for c in &mut candidates {
        let start = match previous {
            None if from_start => 0,
            None => c.len,
            Some(previous) => match previous.get(&c.key) {
                Some(mark) if intact[&c.key] => mark.offset,
                Some(_) => 0,
                // A new file that begins like a file we were reading, which
                // was since truncated or is gone, is its copy (copytruncate)
                // or the same file under a new identity: go on from the mark.
                None => previous
                    .iter()
                    .filter(|(key, _)| !intact.get(*key).copied().unwrap_or(false))
                    .find(|(_, mark)| {
                        c.len >= mark.offset
                            && c.len >= mark.fingerprint_len
                            && fingerprint(&mut c.file, mark.fingerprint_len)
                                .is_ok_and(|f| f == mark.fingerprint)
                    })
                    .map_or(0, |(_, mark)| mark.offset),
            },
        };
        let end = read_from(c, start, each)?;
        if end > start {
            read.files += 1;
            read.bytes += end - start;
        }
        let fingerprint_len = c.len.min(FINGERPRINT_LEN);
        let fingerprint =
            fingerprint(&mut c.file, fingerprint_len).map_err(|e| cannot_read(&c.path, &e))?;
        read.marks.insert(
            c.key,
            Mark {
                offset: end,
                fingerprint_len,
                fingerprint,
            },
        );
    }
    Ok(read)
}

/// Parses `c` from `start` to its end as it is now; returns where the last
/// complete entry ended.
fn read_from(c: &mut Candidate, start: u64, each: &mut dyn FnMut(Entry<'_>)) -> Result<u64, Error> {
    c.file
        .seek(SeekFrom::Start(start))
        .map_err(|e| cannot_read(&c.path, &e))?;
    let mut offset = start;
    // Read straight into the buffer after what is left of the previous read,
    // so the bytes are copied once, by the kernel, and only a partial entry
    // moves to the front.
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    loop {
        if buf.len() - filled < CHUNK / 2 {
            buf.resize(filled + CHUNK, 0);
        }
        let n = c
            .file
            .read(&mut buf[filled..])
            .map_err(|e| cannot_read(&c.path, &e))?;
        if n == 0 {
            break;
        }
        filled += n;
        let mut used = c.format.parse(&buf[..filled], each);
        if filled - used > MAX_ENTRY {
            // One entry larger than we hold: skip to the next line.
            used += memchr::memchr(b'\n', &buf[used..filled]).map_or(filled - used, |p| p + 1);
        }
        offset += used as u64;
        buf.copy_within(used..filled, 0);
        filled -= used;
    }
    Ok(offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stay_linear_on_hostile_patterns() {
        // Exponential backtracking would never finish this one.
        let pattern = "*a".repeat(40) + "b";
        let name = "a".repeat(200);
        assert!(!glob_match(pattern.as_bytes(), name.as_bytes()));
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"a*", b"a"));
        assert!(!glob_match(b"a?", b"a"));
        assert!(glob_match(b"*.sql.gz", b"app-2026.sql.gz"));
        assert!(!glob_match(b"*.sql", b"app.sql.gz"));
    }

    #[test]
    fn globs_match_names() {
        assert!(glob_match(
            b"postgresql-*.log",
            b"postgresql-2026-11-25.log"
        ));
        assert!(glob_match(b"*.csv", b"a.csv"));
        assert!(!glob_match(b"*.csv", b"a.json"));
        assert!(glob_match(b"log.?", b"log.1"));
    }
}
