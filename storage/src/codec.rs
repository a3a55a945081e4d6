//! Little binary encoding used by WAL records and the binary columns of parts:
//! LEB128 varints, zig-zag signed ints, little-endian floats, length-prefixed bytes.

use crate::error::{Result, StorageError};

#[derive(Default, Debug)]
pub(crate) struct Enc {
    pub(crate) buf: Vec<u8>,
}

impl Enc {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Enc {
            buf: Vec::with_capacity(n),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub(crate) fn ivarint(&mut self, v: i64) {
        self.uvarint(((v << 1) ^ (v >> 63)) as u64);
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.uvarint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// Reads what [`Enc`] wrote; every read checks bounds and reports what was being read.
pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Dec { buf, pos: 0, what }
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn err(&self, reason: &str) -> StorageError {
        StorageError::decode(self.what, format!("{reason} at byte {}", self.pos))
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            if shift == 63 && b > 1 {
                return Err(self.err("varint overflow"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(self.err("varint overflow"));
            }
        }
    }

    pub(crate) fn ivarint(&mut self) -> Result<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn len(&mut self) -> Result<usize> {
        let n = self.uvarint()?;
        let rest = self.buf.len() - self.pos;
        if n > rest as u64 {
            return Err(self.err("length beyond end"));
        }
        Ok(n as usize)
    }

    pub(crate) fn f64(&mut self) -> Result<f64> {
        let b = self.fixed::<8>()?;
        Ok(f64::from_bits(u64::from_le_bytes(b)))
    }

    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.pos + N;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.err("truncated"))?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len()?;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map_err(|_| self.err("invalid utf-8"))
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        self.str().map(str::to_owned)
    }

    /// A count of items that each take at least `min_item_bytes`; bounds allocations on bad input.
    pub(crate) fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.uvarint()?;
        let rest = (self.buf.len() - self.pos) as u64;
        if n.saturating_mul(min_item_bytes.max(1) as u64) > rest {
            return Err(self.err("count beyond end"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn roundtrip(u in any::<u64>(), i in any::<i64>(), f in any::<f64>(), s in ".*", b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut e = Enc::default();
            e.uvarint(u); e.ivarint(i); e.f64(f); e.str(&s); e.bytes(&b);
            let mut d = Dec::new(&e.buf, "test");
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.ivarint().unwrap(), i);
            prop_assert_eq!(d.f64().unwrap().to_bits(), f.to_bits());
            prop_assert_eq!(d.str().unwrap(), s.as_str());
            prop_assert_eq!(d.bytes().unwrap(), &b[..]);
            prop_assert!(d.is_empty());
        }

        #[test]
        fn garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut d = Dec::new(&b, "test");
            let _ = d.uvarint();
            let _ = d.str();
            let _ = d.count(4);
            let _ = d.f64();
        }
    }
}
