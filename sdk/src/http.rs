//! Building responses and reading URLs, the way every protocol handler needs them.

use crate::Response;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// A response with a body and a content type.
pub fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Response {
    Response { status, headers: vec![("content-type".into(), content_type.into())], body }
}

/// A JSON response.
pub fn json(status: u16, value: &serde_json::Value) -> Response {
    bytes(status, "application/json", serde_json::to_vec(value).expect("JSON values serialise"))
}

/// A plain-text response.
pub fn text(status: u16, body: impl Into<String>) -> Response {
    bytes(status, "text/plain; charset=utf-8", body.into().into_bytes())
}

/// An empty response.
pub fn empty(status: u16) -> Response {
    Response { status, headers: Vec::new(), body: Vec::new() }
}

impl Response {
    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }
}

/// Percent-decodes a path segment or query value (`+` stays `+`).
pub fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// Characters left alone when encoding a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path segment (`@scope/name` -> `%40scope%2Fname`).
pub fn encode_segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// The query string's pairs, percent-decoded, `+` read as a space.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(&k.replace('+', " ")), decode(&v.replace('+', " ")))
        })
        .collect()
}

/// Formats milliseconds since the epoch as RFC 3339 UTC (`2024-01-02T03:04:05.678Z`).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_escapes() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(encode_segment("@scope/name"), "%40scope%2Fname");
        assert_eq!(decode("%40scope%2fname"), "@scope/name");
        assert_eq!(query_pairs("text=a+b&size=20"), vec![("text".into(), "a b".into()), ("size".into(), "20".into())]);
    }
}
