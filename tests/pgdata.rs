//! check_pg_pgdata on the host of a real cluster: the data directory as
//! initdb made it, then opened to other users, then handed to another owner,
//! each put back before the server could notice (it looks only at its start).

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use harness::{chown, is_root, Cluster};

const PLUGIN: &str = "check_pg_pgdata";

#[test]
fn the_data_directory_as_initdb_made_it_then_opened_then_given_away() {
    let cluster = Cluster::start("pgdata");
    let data = cluster.data.canonicalize().unwrap();
    let owner = std::fs::metadata(&data).unwrap().uid();
    let mode = |bits: u32| std::fs::set_permissions(&data, std::fs::Permissions::from_mode(bits));

    let out = cluster.plugin(PLUGIN).run();
    out.expect("OK");
    assert!(
        out.summary().starts_with(&format!(
            "data directory {} mode 0700, owned by ",
            data.display()
        )),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("wrong_mode").value, 0.0);
    assert_eq!(out.perf("wrong_owner").value, 0.0);

    // Group access, as initdb --allow-group-access makes it: accepted.
    mode(0o750).unwrap();
    cluster.plugin(PLUGIN).run().expect("OK");

    // Opened to every user: the server would refuse its next start.
    mode(0o755).unwrap();
    let out = cluster.plugin(PLUGIN).run();
    mode(0o700).unwrap();
    out.expect("CRITICAL");
    assert!(
        out.summary().contains(" mode 0755, owned by ")
            && out.summary().ends_with(
                "; other users may enter it; the server refuses to start unless it is 0700 or 0750"
            ),
        "{}",
        out.summary()
    );
    assert_eq!(out.perf("wrong_mode").value, 1.0);
    assert!(out.hint().unwrap().starts_with("restore what initdb set"));

    // Another owner than the server's user (root may chown; others skip).
    // Left at 0700 the server could no longer enter its own directory and
    // every new session would fail: with 0755 it still can, and both are
    // named.
    if is_root() {
        std::os::unix::fs::chown(&data, Some(0), None).unwrap();
        mode(0o755).unwrap();
        let out = cluster.plugin(PLUGIN).run();
        mode(0o700).unwrap();
        chown(&data);
        assert_eq!(std::fs::metadata(&data).unwrap().uid(), owner);
        out.expect("CRITICAL");
        assert!(
            out.summary().contains(" mode 0755, owned by root; ")
                && out.summary().contains("; the server runs as ")
                && out
                    .summary()
                    .ends_with(": it refuses to start on a data directory it does not own"),
            "{}",
            out.summary()
        );
        assert_eq!(out.perf("wrong_owner").value, 1.0);
        assert_eq!(out.perf("wrong_mode").value, 1.0);
    }
    // The server still answers: nothing it would look at has changed.
    cluster.plugin(PLUGIN).run().expect("OK");
}
