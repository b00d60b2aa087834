//! A tiny framing shared by targets whose input is several byte strings:
//! each chunk is a big-endian `u16` length and that many bytes. A short last
//! chunk takes whatever is left, so every input splits into some chunks.

/// Reads a program input front to back; reads past the end give zeros and
/// empty strings, so every input is a whole program.
pub struct Program<'a> {
    /// What is left to read.
    pub data: &'a [u8],
}

impl<'a> Program<'a> {
    /// A program over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Program { data }
    }

    /// The next byte, or 0.
    pub fn byte(&mut self) -> u8 {
        let (first, rest) = self
            .data
            .split_first()
            .map_or((0, &[][..]), |(f, r)| (*f, r));
        self.data = rest;
        first
    }

    /// The next big-endian `u16`.
    pub fn u16(&mut self) -> usize {
        u16::from_be_bytes([self.byte(), self.byte()]) as usize
    }

    /// A byte string after a one-byte length (shorter at the end).
    pub fn short_bytes(&mut self) -> Vec<u8> {
        let len = self.byte() as usize;
        self.take(len)
    }

    /// A byte string after a big-endian `u16` length (shorter at the end).
    pub fn bytes(&mut self) -> Vec<u8> {
        let len = self.u16();
        self.take(len)
    }

    fn take(&mut self, len: usize) -> Vec<u8> {
        let (taken, rest) = self.data.split_at(len.min(self.data.len()));
        self.data = rest;
        taken.to_vec()
    }
}

/// Splits `data` into chunks (see the module docs).
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        rest = &rest[take..];
    }
    out
}

/// Joins chunks into the framing [`split`] reads.
pub fn join<T: AsRef<[u8]>>(chunks: &[T]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in chunks {
        let chunk = chunk.as_ref();
        let len = u16::try_from(chunk.len()).expect("seed chunk under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn join_then_split_round_trips() {
        let chunks: Vec<&[u8]> = vec![b"a", b"", b"xyz"];
        assert_eq!(super::split(&super::join(&chunks)), chunks);
        assert_eq!(super::split(&[0, 5, 1]), vec![&[1u8][..]]);
        assert!(super::split(&[7]).is_empty());
    }
}
