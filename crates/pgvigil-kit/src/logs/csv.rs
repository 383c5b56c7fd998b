//! The csvlog format: one CSV record per entry, fields quoted with `"` and
//! `""` for a quote inside, records that may span lines. The columns this
//! plugin reads sit at the same places in PostgreSQL 12 to 18 (later
//! versions only add columns at the end).

use std::borrow::Cow;

use super::entry::{Entry, Origin, Severity};

const USER: usize = 1;
const CLIENT: usize = 4;
const SEVERITY: usize = 11;
const SQLSTATE: usize = 12;
const MESSAGE: usize = 13;
const NEEDED: usize = MESSAGE + 1;

/// One field, unquoted.
fn field(raw: &[u8]) -> Cow<'_, [u8]> {
    match raw {
        [b'"', inner @ .., b'"'] => {
            if memchr::memchr(b'"', inner).is_some() {
                let mut out = Vec::with_capacity(inner.len());
                let mut i = 0;
                while i < inner.len() {
                    out.push(inner[i]);
                    i += if inner[i] == b'"' { 2 } else { 1 };
                }
                Cow::Owned(out)
            } else {
                Cow::Borrowed(inner)
            }
        }
        other => Cow::Borrowed(other),
    }
}

/// csvlog writes the client as `host:port`; the host is what counts.
fn host_of(client: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    fn without_port(client: &[u8]) -> &[u8] {
        match client.iter().rposition(|b| *b == b':') {
            Some(at)
                if at + 1 < client.len() && client[at + 1..].iter().all(u8::is_ascii_digit) =>
            {
                &client[..at]
            }
            _ => client,
        }
    }
    match client {
        Cow::Borrowed(c) => Cow::Borrowed(without_port(c)),
        Cow::Owned(c) => Cow::Owned(without_port(&c).to_vec()),
    }
}

/// Bytes looked at a time for the commas, quotes and newlines.
const LANES: usize = 32;

/// A bit for each comma, quote or newline among the `LANES` bytes at the
/// start of `bytes` (fewer at the end of the buffer).
fn special_mask(bytes: &[u8]) -> u32 {
    if bytes.len() >= LANES {
        return mask_of(bytes);
    }
    // Padding bytes are zero, never one of the three.
    let mut chunk = [0u8; LANES];
    chunk[..bytes.len()].copy_from_slice(bytes);
    mask_of(&chunk)
}

/// SSE2, which every x86_64 has: three compares and a mask move per 16
/// bytes, where eight bytes at a time in a u64 were 37% of the whole read.
/// `bytes` holds at least `LANES` bytes.
#[cfg(target_arch = "x86_64")]
#[inline]
fn mask_of(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    assert!(bytes.len() >= LANES);
    // SAFETY: SSE2 is part of every x86_64 target; the two unaligned loads
    // read bytes 0..16 and 16..32 of `bytes`, which has at least 32.
    unsafe {
        let p = bytes.as_ptr().cast::<__m128i>();
        let hits = |v: __m128i| {
            _mm_or_si128(
                _mm_or_si128(
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b',' as i8)),
                    _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8)),
                ),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
            )
        };
        // Sixteen sign bits, one per byte, from each half.
        let low = _mm_movemask_epi8(hits(_mm_loadu_si128(p))) as u32;
        let high = _mm_movemask_epi8(hits(_mm_loadu_si128(p.add(1)))) as u32;
        // Opaque to the optimizer, which otherwise took the mask apart bit
        // by bit and put it together again, slower than the u64 it replaced.
        std::hint::black_box(low | (high << 16))
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn mask_of(bytes: &[u8]) -> u32 {
    portable_mask(bytes)
}

/// The same mask a byte at a time: other targets, and the tests' reference.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn portable_mask(bytes: &[u8]) -> u32 {
    let mut mask = 0u32;
    for (k, b) in bytes.iter().take(LANES).enumerate() {
        mask |= u32::from(matches!(b, b',' | b'"' | b'\n')) << k;
    }
    mask
}

/// Splits the record at the start of `buf` into its first fields; `None`
/// when the record is not complete yet. Returns the fields and the length
/// of the record with its newline.
///
/// One pass, `LANES` bytes at a time, visiting only the commas, quotes and
/// newlines found: a search call per field, or for the message and the rest
/// of the record, cost more than the fields. A doubled quote toggles twice.
fn record(buf: &[u8]) -> Option<([&[u8]; NEEDED], usize)> {
    let mut fields: [&[u8]; NEEDED] = [&[]; NEEDED];
    let mut n = 0;
    let mut start = 0;
    let mut quoted = false;
    let mut base = 0;
    while base < buf.len() {
        let mut mask = special_mask(&buf[base..]);
        while mask != 0 {
            let at = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            match buf[at] {
                b'"' => quoted = !quoted,
                _ if quoted => {}
                byte => {
                    if n < NEEDED {
                        fields[n] = &buf[start..at];
                        n += 1;
                    }
                    if byte == b'\n' {
                        return Some((fields, at + 1));
                    }
                    start = at + 1;
                }
            }
        }
        base += LANES;
    }
    None
}

