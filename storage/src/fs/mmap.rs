//! Read-only memory maps of immutable files. One of the two modules of the crate with `unsafe`
//! (the other is `head::series_lock`, a raw mutex that delegates to `parking_lot`'s).
//!
//! Invariants that make mapping sound: block files are written into `<id>.tmp/`, fsynced and
//! renamed, and never modified or truncated afterwards; a block directory is removed only when
//! the last `Arc<Block>` (and so the last map) is dropped. The safe API hands out `&[u8]`.

use crate::error::{Error, Result};
use std::fs::File;
use std::path::Path;

/// A read-only mapping of a whole file (an empty file maps to an empty slice).
pub(crate) struct Mmap {
    map: Option<memmap2::Mmap>,
}

impl Mmap {
    /// Maps `path` read-only.
    pub(crate) fn open(path: &Path) -> Result<Mmap> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .len();
        if len == 0 {
            return Ok(Mmap { map: None });
        }
        #[expect(unsafe_code, reason = "memmap2 maps are unsafe to create")]
        // SAFETY: the file is immutable: a block file was fully written and fsynced before its
        // directory was renamed into place; nothing opens it for writing afterwards, and it is
        // unlinked only after every reader of this map is gone.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::io(format!("cannot mmap {}", path.display()), e))?;
        Ok(Mmap { map: Some(map) })
    }

    /// The mapped bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl AsRef<[u8]> for Mmap {
    fn as_ref(&self) -> &[u8] {
        self.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_file_contents_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(Mmap::open(&p).unwrap().bytes(), b"hello");
        std::fs::write(&p, b"").unwrap();
        assert_eq!(Mmap::open(&p).unwrap().bytes(), b"");
        assert!(Mmap::open(&dir.path().join("missing")).is_err());
    }
}
