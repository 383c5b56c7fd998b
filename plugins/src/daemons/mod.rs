//! What the monitoring daemons are given, generated from the registry and
//! each program's command line (the same definitions as `--help`), so none
//! can drift from the binary: the Icinga Director basket, the Icinga2
//! CheckCommands and EventCommands, and the Nagios command definitions.
//!
//! One naming rule for all three: an option `--min-uptime` is the variable
//! `pgvigil_min_uptime`, whatever the check; an event handler's own options
//! (those no check has) are `pgvigil_handle_…`, apart from the service's.

pub mod director;
pub mod icinga2;
pub mod nagios;

use clap::{Arg, ArgAction};
use pgvigil::registry::{self, Entry};

/// Options a daemon's check has no use for: the daemons read Nagios text.
const LEFT_OUT: &[&str] = &["help", "version", "format"];

/// How an option reaches the command line.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// `-v` when the variable is true.
    Flag,
    /// `--node a --node b` from an array.
    List,
    /// `-w 80%`.
    Value,
}

/// One option of one program, as a daemon passes it.
#[derive(Debug, Clone)]
pub struct Param {
    /// clap's id, to read the option back from parsed matches.
    pub id: String,
    /// The key on the command line: the short spelling when there is one.
    pub key: String,
    /// The long name: `min-uptime`.
    pub long: String,
    pub varname: String,
    pub caption: String,
    /// clap's help on one line, with the default.
    pub help: String,
    pub kind: Kind,
    pub required: bool,
}

fn kind(arg: &Arg) -> Kind {
    match arg.get_action() {
        ArgAction::SetTrue | ArgAction::Count => Kind::Flag,
        ArgAction::Append => Kind::List,
        _ => Kind::Value,
    }
}

/// The variable an option is passed from: `pgvigil_` and its long name.
pub fn varname(prefix: &str, long: &str) -> String {
    format!("{prefix}{}", long.replace('-', "_"))
}

/// `--password-file` → `pgvigil_password_file`, caption "Password file".
fn param(arg: &Arg, prefix: &str) -> Option<Param> {
    let long = arg.get_long()?;
    if LEFT_OUT.contains(&long) {
        return None;
    }
    let key = match arg.get_short() {
        Some(short) => format!("-{short}"),
        None => format!("--{long}"),
    };
    let mut caption = long.replace('-', " ");
    caption[..1].make_ascii_uppercase();
    let mut help = arg
        .get_help()
        .map(|h| h.to_string())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && !arg.is_hide_default_value_set() {
        help = format!("{help} [default: {}]", defaults.join(", "));
    }
    if long == "host" {
        help = format!("{help}; here the host's address unless set, and not passed with a service");
    }
    Some(Param {
        id: arg.get_id().to_string(),
        key,
        long: long.to_string(),
        varname: varname(prefix, long),
        caption,
        help,
        kind: kind(arg),
        required: arg.is_required_set(),
    })
}

/// A check's options, in its help's order.
pub fn params(entry: &Entry) -> Vec<Param> {
    (entry.command)()
        .get_arguments()
        .filter_map(|a| param(a, "pgvigil_"))
        .collect()
}

/// An event handler's options: the connection's as the checks name them,
/// its own as `pgvigil_handle_…`.
pub fn handler_params(entry: &Entry) -> Vec<Param> {
    let shared = common();
    (entry.command)()
        .get_arguments()
        .filter_map(|a| {
            let long = a.get_long()?;
            let prefix = if shared.iter().any(|p| p.long == long) {
                "pgvigil_"
            } else {
                "pgvigil_handle_"
            };
            param(a, prefix)
        })
        .collect()
}

/// The options every check takes (the connection, thresholds and run), in
/// the first check's order: what a daemon's base template carries. Worked
/// out once: it reads every check's command line.
pub fn common() -> &'static [Param] {
    static COMMON: std::sync::OnceLock<Vec<Param>> = std::sync::OnceLock::new();
    COMMON.get_or_init(|| {
        let mut all = registry::CHECKS.iter().map(params);
        let mut shared = all.next().unwrap_or_default();
        for other in all {
            shared.retain(|p| other.iter().any(|o| o.long == p.long));
        }
        shared
    })
}

