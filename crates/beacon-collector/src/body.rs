//! The request body of an ingest: content type and encoding checks, the size limit on
//! the wire and the size limit after gunzip.

use std::io::{self, Read};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::{Bytes, BytesMut};
use flate2::bufread::GzDecoder;
use http_body_util::{BodyExt, LengthLimitError};
use tower_http::timeout::TimeoutError;

use crate::config::{MAX_DECODED_BODY, MAX_WIRE_BODY};
use crate::error::ApiError;

/// An oversized body is read and thrown away up to this many bytes before the 413 is sent:
/// an HTTP/1.1 client still writing its body would otherwise see the connection reset
/// instead of the answer. Beyond it the connection is simply closed.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How the body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// Accepts `application/json`, with or without a UTF-8 charset parameter.
pub(crate) fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType("no Content-Type".into()));
    };
    let refuse = || ApiError::UnsupportedMediaType(format!("{value:?}"));
    let text = value.to_str().map_err(|_| refuse())?;
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(refuse());
    }
    for param in parts {
        let (name, val) = param.split_once('=').unwrap_or((param, ""));
        let val = val.trim().trim_matches('"');
        let utf8 = val.eq_ignore_ascii_case("utf-8") || val.eq_ignore_ascii_case("utf8");
        if name.trim().eq_ignore_ascii_case("charset") && !utf8 {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Reads `Content-Encoding`: none, `identity`, `gzip` or `x-gzip`.
pub(crate) fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::UnsupportedEncoding(format!("{value:?}")))?
        .trim();
    if text.is_empty() || text.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else {
        Err(ApiError::UnsupportedEncoding(text.to_owned()))
    }
}

/// Collects the body, refusing it as soon as it passes [`MAX_WIRE_BODY`] bytes.
pub(crate) async fn read_limited(headers: &HeaderMap, mut body: Body) -> Result<Bytes, ApiError> {
    let too_large = ApiError::BodyTooLarge {
        limit: MAX_WIRE_BODY,
    };
    if let Some(declared) = declared_length(headers).filter(|&n| n > MAX_WIRE_BODY as u64) {
        if declared <= DRAIN_LIMIT {
            drain(body, 0).await;
        }
        return Err(too_large);
    }
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| body_error(error, MAX_WIRE_BODY))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > MAX_WIRE_BODY {
            drain(body, (buf.len() + data.len()) as u64).await;
            return Err(too_large);
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Reads a small body whole, refusing it past `limit` bytes, with ingest's refusals.
pub(crate) async fn read_small(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|error| body_error(error, limit))
}

/// Why a body could not be read: the listener's body deadline (`beacon-listener`) ends it
/// with a `TimeoutError`, and `to_bytes` past its limit with a `LengthLimitError`.
fn body_error(error: axum::Error, limit: usize) -> ApiError {
    let error = error.into_inner();
    if caused_by::<TimeoutError>(&*error) {
        ApiError::BodyTimeout
    } else if caused_by::<LengthLimitError>(&*error) {
        ApiError::BodyTooLarge { limit }
    } else {
        ApiError::BodyRead(error.to_string())
    }
}

fn caused_by<T: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(error), |error| error.source()).any(|error| error.is::<T>())
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads and discards the rest of an oversized body, bounded in bytes and time.
async fn drain(mut body: Body, mut seen: u64) {
    let discard = async {
        while seen <= DRAIN_LIMIT {
            match body.frame().await {
                Some(Ok(frame)) => {
                    seen += frame.data_ref().map_or(0, |data| data.len() as u64);
                }
                Some(Err(_)) | None => break,
            }
        }
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, discard).await.is_err() {
        tracing::debug!("gave up draining an oversized body");
    }
}

/// Undoes the wire encoding. Gunzip stops one byte past [`MAX_DECODED_BODY`], so a
/// compressed bomb never costs more than that much memory.
///
/// A body is exactly one gzip member. RFC 1952 allows several members back to back, but
/// no node sends them; bytes after the first member (another member or garbage) are
/// refused rather than silently dropped, so what is stored is all that was sent.
pub fn decode(wire: Bytes, encoding: Encoding) -> Result<Bytes, ApiError> {
    match encoding {
        Encoding::Identity => Ok(wire),
        Encoding::Gzip => gunzip(&wire),
    }
}

fn gunzip(wire: &[u8]) -> Result<Bytes, ApiError> {
    // The buffered decoder consumes exactly its member, so what it leaves is what follows.
    let mut decoder = GzDecoder::new(wire);
    let first_guess = wire.len().saturating_mul(4);
    let decoded = read_at_most(&mut decoder, MAX_DECODED_BODY + 1, first_guess)
        .map_err(ApiError::InvalidGzip)?;
    if decoded.len() > MAX_DECODED_BODY {
        return Err(ApiError::DecodedTooLarge {
            limit: MAX_DECODED_BODY,
        });
    }
    let rest = decoder.into_inner();
    if !rest.is_empty() {
        return Err(ApiError::InvalidGzip(std::io::Error::other(after_member(
            rest,
        ))));
    }
    Ok(Bytes::from(decoded))
}

