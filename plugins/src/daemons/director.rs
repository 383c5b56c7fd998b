//! The Icinga Director basket (`pgvigil --director-basket`): every check as a
//! Director command with its arguments and data fields, and a service
//! template per check, from the same command definitions as `--help`, so
//! the basket cannot drift from the binary. `icingacli director basket
//! restore` imports it.
//!
//! Names stay apart from the Icinga2 conf's (`pgvigil_locks` there,
//! `check_pg_locks` here), so a Director deploying beside
//! `include <plugins-contrib>` defines nothing twice; the variables are the
//! same (`pgvigil_warning`, …, by the rule in `daemons`), so hosts read
//! alike either way. The Director
//! has no `env` for commands: the password comes from `--password-file` or
//! the icinga user's ~/.pgpass, never from the command line.

use std::collections::BTreeMap;

use pgvigil::registry::{self, Entry};
use serde_json::{json, Map, Value};

use super::{params, Kind};

const DATATYPE: &str = "Icinga\\Module\\Director\\DataType\\DataType";

/// A data field: its caption, each distinct help with the checks giving
/// it, and its kind.
struct Field {
    caption: String,
    helps: Vec<(Vec<&'static str>, String)>,
    kind: Kind,
}

impl Field {
    /// The help, or where checks differ, each check's: "bloat, indexes:
    /// … [default: 10MB]; relation_size: … [default: 1MB]".
    fn description(&self) -> String {
        match self.helps.as_slice() {
            [(_, help)] => help.clone(),
            helps => helps
                .iter()
                .map(|(checks, help)| format!("{}: {help}", checks.join(", ")))
                .collect::<Vec<_>>()
                .join("; "),
        }
    }
}

/// The service template's name: `pgvigil-replication-lag`.
pub fn template_name(entry: &Entry) -> String {
    format!("pgvigil-{}", entry.name.replace('_', "-"))
}

/// The basket, as `icingacli director basket restore` reads it.
pub fn basket() -> Value {
    // One data field per variable, shared by every command using it.
    let mut fields: BTreeMap<String, Field> = BTreeMap::new();
    for entry in registry::CHECKS {
        for p in params(entry) {
            let field = fields.entry(p.varname).or_insert_with(|| Field {
                caption: p.caption,
                helps: Vec::new(),
                kind: p.kind,
            });
            match field.helps.iter_mut().find(|(_, help)| *help == p.help) {
                Some((checks, _)) => checks.push(entry.name),
                None => field.helps.push((vec![entry.name], p.help)),
            }
            // A variable repeatable for one check is a list for all: a
            // one-element list passes one value where a check takes one.
            if p.kind == Kind::List {
                field.kind = Kind::List;
            }
        }
    }
    let ids: BTreeMap<&str, usize> = fields
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i + 1))
        .collect();
    let mut datafields = Map::new();
    for (varname, field) in &fields {
        let datatype = match field.kind {
            Kind::Flag => "Boolean",
            Kind::List => "Array",
            Kind::Value => "String",
        };
        let id = ids[varname.as_str()].to_string();
        datafields.insert(
            id.clone(),
            json!({
                "originalId": id,
                "varname": varname,
                "caption": field.caption,
                "description": field.description(),
                "datatype": format!("{DATATYPE}{datatype}"),
                "format": null,
                "settings": {},
            }),
        );
    }

    let mut commands = Map::new();
    let mut templates = Map::new();
    for entry in registry::CHECKS {
        let options = params(entry);
        let mut arguments = Map::new();
        for o in &options {
            let macro_ = format!("${}$", o.varname);
            let argument = match o.kind {
                Kind::Flag => json!({ "set_if": macro_, "description": o.help }),
                Kind::List => {
                    json!({ "value": macro_, "repeat_key": true, "description": o.help })
                }
                // A service names its own host: the host's address would override it.
                Kind::Value if o.varname == "pgvigil_host" => json!({
                    "value": macro_,
                    "set_if": "return !macro(\"$pgvigil_service$\")",
                    "set_if_format": "expression",
                    "description": o.help,
                }),
                Kind::Value => json!({ "value": macro_, "description": o.help }),
            };
            arguments.insert(o.key.clone(), argument);
        }
        let mut vars = Map::new();
        if options.iter().any(|o| o.varname == "pgvigil_host") {
            vars.insert("pgvigil_host".into(), json!("$address$"));
        }
        let command_fields: Vec<Value> = options
            .iter()
            .map(|o| {
                json!({
                    "datafield_id": ids[o.varname.as_str()],
                    "is_required": "n",
                    "var_filter": null,
                })
            })
            .collect();
        commands.insert(
            entry.binary.into(),
            json!({
                "object_name": entry.binary,
                "object_type": "object",
                "methods_execute": "PluginCheck",
                // A bare name renders as PluginDir + "/check_pg_…", which
                // is /usr/lib/nagios/plugins or /usr/lib64/nagios/plugins.
                "command": entry.binary,
                "arguments": arguments,
                "vars": vars,
                "fields": command_fields,
                "imports": [],
            }),
        );
        let name = template_name(entry);
        templates.insert(
            name.clone(),
            json!({
                "object_name": name,
                "object_type": "template",
                "check_command": entry.binary,
                "check_interval": entry.interval.to_string(),
                "retry_interval": retry_interval(entry.interval).to_string(),
                "max_check_attempts": "3",
                "notes": entry.about,
                "imports": [],
                "vars": {},
                "fields": [],
            }),
        );
    }
    json!({
        "Datafield": datafields,
        "Command": commands,
        "ServiceTemplate": templates,
    })
}

