//! CRC32 helpers (IEEE polynomial, `crc32fast`). Checksums are stored as u32 little-endian.

/// CRC32 of `data`.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// CRC32 over several slices, as if concatenated.
pub(crate) fn crc32_parts(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Appends `crc32(dst[from..])` to `dst` as u32 LE.
#[cfg(test)]
pub(crate) fn append_crc_of_tail(dst: &mut Vec<u8>, from: usize) {
    let crc = crc32(dst.get(from..).unwrap_or(&[]));
    dst.extend_from_slice(&crc.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_parts() {
        // The standard CRC-32 check value.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32_parts(&[b"1234", b"56789"]), 0xcbf4_3926);
        let mut v = b"xx123456789".to_vec();
        append_crc_of_tail(&mut v, 2);
        assert_eq!(&v[11..], &0xcbf4_3926u32.to_le_bytes());
    }
}
