//! The HTTP/1.1 the pull side of the distribution API needs, on a blocking stream: request heads
//! in, response heads out, persistent connections, and `Range`.
//!
//! Why not hyper: a layer body here is the export engine writing into the socket — segments from
//! a buffer, file bodies moved by `sendfile(2)` from the page cache — while a body in hyper is a
//! stream of byte buffers that user space fills. What remains is small, since the API is
//! read-only: GET and HEAD, no request bodies (a request that sends one is answered and the
//! connection closed rather than read further), no chunked responses (every length is known).
//! Request heads are parsed by `httparse`, the parser hyper itself uses.

use std::io::{Read, Write};
use std::ops::Range;
use std::time::Instant;

/// The largest request head accepted (request line and headers).
pub(crate) const MAX_HEAD_BYTES: usize = 64 << 10;
const MAX_HEADERS: usize = 64;

/// A request head.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The target's path, still percent-encoded.
    pub path: String,
    /// The target's query string, without `?`.
    pub query: String,
    /// Headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// `HTTP/1.0` (0) or `HTTP/1.1` (1).
    pub minor_version: u8,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked to keep the connection: HTTP/1.1 does unless it says `close`,
    /// HTTP/1.0 only when it says `keep-alive`.
    pub fn keep_alive(&self) -> bool {
        let connection = self.header("connection").unwrap_or("").to_ascii_lowercase();
        let says = |token: &str| connection.split(',').any(|t| t.trim() == token);
        match self.minor_version {
            0 => says("keep-alive"),
            _ => !says("close"),
        }
    }

    /// Whether a body follows the head: it is never read, so the connection cannot be reused.
    pub fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self
                .header("content-length")
                .is_some_and(|n| n.trim() != "0")
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| percent_decode(v))
    }
}

/// Why no request came.
#[derive(Debug)]
pub(crate) enum HeadError {
    /// The client closed the connection, or sent nothing before the deadline, between requests.
    Closed,
    /// The head outgrew [`MAX_HEAD_BYTES`] (431).
    TooLarge,
    /// Not HTTP (400).
    Malformed(String),
}

/// Reads request heads from a connection, keeping what the client sent past one head (a
/// pipelined request) for the next.
#[derive(Default)]
pub(crate) struct HeadReader {
    buffer: Vec<u8>,
}

