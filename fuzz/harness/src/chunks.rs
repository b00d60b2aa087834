//! A tiny framing shared by targets whose input is several byte strings:
//! each chunk is a big-endian `u16` length and that many bytes. A short last
//! chunk takes whatever is left, so every input splits into some chunks.

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
