//! Format detection by magic bytes, never by file extension.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use arrowfeed_traits::{Error, Result};

/// The file formats arrowfeed reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Apache Parquet (`PAR1` at both ends).
    Parquet,
    /// Arrow IPC file format, also called Feather v2 (`ARROW1` at both ends).
    ArrowFile,
    /// Arrow IPC stream format (a sequence of length-prefixed messages, no magic).
    ArrowStream,
}

impl Format {
    /// The name used in `arrowfeed info` and its JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::ArrowFile => "arrow-file",
            Self::ArrowStream => "arrow-stream",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(crate) const PARQUET_MAGIC: &[u8; 4] = b"PAR1";
pub(crate) const ARROW_MAGIC: &[u8; 6] = b"ARROW1";
const CONTINUATION: [u8; 4] = [0xff; 4];

/// Detects the format of the file at `path` from its first bytes.
///
/// An IPC stream has no magic number; a file is taken as one when it starts with the
/// continuation marker `0xFFFFFFFF` followed by a plausible metadata length, or (the pre-1.0
/// layout) with a plausible little-endian metadata length directly.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read (a directory is reported as such), and
/// [`Error::Corrupt`] if it is empty or matches no format.
pub fn detect_format(path: &Path) -> Result<Format> {
    let (mut file, _) = open_regular_file(path)?;
    let mut head = [0u8; 8];
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    format_from_head(&head[..n]).map_err(|msg| Error::corrupt(path, msg))
}

/// Detects the format of the object behind `source` from its first bytes (one read of at most
/// 8 bytes), as [`detect_format`] does for a path.
///
/// # Errors
/// The source's read error, and [`Error::Corrupt`] naming the source if it is empty or matches
/// no format.
pub fn detect_format_of(source: &dyn arrowfeed_traits::ByteSource) -> Result<Format> {
    let size = crate::input::size_blocking(source)?;
    let head = crate::input::read_blocking(source, 0..size.min(8))?;
    format_from_head(&head).map_err(|msg| Error::corrupt(source.name(), msg))
}

fn format_from_head(head: &[u8]) -> std::result::Result<Format, String> {
    if head.is_empty() {
        return Err("the file is empty; expected Parquet or Arrow IPC data".into());
    }
    if head.starts_with(PARQUET_MAGIC) {
        return Ok(Format::Parquet);
    }
    if head.starts_with(ARROW_MAGIC) {
        return Ok(Format::ArrowFile);
    }
    let len_at = |i: usize| {
        head.get(i..i + 4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if head.starts_with(&CONTINUATION) {
        match len_at(4) {
            Some(l) if l >= 0 => return Ok(Format::ArrowStream),
            _ => {}
        }
    } else if let Some(l) = len_at(0) {
        // Legacy stream without continuation markers: a small positive length is followed by a
        // flatbuffer whose first bytes are a small root offset.
        if (8..1 << 24).contains(&l) && head.get(4..8).is_some_and(|b| b[2] == 0 && b[3] == 0) {
            return Ok(Format::ArrowStream);
        }
    }
    Err(format!(
        "not a Parquet or Arrow IPC file (starts with bytes {})",
        head.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Opens `path` for reading, refusing directories with a clear message; returns the file and
/// its size.
pub(crate) fn open_regular_file(path: &Path) -> Result<(File, u64)> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory, expected a Parquet or Arrow IPC file",
            ),
        ));
    }
    Ok((file, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide() {
        assert_eq!(format_from_head(b"PAR1\x15\x04"), Ok(Format::Parquet));
        assert_eq!(format_from_head(b"ARROW1\0\0"), Ok(Format::ArrowFile));
        assert_eq!(
            format_from_head(&[0xff, 0xff, 0xff, 0xff, 0x10, 0, 0, 0]),
            Ok(Format::ArrowStream)
        );
        assert_eq!(
            format_from_head(&[0x10, 0x01, 0, 0, 0x0c, 0, 0, 0]),
            Ok(Format::ArrowStream)
        );
        assert!(format_from_head(b"").unwrap_err().contains("empty"));
        assert!(
            format_from_head(b"hello wo")
                .unwrap_err()
                .contains("68656c6c")
        );
    }
}
