//! A streaming protobuf walker: tags, varints and length-delimited fields read
//! straight from a buffered file, skipping what is not wanted without reading
//! it into memory. Enough for v2fly's `geoip.dat` and `geosite.dat`, which are one
//! huge repeated field of entries.

use std::io::{BufRead, Seek, SeekFrom};

use super::SourceError;

pub const VARINT: u8 = 0;
pub const FIXED64: u8 = 1;
pub const LEN: u8 = 2;
pub const FIXED32: u8 = 5;

/// Upper bound for one length-delimited value we read into memory (a name, an
/// address, a domain); anything larger is skipped or rejected.
pub const MAX_INLINE: u64 = 64 * 1024;

pub struct Pb<R> {
    r: R,
    pos: u64,
    size: u64,
}

impl<R: BufRead + Seek> Pb<R> {
    /// `size` is the total length of the stream (the file size).
    pub fn new(r: R, size: u64) -> Self {
        Self { r, pos: 0, size }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn pos(&self) -> u64 {
        self.pos
    }

    pub fn at_end(&mut self) -> Result<bool, SourceError> {
        Ok(self.pos >= self.size)
    }

    fn byte(&mut self) -> Result<u8, SourceError> {
        let buf = self.r.fill_buf().map_err(io)?;
        let Some(&b) = buf.first() else {
            return Err(SourceError::Format(format!(
                "file ends in the middle of a field at byte {}",
                self.pos
            )));
        };
        self.r.consume(1);
        self.pos += 1;
        Ok(b)
    }

    pub fn varint(&mut self) -> Result<u64, SourceError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                break;
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SourceError::Format(format!(
            "bad varint at byte {}",
            self.pos
        )))
    }

    /// Reads a tag: (field number, wire type).
    pub fn tag(&mut self) -> Result<(u32, u8), SourceError> {
        let t = self.varint()?;
        let field = u32::try_from(t >> 3).unwrap_or(0);
        if field == 0 {
            return Err(SourceError::Format(format!(
                "field number 0 at byte {} (not a protobuf file?)",
                self.pos
            )));
        }
        Ok((field, (t & 7) as u8))
    }

    /// Reads a length prefix and checks the value fits before `end`.
    pub fn len(&mut self, end: u64) -> Result<u64, SourceError> {
        let n = self.varint()?;
        if self.pos.checked_add(n).is_none_or(|e| e > end) {
            return Err(SourceError::Format(format!(
                "field of {n} bytes at byte {} runs past its end (truncated?)",
                self.pos
            )));
        }
        Ok(n)
    }

    pub fn skip(&mut self, n: u64) -> Result<(), SourceError> {
        if self.pos + n > self.size {
            return Err(SourceError::Format(
                "file ends inside a field (truncated?)".into(),
            ));
        }
        self.r.seek(SeekFrom::Current(n as i64)).map_err(io)?;
        self.pos += n;
        Ok(())
    }

    /// Skips the value of a field of wire type `wire`, which must end before `end`.
    pub fn skip_value(&mut self, wire: u8, end: u64) -> Result<(), SourceError> {
        match wire {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => self.skip(8)?,
            FIXED32 => self.skip(4)?,
            LEN => {
                let n = self.len(end)?;
                self.skip(n)?;
            }
            w => {
                return Err(SourceError::Format(format!(
                    "unsupported wire type {w} at byte {}",
                    self.pos
                )));
            }
        }
        if self.pos > end {
            return Err(SourceError::Format("field runs past its message".into()));
        }
        Ok(())
    }

    /// Copies the next `n` bytes to `out` (streaming, 64 KB at a time).
    pub fn copy_to(&mut self, n: u64, out: &mut dyn std::io::Write) -> Result<(), SourceError> {
        if self.pos + n > self.size {
            return Err(SourceError::Format(
                "file ends inside a field (truncated?)".into(),
            ));
        }
        let mut left = n;
        let mut buf = [0u8; 64 * 1024];
        while left > 0 {
            let k = left.min(buf.len() as u64) as usize;
            std::io::Read::read_exact(&mut self.r, &mut buf[..k]).map_err(io)?;
            out.write_all(&buf[..k])
                .map_err(|e| SourceError::Io(e.to_string()))?;
            left -= k as u64;
        }
        self.pos += n;
        Ok(())
    }

    /// Reads a length-delimited value of at most [`MAX_INLINE`] bytes.
    pub fn bytes(&mut self, end: u64, out: &mut Vec<u8>) -> Result<(), SourceError> {
        let n = self.len(end)?;
        if n > MAX_INLINE {
            return Err(SourceError::Format(format!(
                "value of {n} bytes at byte {} is too large",
                self.pos
            )));
        }
        out.clear();
        out.resize(n as usize, 0);
        std::io::Read::read_exact(&mut self.r, out).map_err(io)?;
        self.pos += n;
        Ok(())
    }
}

fn io(e: std::io::Error) -> SourceError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        SourceError::Format("file ends in the middle of a field (truncated?)".into())
    } else {
        SourceError::Io(e.to_string())
    }
}

/// Encoding helpers, for tests and the test-data tools.
pub mod encode {
    pub fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    pub fn tag(field: u32, wire: u8, out: &mut Vec<u8>) {
        varint(u64::from(field) << 3 | u64::from(wire), out);
    }
    pub fn bytes(field: u32, b: &[u8], out: &mut Vec<u8>) {
        tag(field, super::LEN, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }
    pub fn uint(field: u32, v: u64, out: &mut Vec<u8>) {
        tag(field, super::VARINT, out);
        varint(v, out);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn walks_fields() {
        let mut m = Vec::new();
        encode::uint(1, 300, &mut m);
        encode::bytes(2, b"hello", &mut m);
        encode::tag(3, FIXED32, &mut m);
        m.extend_from_slice(&[1, 2, 3, 4]);
        encode::uint(4, u64::MAX, &mut m);
        let size = m.len() as u64;
        let mut pb = Pb::new(Cursor::new(m.clone()), size);
        assert_eq!(pb.tag().unwrap(), (1, VARINT));
        assert_eq!(pb.varint().unwrap(), 300);
        assert_eq!(pb.tag().unwrap(), (2, LEN));
        let mut b = Vec::new();
        pb.bytes(size, &mut b).unwrap();
        assert_eq!(b, b"hello");
        let (_, w) = pb.tag().unwrap();
        pb.skip_value(w, size).unwrap();
        assert_eq!(pb.tag().unwrap(), (4, VARINT));
        assert_eq!(pb.varint().unwrap(), u64::MAX);
        assert!(pb.at_end().unwrap());

        // Truncated inside the string.
        let cut = m[..6].to_vec();
        let mut pb = Pb::new(Cursor::new(cut), 6);
        pb.tag().unwrap();
        pb.varint().unwrap();
        pb.tag().unwrap();
        assert!(pb.bytes(6, &mut b).is_err());
    }
}
