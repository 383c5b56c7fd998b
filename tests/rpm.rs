//! The RPM packaging/rpm/build-rpm.sh built (scripts/test.sh builds it
//! before the tests): rpmlint finds no error, it installs into a scratch
//! root in the RHEL layout with the owners and modes it declares, its %post
//! gives the state directory to the monitoring user, and a plugin from the
//! installed tree checks a real cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::daemon::{repo_path, require};
use harness::{output_text, temp_dir, Cluster, PluginRun};

fn rpm_file() -> PathBuf {
    let dir = repo_path("target/rpm");
    let found = std::fs::read_dir(&dir).ok().and_then(|mut entries| {
        entries.find_map(|e| {
            let path = e.ok()?.path();
            path.extension().is_some_and(|x| x == "rpm").then_some(path)
        })
    });
    found.unwrap_or_else(|| {
        panic!(
            "no .rpm in {}: run packaging/rpm/build-rpm.sh (scripts/test.sh does)",
            dir.display()
        )
    })
}

#[test]
fn rpmlint_reports_no_error() {
    // With the package's own filters, each explained in the file.
    let (_, report) = output_text(
        Command::new(require("rpmlint"))
            .arg("-r")
            .arg(repo_path("packaging/rpm/pgvigil.rpmlintrc"))
            .arg(rpm_file()),
    );
    let errors: Vec<&str> = report.lines().filter(|l| l.contains(": E: ")).collect();
    assert!(errors.is_empty(), "rpmlint errors:\n{}", errors.join("\n"));
    assert!(report.contains("; 0 errors,"), "{report}");
}

/// `rpm -qp --qf … -l`-style listing: mode, owner, group and path of each file.
fn listing(rpm: &Path) -> Vec<(String, String, String, String)> {
    let (ok, out) = output_text(
        Command::new("rpm")
            .args([
                "-qp",
                "--qf",
                "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]",
            ])
            .arg(rpm),
    );
    assert!(ok, "{out}");
    out.lines()
        .filter_map(|l| {
            let mut it = l.splitn(4, ' ');
            Some((
                it.next()?.to_string(),
                it.next()?.to_string(),
                it.next()?.to_string(),
                it.next()?.to_string(),
            ))
        })
        .collect()
}

#[test]
fn it_installs_in_the_rhel_layout_and_its_plugins_work() {
    let rpm = rpm_file();
    let files = listing(&rpm);
    let find = |path: &str| {
        files
            .iter()
            .find(|(_, _, _, p)| p == path)
            .unwrap_or_else(|| panic!("{path} not in the package: {files:#?}"))
            .clone()
    };
    assert_eq!(find("/usr/lib64/nagios/plugins/pgvigil").0, "-rwxr-xr-x");
    assert!(find("/usr/lib64/nagios/plugins/check_pg_locks")
        .0
        .starts_with('l'));
    find("/usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf");
    find("/etc/nagios/conf.d/pgvigil.cfg");
    find("/usr/share/man/man1/check_pg_locks.1.gz");
    find("/usr/share/bash-completion/completions/check_pg_locks");
    find("/usr/share/zsh/site-functions/_check_pg_locks");
    find("/usr/share/pgvigil/pgvigil-result.schema.json");
    find("/usr/share/pgvigil/pgvigil-director-basket.json");
    assert_eq!(
        find("/var/lib/pgvigil"),
        (
            "drwxr-x---".into(),
            "root".into(),
            "root".into(),
            "/var/lib/pgvigil".into()
        )
    );
    for name in harness::plugin::names()
        .into_iter()
        .chain(harness::plugin::handlers())
    {
        find(&format!("/usr/lib64/nagios/plugins/{name}"));
        find(&format!("/usr/share/man/man1/{name}.1.gz"));
    }
    let (_, config) = output_text(Command::new("rpm").args(["-qpc"]).arg(&rpm));
    assert_eq!(config.trim(), "/etc/nagios/conf.d/pgvigil.cfg");

    // Into a scratch root: no rpmdb packages there to satisfy glibc, and no
    // shell for the scriptlets, which are run below.
    let root = temp_dir("rpm-root");
    let (ok, out) = output_text(
        Command::new("rpm")
            .arg("--root")
            .arg(&root)
            .args(["-i", "--nodeps", "--noscripts"])
            .arg(&rpm),
    );
    assert!(ok, "rpm -i --root: {out}");
    let state = root.join("var/lib/pgvigil");
    let mode = std::fs::metadata(&state).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o7777,
        0o750
    );

    // %post, as the package declares it, with the scratch root's state
    // directory for the real one: it goes to nagios (or icinga) when the
    // host has that user.
    let (ok, scripts) = output_text(Command::new("rpm").args(["-qp", "--scripts"]).arg(&rpm));
    assert!(ok, "{scripts}");
    let post = scripts
        .split("postinstall scriptlet")
        .nth(1)
        .and_then(|s| s.split_once(":\n"))
        .map(|(_, body)| body.to_string())
        .expect("a %post scriptlet");
    let body = post.replace("/var/lib/pgvigil", state.to_str().unwrap());
    let (ok, out) = output_text(Command::new("sh").arg("-c").arg(&body));
    assert!(ok, "%post: {out}");
    let owner = |user: &str| {
        Command::new("getent")
            .args(["passwd", user])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&state).unwrap());
    if owner("nagios") {
        let (_, line) = output_text(Command::new("getent").args(["passwd", "nagios"]));
        let nagios_uid: u32 = line.split(':').nth(2).unwrap().parse().unwrap();
        assert_eq!(uid, nagios_uid, "the state directory belongs to nagios");
    }

    // A plugin from the installed tree, against a real cluster.
    let cluster = Cluster::start("rpm");
    let plugin = root.join("usr/lib64/nagios/plugins/check_pg_alive");
    let out = cluster.point(PluginRun::at(&plugin)).run();
    out.expect("OK");
    assert!(
        out.status_line().starts_with("PG_ALIVE OK - "),
        "{}",
        out.stdout
    );
}
