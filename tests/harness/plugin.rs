//! Runs a plugin binary the way Nagios does and reads its output back:
//! exit code, status line, perfdata parsed by the guidelines' grammar.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// The `pgvigil` binary cargo built (next to `deps/`).
pub fn pgvigil() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let path = dir.join("pgvigil");
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build --workspace)",
        path.display()
    );
    path
}

/// A directory of this test process holding every check_pg_* and
/// handle_pg_* as a link to the built `pgvigil`, made by the binary itself
/// (`pgvigil --install-links`), as a user without the package would.
pub fn binary_dir() -> PathBuf {
    static DIR: once_cell::sync::Lazy<PathBuf> = once_cell::sync::Lazy::new(|| {
        let dir = crate::temp_dir("plugins");
        let out = Command::new(pgvigil())
            .arg("--install-links")
            .arg(&dir)
            .output()
            .expect("pgvigil --install-links");
        assert!(out.status.success(), "pgvigil --install-links: {out:?}");
        dir
    });
    DIR.clone()
}

/// Every program the suite ships, as the registry names them (`pgvigil --links`),
/// asked once per test process.
fn shipped() -> &'static [String] {
    static NAMES: once_cell::sync::Lazy<Vec<String>> = once_cell::sync::Lazy::new(|| {
        let out = Command::new(pgvigil())
            .arg("--links")
            .output()
            .expect("pgvigil --links");
        assert!(out.status.success(), "pgvigil --links: {out:?}");
        String::from_utf8(out.stdout)
            .expect("names")
            .lines()
            .map(str::to_string)
            .collect()
    });
    &NAMES
}

/// The checks the suite ships, by their installed names.
pub fn names() -> std::collections::BTreeSet<String> {
    shipped()
        .iter()
        .filter(|n| n.starts_with("check_pg_"))
        .cloned()
        .collect()
}

/// The event handlers.
pub fn handlers() -> std::collections::BTreeSet<String> {
    shipped()
        .iter()
        .filter(|n| n.starts_with("handle_pg_"))
        .cloned()
        .collect()
}

/// Whether `plugin` takes no thresholds of its own (findings, or the checks
/// it combines, decide its state): it says so for any range, before it
/// connects, so no server is needed to ask.
pub fn takes_no_thresholds(plugin: &str) -> bool {
    let out = PluginRun::new(plugin)
        .args(&["-w", "5", "-H", "/nonexistent"])
        .run();
    out.code == 3
        && out
            .stdout
            .contains("this check takes no thresholds of its own")
}

pub struct PluginRun {
    name: String,
    cmd: Command,
}

impl PluginRun {
    /// A plugin with an environment holding no PG* variables of the caller's.
    pub fn new(name: &str) -> PluginRun {
        let path = binary_dir().join(name);
        assert!(
            path.exists(),
            "{} is missing: build the plugins first (cargo build --workspace)",
            path.display()
        );
        PluginRun::at(&path)
    }

