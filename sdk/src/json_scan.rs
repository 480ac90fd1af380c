//! Finding string values in a JSON document read front to back, without holding the document:
//! a request body can be hundreds of megabytes of JSON around one huge string (npm's base64
//! tarball), more than a plugin's memory. The scanner walks the structure, reports where the
//! wanted strings lie (byte ranges of the body, handed to the host as an upload source), and
//! [`without_spans`] gives the rest of the document, small, for `serde_json` to parse normally.
//!
//! The scanner checks only what it needs to find its way (brackets, strings, nesting); the rest of
//! the document, parsed by `serde_json`, is where malformed JSON is refused.

use std::io::{self, Read};

use crate::io::BlobReader;
use crate::io::ReadAt;

/// One step of the path to a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(u64),
}

impl Segment {
    pub fn key(&self) -> Option<&str> {
        match self {
            Segment::Key(k) => Some(k),
            Segment::Index(_) => None,
        }
    }
}

/// Where a string value's content lies in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringSpan {
    /// The path to the value (`_attachments`, `name-1.0.0.tgz`, `data`).
    pub path: Vec<Segment>,
    /// Offset of the content's first byte, just after the opening quote.
    pub start: u64,
    /// Length of the content as written (escapes not decoded), without the quotes.
    pub len: u64,
    /// Whether the content holds backslash escapes (then it is not the raw text it stands for).
    pub escaped: bool,
}

/// Deepest nesting followed (serde_json's own default), so a hostile document cannot exhaust the
/// plugin's stack.
const MAX_DEPTH: usize = 128;
/// Longest object key read; keys are held in memory to compare paths.
const MAX_KEY: usize = 64 * 1024;
const BUF: usize = 64 * 1024;

/// Walks the JSON document from `reader`. For each string value whose path `wanted` accepts,
/// `content` gets its raw bytes in pieces (with the path), and its span is returned.
pub fn scan_strings<R: Read>(
    reader: R,
    mut wanted: impl FnMut(&[Segment]) -> bool,
    mut content: impl FnMut(&[Segment], &[u8]),
) -> io::Result<Vec<StringSpan>> {
    let mut s = Scanner { r: reader, buf: vec![0; BUF], at: 0, end: 0, pos: 0, path: Vec::new(), spans: Vec::new() };
    s.value(0, &mut wanted, &mut content)?;
    s.skip_ws()?;
    if s.peek()?.is_some() {
        return Err(s.bad("data after the end of the document"));
    }
    Ok(s.spans)
}

/// The document with each span's content cut out (its quotes kept, so the string is `""`).
pub fn without_spans<R: ReadAt>(doc: &BlobReader<R>, spans: &[StringSpan]) -> io::Result<Vec<u8>> {
    let mut sorted: Vec<&StringSpan> = spans.iter().collect();
    sorted.sort_by_key(|s| s.start);
    let kept = doc.size() - sorted.iter().map(|s| s.len).sum::<u64>();
    let mut out = Vec::with_capacity(kept as usize);
    let mut at = 0;
    for span in sorted {
        out.extend_from_slice(&doc.read_range(at, span.start - at)?);
        at = span.start + span.len;
    }
    out.extend_from_slice(&doc.read_range(at, doc.size() - at)?);
    Ok(out)
}

struct Scanner<R> {
    r: R,
    buf: Vec<u8>,
    at: usize,
    end: usize,
    /// Document offset of `buf[at]`.
    pos: u64,
    path: Vec<Segment>,
    spans: Vec<StringSpan>,
}

