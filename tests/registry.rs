//! The registry is the suite's one list: the binary answers to every name
//! in it, and the README, the demo and the bench are held to it.

use std::process::Command;

use harness::daemon::repo_path;
use harness::plugin::{handlers, names, pgvigil};
use harness::PluginRun;

fn pgvigil_run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(pgvigil())
        .args(args)
        .output()
        .expect("pgvigil");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(repo_path(path)).expect(path)
}

#[test]
fn list_names_every_check_and_handler_with_its_description() {
    let (code, list, _) = pgvigil_run(&["--list"]);
    assert_eq!(code, 0);
    let listed: Vec<&str> = list
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut shipped: Vec<String> = names().into_iter().chain(handlers()).collect();
    shipped.sort();
    let mut sorted: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
    sorted.sort();
    assert_eq!(sorted, shipped);
    assert!(shipped.len() >= 27, "{shipped:?}");
    for line in list.lines() {
        let about = line.split_once("  ").unwrap().1.trim();
        assert!(about.len() > 20, "a description, not a word: {line}");
    }
    assert!(list.contains("check_pg_locks"));
    assert!(list.contains("handle_pg_connections"));
}

#[test]
fn a_check_runs_the_same_by_its_link_and_by_its_name() {
    let by_link = PluginRun::new("check_pg_locks").arg("--help").run();
    let by_name = Command::new(pgvigil())
        .args(["locks", "--help"])
        .output()
        .unwrap();
    assert_eq!(by_link.code, 0);
    assert_eq!(by_link.stdout, String::from_utf8_lossy(&by_name.stdout));
    // Help still names the plugin, as it is installed and documented.
    assert!(
        by_link.stdout.contains("Usage: check_pg_locks [OPTIONS]"),
        "{}",
        by_link.stdout
    );
    assert!(
        by_link.stdout.contains("EXAMPLE\n  check_pg_locks -w"),
        "{}",
        by_link.stdout
    );
    // So do usage errors, by either name.
    let bad = Command::new(pgvigil())
        .args(["check_pg_locks", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(3));
    let line = String::from_utf8_lossy(&bad.stdout);
    assert!(
        line.starts_with("PG_LOCKS UNKNOWN - unexpected argument '--bogus'"),
        "{line}"
    );
}

#[test]
fn every_example_is_one_line_the_demo_can_run() {
    for name in names().into_iter().chain(handlers()) {
        let (code, line, _) = pgvigil_run(&["--example", &name]);
        assert_eq!(code, 0, "{name}");
        // A check that needs no option has the bare name as its example.
        assert!(
            line.trim_end() == name || line.starts_with(&format!("{name} ")),
            "{name}: {line}"
        );
        assert_eq!(line.lines().count(), 1);
    }
    let (code, _, err) = pgvigil_run(&["--example", "nosuch"]);
    assert_eq!(code, 3);
    assert!(err.contains("--example needs a check or handler"));
}

#[test]
fn version_and_unknown_names() {
    let (code, out, _) = pgvigil_run(&["--version"]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("pgvigil {}", env!("CARGO_PKG_VERSION")));
    let (code, out, err) = pgvigil_run(&["nosuch"]);
    assert_eq!(code, 3);
    assert!(out.is_empty());
    assert_eq!(
        err.trim(),
        "pgvigil: no check or handler 'nosuch' (pgvigil --list names them)"
    );
    let (code, _, err) = pgvigil_run(&["--install-links"]);
    assert_eq!(
        (code, err.trim()),
        (3, "pgvigil: --install-links needs a directory")
    );
}

#[test]
fn install_links_makes_a_plugin_directory_anywhere() {
    let dir = harness::temp_dir("links");
    let copy = dir.join("pgvigil");
    // cp, not std::fs::copy: a write descriptor of this process would leak
    // into the other tests' children and make the copy busy (ETXTBSY).
    let cp = Command::new("cp")
        .arg(pgvigil())
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    let out = Command::new(&copy)
        .arg("--install-links")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for name in names().into_iter().chain(handlers()) {
        let link = std::fs::read_link(dir.join(&name)).unwrap();
        assert_eq!(
            link,
            std::path::Path::new("pgvigil"),
            "{name}: relative, beside the binary"
        );
    }
    // Run again, it replaces its own links; a file of that name it leaves.
    let again = Command::new(&copy)
        .arg("--install-links")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(again.status.success());
    let alive = PluginRun::at(&dir.join("check_pg_alive"))
        .arg("--version")
        .run();
    assert_eq!(alive.code, 0);
    assert!(
        alive.stdout.starts_with("check_pg_alive "),
        "{}",
        alive.stdout
    );
    std::fs::remove_file(dir.join("check_pg_disk")).unwrap();
    std::fs::write(dir.join("check_pg_disk"), "mine").unwrap();
    let refused = Command::new(&copy)
        .arg("--install-links")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exists and is not a link"));
    assert_eq!(
        std::fs::read_to_string(dir.join("check_pg_disk")).unwrap(),
        "mine"
    );
}

#[test]
fn the_readme_table_is_the_registry() {
    let (code, table, _) = pgvigil_run(&["--readme-table"]);
    assert_eq!(code, 0);
    let readme = repo_file("README.md");
    assert!(
        readme.contains(table.trim()),
        "README.md's plugin table differs from the registry; replace it with the output of `pgvigil --readme-table`:\n{table}"
    );
}

#[test]
fn the_demo_and_the_bench_walk_the_registry() {
    // Both run what `pgvigil --list` names, each by its registry example
    // unless their table of exceptions says otherwise: a new check needs no
    // line in either.
    let demo = repo_file("scripts/demo.sh");
    assert!(demo.contains("for name in $(\"$bin/pgvigil\" --list | awk '{print $1}'); do"));
    assert!(demo.contains("*) example \"$port\" \"$name\" ;;"));
    let bench = repo_file("bench/measure.py");
    assert!(bench.contains("[f\"{b}/pgvigil\", \"--list\"]"));
    assert!(bench.contains("[f\"{b}/pgvigil\", \"--example\", plugin]"));
    // The exceptions name programs that exist.
    for line in demo.lines().map(str::trim) {
        if let Some(name) = line
            .split(')')
            .next()
            .filter(|n| n.starts_with("check_pg_"))
        {
            for n in name.split('|').map(str::trim) {
                assert!(
                    names().contains(n) || handlers().contains(n),
                    "demo.sh names {n}"
                );
            }
        }
    }
}