    /// A plugin binary elsewhere, e.g. installed from the package.
    pub fn at(path: &std::path::Path) -> PluginRun {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut cmd = Command::new(path);
        // The rate checks' state stays in this test process's own directory,
        // never in the machine's /var/lib/pgvigil.
        static STATE: once_cell::sync::Lazy<std::path::PathBuf> =
            once_cell::sync::Lazy::new(|| crate::temp_dir("plugin-state"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::temp_dir())
            .env("PGVIGIL_STATE_DIR", &*STATE);
        PluginRun { name, cmd }
    }

    pub fn arg(&mut self, arg: &str) -> &mut PluginRun {
        self.cmd.arg(arg);
        self
    }

    pub fn args(&mut self, args: &[&str]) -> &mut PluginRun {
        self.cmd.args(args);
        self
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut PluginRun {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(&mut self, key: &str) -> &mut PluginRun {
        self.cmd.env_remove(key);
        self
    }

    pub fn run(&mut self) -> PluginOutput {
        let out = self
            .cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.name));
        PluginOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

#[derive(Debug)]
pub struct PluginOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PerfValue {
    pub value: f64,
    pub uom: String,
    pub warn: String,
    pub crit: String,
    pub min: String,
    pub max: String,
}

impl PluginOutput {
    pub fn status_line(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }

    /// The text between `PG_X STATE - ` and the first `|`.
    pub fn summary(&self) -> &str {
        let line = self.status_line();
        let text = line.split_once(" - ").map_or(line, |(_, rest)| rest);
        text.split('|').next().unwrap_or("").trim()
    }

    /// The state word of the status line.
    pub fn state(&self) -> &str {
        self.status_line().split_whitespace().nth(1).unwrap_or("")
    }

    /// The lines after the status line, less the closing `hint:`.
    pub fn long_output(&self) -> Vec<&str> {
        self.stdout
            .lines()
            .skip(1)
            .filter(|l| !l.starts_with("hint: "))
            .collect()
    }

    /// The next step an alert ends with.
    pub fn hint(&self) -> Option<&str> {
        self.stdout.lines().find_map(|l| l.strip_prefix("hint: "))
    }

    /// Asserts exit code and status word agree with `state`, with context on failure.
    pub fn expect(&self, state: &str) -> &PluginOutput {
        let code = match state {
            "OK" => 0,
            "WARNING" => 1,
            "CRITICAL" => 2,
            "UNKNOWN" => 3,
            other => panic!("no such state {other}"),
        };
        assert_eq!(
            (self.code, self.state()),
            (code, state),
            "unexpected result:\n{}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        assert!(
            self.stderr.is_empty(),
            "plugins write nothing to stderr: {}",
            self.stderr
        );
        self
    }

    /// All perfdata, by label.
    pub fn perfdata(&self) -> BTreeMap<String, PerfValue> {
        let mut all = BTreeMap::new();
        for line in self.stdout.lines() {
            if let Some((_, perf)) = line.split_once('|') {
                all.extend(parse_perfdata(perf));
            }
        }
        all
    }

    /// Asserts a CRITICAL saying the session ended under the check.
    pub fn expect_lost_connection(&self) {
        self.expect("CRITICAL");
        assert!(
            self.summary().starts_with("lost the connection to ")
                && self.summary().contains(" during the check: "),
            "{}",
            self.summary()
        );
    }

    pub fn perf(&self, label: &str) -> PerfValue {
        self.perfdata()
            .remove(label)
            .unwrap_or_else(|| panic!("no perfdata labelled {label:?} in:\n{}", self.stdout))
    }
}

/// The guidelines' grammar: `'label'=value[UOM];warn;crit;min;max`, space separated,
/// labels optionally single-quoted with '' for a quote.
pub fn parse_perfdata(text: &str) -> BTreeMap<String, PerfValue> {
    let mut into = BTreeMap::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let (label, after) = if let Some(quoted) = rest.strip_prefix('\'') {
            let mut label = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if quoted[i + 1..].starts_with('\'') {
                        label.push('\'');
                        chars.next();
                    } else {
                        end = i + 1;
                        break;
                    }
                } else {
                    label.push(c);
                }
            }
            (label, &quoted[end..])
        } else {
            let eq = rest.find('=').expect("perfdata item without =");
            (rest[..eq].to_string(), &rest[eq..])
        };
        let after = after
            .strip_prefix('=')
            .expect("perfdata label not followed by =");
        let end = after.find(' ').unwrap_or(after.len());
        let fields: Vec<&str> = after[..end].split(';').collect();
        let number_end = fields[0]
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(fields[0].len());
        let field = |i: usize| fields.get(i).unwrap_or(&"").to_string();
        into.insert(
            label,
            PerfValue {
                value: fields[0][..number_end]
                    .parse()
                    .unwrap_or_else(|_| panic!("perfdata value {:?} is not a number", fields[0])),
                uom: fields[0][number_end..].to_string(),
                warn: field(1),
                crit: field(2),
                min: field(3),
                max: field(4),
            },
        );
        rest = after[end..].trim_start();
    }
    into
}
