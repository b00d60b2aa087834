//! A small JSON reader that keeps each value's byte offset and raw text.
//!
//! The validator needs what `serde_json::Value` drops: where a value starts
//! (to name its line) and the number text as written (`1.50`, `1e2`). The
//! input has already passed `serde_json`'s syntax check, but this reader
//! does not rely on it: malformed text gives `None`, never a panic.

use std::borrow::Cow;

/// Deepest nesting accepted (serde_json's own default limit is 128).
const MAX_DEPTH: usize = 128;

/// One JSON value borrowed from the text.
#[derive(Debug)]
pub(crate) enum Json<'t> {
    /// An object: members in input order (keys decoded).
    Object(Vec<(Cow<'t, str>, Json<'t>)>, usize),
    /// An array.
    Array(Vec<Json<'t>>, usize),
    /// A string: the raw token with its quotes.
    String(&'t str, usize),
    /// A number: the raw token.
    Number(&'t str, usize),
    /// `true` or `false` (which one does not matter to validation).
    Bool(usize),
    /// `null`.
    Null(usize),
}

impl<'t> Json<'t> {
    /// Byte offset of the value's first character in the parsed text.
    pub fn offset(&self) -> usize {
        match self {
            Json::Object(_, at)
            | Json::Array(_, at)
            | Json::String(_, at)
            | Json::Number(_, at)
            | Json::Bool(at)
            | Json::Null(at) => *at,
        }
    }

    /// The decoded string, for `Json::String`.
    pub fn as_str(&self) -> Option<Cow<'t, str>> {
        match self {
            Json::String(token, _) => decode(token),
            _ => None,
        }
    }
}

/// Parses one JSON value (surrounding whitespace allowed).
pub(crate) fn parse(text: &str) -> Option<Json<'_>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = reader.value(0)?;
    reader.skip_ws();
    (reader.pos == reader.bytes.len()).then_some(value)
}

/// Decodes a string token (quotes included).
pub(crate) fn decode(token: &str) -> Option<Cow<'_, str>> {
    let inner = token.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(token).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

struct Reader<'t> {
    text: &'t str,
    bytes: &'t [u8],
    pos: usize,
}

impl<'t> Reader<'t> {
    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json<'t>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.skip_ws();
        let start = self.pos;
        match *self.bytes.get(start)? {
            b'{' => {
                self.pos += 1;
                let mut members = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b'}') {
                    self.pos += 1;
                    return Some(Json::Object(members, start));
                }
                loop {
                    self.skip_ws();
                    let key = self.string_token()?;
                    self.skip_ws();
                    if self.bytes.get(self.pos) != Some(&b':') {
                        return None;
                    }
                    self.pos += 1;
                    let value = self.value(depth + 1)?;
                    members.push((decode(key)?, value));
                    self.skip_ws();
                    match self.bytes.get(self.pos)? {
                        b',' => self.pos += 1,
                        b'}' => {
                            self.pos += 1;
                            return Some(Json::Object(members, start));
                        }
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.bytes.get(self.pos) == Some(&b']') {
                    self.pos += 1;
                    return Some(Json::Array(items, start));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.bytes.get(self.pos)? {
                        b',' => self.pos += 1,
                        b']' => {
                            self.pos += 1;
                            return Some(Json::Array(items, start));
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => Some(Json::String(self.string_token()?, start)),
            b't' => self.literal("true", Json::Bool(start)),
            b'f' => self.literal("false", Json::Bool(start)),
            b'n' => self.literal("null", Json::Null(start)),
            b'-' | b'0'..=b'9' => {
                while matches!(
                    self.bytes.get(self.pos),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                Some(Json::Number(self.text.get(start..self.pos)?, start))
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, value: Json<'t>) -> Option<Json<'t>> {
        let end = self.pos + word.len();
        (self.text.get(self.pos..end)? == word).then(|| {
            self.pos = end;
            value
        })
    }

    /// The string token at the cursor, quotes included.
    fn string_token(&mut self) -> Option<&'t str> {
        let start = self.pos;
        if self.bytes.get(start) != Some(&b'"') {
            return None;
        }
        let mut i = start + 1;
        loop {
            match *self.bytes.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        self.text.get(start..self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_offsets_and_number_text() {
        let text = "{ \"a\": [1.50, 1e2, \"x\\\"y\"],\n \"b\": {\"c\": null, \"d\": true} }";
        let Some(Json::Object(members, 0)) = parse(text) else {
            panic!("object expected");
        };
        assert_eq!(members[0].0, "a");
        let Json::Array(items, at) = &members[0].1 else {
            panic!("array expected");
        };
        assert_eq!(&text[*at..*at + 1], "[");
        assert!(matches!(items[0], Json::Number("1.50", _)));
        assert!(matches!(items[1], Json::Number("1e2", _)));
        assert_eq!(items[2].as_str().unwrap(), "x\"y");
        assert_eq!(text[..members[1].1.offset()].matches('\n').count(), 1);
    }

    #[test]
    fn malformed_text_is_none() {
        for bad in [
            "{",
            "[1,",
            "{\"a\" 1}",
            "\"abc",
            "tru",
            "{} x",
            "{\"a\":1,}",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep).is_none());
    }
}
