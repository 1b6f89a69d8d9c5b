//! A regular file's bytes: fixed-size chunks in a sorted map, so that holes cost nothing.
//!
//! Why chunks and not one `Vec<u8>`: a guest that writes one byte at offset 500 MiB (within the
//! size quota) would otherwise make the host allocate and zero 500 MiB at once, and a file that
//! grows by appends would be copied every time the vector doubles. With chunks, memory follows
//! the bytes actually written (plus at most one chunk's slack per chunk), a hole reads as
//! zeros, and growth never copies what is already there.

use std::collections::BTreeMap;

/// Bytes per chunk: 64 KiB. Large enough that a sequential 64 KiB read or write is one copy,
/// small enough that a sparse file costs little per written region.
pub(crate) const CHUNK_BYTES: u64 = 64 * 1024;

/// The contents of one regular file.
#[derive(Debug, Default, Clone)]
pub(crate) struct FileData {
    /// The logical size: what `filestat` reports and the quota charges.
    size: u64,
    /// Chunk index → the chunk's bytes written so far. A chunk's vector may be shorter than
    /// [`CHUNK_BYTES`]; bytes past its end (and absent chunks) read as zeros. No vector ever
    /// holds bytes at or past `size`.
    chunks: BTreeMap<u64, Vec<u8>>,
}

impl FileData {
    /// The logical size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Copies bytes from `offset` into `buf`; returns how many (0 at or past the end).
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> usize {
        if offset >= self.size {
            return 0;
        }
        let available = self.size - offset;
        let n = usize::try_from(available).map_or(buf.len(), |a| a.min(buf.len()));
        let mut done = 0usize;
        while done < n {
            let pos = offset + done as u64;
            let index = pos / CHUNK_BYTES;
            let within = (pos % CHUNK_BYTES) as usize;
            let take = (CHUNK_BYTES as usize - within).min(n - done);
            let out = &mut buf[done..done + take];
            match self.chunks.get(&index) {
                Some(chunk) if within < chunk.len() => {
                    let have = (chunk.len() - within).min(take);
                    out[..have].copy_from_slice(&chunk[within..within + have]);
                    out[have..].fill(0);
                }
                _ => out.fill(0),
            }
            done += take;
        }
        n
    }

    /// Writes `data` at `offset`, growing the file if it ends past the current size. The caller
    /// has checked quotas; `offset + data.len()` does not overflow.
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let mut done = 0usize;
        while done < data.len() {
            let pos = offset + done as u64;
            let index = pos / CHUNK_BYTES;
            let within = (pos % CHUNK_BYTES) as usize;
            let take = (CHUNK_BYTES as usize - within).min(data.len() - done);
            let chunk = self.chunks.entry(index).or_default();
            let src = &data[done..done + take];
            if chunk.len() < within {
                // A hole before the write: zeros.
                grow(chunk, within);
            }
            // Overwrite what the chunk holds, then append the rest without zero-filling it
            // first (a sequential write copies each byte once).
            let overlap = chunk.len().min(within + take) - within;
            chunk[within..within + overlap].copy_from_slice(&src[..overlap]);
            if overlap < take {
                reserve(chunk, within + take);
                chunk.extend_from_slice(&src[overlap..]);
            }
            done += take;
        }
        self.size = self.size.max(offset + data.len() as u64);
    }

    /// Sets the logical size. Shrinking drops the bytes past the new end (so growing again
    /// reads zeros there); growing only moves the end, leaving a hole.
    pub(crate) fn set_size(&mut self, size: u64) {
        if size < self.size {
            // Keep chunks strictly below the new end; trim the one the end falls in.
            let first_dropped = size.div_ceil(CHUNK_BYTES);
            let _dropped = self.chunks.split_off(&first_dropped);
            if !size.is_multiple_of(CHUNK_BYTES) {
                let boundary = size / CHUNK_BYTES;
                if let Some(chunk) = self.chunks.get_mut(&boundary) {
                    chunk.truncate((size % CHUNK_BYTES) as usize);
                }
            }
        }
        self.size = size;
    }

    /// Host memory the chunks hold (their capacity), for tests that check sparse files stay
    /// small.
    #[cfg(test)]
    pub(crate) fn resident_bytes(&self) -> usize {
        self.chunks.values().map(Vec::capacity).sum()
    }
}

/// Extends `chunk` with zeros to `len` bytes, growing its capacity geometrically but never past
/// one chunk, so a chunk never holds more than [`CHUNK_BYTES`] of memory.
fn grow(chunk: &mut Vec<u8>, len: usize) {
    reserve(chunk, len);
    chunk.resize(len, 0);
}

/// Makes room for `len` bytes in `chunk`, growing geometrically but never past one chunk.
fn reserve(chunk: &mut Vec<u8>, len: usize) {
    if chunk.capacity() < len {
        let target = len.max(chunk.capacity() * 2).min(CHUNK_BYTES as usize);
        chunk.reserve_exact(target - chunk.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_read_as_zeros_and_cost_nothing() {
        let mut data = FileData::default();
        data.write(10 * CHUNK_BYTES + 5, b"xyz");
        assert_eq!(data.size(), 10 * CHUNK_BYTES + 8);
        assert!(data.resident_bytes() <= CHUNK_BYTES as usize);
        let mut buf = [1u8; 8];
        assert_eq!(data.read(10 * CHUNK_BYTES + 2, &mut buf), 6);
        assert_eq!(&buf[..6], b"\0\0\0xyz");
        assert_eq!(data.read(3, &mut buf), 8);
        assert_eq!(buf, [0u8; 8]);
        assert_eq!(data.read(data.size(), &mut buf), 0);
    }

    #[test]
    fn writes_across_chunk_boundaries_read_back() {
        let mut data = FileData::default();
        let bytes: Vec<u8> = (0..3 * CHUNK_BYTES as usize + 17)
            .map(|i| i as u8)
            .collect();
        data.write(CHUNK_BYTES - 7, &bytes);
        let mut back = vec![0u8; bytes.len()];
        assert_eq!(data.read(CHUNK_BYTES - 7, &mut back), bytes.len());
        assert_eq!(back, bytes);
    }

    #[test]
    fn shrinking_then_growing_reads_zeros_where_bytes_were() {
        let mut data = FileData::default();
        data.write(0, &[7u8; 3 * CHUNK_BYTES as usize]);
        data.set_size(CHUNK_BYTES + 10);
        data.set_size(3 * CHUNK_BYTES);
        let mut buf = vec![9u8; 3 * CHUNK_BYTES as usize];
        assert_eq!(data.read(0, &mut buf), buf.len());
        assert!(buf[..CHUNK_BYTES as usize + 10].iter().all(|&b| b == 7));
        assert!(buf[CHUNK_BYTES as usize + 10..].iter().all(|&b| b == 0));
        data.set_size(0);
        assert_eq!(data.resident_bytes(), 0);
    }

    #[test]
    fn a_write_that_overlaps_the_end_overwrites_then_extends() {
        let mut data = FileData::default();
        data.write(0, b"abc");
        data.write(2, b"XYZW");
        data.write(10, b"!");
        let mut buf = [9u8; 11];
        assert_eq!(data.read(0, &mut buf), 11);
        assert_eq!(&buf, b"abXYZW\0\0\0\0!");
    }

    #[test]
    fn small_appends_do_not_overallocate_a_chunk() {
        let mut data = FileData::default();
        for i in 0..CHUNK_BYTES {
            data.write(i, &[1]);
        }
        assert!(data.resident_bytes() <= CHUNK_BYTES as usize);
    }
}