/// Feeds every complete record in `buf` to `each`; returns the bytes consumed.
pub fn parse(buf: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> usize {
    let mut used = 0;
    while let Some((fields, len)) = record(&buf[used..]) {
        used += len;
        let Some(severity) = Severity::parse(&field(fields[SEVERITY])) else {
            continue;
        };
        fn optional(raw: &[u8]) -> Option<Cow<'_, [u8]>> {
            Some(field(raw)).filter(|f| !f.is_empty())
        }
        each(Entry {
            severity,
            sqlstate: optional(fields[SQLSTATE]),
            message: field(fields[MESSAGE]),
            origin: Origin::Fields {
                user: optional(fields[USER]),
                client: optional(fields[CLIENT]).map(host_of),
            },
        });
    }
    used
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_is_its_host() {
        for (client, host) in [
            (&b"10.0.0.9:54321"[..], &b"10.0.0.9"[..]),
            (b"::1:54321", b"::1"),
            (b"[local]", b"[local]"),
            (b"db.example:", b"db.example:"),
        ] {
            assert_eq!(&host_of(Cow::Borrowed(client))[..], host);
            assert_eq!(&host_of(Cow::Owned(client.to_vec()))[..], host);
        }
    }

    #[test]
    fn special_bytes_are_flagged_exactly() {
        let mut long = [b'x'; 40];
        long[0] = b',';
        long[31] = b'\n';
        long[32] = b'"';
        let cases: [&[u8]; 8] = [
            b"",
            b"abc",
            b"abcdefgh",
            b",\"\n,\"\n,\"",
            b"a,b\"c\nd",
            // Neighbours of the three, and bytes with the high bit set.
            &[0x2b, 0x2d, 0x21, 0x23, 0x09, 0x0b, 0xac, 0xa2],
            &[0x80, 0xff, 0x2c, 0x00, 0x7f, 0x8a, 0x22, 0x0a],
            &long,
        ];
        for bytes in cases {
            let mut expected = 0u32;
            for (k, b) in bytes.iter().take(LANES).enumerate() {
                if matches!(b, b',' | b'"' | b'\n') {
                    expected |= 1 << k;
                }
            }
            assert_eq!(special_mask(bytes), expected, "{bytes:?}");
            // The fallback of other targets agrees.
            assert_eq!(portable_mask(bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn records_with_quotes_commas_and_newlines() {
        let log = concat!(
            "2026-11-25 22:42:30.760 UTC,\"victim\",\"postgres\",7915,\"[local]\",6745f,1,\"authentication\",",
            "2026-11-25 22:42:30 UTC,3/1,0,FATAL,28P01,\"password authentication failed for user \"\"victim\"\"\",",
            "\"Connection matched pg_hba.conf line 1: \"\"local all victim scram-sha-256\"\"\",,,,,,,,\"\",\"client backend\",,0\n",
            "2026-11-25 22:42:31.011 UTC,\"postgres\",\"postgres\",7921,\"[local]\",6745f,2,\"SELECT\",",
            "2026-11-25 22:42:30 UTC,3/2,0,LOG,00000,\"duration: 201.817 ms  statement: select\n  pg_sleep(0.2)\",,,,,,,,,\"psql\",\"client backend\",,0\n",
            "2026-11-25 22:42:32.000 UTC,,,7000,,6745e,1,,2026-11-25 22:40:00 UTC,,0,LOG,00000,\"checkpoint start"
        );
        let mut found = Vec::new();
        let used = parse(log.as_bytes(), &mut |e| {
            let user = match &e.origin {
                Origin::Fields { user, .. } => user
                    .as_ref()
                    .map(|u| String::from_utf8_lossy(u).into_owned()),
                Origin::Prefix(_) | Origin::Json(_) => None,
            };
            found.push((
                e.severity,
                e.sqlstate.map(|s| String::from_utf8_lossy(&s).into_owned()),
                String::from_utf8_lossy(&e.message).into_owned(),
                user,
            ))
        });
        assert_eq!(
            found,
            vec![
                (
                    Severity::Fatal,
                    Some("28P01".into()),
                    "password authentication failed for user \"victim\"".into(),
                    Some("victim".into())
                ),
                (
                    Severity::Log,
                    Some("00000".into()),
                    "duration: 201.817 ms  statement: select\n  pg_sleep(0.2)".into(),
                    Some("postgres".into())
                ),
            ]
        );
        assert!(log[used..].starts_with("2026-11-25 22:42:32.000 UTC,,,7000"));
    }
}
