//! Shell completions from the command definitions: bash completes an
//! option's start to the option, zsh gets a completion function per program.

use std::process::Command;

use harness::{plugin::pgvigil, temp_dir};

/// What bash completes `words` (the last one being completed) to, with the
/// completion file of `program` sourced as bash-completion would.
fn bash_completes(dir: &std::path::Path, program: &str, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let script = format!(
        "source {file}; COMP_WORDS=({line}); COMP_CWORD={cword}; COMP_LINE='{line}'; \
         COMP_POINT=${{#COMP_LINE}}; _{program} {program} {cur} {prev}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        file = dir.join(program).display(),
        cword = words.len() - 1,
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_options_of_every_program() {
    let dir = temp_dir("completions");
    let out = Command::new(pgvigil())
        .args(["--completions", "bash"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        bash_completes(&dir, "check_pg_locks", &["check_pg_locks", "--w"]),
        ["--warning"]
    );
    // Each program's own options.
    assert_eq!(
        bash_completes(&dir, "check_pg_patroni", &["check_pg_patroni", "--ap"]),
        ["--api"]
    );
    let all = bash_completes(
        &dir,
        "check_pg_subscriptions",
        &["check_pg_subscriptions", "--"],
    );
    assert!(all.contains(&"--exclude".to_string()), "{all:?}");
    // A file for every program the registry names.
    for name in harness::plugin::names()
        .into_iter()
        .chain(harness::plugin::handlers())
    {
        assert!(dir.join(&name).exists(), "no bash completion for {name}");
    }
}

#[test]
fn zsh_gets_a_function_per_program_and_bad_shells_are_refused() {
    let dir = temp_dir("completions-zsh");
    let out = Command::new(pgvigil())
        .args(["--completions", "zsh"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = std::fs::read_to_string(dir.join("_check_pg_locks")).unwrap();
    assert!(text.starts_with("#compdef check_pg_locks\n"), "{text}");
    assert!(text.contains("--warning"));
    let out = Command::new(pgvigil())
        .args(["--completions", "fish"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "pgvigil: no completions for 'fish' (bash, zsh)"
    );
}
