//! Opening the local files the tool is pointed at: regular files only, and a size limit for
//! the small ones read whole (configuration, rules, state).
//!
//! A FIFO with no writer would block a run forever and a device (`/dev/zero`) would be read
//! until memory runs out, so anything but a regular file is refused before it is opened.
//! Errors are [`std::io::Error`]s whose text says what the path is and what was expected;
//! callers wrap them with the file's name as for any other read error.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// Largest configuration file read.
pub const CONFIG_MAX: u64 = 1 << 20;
/// Largest rule file read.
pub const RULE_MAX: u64 = 1 << 20;
/// Largest state file read.
pub const STATE_MAX: u64 = 256 << 20;

/// What a path is, when it is not a regular file.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    "not a regular file"
}

/// Ok for a regular file; otherwise an error saying what it is.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] for folders, FIFOs, sockets and devices.
pub fn check_regular(meta: &Metadata) -> io::Result<()> {
    if meta.is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("is {}, expected a regular file", kind(meta)),
    ))
}

/// Opens `path` if it is a regular file (after following symbolic links).
///
/// # Errors
/// The error of `stat` or `open`, or [`check_regular`]'s.
pub fn open_regular(path: &Path) -> io::Result<File> {
    // Checked before opening: opening a FIFO blocks until a writer comes.
    check_regular(&std::fs::metadata(path)?)?;
    let f = File::open(path)?;
    // And on what was opened, in case the path changed in between.
    check_regular(&f.metadata()?)?;
    Ok(f)
}

/// Opens a regular file of at most `limit` bytes, to be read as a stream.
///
/// # Errors
/// [`open_regular`]'s errors, or [`io::ErrorKind::InvalidData`] when the file is larger than
/// `limit` (the message names the limit).
pub fn open_limited(path: &Path, limit: u64) -> io::Result<File> {
    let f = open_regular(path)?;
    let len = f.metadata()?.len();
    if len > limit {
        return Err(too_large(len, limit));
    }
    Ok(f)
}

fn too_large(size: u64, limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "is {}, larger than the {} this file may be",
            size_text(size),
            size_text(limit)
        ),
    )
}

/// Reads a regular file of at most `limit` bytes as UTF-8 text.
///
/// # Errors
/// [`open_regular`]'s errors, a read error, or [`io::ErrorKind::InvalidData`] when the file
/// is larger than `limit` (the message names the limit) or not UTF-8.
pub fn read_to_string(path: &Path, limit: u64) -> io::Result<String> {
    let f = open_regular(path)?;
    let too_large = |size: u64| too_large(size, limit);
    let len = f.metadata()?.len();
    if len > limit {
        return Err(too_large(len));
    }
    let mut text = String::with_capacity(len as usize);
    f.take(limit + 1).read_to_string(&mut text)?;
    if text.len() as u64 > limit {
        return Err(too_large(text.len() as u64));
    }
    Ok(text)
}

/// A size in bytes, KiB or MiB, as a limit is stated.
fn size_text(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_12_limits_and_kinds_are_named() {
        let dir = std::env::temp_dir().join(format!("local_file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, "abc").unwrap();
        assert_eq!(read_to_string(&small, 3).unwrap(), "abc");
        assert_eq!(
            read_to_string(&small, 2).unwrap_err().to_string(),
            "is 3 bytes, larger than the 2 bytes this file may be"
        );
        assert_eq!(
            read_to_string(&dir, 10).unwrap_err().to_string(),
            "is a folder, expected a regular file"
        );
        #[cfg(unix)]
        assert_eq!(
            read_to_string(Path::new("/dev/zero"), CONFIG_MAX)
                .unwrap_err()
                .to_string(),
            "is a device, expected a regular file"
        );
        assert_eq!(size_text(STATE_MAX), "256 MiB");
        assert_eq!(size_text(3 << 19), "1.5 MiB");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
