//! The ingest body's decoding (`Content-Encoding: gzip` or none): one gzip member, at most
//! `MAX_DECODED_BODY` bytes after gunzip. The first input byte picks the body:
//! 0: the rest as sent (any bytes); 1: the rest gzipped; 2: the rest gzipped twice, back to
//! back; 3: the rest gzipped, then garbage; 4: the rest repeated past the limit, gzipped (a
//! bomb). Properties:
//! - decoding never holds more than the limit plus the decoder's own state and the body:
//!   a counting allocator measures the peak during each decode;
//! - a body without encoding is passed through untouched;
//! - one member decodes to exactly what was gzipped; a second member, trailing bytes and
//!   output past the limit are refused with their own code.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

use beacon_collector::fuzzing::{Encoding, decode};
use beacon_collector::{ApiError, MAX_DECODED_BODY};
use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use libfuzzer_sys::fuzz_target;

/// The decoder's own memory: the inflate state with its 32 KiB window, and the header's
/// name and comment, which are bounded by the body's length and counted with it.
const DECODER_STATE: usize = 64 * 1024;

/// Counts the bytes the Rust code of this process holds, and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let live = LIVE.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc` is passed on.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    match op % 5 {
        0 => as_sent(rest),
        1 => one_member(rest),
        2 => two_members(rest),
        3 => trailing_garbage(rest),
        _ => bomb(rest),
    }
});

/// Decodes `wire` as gzip, checking the peak memory of the decode.
fn gunzip(wire: &[u8]) -> Result<Bytes, ApiError> {
    let body = Bytes::copy_from_slice(wire);
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let result = decode(body, Encoding::Gzip);
    let held = PEAK.load(Ordering::Relaxed) - before;
    let bound = MAX_DECODED_BODY + 1 + DECODER_STATE + wire.len();
    assert!(
        held <= bound,
        "decoding {} bytes held {held} bytes at its peak, more than {bound}",
        wire.len()
    );
    result
}

fn as_sent(wire: &[u8]) {
    let identity = decode(Bytes::copy_from_slice(wire), Encoding::Identity).expect("identity");
    assert_eq!(&identity[..], wire, "a body without encoding is untouched");
    match gunzip(wire) {
        Ok(decoded) => {
            assert!(decoded.len() <= MAX_DECODED_BODY);
            assert_eq!(gunzip(&gzip(&decoded)).expect("re-gzipped"), decoded);
        }
        Err(error) => {
            let code = error.code();
            assert!(
                code == "INVALID_GZIP" || code == "DECODED_BODY_TOO_LARGE",
                "unexpected code {code}: {error}"
            );
        }
    }
}

fn one_member(data: &[u8]) {
    let decoded = gunzip(&gzip(data)).expect("one member within the limit decodes");
    assert_eq!(&decoded[..], data);
}

fn two_members(data: &[u8]) {
    let mut wire = gzip(data);
    wire.extend_from_slice(&gzip(data));
    let error = gunzip(&wire).expect_err("a second member is refused");
    assert_eq!(error.code(), "INVALID_GZIP");
    assert!(error.to_string().contains("another member"), "{error}");
}

fn trailing_garbage(data: &[u8]) {
    let mut wire = gzip(data);
    // Not gzip's magic, so it cannot be read as a second member.
    wire.push(b'x');
    wire.extend_from_slice(data);
    let error = gunzip(&wire).expect_err("bytes after the member are refused");
    assert_eq!(error.code(), "INVALID_GZIP");
    assert!(error.to_string().contains("bytes after the end"), "{error}");
}

fn bomb(unit: &[u8]) {
    let unit = if unit.is_empty() {
        b" ".as_slice()
    } else {
        unit
    };
    let decoded_len = (MAX_DECODED_BODY / unit.len() + 1) * unit.len();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for _ in 0..decoded_len / unit.len() {
        encoder.write_all(unit).expect("gzip in memory");
    }
    let wire = encoder.finish().expect("gzip in memory");
    let error = gunzip(&wire).expect_err("a body past the limit is refused");
    assert_eq!(error.code(), "DECODED_BODY_TOO_LARGE", "{error}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}
