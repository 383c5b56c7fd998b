//! The stderr format: `log_line_prefix`, then `SEVERITY:  message`. Lines
//! that continue a message start with a tab; DETAIL, HINT, CONTEXT,
//! STATEMENT, QUERY and LOCATION lines carry a prefix of their own and
//! belong to the entry before them.
//!
//! Entries are found without the prefix: the first `WORD:  ` whose word is a
//! severity marks one, whatever the prefix holds. The prefix is matched, by a
//! pattern built from `log_line_prefix`, only for the few entries whose user
//! and client are wanted.

use memchr::memmem;
use once_cell::sync::Lazy;
use regex::bytes::Regex;

use super::entry::{Entry, Origin, Severity};

const ATTACHED: [&[u8]; 6] = [
    b"DETAIL",
    b"HINT",
    b"CONTEXT",
    b"STATEMENT",
    b"QUERY",
    b"LOCATION",
];

/// What a line is.
enum Line<'a> {
    /// Starts an entry: prefix, severity, message.
    Entry(&'a [u8], Severity, &'a [u8]),
    /// DETAIL, STATEMENT and the like.
    Attached,
    /// A tab-led continuation or anything unrecognised.
    Continuation,
}

fn classify(line: &[u8]) -> Line<'_> {
    if line.first() == Some(&b'\t') {
        return Line::Continuation;
    }
    // Built once: a searcher per line cost more than the search.
    static SEVERITY_END: Lazy<memmem::Finder<'static>> = Lazy::new(|| memmem::Finder::new(b":  "));
    for at in SEVERITY_END.find_iter(line).take(4) {
        let word_start = line[..at]
            .iter()
            .rposition(|b| *b == b' ' || *b == b']' || *b == b'\t')
            .map_or(0, |p| p + 1);
        let word = &line[word_start..at];
        if let Some(severity) = Severity::parse(word) {
            return Line::Entry(&line[..word_start], severity, &line[at + 3..]);
        }
        if ATTACHED.contains(&word) {
            return Line::Attached;
        }
    }
    Line::Continuation
}

/// Feeds every complete entry in `buf` to `each`; returns how many bytes
/// were consumed: up to the end of the last complete line, so a line still
/// being written is left for the next run.
pub fn parse(buf: &[u8], each: &mut dyn FnMut(Entry<'_>)) -> usize {
    let mut pending: Option<(&[u8], Severity, usize, usize)> = None;
    let mut start = 0;
    let emit = |pending: Option<(&[u8], Severity, usize, usize)>,
                each: &mut dyn FnMut(Entry<'_>)| {
        if let Some((prefix, severity, from, to)) = pending {
            each(Entry {
                severity,
                sqlstate: None,
                message: buf[from..to].into(),
                origin: Origin::Prefix(prefix),
            });
        }
    };
    while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
        let end = start + nl;
        let line = &buf[start..end];
        match classify(line) {
            Line::Entry(prefix, severity, message) => {
                emit(pending.take(), each);
                let from = end - message.len();
                pending = Some((prefix, severity, from, end));
            }
            // DETAIL, STATEMENT and the like close the entry before them.
            Line::Attached => emit(pending.take(), each),
            Line::Continuation => {
                if let Some(p) = pending.as_mut() {
                    p.3 = end;
                }
            }
        }
        start = end + 1;
    }
    emit(pending.take(), each);
    start
}

/// `log_line_prefix` as a pattern, for the user and client of an entry.
pub struct Prefix {
    pattern: Regex,
}

impl Prefix {
    pub fn new(log_line_prefix: &str) -> Prefix {
        Prefix {
            // The pattern is built from escaped text and known pieces, so it
            // compiles; were it ever too large, users and clients go unnamed.
            pattern: Regex::new(&pattern(log_line_prefix))
                .unwrap_or_else(|_| Regex::new("^$").expect("constant pattern")),
        }
    }

    /// The user (`%u`) and client host (`%h` or `%r`) a prefix names.
    pub fn user_and_client<'a>(&self, prefix: &'a [u8]) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
        let Some(caps) = self.pattern.captures(prefix) else {
            return (None, None);
        };
        let get = |name: &str| {
            caps.name(name)
                .map(|m| m.as_bytes())
                .filter(|v| !v.is_empty() && *v != b"[unknown]")
        };
        (get("user"), get("client"))
    }
}