impl<R: Read> Scanner<R> {
    fn bad(&self, what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("not valid JSON at byte {}: {what}", self.pos))
    }

    fn fill(&mut self) -> io::Result<bool> {
        if self.at < self.end {
            return Ok(true);
        }
        self.at = 0;
        self.end = loop {
            match self.r.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        Ok(self.end > 0)
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(if self.fill()? { Some(self.buf[self.at]) } else { None })
    }

    fn bump(&mut self) {
        self.at += 1;
        self.pos += 1;
    }

    fn next(&mut self) -> io::Result<u8> {
        let b = self.peek()?.ok_or_else(|| self.bad("the document ends too early"))?;
        self.bump();
        Ok(b)
    }

    fn skip_ws(&mut self) -> io::Result<()> {
        while let Some(b) = self.peek()? {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.bump();
        }
        Ok(())
    }

    fn expect(&mut self, want: u8) -> io::Result<()> {
        self.skip_ws()?;
        if self.next()? != want {
            return Err(self.bad(&format!("expected `{}`", want as char)));
        }
        Ok(())
    }

    fn value(
        &mut self,
        depth: usize,
        wanted: &mut impl FnMut(&[Segment]) -> bool,
        content: &mut impl FnMut(&[Segment], &[u8]),
    ) -> io::Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.bad("nested too deeply"));
        }
        self.skip_ws()?;
        match self.peek()?.ok_or_else(|| self.bad("the document ends too early"))? {
            b'{' => {
                self.bump();
                self.skip_ws()?;
                if self.peek()? == Some(b'}') {
                    self.bump();
                    return Ok(());
                }
                loop {
                    self.expect(b'"')?;
                    let key = self.key()?;
                    self.expect(b':')?;
                    self.path.push(Segment::Key(key));
                    self.value(depth + 1, wanted, content)?;
                    self.path.pop();
                    self.skip_ws()?;
                    match self.next()? {
                        b',' => continue,
                        b'}' => return Ok(()),
                        _ => return Err(self.bad("expected `,` or `}`")),
                    }
                }
            }
            b'[' => {
                self.bump();
                self.skip_ws()?;
                if self.peek()? == Some(b']') {
                    self.bump();
                    return Ok(());
                }
                let mut index = 0;
                loop {
                    self.path.push(Segment::Index(index));
                    self.value(depth + 1, wanted, content)?;
                    self.path.pop();
                    index += 1;
                    self.skip_ws()?;
                    match self.next()? {
                        b',' => continue,
                        b']' => return Ok(()),
                        _ => return Err(self.bad("expected `,` or `]`")),
                    }
                }
            }
            b'"' => {
                self.bump();
                let start = self.pos;
                let keep = wanted(&self.path);
                let escaped = if keep {
                    let path = std::mem::take(&mut self.path);
                    let r = self.string(|piece| content(&path, piece));
                    self.path = path;
                    r?
                } else {
                    self.string(|_| {})?
                };
                if keep {
                    let len = self.pos - 1 - start;
                    self.spans.push(StringSpan { path: self.path.clone(), start, len, escaped });
                }
                Ok(())
            }
            _ => {
                // A number, `true`, `false` or `null`: up to the next delimiter; serde_json checks it.
                let mut n = 0;
                while let Some(b) = self.peek()? {
                    if matches!(b, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r') {
                        break;
                    }
                    self.bump();
                    n += 1;
                }
                if n == 0 {
                    return Err(self.bad("expected a value"));
                }
                Ok(())
            }
        }
    }

    /// Reads a string's content after its opening quote, through the closing quote, handing the
    /// raw bytes to `piece`. Returns whether it had escapes.
    fn string(&mut self, mut piece: impl FnMut(&[u8])) -> io::Result<bool> {
        let mut escaped = false;
        let mut after_backslash = false;
        loop {
            if !self.fill()? {
                return Err(self.bad("a string is not closed"));
            }
            let chunk = &self.buf[self.at..self.end];
            let mut i = 0;
            if after_backslash {
                // The escaped character (the `u` of `\uXXXX` is enough: its hex digits are plain).
                after_backslash = false;
                i = 1;
            }
            let stop = chunk[i..].iter().position(|&b| b == b'"' || b == b'\\').map(|p| p + i);
            match stop {
                Some(p) if chunk[p] == b'"' => {
                    piece(&chunk[..p]);
                    self.at += p + 1;
                    self.pos += p as u64 + 1;
                    return Ok(escaped);
                }
                Some(p) => {
                    escaped = true;
                    // Hand out through the backslash and the byte after it, if it is in this chunk.
                    let upto = (p + 2).min(chunk.len());
                    after_backslash = p + 1 == chunk.len();
                    piece(&chunk[..upto]);
                    self.at += upto;
                    self.pos += upto as u64;
                }
                None => {
                    piece(chunk);
                    self.pos += chunk.len() as u64;
                    self.at = self.end;
                }
            }
        }
    }

    /// An object key after its opening quote, decoded.
    fn key(&mut self) -> io::Result<String> {
        let mut raw = vec![b'"'];
        let mut too_long = false;
        self.string(|piece| {
            if raw.len() + piece.len() > MAX_KEY {
                too_long = true;
            } else {
                raw.extend_from_slice(piece);
            }
        })?;
        if too_long {
            return Err(self.bad("an object key is too long"));
        }
        raw.push(b'"');
        serde_json::from_slice(&raw).map_err(|e| self.bad(&format!("a key is not a valid string: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachments_data(path: &[Segment]) -> bool {
        matches!(path, [Segment::Key(a), Segment::Key(_), Segment::Key(d)] if a == "_attachments" && d == "data")
    }

    /// Reads in pieces of `n` bytes, so that every boundary case of the buffer is crossed.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.1.min(out.len()).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn finds_wanted_strings_and_cuts_them_out() {
        let doc = br#" {"name": "x", "versions": {"1.0.0": {"data": "no", "a": [1, true, null, {"k\"ey": "v"}]}},
            "_attachments": {"x-1.0.0.tgz": {"content_type": "application/octet-stream", "data": "aGVsbG8=", "length": 5}},
            "tail": -1.5e3 } "#;
        for step in [1, 2, 3, 7, 4096] {
            let mut seen = Vec::new();
            let spans =
                scan_strings(Trickle(doc, step), attachments_data, |_, piece| seen.extend_from_slice(piece)).unwrap();
            assert_eq!(seen, b"aGVsbG8=", "step {step}");
            let [span] = spans.as_slice() else { panic!("{spans:?}") };
            assert_eq!(&doc[span.start as usize..(span.start + span.len) as usize], b"aGVsbG8=");
            assert_eq!(span.path[1], Segment::Key("x-1.0.0.tgz".into()));
            assert!(!span.escaped);
            let rest = without_spans(&BlobReader::new(doc.to_vec()), &spans).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&rest).unwrap();
            assert_eq!(v["_attachments"]["x-1.0.0.tgz"]["data"], "");
            assert_eq!(v["versions"]["1.0.0"]["data"], "no");
            assert_eq!(v["versions"]["1.0.0"]["a"][3]["k\"ey"], "v");
        }
    }

    #[test]
    fn escapes_are_reported_and_crossed() {
        let doc = br#"{"_attachments": {"a\u0062": {"data": "x\\\"y\/z"}}}"#;
        for step in [1, 2, 5, 100] {
            let spans = scan_strings(Trickle(doc, step), attachments_data, |_, _| {}).unwrap();
            assert_eq!(spans.len(), 1);
            assert!(spans[0].escaped);
            assert_eq!(spans[0].path[1], Segment::Key("ab".into()));
            assert_eq!(&doc[spans[0].start as usize..(spans[0].start + spans[0].len) as usize], br#"x\\\"y\/z"#);
        }
    }

    #[test]
    fn refuses_broken_structure() {
        for bad in [&br#"{"a": "open"#[..], br#"{"a" 1}"#, br#"[1 2]"#, br#"{"a": 1} x"#, b"", br#"{"a":}"#] {
            assert!(scan_strings(bad, |_| true, |_, _| {}).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert!(scan_strings(deep.as_bytes(), |_| true, |_, _| {}).unwrap_err().to_string().contains("deeply"));
    }
}