impl HeadReader {
    /// The next request head; `set_deadline` is given the time left before each read, so a
    /// client that trickles its head in still has to finish by `deadline`.
    pub fn read(
        &mut self,
        stream: &mut impl Read,
        deadline: Instant,
        mut set_deadline: impl FnMut(std::time::Duration) -> std::io::Result<()>,
    ) -> Result<Request, HeadError> {
        loop {
            if !self.buffer.is_empty() {
                if let Some((request, used)) = parse(&self.buffer)? {
                    self.buffer.drain(..used);
                    return Ok(request);
                }
                if self.buffer.len() >= MAX_HEAD_BYTES {
                    return Err(HeadError::TooLarge);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || set_deadline(left).is_err() {
                return Err(self.cut_off());
            }
            let start = self.buffer.len();
            self.buffer.resize(start + (16 << 10), 0);
            let read = stream.read(&mut self.buffer[start..]);
            self.buffer.truncate(start + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Err(self.cut_off()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(self.cut_off()),
            }
        }
    }

    /// A connection that ended (or timed out) between requests is closed; mid-head, malformed.
    fn cut_off(&self) -> HeadError {
        if self.buffer.is_empty() {
            HeadError::Closed
        } else {
            HeadError::Malformed("the connection ended in the middle of a request head".into())
        }
    }
}

/// Parses one head from the start of `bytes`: the request and its length, or `None` when more
/// bytes are needed.
fn parse(bytes: &[u8]) -> Result<Option<(Request, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let target = request.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers = request
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok(Some((
        Request {
            method: request.method.unwrap_or("").to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            minor_version: request.version.unwrap_or(1),
        },
        used,
    )))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a `Range` header asks of a body of `size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// No range, or one this server answers with the whole body (several ranges, another unit).
    Whole,
    /// Bytes `start..end` (206).
    Part(Range<u64>),
    /// A range that starts past the end (416).
    Unsatisfiable,
}

/// Reads a `Range: bytes=A-B` / `bytes=A-` / `bytes=-N` header (RFC 9110 §14.1.2). Several
/// ranges get the whole body, which the RFC allows a server to send instead.
pub(crate) fn range(header: Option<&str>, size: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Whole;
    };
    let number = |s: &str| s.trim().parse::<u64>().ok();
    let part = match (first.trim().is_empty(), number(first), number(last)) {
        // The last N bytes.
        (true, _, Some(n)) if n > 0 => size.saturating_sub(n)..size,
        (true, _, _) => return RangeRequest::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => start..size,
        (false, Some(start), Some(end)) if end >= start => start..end.saturating_add(1).min(size),
        _ => return RangeRequest::Whole,
    };
    if part.start >= size {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Part(part)
}

/// A response head. The body, if any, is written after it by whoever built it.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub content_length: u64,
}

impl Head {
    pub fn new(status: u16, content_length: u64) -> Head {
        Head {
            status,
            headers: Vec::new(),
            content_length,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Head {
        self.headers.push((name, value.into()));
        self
    }

    /// The head as sent, with `Connection: close` when the connection ends after it.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let mut text = format!(
            "HTTP/1.1 {} {}\r\nContent-Length: {}\r\n",
            self.status,
            reason(self.status),
            self.content_length
        );
        for (name, value) in &self.headers {
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
            text.push_str("\r\n");
        }
        if close {
            text.push_str("Connection: close\r\n");
        }
        text.push_str("\r\n");
        text.into_bytes()
    }
}

/// Writes a head and a small body in one write: with the body separate, Nagle's algorithm would
/// hold it back until the client acknowledged the head.
pub(crate) fn send_small(
    out: &mut impl Write,
    head: &Head,
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let mut bytes = head.to_bytes(close);
    bytes.extend_from_slice(body);
    out.write_all(&bytes)?;
    out.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read_all(input: &[u8]) -> Vec<Result<Request, HeadError>> {
        let mut reader = HeadReader::default();
        let mut stream = input;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut out = Vec::new();
        loop {
            let next = reader.read(&mut stream, deadline, |_| Ok(()));
            let stop = next.is_err();
            out.push(next);
            if stop {
                return out;
            }
        }
    }

    #[test]
    fn pipelined_heads_are_read_one_by_one() {
        let got = read_all(
            b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nHEAD /v2/a/tags/list?n=2&last=b%2Fc HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        );
        let first = got[0].as_ref().unwrap();
        assert_eq!(
            (first.method.as_str(), first.path.as_str()),
            ("GET", "/v2/")
        );
        assert!(first.keep_alive());
        let second = got[1].as_ref().unwrap();
        assert_eq!(second.path, "/v2/a/tags/list");
        assert_eq!(second.query_param("last").as_deref(), Some("b/c"));
        assert_eq!(second.query_param("n").as_deref(), Some("2"));
        assert!(second.keep_alive());
        assert!(matches!(got[2], Err(HeadError::Closed)));
    }

    #[test]
    fn garbage_cut_heads_and_huge_heads_are_refused() {
        assert!(matches!(
            read_all(b"\x00\x01 nope\r\n\r\n")[0],
            Err(HeadError::Malformed(_))
        ));
        assert!(matches!(
            read_all(b"GET / HTTP/1.1\r\nHo")[0],
            Err(HeadError::Malformed(_))
        ));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD_BYTES + 10, b'a');
        assert!(matches!(read_all(&huge)[0], Err(HeadError::TooLarge)));
    }

    #[test]
    fn ranges_as_rfc_9110_reads_them() {
        let r = |h: &str| range(Some(h), 100);
        assert_eq!(r("bytes=0-9"), RangeRequest::Part(0..10));
        assert_eq!(r("bytes=90-"), RangeRequest::Part(90..100));
        assert_eq!(r("bytes=90-1000"), RangeRequest::Part(90..100));
        assert_eq!(r("bytes=-10"), RangeRequest::Part(90..100));
        assert_eq!(r("bytes=-1000"), RangeRequest::Part(0..100));
        assert_eq!(r("bytes=100-"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=-0"), RangeRequest::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), RangeRequest::Whole);
        assert_eq!(r("items=0-1"), RangeRequest::Whole);
        assert_eq!(r("bytes=5-1"), RangeRequest::Whole);
        assert_eq!(range(None, 100), RangeRequest::Whole);
        assert_eq!(range(Some("bytes=0-"), 0), RangeRequest::Unsatisfiable);
    }
}
