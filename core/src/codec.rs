//! Length-prefixed big-endian reading and writing shared by the binary formats.

/// Why a field could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ends inside the named field.
    #[error("truncated in field `{0}`")]
    Truncated(&'static str),
    /// The named field's length prefix exceeds its limit.
    #[error("field `{0}` is longer than allowed")]
    TooLong(&'static str),
    /// The named field does not hold a valid value.
    #[error("field `{0}` is invalid")]
    Invalid(&'static str),
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Largest variable-length field accepted anywhere (16 MiB).
pub const MAX_FIELD_LEN: usize = 16 << 20;

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn take(&mut self, len: usize, field: &'static str) -> Result<&'a [u8], CodecError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CodecError::Truncated(field))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn vec8(&mut self, field: &'static str) -> Result<&'a [u8], CodecError> {
        let len = self.u8(field)? as usize;
        self.take(len, field)
    }

    pub(crate) fn vec32(&mut self, field: &'static str) -> Result<&'a [u8], CodecError> {
        let len = self.u32(field)? as usize;
        if len > MAX_FIELD_LEN {
            return Err(CodecError::TooLong(field));
        }
        self.take(len, field)
    }

    pub(crate) fn string8(&mut self, field: &'static str) -> Result<String, CodecError> {
        String::from_utf8(self.vec8(field)?.to_vec()).map_err(|_| CodecError::Invalid(field))
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn finish(self) -> Result<(), CodecError> {
        match self.bytes.len() - self.pos {
            0 => Ok(()),
            n => Err(CodecError::Trailing(n)),
        }
    }
}

/// Append `bytes` with a one-byte length; callers guarantee `bytes.len() <= 255`.
pub(crate) fn put_vec8(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len().min(255);
    out.push(len as u8);
    out.extend_from_slice(&bytes[..len]);
}

/// Append `bytes` with a four-byte length.
pub(crate) fn put_vec32(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}
