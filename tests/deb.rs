//! The Debian package that packaging/debian/build-deb.sh builds (scripts/test.sh
//! builds it before the tests): lintian finds no error, it installs (dpkg -i
//! as root, else dpkg-deb -x), and what it installed works: a plugin against
//! a real cluster, its man page, the CheckCommands through Icinga2's
//! `include <plugins-contrib>`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use harness::daemon::{icinga2, icinga2_constants, package, packaged_file, require};
use harness::{is_root, output_text, temp_dir, Cluster, PluginRun};

#[test]
fn lintian_reports_no_error() {
    // lintian leaves a cache file (mldbm-elf-*) in TMPDIR on every run: one
    // of the test process's own directories takes it, removed at exit.
    let (ok, report) = output_text(
        Command::new(require("lintian"))
            .env("TMPDIR", harness::temp_dir("lintian"))
            .arg("--fail-on")
            .arg("error")
            .arg(package()),
    );
    assert!(ok, "lintian:\n{report}");
    let errors: Vec<_> = report.lines().filter(|l| l.starts_with("E:")).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn package_holds_every_plugin_its_man_page_and_the_configuration() {
    let (ok, listing) = output_text(Command::new("dpkg-deb").arg("-c").arg(package()));
    assert!(ok, "{listing}");
    let mut wanted = vec![
        "./usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf".to_string(),
        "./etc/nagios-plugins/config/pgvigil.cfg".to_string(),
        "./usr/share/doc/pgvigil/copyright".to_string(),
        "./usr/share/pgvigil/pgvigil-result.schema.json".to_string(),
        "./usr/share/pgvigil/pgvigil-director-basket.json".to_string(),
    ];
    wanted.push("./usr/lib/nagios/plugins/pgvigil".to_string());
    let names: Vec<String> = harness::plugin::names()
        .into_iter()
        .chain(harness::plugin::handlers())
        .collect();
    for name in &names {
        wanted.push(format!("./usr/share/man/man1/{name}.1.gz"));
        wanted.push(format!("./usr/share/bash-completion/completions/{name}"));
        wanted.push(format!("./usr/share/zsh/vendor-completions/_{name}"));
    }
    for path in wanted {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{listing}"
        );
    }
    // One binary; every plugin a link to it beside it.
    for name in &names {
        let link = format!(" ./usr/lib/nagios/plugins/{name} -> pgvigil");
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with('l') && l.ends_with(&link)),
            "{name} is not a link to pgvigil in the package:\n{listing}"
        );
    }
    let files = listing
        .lines()
        .filter(|l| l.starts_with('-') && l.contains("/usr/lib/nagios/plugins/"))
        .count();
    assert_eq!(files, 1, "one binary in the plugin directory:\n{listing}");
    let (_, conffiles) = output_text(
        Command::new("dpkg-deb")
            .arg("-I")
            .arg(package())
            .arg("conffiles"),
    );
    assert_eq!(conffiles.trim(), "/etc/nagios-plugins/config/pgvigil.cfg");
}

#[test]
fn the_packaged_commands_are_what_the_packaged_binary_renders() {
    let dir = temp_dir("deb-commands");
    let binary = packaged_file(&dir, "usr/lib/nagios/plugins/pgvigil");
    for (flag, path) in [
        (
            "--icinga2-commands",
            "usr/share/icinga2/include/plugins-contrib.d/pgvigil.conf",
        ),
        ("--nagios-commands", "etc/nagios-plugins/config/pgvigil.cfg"),
        (
            "--director-basket",
            "usr/share/pgvigil/pgvigil-director-basket.json",
        ),
    ] {
        let out = Command::new(&binary).arg(flag).output().unwrap();
        assert!(out.status.success(), "pgvigil {flag}");
        let shipped = fs::read(packaged_file(&dir, path)).unwrap();
        assert!(
            shipped == out.stdout,
            "{path} is not what `pgvigil {flag}` prints: build-deb.sh must render it"
        );
    }
}

