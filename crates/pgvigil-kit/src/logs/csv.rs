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

/// A flag (the byte's high bit) for each comma, quote or newline among the
/// eight bytes at the start of `bytes` (fewer at the end of the buffer).
/// Exact per byte: `(x & 0x7f) + 0x7f` carries into the high bit unless the
/// low bits are zero, and never into the next byte.
fn special_flags(bytes: &[u8]) -> u64 {
    const LOWS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let v = match bytes.first_chunk::<8>() {
        Some(word) => u64::from_le_bytes(*word),
        None => {
            let mut word = [0u8; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(word)
        }
    };
    let zero = |x: u64| !(((x & LOWS) + LOWS) | x) & !LOWS;
    // Padding bytes are zero, never one of the three.
    zero(v ^ (ONES * u64::from(b',')))
        | zero(v ^ (ONES * u64::from(b'"')))
        | zero(v ^ (ONES * u64::from(b'\n')))
}

/// Splits the record at the start of `buf` into its first fields; `None`
/// when the record is not complete yet. Returns the fields and the length
/// of the record with its newline.
fn record(buf: &[u8]) -> Option<([&[u8]; NEEDED], usize)> {
    let mut fields: [&[u8]; NEEDED] = [&[]; NEEDED];
    let mut n = 0;
    let mut start = 0;
    // The short fields before the message: eight bytes at a time, visiting
    // only the commas, quotes and newlines found (a call per field cost more
    // than the fields). A doubled quote toggles twice.
    let mut quoted = false;
    let mut base = 0;
    'fields: loop {
        if base >= buf.len() {
            return None;
        }
        let mut flags = special_flags(&buf[base..]);
        while flags != 0 {
            let at = base + (flags.trailing_zeros() / 8) as usize;
            flags &= flags - 1;
            if buf[at] == b'"' {
                quoted = !quoted;
            } else if !quoted {
                fields[n] = &buf[start..at];
                n += 1;
                start = at + 1;
                if buf[at] == b'\n' {
                    return Some((fields, start));
                }
                if n == MESSAGE {
                    break 'fields;
                }
            }
        }
        base += 8;
    }
    let mut i = start;
    // The message, often long: up to the quote not followed by another.
    if buf.get(i) == Some(&b'"') {
        let mut j = i + 1;
        loop {
            let q = memchr::memchr(b'"', &buf[j..])? + j;
            if buf.get(q + 1) == Some(&b'"') {
                j = q + 2;
            } else {
                i = q + 1;
                break;
            }
        }
    }
    let end = memchr::memchr2(b',', b'\n', &buf[i..])? + i;
    fields[MESSAGE] = &buf[start..end];
    if buf[end] == b'\n' {
        return Some((fields, end + 1));
    }
    Some((fields, end + 1 + rest_of_record(&buf[end + 1..])?))
}

/// The length of the rest of a record, from a field's start, with its
/// newline: the first newline after an even number of quotes (a doubled
/// quote counts twice, so only the field's own quotes change the parity).
/// Faster than splitting fields no one reads.
fn rest_of_record(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    let mut quotes = 0;
    loop {
        let nl = memchr::memchr(b'\n', &buf[from..])? + from;
        quotes += memchr::memchr_iter(b'"', &buf[from..nl]).count();
        if quotes % 2 == 0 {
            return Some(nl + 1);
        }
        from = nl + 1;
    }
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
        let cases: [&[u8]; 7] = [
            b"",
            b"abc",
            b"abcdefgh",
            b",\"\n,\"\n,\"",
            b"a,b\"c\nd",
            // Neighbours of the three, and bytes with the high bit set.
            &[0x2b, 0x2d, 0x21, 0x23, 0x09, 0x0b, 0xac, 0xa2],
            &[0x80, 0xff, 0x2c, 0x00, 0x7f, 0x8a, 0x22, 0x0a],
        ];
        for bytes in cases {
            let mut expected = 0u64;
            for (k, b) in bytes.iter().take(8).enumerate() {
                if matches!(b, b',' | b'"' | b'\n') {
                    expected |= 0x80 << (8 * k);
                }
            }
            assert_eq!(special_flags(bytes), expected, "{bytes:?}");
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
