//! The password file (`~/.pgpass`, `PGPASSFILE`), read the way libpq does.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What a password lookup is for.
pub struct Lookup<'a> {
    pub host: &'a str,
    pub port: u16,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// libpq's compiled-in socket directory on Debian; it matches `localhost` entries.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The password of the first matching line, as libpq finds it. A file that
/// others may read is ignored, as libpq ignores it.
pub fn password_from_file(path: &Path, lookup: &Lookup) -> Option<String> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    find_password(&fs::read_to_string(path).ok()?, lookup)
}

pub fn find_password(contents: &str, lookup: &Lookup) -> Option<String> {
    let host = if lookup.host.is_empty() || lookup.host == DEFAULT_SOCKET_DIR {
        "localhost"
    } else {
        lookup.host
    };
    let port = lookup.port.to_string();
    let wanted = [host, port.as_str(), lookup.dbname, lookup.user];
    contents
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split_fields(line);
            if fields.len() < 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want);
            matches.then(|| fields[4].clone())
        })
}

/// Splits on unescaped colons, undoing `\:` and `\\`; the fifth field takes the rest.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().unwrap().push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup<'a>(host: &'a str, dbname: &'a str, user: &'a str) -> Lookup<'a> {
        Lookup {
            host,
            port: 5432,
            dbname,
            user,
        }
    }

    #[test]
    fn first_matching_line_wins_and_stars_match_anything() {
        let file = "# comment\ndb1:5432:app:alice:first\n*:*:*:alice:second\n";
        let l = lookup("db1", "app", "alice");
        assert_eq!(find_password(file, &l).as_deref(), Some("first"));
        let l = lookup("db2", "other", "alice");
        assert_eq!(find_password(file, &l).as_deref(), Some("second"));
        let l = lookup("db2", "other", "bob");
        assert_eq!(find_password(file, &l), None);
    }

    #[test]
    fn default_socket_directory_matches_localhost() {
        let file = "localhost:5432:*:postgres:sock\n";
        let l = lookup(DEFAULT_SOCKET_DIR, "x", "postgres");
        assert_eq!(find_password(file, &l).as_deref(), Some("sock"));
        let l = lookup("/tmp/other", "x", "postgres");
        assert_eq!(find_password(file, &l), None);
    }

    #[test]
    fn escaped_colons_and_backslashes() {
        let file = "h\\:1:5432:*:u:pa\\:ss\\\\word:tail\n";
        let l = lookup("h:1", "x", "u");
        assert_eq!(find_password(file, &l).as_deref(), Some("pa:ss\\word:tail"));
    }

    #[test]
    fn short_lines_and_other_ports_do_not_match() {
        let file = "*:*:*\n*:5433:*:*:no\n";
        assert_eq!(find_password(file, &lookup("h", "d", "u")), None);
    }

    #[test]
    fn a_file_others_can_read_is_ignored() {
        let dir = std::env::temp_dir().join(format!("pgvigil-pgpass-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgpass");
        fs::write(&path, "*:*:*:*:secret\n").unwrap();
        let l = lookup("h", "d", "u");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(password_from_file(&path, &l), None);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(password_from_file(&path, &l).as_deref(), Some("secret"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
