//! The connection service file (`pg_service.conf`), read as libpq reads it:
//! the user's file (PGSERVICEFILE, else ~/.pg_service.conf) first, then the
//! system's (PGSYSCONFDIR/pg_service.conf); the first that defines the
//! service is the only one used.

use std::path::{Path, PathBuf};

use super::keywords::{self, Params};
use pgvigil_kit::error::Error;

/// Where libpq on Debian looks for the system-wide file without PGSYSCONFDIR.
pub const SYSCONFDIR: &str = "/etc/postgresql-common";

/// The files to search, in order.
pub fn files(
    servicefile: Option<&str>,
    home: Option<&Path>,
    sysconfdir: Option<&str>,
) -> Vec<PathBuf> {
    let mut files = Vec::new();
    match servicefile {
        Some(file) => files.push(PathBuf::from(file)),
        None => files.extend(home.map(|h| h.join(".pg_service.conf"))),
    }
    files.push(Path::new(sysconfdir.unwrap_or(SYSCONFDIR)).join("pg_service.conf"));
    files
}

/// The settings of `service` from the first of `files` that defines it.
pub fn lookup(service: &str, files: &[PathBuf]) -> Result<Params, Error> {
    for file in files {
        // A device or a FIFO would be read forever: only regular files.
        match std::fs::metadata(file) {
            Ok(meta) if !meta.is_file() => {
                return Err(Error::Usage(format!(
                    "service file \"{}\" is not a regular file",
                    file.display()
                )))
            }
            _ => {}
        }
        let text = match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Usage(format!(
                    "cannot read service file \"{}\": {e}",
                    file.display()
                )))
            }
        };
        if let Some(params) = parse(&text, service, file)? {
            return Ok(params);
        }
    }
    Err(Error::Usage(format!(
        "definition of service \"{service}\" not found (looked in {})",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )))
}

/// The settings of `service` in one file's text, or None when the file does
/// not define it. Within the service, the first line for a keyword wins.
pub fn parse(text: &str, service: &str, file: &Path) -> Result<Option<Params>, Error> {
    let syntax = |line: usize| {
        Error::Usage(format!(
            "syntax error in service file \"{}\", line {line}",
            file.display()
        ))
    };
    let mut found: Option<Params> = None;
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(group) = line.strip_prefix('[') {
            if found.is_some() {
                break;
            }
            if group.strip_suffix(']') == Some(service) {
                found = Some(Params::default());
            }
            continue;
        }
        let Some(params) = found.as_mut() else {
            continue;
        };
        let Some((key, value)) = line.split_once('=') else {
            return Err(syntax(number + 1));
        };
        if key == "service" {
            return Err(Error::Usage(format!(
                "nested service specifications not supported in service file \"{}\", line {}",
                file.display(),
                number + 1
            )));
        }
        let key = keywords::known(key).map_err(|_| syntax(number + 1))?;
        params.fill(key, value);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# monitoring targets
[prod]
host=db1.example.com
port=5433
host=ignored
sslmode=verify-full

[staging]
host=db2
";

    #[test]
    fn the_named_section_and_only_it() {
        let p = parse(FILE, "prod", Path::new("f")).unwrap().unwrap();
        assert_eq!(p.get("host"), Some("db1.example.com"));
        assert_eq!(p.get("port"), Some("5433"));
        assert_eq!(p.get("sslmode"), Some("verify-full"));
        let p = parse(FILE, "staging", Path::new("f")).unwrap().unwrap();
        assert_eq!(p.get("host"), Some("db2"));
        assert_eq!(p.get("port"), None);
        assert_eq!(parse(FILE, "prod2", Path::new("f")).unwrap(), None);
        assert_eq!(parse(FILE, "pro", Path::new("f")).unwrap(), None);
    }

    #[test]
    fn bad_lines_are_errors_with_their_number() {
        let bad = "[a]\nhost = x\n";
        assert_eq!(
            parse(bad, "a", Path::new("/f")).unwrap_err(),
            Error::Usage("syntax error in service file \"/f\", line 2".into())
        );
        assert!(parse("[a]\nhost\n", "a", Path::new("/f")).is_err());
        assert!(parse("[a]\nservice=b\n", "a", Path::new("/f")).is_err());
        // Lines of other services are not looked at.
        assert_eq!(
            parse("[b]\nbogus\n[a]\nport=1\n", "a", Path::new("/f"))
                .unwrap()
                .unwrap()
                .get("port"),
            Some("1")
        );
    }

    #[test]
    fn the_search_order() {
        let home = Path::new("/home/mon");
        assert_eq!(
            files(None, Some(home), None),
            vec![
                PathBuf::from("/home/mon/.pg_service.conf"),
                PathBuf::from("/etc/postgresql-common/pg_service.conf")
            ]
        );
        assert_eq!(
            files(Some("/x/s.conf"), Some(home), Some("/etc/pg")),
            vec![
                PathBuf::from("/x/s.conf"),
                PathBuf::from("/etc/pg/pg_service.conf")
            ]
        );
    }
}
