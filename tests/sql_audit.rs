//! Every SQL statement the plugins send is a constant, or a constant with
//! typed parameters: no statement is built from what a user types. Read from
//! the source itself, so a new check cannot slip a `format!` into a query.

use std::path::{Path, PathBuf};

/// The calls that send SQL (through `Session` or a `postgres::Client`).
const SENDERS: [&str; 8] = [
    ".query(",
    ".query_one(",
    ".query_opt(",
    ".query_with(",
    ".query_typed(",
    ".simple_query(",
    ".execute(",
    ".batch_execute(",
];

/// The statements that are not constants, each for a reason.
const REVIEWED: [(&str, &str, &str); 3] = [
    // check_pg_query exists to run the operator's own statement, read-only.
    (
        "checks/query.rs",
        "&args.query",
        "the operator's own --query",
    ),
    // The schema pgstattuple lives in, as quote_ident() on the server gave it.
    (
        "checks/maintenance/bloat.rs",
        "&sql",
        "MEASURE with the server's quoted schema",
    ),
    // The session forwards the statements of its callers, audited here.
    ("session/mod.rs", "sql", "the caller's statement"),
];

fn sources(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The first argument of the call that starts at `text`: up to the first
/// comma or closing parenthesis at depth 0, outside string literals.
fn first_argument(text: &str) -> &str {
    let mut depth = 0;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return text[..i].trim(),
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return text[..i].trim(),
            _ => {}
        }
    }
    text.trim()
}

/// A string literal, a constant (`SQL`, `checks::SQL`), or a choice between
/// constants (`if version >= 170000 { FROM_17 } else { UP_TO_16 }`).
fn is_constant(argument: &str) -> bool {
    let constant = |word: &str| {
        let name = word.rsplit("::").next().unwrap_or(word);
        !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    };
    if argument.starts_with('"') || argument.starts_with("r\"") || argument.starts_with("r#\"") {
        return !argument.contains("format!");
    }
    if let Some(rest) = argument.strip_prefix("if ") {
        let arms: Vec<&str> = rest
            .split(['{', '}'])
            .skip(1)
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != "else")
            .collect();
        return !arms.is_empty() && arms.iter().all(|a| constant(a));
    }
    constant(argument.trim_start_matches('&'))
}

#[test]
fn every_statement_is_a_constant_or_takes_parameters() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/pgvigil/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut seen = 0;
    let mut reviewed_seen = Vec::new();
    let mut offenders = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        for sender in SENDERS {
            for (at, _) in text.match_indices(sender) {
                let argument = first_argument(&text[at + sender.len()..]);
                seen += 1;
                if is_constant(argument) {
                    continue;
                }
                if let Some(r) = REVIEWED
                    .iter()
                    .find(|(f, a, _)| *f == name && *a == argument)
                {
                    reviewed_seen.push(r.0);
                    continue;
                }
                let line = text[..at].lines().count();
                offenders.push(format!("{name}:{line}: {sender}{argument}"));
            }
        }
    }
    assert!(
        seen > 40,
        "the audit found only {seen} statements: is it reading the source?"
    );
    assert!(
        offenders.is_empty(),
        "statements that are not constants (make them constants with parameters, or review them into REVIEWED):\n{}",
        offenders.join("\n")
    );
    for (file, _, why) in REVIEWED {
        assert!(
            reviewed_seen.contains(&file),
            "REVIEWED entry no longer used: {file} ({why})"
        );
    }
}

/// Include and exclude filters are regular expressions applied to the rows
/// in the plugin: no statement compares a parameter as a pattern.
#[test]
fn no_statement_matches_a_parameter_as_a_pattern() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/pgvigil/src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file)
            .unwrap()
            .replace(char::is_whitespace, " ");
        for pattern_op in ["~ $", "~* $", "LIKE $", "ILIKE $", "SIMILAR TO $"] {
            assert!(
                !text.contains(pattern_op),
                "{} compares a parameter with {pattern_op}",
                file.display()
            );
        }
    }
}

#[test]
fn the_audit_tells_constants_from_built_statements() {
    assert!(is_constant("SQL"));
    assert!(is_constant("checks::DATABASES"));
    assert!(is_constant("\"SHOW POOLS\""));
    assert!(is_constant(
        "if version >= 170000 { FROM_17 } else { UP_TO_16 }"
    ));
    assert!(!is_constant("&format!(\"SELECT {x}\")"));
    assert!(!is_constant("&sql"));
    assert!(!is_constant("if a { SQL } else { &built }"));
    assert_eq!(first_argument("SQL, &[(&x, Type::INT8)])?;"), "SQL");
    assert_eq!(first_argument("\"SELECT f(1, 2)\")?"), "\"SELECT f(1, 2)\"");
}