/// A check's options less those every check takes.
pub fn own_params(entry: &Entry) -> Vec<Param> {
    let shared = common();
    params(entry)
        .into_iter()
        .filter(|p| !shared.iter().any(|s| s.long == p.long))
        .collect()
}

/// `text` wrapped to `width` columns, each line after `lead`.
pub fn wrap(text: &str, lead: &str, width: usize) -> String {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && lead.len() + line.len() + 1 + word.len() > width {
            lines.push(format!("{lead}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(format!("{lead}{line}"));
    }
    lines.join("\n")
}

/// The registry's example for `entry` as (option, values) pairs, parsed by
/// the check's own command line: what a generated example service sets.
/// `-w`/`-c` come first, as a service lists its thresholds.
pub fn example_values(entry: &Entry) -> Vec<(Param, Vec<String>)> {
    let mut argv = vec![entry.binary.to_string()];
    argv.extend(registry::split_words(entry.example));
    let Ok(matches) = (entry.command)().try_get_matches_from(&argv) else {
        return Vec::new();
    };
    let mut set: Vec<(Param, Vec<String>)> = params(entry)
        .into_iter()
        .filter(|p| matches.value_source(&p.id) == Some(clap::parser::ValueSource::CommandLine))
        .map(|p| {
            let values = match p.kind {
                Kind::Flag => Vec::new(),
                _ => matches
                    .get_raw(&p.id)
                    .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect())
                    .unwrap_or_default(),
            };
            (p, values)
        })
        .collect();
    set.sort_by_key(|(p, _)| !matches!(p.long.as_str(), "warning" | "critical"));
    set
}

/// The checks `text` (an example written by hand) never names by `name_of`.
pub fn missing_from(text: &str, name_of: impl Fn(&Entry) -> String) -> Vec<&'static Entry> {
    registry::CHECKS
        .iter()
        .filter(|e| !text.contains(&name_of(e)))
        .collect()
}

/// The registry's example options less `-w`/`-c` and their ranges: what a
/// command's ARG3 would add. Quoting is kept as written.
pub fn example_extras(entry: &Entry) -> String {
    let mut words = entry.example.split_whitespace();
    let mut kept = Vec::new();
    while let Some(word) = words.next() {
        if word == "-w" || word == "-c" {
            words.next();
        } else {
            kept.push(word);
        }
    }
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_shares_the_connection_and_thresholds() {
        let common: Vec<String> = common().iter().map(|p| p.varname.clone()).collect();
        for name in [
            "pgvigil_host",
            "pgvigil_port",
            "pgvigil_dbname",
            "pgvigil_username",
            "pgvigil_warning",
            "pgvigil_critical",
            "pgvigil_timeout",
            "pgvigil_verbose",
        ] {
            assert!(common.contains(&name.to_string()), "{name}");
        }
        assert!(!common.iter().any(|v| v == "pgvigil_format"));
    }

    #[test]
    fn a_handlers_own_options_are_its_own() {
        let handler = &registry::HANDLERS[0];
        let vars: Vec<String> = handler_params(handler)
            .into_iter()
            .map(|p| p.varname)
            .collect();
        assert!(vars.contains(&"pgvigil_host".to_string()));
        assert!(vars.contains(&"pgvigil_handle_idle_for".to_string()));
        assert!(vars.contains(&"pgvigil_handle_execute".to_string()));
    }

    #[test]
    fn wrapping_and_examples() {
        assert_eq!(wrap("a bb ccc dddd", "# ", 9), "# a bb\n# ccc\n# dddd");
        let alive = registry::find("alive").unwrap();
        assert_eq!(example_extras(alive), "--min-uptime 10min");
    }
}
