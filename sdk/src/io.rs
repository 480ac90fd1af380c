//! Reading a host [`Blob`](crate::Blob) (or any byte source) as `std::io::Read + Seek`, so that
//! `flate2`, `tar` and `zip` work on it directly.

use std::io::{self, Read, Seek, SeekFrom};

/// Random access to bytes: a host blob in the plugin, a `Vec<u8>` in native unit tests.
pub trait ReadAt {
    fn size(&self) -> u64;
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8>;
}

impl ReadAt for crate::Blob {
    fn size(&self) -> u64 {
        crate::Blob::size(self)
    }
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8> {
        self.read(offset, len)
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8> {
        let start = (offset.min(self.len() as u64)) as usize;
        let end = start.saturating_add(len as usize).min(self.len());
        self[start..end].to_vec()
    }
}

impl ReadAt for Vec<u8> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8> {
        self.as_slice().read_at(offset, len)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn size(&self) -> u64 {
        (**self).size()
    }
    fn read_at(&self, offset: u64, len: u32) -> Vec<u8> {
        (**self).read_at(offset, len)
    }
}

/// A buffered `Read + Seek` cursor over a [`ReadAt`]. Reads cross the plugin boundary in chunks
/// of [`BlobReader::CHUNK`] bytes, so small reads (tar headers, zip records) stay cheap.
pub struct BlobReader<R: ReadAt> {
    source: R,
    size: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<R: ReadAt> BlobReader<R> {
    pub const CHUNK: u32 = 64 * 1024;

    pub fn new(source: R) -> Self {
        let size = source.size();
        BlobReader { source, size, pos: 0, buf: Vec::new(), buf_start: 0 }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Reads `len` bytes at `offset` without moving the cursor.
    pub fn read_range(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "range past the end of the file"));
        }
        let mut out = Vec::with_capacity(len as usize);
        while (out.len() as u64) < len {
            let want = (len - out.len() as u64).min(u32::MAX as u64) as u32;
            let chunk = self.source.read_at(offset + out.len() as u64, want);
            if chunk.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than its size"));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// The whole content, for formats whose files are small by nature (a request body, go.mod).
    pub fn read_all(&self, limit: u64) -> io::Result<Vec<u8>> {
        if self.size > limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("larger than {limit} bytes")));
        }
        self.read_range(0, self.size)
    }
}

impl<R: ReadAt> Read for BlobReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || out.is_empty() {
            return Ok(0);
        }
        let in_buf = self.pos >= self.buf_start && self.pos < self.buf_start + self.buf.len() as u64;
        if !in_buf {
            self.buf = self.source.read_at(self.pos, Self::CHUNK);
            self.buf_start = self.pos;
            if self.buf.is_empty() {
                return Ok(0);
            }
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - at);
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: ReadAt> Seek for BlobReader<R> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// A reader that fails once more than `limit` bytes came through: decompression bombs and
/// oversized manifests stop at the limit instead of filling the plugin's memory.
pub struct LimitedReader<R> {
    inner: R,
    left: u64,
    what: &'static str,
}

impl<R: Read> LimitedReader<R> {
    pub fn new(inner: R, limit: u64, what: &'static str) -> Self {
        LimitedReader { inner, left: limit, what }
    }
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let cap = buf.len().min(self.left.saturating_add(1) as usize);
        let n = self.inner.read(&mut buf[..cap])?;
        if n as u64 > self.left {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} is over its size limit", self.what)));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_seeks_across_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut r = BlobReader::new(data.clone());
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, data);
        r.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[data.len() - 10..]);
        assert_eq!(r.read_range(70_000, 5).unwrap(), &data[70_000..70_005]);
        assert!(r.read_range(199_999, 2).is_err());
    }

    #[test]
    fn limited_reader_stops_at_the_limit() {
        let mut ok = Vec::new();
        LimitedReader::new(&[1u8; 10][..], 10, "x").read_to_end(&mut ok).unwrap();
        assert_eq!(ok.len(), 10);
        let err = LimitedReader::new(&[1u8; 11][..], 10, "manifest").read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("manifest is over its size limit"));
    }
}
