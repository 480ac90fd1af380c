//! Locating the uploaded file inside a `multipart/form-data` body without copying it: `nuget
//! push` sends the `.nupkg` as a form part, and the host stores that byte range of the body.
//!
//! Hand-written because the host needs the part's offsets in the body, which streaming multipart
//! parsers do not expose.

use memchr::memmem::Finder;
use sluice_plugin_sdk::io::ReadAt;
use sluice_plugin_sdk::Error;

/// How much of a part's headers is read at most.
const MAX_PART_HEADERS: u64 = 16 * 1024;
/// How much of the body is read at a time while looking for a boundary.
const SCAN_CHUNK: u32 = 64 * 1024;

/// The boundary of a `multipart/form-data` content type.
pub fn boundary(content_type: &str) -> Result<String, Error> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return Err(Error::invalid(format!(
            "a package push must be multipart/form-data with the .nupkg as a file part, not `{}`",
            mime.trim()
        )));
    }
    params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or_else(|| Error::invalid("the multipart/form-data content type has no boundary"))
}

/// The byte range (`offset`, `length`) of the first file part of the body (the first part when
/// none is named as a file).
pub fn file_part<R: ReadAt>(body: &R, boundary: &str) -> Result<(u64, u64), Error> {
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let malformed = |why: &str| Error::invalid(format!("the multipart/form-data body is malformed: {why}"));

    let first = find(body, &delimiter, 0).ok_or_else(|| malformed("no boundary found"))?;
    let mut pos = first + delimiter.len() as u64;
    let mut first_part = None;
    loop {
        let after = body.read_at(pos, 2);
        if after == b"--" {
            break;
        }
        if after != b"\r\n" {
            return Err(malformed("a boundary is not followed by a line break"));
        }
        let headers_start = pos + 2;
        let window = body.read_at(headers_start, MAX_PART_HEADERS as u32);
        let headers_len =
            Finder::new(b"\r\n\r\n").find(&window).ok_or_else(|| malformed("a part's headers do not end"))?;
        let headers = String::from_utf8_lossy(&window[..headers_len]).to_ascii_lowercase();
        let content_start = headers_start + headers_len as u64 + 4;
        let content_end = find(body, &next_delimiter, content_start)
            .ok_or_else(|| malformed("the last part has no closing boundary"))?;
        let range = (content_start, content_end - content_start);
        let is_file = headers.lines().any(|h| h.starts_with("content-disposition:") && h.contains("filename"));
        if is_file {
            return Ok(range);
        }
        first_part.get_or_insert(range);
        pos = content_end + next_delimiter.len() as u64;
    }
    first_part.ok_or_else(|| malformed("it has no parts"))
}

/// The offset of the first `needle` at or after `from`, reading the body in chunks that overlap
/// by the needle's length so a match across two chunks is found.
fn find<R: ReadAt>(body: &R, needle: &[u8], from: u64) -> Option<u64> {
    let finder = Finder::new(needle);
    let size = body.size();
    let mut at = from;
    while at < size {
        let chunk = body.read_at(at, SCAN_CHUNK);
        if chunk.is_empty() {
            return None;
        }
        if let Some(i) = finder.find(&chunk) {
            return Some(at + i as u64);
        }
        if at + (chunk.len() as u64) >= size {
            return None;
        }
        at += (chunk.len() - needle.len().min(chunk.len()) + 1) as u64;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(boundary: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = b"preamble\r\n".to_vec();
        for (disposition, content) in parts {
            body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    #[test]
    fn reads_the_boundary() {
        assert_eq!(boundary("multipart/form-data; boundary=\"abc-1\"").unwrap(), "abc-1");
        assert_eq!(boundary("Multipart/Form-Data;boundary=xyz").unwrap(), "xyz");
        assert!(boundary("application/octet-stream").unwrap_err().message.contains("multipart/form-data"));
        assert!(boundary("multipart/form-data").is_err());
    }

    #[test]
    fn finds_the_file_part_even_across_scan_chunks() {
        let package: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let body = form(
            "b0undary",
            &[
                ("form-data; name=\"note\"", b"hello"),
                ("form-data; name=\"package\"; filename=\"package.nupkg\"", &package),
            ],
        );
        let (offset, len) = file_part(&body, "b0undary").unwrap();
        assert_eq!(&body[offset as usize..(offset + len) as usize], &package[..]);
    }

    #[test]
    fn falls_back_to_the_first_part_and_rejects_malformed_bodies() {
        let body = form("b", &[("form-data; name=\"package\"", b"PK-data")]);
        let (offset, len) = file_part(&body, "b").unwrap();
        assert_eq!(&body[offset as usize..(offset + len) as usize], b"PK-data");
        assert!(file_part(&b"no boundary here".to_vec(), "b").is_err());
        let unterminated = b"--b\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nPK".to_vec();
        assert!(file_part(&unterminated, "b").unwrap_err().message.contains("closing boundary"));
        assert!(file_part(&form("b", &[]), "b").unwrap_err().message.contains("no parts"));
    }
}
