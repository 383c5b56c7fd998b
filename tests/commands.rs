//! The Icinga2 CheckCommands and Nagios commands the binary renders (and the
//! packages ship) against the plugins themselves: one command per program of
//! the registry, every option they pass accepted by that binary's --help,
//! every option of the binary offered; the examples against the commands.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use harness::daemon::repo_path;
use harness::PluginRun;

fn repo_file(path: &str) -> String {
    let path = repo_path(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The checks the registry names, e.g. `check_pg_connections`.
fn plugins() -> BTreeSet<String> {
    let names = harness::plugin::names();
    assert!(names.len() >= 6, "{names:?}");
    names
}

/// The options the plugin's --help lists, each with its spellings
/// (`["-w", "--warning"]`), less help and version.
fn help_options(plugin: &str) -> Vec<Vec<String>> {
    let out = PluginRun::new(plugin).arg("--help").run();
    assert_eq!(out.code, 0, "{plugin} --help");
    let mut options = Vec::new();
    // The options come before the first upper-case section (THRESHOLDS, …).
    let listing = out.stdout.lines().take_while(|l| {
        !(l.starts_with(|c: char| c.is_ascii_uppercase()) && l == &l.to_uppercase())
    });
    for line in listing {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let spec = line.split("  ").next().unwrap();
        let spellings: Vec<String> = spec
            .split([',', ' '])
            .map(|w| w.trim_end_matches("..."))
            .filter(|w| w.starts_with('-') && w.len() > 1)
            .map(str::to_string)
            .collect();
        // "- table: …" lists an option's possible values, not an option.
        if spellings.is_empty() {
            continue;
        }
        if !spellings.iter().any(|s| s == "--help" || s == "--version") {
            options.push(spellings);
        }
    }
    assert!(options.len() >= 9, "{plugin}: {options:?}");
    options
}

fn accepts(options: &[Vec<String>], word: &str) -> bool {
    options.iter().flatten().any(|s| s == word)
}

/// What an Icinga2 CheckCommand (or template) holds.
#[derive(Default, Debug)]
struct CheckCommand {
    imports: Vec<String>,
    binary: Option<String>,
    arguments: BTreeSet<String>,
    /// The `pgvigil_…` variables its arguments, environment and defaults read.
    variables: BTreeSet<String>,
    descriptions: usize,
}

/// The `pgvigil_…` names in `text`.
fn pgvigil_names(text: &str) -> Vec<String> {
    text.match_indices("pgvigil_")
        .map(|(i, _)| {
            text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Parses the layout pgvigil.conf is written in: objects and templates at
/// the top level, argument keys as `"-x" = {` lines.
fn icinga2_commands(text: &str) -> BTreeMap<String, CheckCommand> {
    let mut commands: BTreeMap<String, CheckCommand> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed
            .strip_prefix("object CheckCommand \"")
            .or_else(|| trimmed.strip_prefix("template CheckCommand \""))
            .or_else(|| trimmed.strip_prefix("object EventCommand \""))
        {
            let name = rest.split('"').next().unwrap().to_string();
            commands.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let Some(name) = &current else { continue };
        let command = commands.get_mut(name).unwrap();
        if trimmed.starts_with("value = \"$")
            || trimmed.starts_with("set_if = \"$")
            || trimmed.starts_with("vars.")
            || trimmed.contains("\" = \"$pgvigil_")
        {
            command.variables.extend(pgvigil_names(trimmed));
        }
        if let Some(rest) = trimmed.strip_prefix("import \"") {
            command.imports.push(rest.trim_end_matches('"').to_string());
        } else if let Some(rest) = trimmed.strip_prefix("command = [ PluginDir + \"/") {
            command.binary = Some(rest.split('"').next().unwrap().to_string());
        } else if trimmed.starts_with("\"-") && trimmed.ends_with("= {") {
            command
                .arguments
                .insert(trimmed.split('"').nth(1).unwrap().to_string());
        } else if trimmed.starts_with("description = \"") {
            command.descriptions += 1;
        }
    }
    commands
}

/// All variables of a command, its templates' included.
fn all_variables(commands: &BTreeMap<String, CheckCommand>, name: &str) -> BTreeSet<String> {
    let Some(command) = commands.get(name) else {
        return BTreeSet::new();
    };
    let mut all = command.variables.clone();
    for import in &command.imports {
        all.extend(all_variables(commands, import));
    }
    all
}

/// All arguments of a command, its templates' included.
fn all_arguments(commands: &BTreeMap<String, CheckCommand>, name: &str) -> BTreeSet<String> {
    let Some(command) = commands.get(name) else {
        return BTreeSet::new();
    };
    let mut all = command.arguments.clone();
    for import in &command.imports {
        all.extend(all_arguments(commands, import));
    }
    all
}

/// What `pgvigil FLAG [ARGS]` prints: the file the packages install.
fn generated(flag: &str) -> String {
    generated_from(flag, &[])
}

fn generated_from(flag: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(harness::plugin::pgvigil())
        .arg(flag)
        .args(args)
        .output()
        .expect("pgvigil runs");
    assert!(out.status.success(), "pgvigil {flag}");
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn every_plugin_has_an_icinga2_check_command_offering_all_its_options() {
    let text = generated("--icinga2-commands");
    let commands = icinga2_commands(&text);
    let mut covered = BTreeSet::new();
    for (name, command) in &commands {
        let Some(binary) = &command.binary else {
            continue;
        };
        // Event handlers are EventCommands named pgvigil_handle_<what>.
        let handler = harness::plugin::handlers().contains(binary);
        assert!(
            plugins().contains(binary) || handler,
            "command {name} runs {binary}, which the registry does not name"
        );
        let expected = if handler {
            binary.replace("handle_pg_", "pgvigil_handle_")
        } else {
            binary.replace("check_pg_", "pgvigil_")
        };
        assert_eq!(name, &expected, "command name");
        let arguments = all_arguments(&commands, name);
        let options = help_options(binary);
        let unknown: Vec<_> = arguments.iter().filter(|a| !accepts(&options, a)).collect();
        assert!(
            unknown.is_empty(),
            "{name} passes {unknown:?}, which {binary} does not accept"
        );
        // Icinga2 reads the Nagios format; json and openmetrics are for
        // scripts and the textfile collector, so --format is not offered.
        let missing: Vec<_> = options
            .iter()
            .filter(|spellings| !spellings.iter().any(|s| arguments.contains(s)))
            .filter(|spellings| !spellings.iter().any(|s| s == "--format"))
            .collect();
        assert!(missing.is_empty(), "{name} does not offer {missing:?}");
        covered.insert(binary.clone());
    }
    let mut shipped = plugins();
    shipped.extend(harness::plugin::handlers());
    assert_eq!(
        covered, shipped,
        "plugins without a CheckCommand, handlers without an EventCommand"
    );
    for (name, command) in &commands {
        assert_eq!(
            command.descriptions,
            command.arguments.len(),
            "{name}: every argument needs a description"
        );
    }
    // The password goes through the environment, never as an argument.
    assert!(text.contains("\"PGPASSWORD\" = \"$pgvigil_password$\""));
    assert!(!text.contains("\"--password\""));
}

#[test]
fn every_plugin_has_a_nagios_command_whose_options_it_accepts() {
    let text = generated("--nagios-commands");
    let mut covered = BTreeSet::new();
    let mut name = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("command_name") {
            name = Some(rest.trim().to_string());
        }
        let Some(rest) = line.strip_prefix("command_line") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let binary = words
            .next()
            .unwrap()
            .strip_prefix("$USER1$/")
            .expect("command_line starts with $USER1$/")
            .to_string();
        let handler = harness::plugin::handlers().contains(&binary);
        assert!(
            plugins().contains(&binary) || handler,
            "{binary} is not in the registry"
        );
        let expected = if handler {
            binary.replace("handle_pg_", "pgvigil_handle_")
        } else {
            binary.replace("check_pg_", "pgvigil_")
        };
        assert_eq!(name.take().as_deref(), Some(expected.as_str()));
        let options = help_options(&binary);
        for word in words.filter(|w| w.starts_with('-')) {
            assert!(accepts(&options, word), "{binary} does not accept {word}");
        }
        covered.insert(binary);
    }
    let mut shipped = plugins();
    shipped.extend(harness::plugin::handlers());
    assert_eq!(
        covered, shipped,
        "plugins or handlers without a Nagios command"
    );
}

/// `text` without its /* */ comments.
fn uncommented(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start..]
            .find("*/")
            .map_or("", |end| &rest[start + end + 2..]);
    }
    out.push_str(rest);
    out
}

#[test]
fn the_examples_use_commands_and_variables_that_exist() {
    // A variable no command reads is silently ignored by Icinga2: a renamed
    // option would leave the example's setting without effect.
    let commands = icinga2_commands(&generated("--icinga2-commands"));
    for path in [
        "packaging/icinga2/pgvigil-example.conf",
        "packaging/icinga2/pgvigil-ha-example.conf",
    ] {
        let text = uncommented(&repo_file(path));
        let mut services = 0;
        for block in text.split("apply Service \"").skip(1) {
            let block = &block[..block.find("\n}").unwrap_or(block.len())];
            let service = block.split('"').next().unwrap();
            let command = block
                .split("check_command = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("{path}: {service} has no check_command"));
            assert!(
                commands.contains_key(command),
                "{path}: {service} runs {command}, which no command defines"
            );
            let mut known = all_variables(&commands, command);
            if let Some(handler) = block
                .split("event_command = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
            {
                known.extend(all_variables(&commands, handler));
            }
            for line in block.lines().map(str::trim) {
                let Some(var) = line.strip_prefix("vars.") else {
                    continue;
                };
                let var = var.split([' ', '=']).next().unwrap();
                if var.starts_with("pgvigil_") {
                    assert!(
                        known.contains(var),
                        "{path}: {service} sets {var}, which {command} does not read"
                    );
                }
            }
            services += 1;
        }
        assert!(services > 0, "{path} has no service");
    }
    // The examples the packages ship use every check (the binary adds a
    // service for any check the hand-written ones leave out).
    let icinga = generated_from(
        "--icinga2-example",
        &[repo_path("packaging/icinga2/pgvigil-example.conf")
            .to_str()
            .unwrap()],
    );
    let nagios_example = generated_from(
        "--nagios-example",
        &[repo_path("packaging/nagios/pgvigil-example.cfg")
            .to_str()
            .unwrap()],
    );
    for binary in plugins() {
        let command = binary.replace("check_pg_", "pgvigil_");
        assert!(
            icinga.contains(&format!("check_command = \"{command}\"")),
            "{command}"
        );
        assert!(nagios_example.contains(&format!("{command}!")), "{command}");
    }
    // The Nagios example: every command it names is one the binary renders.
    let nagios = generated("--nagios-commands");
    for line in repo_file("packaging/nagios/pgvigil-example.cfg").lines() {
        let line = line.trim().trim_start_matches('#');
        let Some(rest) = line
            .strip_prefix("check_command")
            .or_else(|| line.strip_prefix("event_handler"))
        else {
            continue;
        };
        let name = rest.trim().split('!').next().unwrap();
        if name.starts_with("pgvigil_") {
            assert!(
                nagios.contains(&format!("command_name\t{name}\n")),
                "packaging/nagios/pgvigil-example.cfg names {name}, which no command defines"
            );
        }
    }
}
