//! Guest memory as the host sees it during one host call: a bounds-checked view of linear memory.
//!
//! Every pointer and length a guest passes is an untrusted 32-bit number. Nothing in this crate
//! indexes guest memory except through [`GuestMemory`], and every method here checks the whole
//! range first, so a bad pointer becomes [`Errno::Fault`] for the guest, never a host panic.

use crate::types::Errno;

/// The most iovecs one `fd_read`/`fd_write`/`fd_pread`/`fd_pwrite` may pass. Stops a guest from
/// making the host allocate a huge descriptor list before any byte moves. POSIX's `IOV_MAX` is
/// 1024 on Linux; a longer list gets `EINVAL`, as it would there.
pub const MAX_IOVECS: u32 = 1024;

/// A guest's linear memory, borrowed for one host call.
#[derive(Debug)]
pub struct GuestMemory<'a> {
    bytes: &'a mut [u8],
}

/// One `ciovec`/`iovec`: a guest buffer given as pointer and length, not yet checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoVec {
    /// Guest address of the buffer.
    pub ptr: u32,
    /// Length of the buffer in bytes.
    pub len: u32,
}

impl<'a> GuestMemory<'a> {
    /// Wraps the bytes of a linear memory. A module without memory is an empty slice: every
    /// access then faults.
    pub fn new(bytes: &'a mut [u8]) -> Self {
        GuestMemory { bytes }
    }

    /// The memory's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the memory is empty (the module has no memory).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn range(&self, ptr: u32, len: u32) -> Result<std::ops::Range<usize>, Errno> {
        let start = ptr as usize;
        let end = start.checked_add(len as usize).ok_or(Errno::Fault)?;
        if end > self.bytes.len() {
            return Err(Errno::Fault);
        }
        Ok(start..end)
    }

    /// The guest bytes `[ptr, ptr + len)`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if any byte of the range is outside memory.
    pub fn slice(&self, ptr: u32, len: u32) -> Result<&[u8], Errno> {
        let range = self.range(ptr, len)?;
        Ok(&self.bytes[range])
    }

    /// The guest bytes `[ptr, ptr + len)`, writable.
    ///
    /// # Errors
    /// [`Errno::Fault`] if any byte of the range is outside memory.
    pub fn slice_mut(&mut self, ptr: u32, len: u32) -> Result<&mut [u8], Errno> {
        let range = self.range(ptr, len)?;
        Ok(&mut self.bytes[range])
    }

    /// Copies `data` to guest address `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if the destination is outside memory; nothing is written then.
    pub fn write(&mut self, ptr: u32, data: &[u8]) -> Result<(), Errno> {
        let len = u32::try_from(data.len()).map_err(|_| Errno::Fault)?;
        self.slice_mut(ptr, len)?.copy_from_slice(data);
        Ok(())
    }

    /// Reads a little-endian `u32` at `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory.
    pub fn read_u32(&self, ptr: u32) -> Result<u32, Errno> {
        let bytes = self.slice(ptr, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// Reads a little-endian `u64` at `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory.
    pub fn read_u64(&self, ptr: u32) -> Result<u64, Errno> {
        let bytes = self.slice(ptr, 8)?;
        let mut buf = [0u8; 8];
        buf.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(buf))
    }

    /// Reads a `u16` at `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory.
    pub fn read_u16(&self, ptr: u32) -> Result<u16, Errno> {
        let bytes = self.slice(ptr, 2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    /// Reads a byte at `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory.
    pub fn read_u8(&self, ptr: u32) -> Result<u8, Errno> {
        Ok(self.slice(ptr, 1)?[0])
    }

    /// Writes a little-endian `u32` at `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory.
    pub fn write_u32(&mut self, ptr: u32, value: u32) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Writes a little-endian `u64` at `ptr`.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory.
    pub fn write_u64(&mut self, ptr: u32, value: u64) -> Result<(), Errno> {
        self.write(ptr, &value.to_le_bytes())
    }

    /// Reads `count` iovecs (8 bytes each: pointer, length) starting at `ptr`. Only the
    /// descriptors are checked here; each buffer is checked when it is used.
    ///
    /// # Errors
    /// [`Errno::Inval`] if `count` exceeds [`MAX_IOVECS`]; [`Errno::Fault`] if the descriptor
    /// array is outside memory.
    pub fn read_iovecs(&self, ptr: u32, count: u32) -> Result<Vec<IoVec>, Errno> {
        if count > MAX_IOVECS {
            return Err(Errno::Inval);
        }
        let table = self.slice(ptr, count * 8)?;
        Ok(table
            .chunks_exact(8)
            .map(|c| IoVec {
                ptr: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                len: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect())
    }

    /// Checks every iovec buffer lies inside memory and returns the total length.
    ///
    /// # Errors
    /// [`Errno::Fault`] if any buffer is outside memory; [`Errno::Inval`] if the total overflows
    /// 32 bits (the ABI returns the count as a `size`).
    pub fn check_iovecs(&self, iovs: &[IoVec]) -> Result<u32, Errno> {
        let mut total: u32 = 0;
        for iov in iovs {
            self.range(iov.ptr, iov.len)?;
            total = total.checked_add(iov.len).ok_or(Errno::Inval)?;
        }
        Ok(total)
    }

    /// Reads a guest string (`ptr`, `len`) that must be UTF-8, as WASI paths are.
    ///
    /// # Errors
    /// [`Errno::Fault`] if outside memory; [`Errno::Ilseq`] if it is not UTF-8.
    pub fn read_str(&self, ptr: u32, len: u32) -> Result<&str, Errno> {
        std::str::from_utf8(self.slice(ptr, len)?).map_err(|_| Errno::Ilseq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_past_the_end_fault_instead_of_panicking() {
        let mut bytes = vec![0u8; 16];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.slice(16, 1), Err(Errno::Fault));
        assert_eq!(mem.slice(u32::MAX, 2), Err(Errno::Fault));
        assert_eq!(mem.write_u64(9, 1), Err(Errno::Fault));
        assert_eq!(mem.read_u32(13), Err(Errno::Fault));
        assert!(
            mem.slice(16, 0).is_ok(),
            "an empty range at the end is in bounds"
        );
        assert_eq!(mem.write_u32(12, 0xdead_beef), Ok(()));
        assert_eq!(mem.read_u32(12), Ok(0xdead_beef));
    }

    #[test]
    fn iovec_lists_are_bounded_and_each_buffer_checked() {
        let mut bytes = vec![0u8; 64];
        let mut mem = GuestMemory::new(&mut bytes);
        assert_eq!(mem.read_iovecs(0, MAX_IOVECS + 1), Err(Errno::Inval));
        mem.write_u32(0, 32).unwrap();
        mem.write_u32(4, 8).unwrap();
        mem.write_u32(8, 60).unwrap();
        mem.write_u32(12, 8).unwrap();
        let iovs = mem.read_iovecs(0, 2).unwrap();
        assert_eq!(
            iovs,
            vec![IoVec { ptr: 32, len: 8 }, IoVec { ptr: 60, len: 8 }]
        );
        assert_eq!(mem.check_iovecs(&iovs), Err(Errno::Fault));
        assert_eq!(mem.check_iovecs(&iovs[..1]), Ok(8));
    }
}
