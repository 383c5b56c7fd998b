//! The portable release: the binary scripts/portable.sh links against glibc
//! 2.17 (no symbol newer in `objdump -T`), the same bytes in the .deb, the
//! RPM and the tarball; the tarball's install.sh makes a working plugin
//! directory; scripts/release.sh's checksums hold. scripts/test.sh runs
//! scripts/release.sh before the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::daemon::repo_path;
use harness::{temp_dir, Cluster, PluginRun};

fn portable() -> PathBuf {
    let path = repo_path("target/x86_64-unknown-linux-gnu/release/pgvigil");
    assert!(
        path.exists(),
        "{} is missing: run scripts/portable.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

fn tarball() -> PathBuf {
    let version = env!("CARGO_PKG_VERSION");
    let path = repo_path(&format!(
        "target/tarball/pgvigil-{version}-x86_64-linux.tar.gz"
    ));
    assert!(
        path.exists(),
        "{} is missing: run packaging/tarball/build-tarball.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

/// `2.17` as (2, 17).
fn glibc_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn the_portable_binary_needs_nothing_newer_than_glibc_2_17() {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(portable())
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    let versions: Vec<(u32, u32)> = table
        .split_whitespace()
        .filter_map(|w| w.trim_matches(['(', ')']).strip_prefix("GLIBC_"))
        .filter_map(glibc_version)
        .collect();
    assert!(
        !versions.is_empty(),
        "no GLIBC_ symbol versions in:\n{table}"
    );
    let newest = versions.iter().max().unwrap();
    assert!(*newest <= (2, 17), "needs glibc {}.{}", newest.0, newest.1);
    // And it links nothing but the C library's own parts.
    let out = Command::new("objdump")
        .arg("-p")
        .arg(portable())
        .output()
        .unwrap();
    let needed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(|l| l.trim().to_string())
        .collect();
    for lib in &needed {
        assert!(
            [
                "libc.so.6",
                "libm.so.6",
                "libdl.so.2",
                "libpthread.so.0",
                "librt.so.1",
                "ld-linux-x86-64.so.2"
            ]
            .contains(&lib.as_str()),
            "links {lib}: {needed:?}"
        );
    }
}

#[test]
fn the_deb_the_rpm_and_the_tarball_hold_the_same_binary() {
    let bytes = std::fs::read(portable()).unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let staged = [
        repo_path(&format!(
            "target/debian/pgvigil_{version}_amd64/usr/lib/nagios/plugins/pgvigil"
        )),
        repo_path("target/rpm/stage/usr/lib64/nagios/plugins/pgvigil"),
    ];
    for path in staged {
        assert!(
            std::fs::read(&path).unwrap() == bytes,
            "{} is not the portable binary",
            path.display()
        );
    }
    let dir = extract();
    assert!(std::fs::read(dir.join("pgvigil")).unwrap() == bytes);
}

/// The tarball unpacked; its top directory.
fn extract() -> PathBuf {
    let into = temp_dir("tarball");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(tarball())
        .arg("-C")
        .arg(&into)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    into.join(format!(
        "pgvigil-{}-x86_64-linux",
        env!("CARGO_PKG_VERSION")
    ))
}

#[test]
fn install_sh_makes_a_working_plugin_directory() {
    let dir = extract();
    for file in [
        "pgvigil",
        "install.sh",
        "man/man1/check_pg_locks.1.gz",
        "completions/bash/check_pg_locks",
        "completions/zsh/_check_pg_locks",
        "icinga2/pgvigil.conf",
        "icinga2/pgvigil-director-basket.json",
        "nagios/pgvigil.cfg",
        "examples/pgvigil-ha-example.conf",
        "pgvigil-result.schema.json",
        "README.md",
    ] {
        assert!(dir.join(file).exists(), "{file} not in the tarball");
    }
    let target = temp_dir("tarball-install");
    let plugins = target.join("plugins");
    let man = target.join("man1");
    let out = Command::new(dir.join("install.sh"))
        .arg(&plugins)
        .arg("--man-dir")
        .arg(&man)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for name in harness::plugin::names()
        .into_iter()
        .chain(harness::plugin::handlers())
    {
        let link = plugins.join(&name);
        assert_eq!(
            std::fs::read_link(&link).unwrap_or_else(|_| panic!("{name} is not a link")),
            Path::new("pgvigil")
        );
        assert!(man.join(format!("{name}.1.gz")).exists());
    }
    let cluster = Cluster::start("tarball");
    let out = cluster
        .point(PluginRun::at(&plugins.join("check_pg_alive")))
        .run();
    out.expect("OK");
    // Bad usage is exit 3, with a usage line.
    let out = Command::new(dir.join("install.sh")).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("usage: "));
}

#[test]
fn the_release_lists_its_three_artifacts_with_sums_that_hold() {
    let dist = repo_path("target/dist");
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap_or_else(|_| {
        panic!("no target/dist/SHA256SUMS: run scripts/release.sh (scripts/test.sh does)")
    });
    let version = env!("CARGO_PKG_VERSION");
    let mut names: Vec<&str> = sums
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            format!("pgvigil-{version}-1.x86_64.rpm"),
            format!("pgvigil-{version}-x86_64-linux.tar.gz"),
            format!("pgvigil_{version}_amd64.deb"),
        ]
    );
    let out = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dist)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