#[test]
fn installed_package_works() {
    let cluster = Cluster::start("deb");
    let scratch = temp_dir("deb");
    // As root, a real install; otherwise the package's tree, unpacked.
    let root = if is_root() {
        let (ok, log) = output_text(Command::new("dpkg").arg("-i").arg(package()));
        assert!(ok, "dpkg -i:\n{log}");
        PathBuf::from("/")
    } else {
        let tree = scratch.join("tree");
        let (ok, log) = output_text(Command::new("dpkg-deb").arg("-x").arg(package()).arg(&tree));
        assert!(ok, "dpkg-deb -x:\n{log}");
        tree
    };
    let plugins = root.join("usr/lib/nagios/plugins");

    let out = cluster
        .point(PluginRun::at(&plugins.join("check_pg_connections")))
        .args(&["-w", "80%", "-c", "90%"])
        .run();
    out.expect("OK");
    assert!(out.perf("connections").value >= 1.0);

    let mut man = Command::new(require("man"));
    if is_root() {
        man.arg("check_pg_connections");
    } else {
        man.arg("-l")
            .arg(root.join("usr/share/man/man1/check_pg_connections.1.gz"));
    }
    let (ok, page) = output_text(man.env("MANPAGER", "cat").env("MANWIDTH", "80"));
    assert!(ok, "man: {page}");
    for needle in [
        "check_pg_connections",
        "--warning",
        "THRESHOLDS",
        "EXIT STATUS",
    ] {
        assert!(page.contains(needle), "man page lacks {needle}:\n{page}");
    }

    if is_root() {
        the_state_directory_is_the_monitoring_users(&cluster, &plugins);
        icinga2_finds_installed_commands(&scratch, &plugins);
        // Purged, not only removed: postrm then takes /var/lib/pgvigil too,
        // and the machine keeps nothing of the test.
        let (ok, log) = output_text(Command::new("dpkg").args(["-P", "pgvigil"]));
        assert!(ok, "dpkg -P:\n{log}");
        assert!(
            !Path::new("/var/lib/pgvigil").exists(),
            "purge leaves /var/lib/pgvigil"
        );
    }
    let _ = fs::remove_dir_all(&scratch);
}

/// postinst makes /var/lib/pgvigil, mode 0750, owned by nagios (the user
/// Debian's Nagios and Icinga2 run checks as); a rate check run as nagios
/// with no state option keeps its file there, mode 0600.
fn the_state_directory_is_the_monitoring_users(cluster: &Cluster, plugins: &Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = Path::new("/var/lib/pgvigil");
    let meta = fs::metadata(dir).expect("postinst makes /var/lib/pgvigil");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o750);
    let (ok, nagios) = output_text(Command::new("id").args(["-u", "nagios"]));
    if !ok {
        eprintln!("no nagios user here: the directory stays root's");
        return;
    }
    assert_eq!(meta.uid().to_string(), nagios.trim());
    let (_, group) = output_text(Command::new("id").args(["-g", "nagios"]));
    use std::os::unix::process::CommandExt;
    let (ok, out) = output_text(
        Command::new(plugins.join("check_pg_deadlocks"))
            .uid(nagios.trim().parse().unwrap())
            .gid(group.trim().parse().unwrap())
            .args(["-H", cluster.socket_dir.to_str().unwrap()])
            .args(["-p", &cluster.port.to_string(), "-U", "postgres"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin"),
    );
    assert!(ok, "{out}");
    assert!(out.contains("first run, baseline saved"), "{out}");
    let files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("check_pg_deadlocks-")
        })
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let meta = files[0].metadata().unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.uid().to_string(), nagios.trim());
    fs::remove_file(files[0].path()).unwrap();
}

/// The stock `include <plugins-contrib>` picks up the installed CheckCommands.
fn icinga2_finds_installed_commands(scratch: &Path, plugins: &Path) {
    let conf = scratch.join("icinga2.conf");
    fs::write(
        &conf,
        format!(
            "{}include <itl>\ninclude <plugins>\ninclude <plugins-contrib>\n\
             object Host \"db\" {{ check_command = \"dummy\"; address = \"127.0.0.1\" }}\n\
             object Service \"connections\" {{ host_name = \"db\"; check_command = \"pgvigil_connections\" }}\n",
            icinga2_constants(plugins)
        ),
    )
    .unwrap();
    let (ok, log) = output_text(icinga2(scratch, &conf).arg("-C"));
    assert!(ok, "icinga2 -C with the installed pgvigil.conf:\n{log}");
}