/// Reads `reader` to its end, or up to `limit` bytes, into a buffer that never reserves
/// more than `limit`: `read_to_end` doubles its buffer, so a body just past half the limit
/// would hold twice the limit (found by the `gzip_body` fuzz target).
fn read_at_most(reader: &mut impl Read, limit: usize, first_guess: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(first_guess.min(limit));
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let room = limit - out.len();
        if room == 0 {
            return Ok(out);
        }
        let want = room.min(chunk.len());
        let n = match reader.read(&mut chunk[..want]) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if out.capacity() - out.len() < n {
            // Double, but never past `limit`; `n <= room`, so the chunk always fits.
            out.reserve_exact(out.capacity().max(n).min(room));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Names what follows the gzip member: another member, or garbage.
fn after_member(rest: &[u8]) -> String {
    if rest.starts_with(&[0x1f, 0x8b]) {
        "a body must be one gzip member, another member follows the first".to_owned()
    } else {
        format!("{} bytes after the end of the gzip member", rest.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(name, HeaderValue::from_str(value).expect("test header"));
        map
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(data).expect("gzip in memory");
        enc.finish().expect("gzip in memory")
    }

    #[test]
    fn json_with_utf8_charset_is_accepted() {
        for value in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(
                check_content_type(&headers(header::CONTENT_TYPE, value)).is_ok(),
                "{value}"
            );
        }
    }

    #[test]
    fn other_types_and_charsets_are_refused() {
        for value in [
            "text/plain",
            "application/jsonx",
            "application/json; charset=latin1",
        ] {
            let err = check_content_type(&headers(header::CONTENT_TYPE, value)).unwrap_err();
            assert_eq!(err.code(), "UNSUPPORTED_MEDIA_TYPE", "{value}");
        }
        let err = check_content_type(&HeaderMap::new()).unwrap_err();
        assert!(err.to_string().contains("no Content-Type"));
    }

    #[test]
    fn encodings() {
        assert_eq!(
            content_encoding(&HeaderMap::new()).unwrap(),
            Encoding::Identity
        );
        let gz = headers(header::CONTENT_ENCODING, "GZIP");
        assert_eq!(content_encoding(&gz).unwrap(), Encoding::Gzip);
        let br = headers(header::CONTENT_ENCODING, "br");
        assert_eq!(
            content_encoding(&br).unwrap_err().code(),
            "UNSUPPORTED_ENCODING"
        );
    }

    #[test]
    fn gunzip_round_trip_and_limit() {
        let ok = decode(Bytes::from(gzip(b"{\"a\":1}")), Encoding::Gzip).unwrap();
        assert_eq!(&ok[..], b"{\"a\":1}");
        let exact = vec![b' '; MAX_DECODED_BODY];
        assert_eq!(
            decode(Bytes::from(gzip(&exact)), Encoding::Gzip)
                .unwrap()
                .len(),
            MAX_DECODED_BODY
        );
        let over = vec![b' '; MAX_DECODED_BODY + 1];
        let err = decode(Bytes::from(gzip(&over)), Encoding::Gzip).unwrap_err();
        assert_eq!(err.code(), "DECODED_BODY_TOO_LARGE");
    }

    #[test]
    fn gunzip_never_reserves_past_the_limit() {
        // Just past half the limit, where doubling the buffer would reserve twice the limit.
        for len in [
            MAX_DECODED_BODY / 2 + 1,
            MAX_DECODED_BODY,
            MAX_DECODED_BODY + 1,
        ] {
            let wire = gzip(&vec![b' '; len]);
            let mut decoder = GzDecoder::new(&wire[..]);
            let decoded = read_at_most(&mut decoder, MAX_DECODED_BODY + 1, 1000).unwrap();
            assert_eq!(decoded.len(), len);
            assert!(
                decoded.capacity() <= MAX_DECODED_BODY + 1,
                "{len} bytes decoded into a buffer of {}",
                decoded.capacity()
            );
        }
    }

    #[test]
    fn corrupt_gzip_is_named() {
        let mut data = gzip(b"{\"uuid\":\"x\"}");
        let mid = data.len() / 2;
        data[mid..].fill(0xff);
        let err = decode(Bytes::from(data), Encoding::Gzip).unwrap_err();
        assert_eq!(err.code(), "INVALID_GZIP");
        assert!(err.to_string().contains("gzip"));
    }
}