/// Builds an anchored pattern from a prefix's escapes; text after `%q` is
/// optional, as the server leaves it out for processes without a session.
pub fn pattern(prefix: &str) -> String {
    let mut out = String::from("^");
    let mut optional = false;
    // A group name may appear once: a repeated %u or %h matches like %d.
    let (mut user_named, mut client_named) = (false, false);
    let mut chars = prefix.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push_str(&regex::escape(&c.to_string()));
            continue;
        }
        // Padding such as %-10u.
        let mut padded = false;
        while chars
            .peek()
            .is_some_and(|c| *c == '-' || c.is_ascii_digit())
        {
            chars.next();
            padded = true;
        }
        let Some(escape) = chars.next() else { break };
        let piece = match escape {
            'u' if !std::mem::replace(&mut user_named, true) => "(?P<user>.*?)",
            'h' if !std::mem::replace(&mut client_named, true) => "(?P<client>.*?)",
            'r' if !std::mem::replace(&mut client_named, true) => r"(?P<client>.*?)(?:\(\d*\))?",
            'r' => r".*?(?:\(\d*\))?",
            'd' | 'a' | 'i' | 'b' | 'v' | 'L' => ".*?",
            'p' | 'l' | 'x' | 'Q' | 'P' => r"-?\d*",
            'm' => r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+",
            't' | 's' => r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+",
            'n' => r"\d+\.\d+",
            'c' => r"[0-9a-f]+\.[0-9a-f]+",
            'e' => r"[0-9A-Z]{5}",
            '%' => "%",
            // Only the first %q starts the optional part; a repeat is a no-op.
            'q' if optional => continue,
            'q' => {
                out.push_str("(?:");
                optional = true;
                continue;
            }
            _ => ".*?",
        };
        if padded {
            out.push_str(&format!(r"\s*{piece}\s*"));
        } else {
            out.push_str(piece);
        }
    }
    if optional {
        out.push_str(")?");
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(Severity, String)> {
        let mut found = Vec::new();
        parse(text.as_bytes(), &mut |e| {
            found.push((e.severity, String::from_utf8_lossy(&e.message).into_owned()))
        });
        found
    }

    #[test]
    fn entries_with_their_continuations_and_attached_lines() {
        let log = "\
2026-11-25 22:42:30.737 UTC [7911] postgres@postgres ERROR:  division by zero
2026-11-25 22:42:30.737 UTC [7911] postgres@postgres STATEMENT:  select 1/0
2026-11-25 22:42:31.011 UTC [7921] postgres@postgres LOG:  duration: 201.817 ms  statement: select
\t  pg_sleep(0.2)
2026-11-25 22:42:32.000 UTC [7000] LOG:  checkpoint starting: time
2026-11-25 22:42:30.760 UTC [7915] victim@postgres FATAL:  password authentication failed for user \"victim\"
2026-11-25 22:42:30.760 UTC [7915] victim@postgres DETAIL:  Connection matched pg_hba.conf line 1
";
        assert_eq!(
            entries(log),
            vec![
                (Severity::Error, "division by zero".into()),
                (
                    Severity::Log,
                    "duration: 201.817 ms  statement: select\n\t  pg_sleep(0.2)".into()
                ),
                (Severity::Log, "checkpoint starting: time".into()),
                (
                    Severity::Fatal,
                    "password authentication failed for user \"victim\"".into()
                ),
            ]
        );
    }

    #[test]
    fn a_partial_last_line_is_left_for_the_next_run() {
        let log = "2026-11-25 22:42:30.737 UTC [1] LOG:  one\n2026-11-25 22:42:30.737 UTC [1] ERR";
        let mut n = 0;
        let used = parse(log.as_bytes(), &mut |_| n += 1);
        assert_eq!(n, 1);
        assert_eq!(&log[used..], "2026-11-25 22:42:30.737 UTC [1] ERR");
    }

    #[test]
    fn the_prefix_gives_user_and_client() {
        let p = Prefix::new("%m [%p] %q%u@%d ");
        let (user, client) =
            p.user_and_client(b"2026-11-25 22:42:30.760 UTC [7915] victim@postgres ");
        assert_eq!(user, Some(&b"victim"[..]));
        assert_eq!(client, None);
        let p = Prefix::new("%t [%p]: user=%u,db=%d,app=%a,client=%h ");
        let (user, client) = p.user_and_client(
            b"2026-11-25 22:42:30 UTC [7915]: user=app,db=shop,app=psql,client=10.1.2.3 ",
        );
        assert_eq!((user, client), (Some(&b"app"[..]), Some(&b"10.1.2.3"[..])));
        let p = Prefix::new("%m %r %-10u ");
        let (_, client) =
            p.user_and_client(b"2026-11-25 22:42:30.760 UTC 10.0.0.9(5432) bob        ");
        assert_eq!(client, Some(&b"10.0.0.9"[..]));
    }

    #[test]
    fn repeated_escapes_name_the_first_and_never_panic() {
        // Found by the log_stderr fuzz target: %u twice made two groups of one name.
        let p = Prefix::new("%q%u@%d %u %h %r %q ");
        let (user, client) = p.user_and_client(b"bob@app bob 10.0.0.9 10.0.0.9(1)  ");
        assert_eq!((user, client), (Some(&b"bob"[..]), Some(&b"10.0.0.9"[..])));
    }
}