/// A failed check is retried within a quarter of its interval, at least
/// every 30 s and at most every 5 min, before it notifies.
fn retry_interval(interval: u32) -> u32 {
    (interval / 4).clamp(30, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command<'a>(basket: &'a Value, name: &str) -> &'a Value {
        &basket["Command"][name]
    }

    #[test]
    fn every_check_has_a_command_and_a_template() {
        let basket = basket();
        for entry in registry::CHECKS {
            let c = command(&basket, entry.binary);
            assert_eq!(c["command"], entry.binary, "{}", entry.binary);
            assert_eq!(
                basket["ServiceTemplate"][template_name(entry)]["check_command"],
                entry.binary
            );
        }
        assert_eq!(
            basket["Command"].as_object().unwrap().len(),
            registry::CHECKS.len()
        );
    }

    #[test]
    fn options_map_to_arguments_by_kind() {
        let basket = basket();
        let locks = command(&basket, "check_pg_locks");
        assert_eq!(locks["arguments"]["-w"]["value"], "$pgvigil_warning$");
        assert_eq!(locks["arguments"]["-v"]["set_if"], "$pgvigil_verbose$");
        let user = &locks["arguments"]["--include-user"];
        assert_eq!(user["value"], "$pgvigil_include_user$");
        assert_eq!(user["repeat_key"], true);
        assert!(locks["arguments"].get("--format").is_none());
        assert!(locks["arguments"].get("--help").is_none());
        assert_eq!(locks["vars"]["pgvigil_host"], "$address$");
    }

    #[test]
    fn every_argument_variable_has_its_data_field_on_the_command() {
        let basket = basket();
        let fields = basket["Datafield"].as_object().unwrap();
        let varname = |id: &Value| fields[&id.as_u64().unwrap().to_string()]["varname"].clone();
        for (name, c) in basket["Command"].as_object().unwrap() {
            let linked: Vec<Value> = c["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| varname(&f["datafield_id"]))
                .collect();
            for argument in c["arguments"].as_object().unwrap().values() {
                let macro_ = argument
                    .get("value")
                    .or_else(|| argument.get("set_if"))
                    .unwrap();
                let var = macro_.as_str().unwrap().trim_matches('$');
                assert!(linked.contains(&json!(var)), "{name}: {var}");
            }
        }
        let verbose = fields.values().find(|f| f["varname"] == "pgvigil_verbose");
        assert!(verbose.unwrap()["datatype"]
            .as_str()
            .unwrap()
            .ends_with("DataTypeBoolean"));
        let warning = fields.values().find(|f| f["varname"] == "pgvigil_warning");
        assert!(!warning.unwrap()["description"].as_str().unwrap().is_empty());
    }

    #[test]
    fn slow_measures_run_less_often() {
        let basket = basket();
        let bloat = &basket["ServiceTemplate"]["pgvigil-bloat"];
        assert_eq!(bloat["check_interval"], "3600");
        assert_eq!(bloat["retry_interval"], "300");
        let locks = &basket["ServiceTemplate"]["pgvigil-locks"];
        assert_eq!(locks["check_interval"], "60");
        assert_eq!(locks["retry_interval"], "30");
    }

    #[test]
    fn a_field_shared_by_checks_that_differ_names_each_help_and_is_a_list_if_one_repeats() {
        let basket = basket();
        let fields = basket["Datafield"].as_object().unwrap();
        let field = |name: &str| {
            fields
                .values()
                .find(|f| f["varname"] == name)
                .unwrap()
                .clone()
        };
        let min_size = field("pgvigil_min_size");
        let description = min_size["description"].as_str().unwrap();
        assert!(description.contains("relation_size: "), "{description}");
        assert!(description.contains("[default: 1MB]"), "{description}");
        // --include-db repeats in the session checks, once elsewhere.
        assert!(field("pgvigil_include_db")["datatype"]
            .as_str()
            .unwrap()
            .ends_with("DataTypeArray"));
    }
}
