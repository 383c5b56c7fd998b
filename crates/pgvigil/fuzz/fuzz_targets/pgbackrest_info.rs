//! check_pg_backup's reading of `pgbackrest info --output=json`: any JSON
//! gives a repository whose counts and ages hold together, and a verdict
//! whose status line is one line.
#![no_main]
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use pgvigil::checks::tools::backup::{read_stanza, Backup, Measured, ServerWal};
use pgvigil::runner::judge_with;

fuzz_target!(|bytes: &[u8]| {
    let Ok(info) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let repo = read_stanza(&info, now);
    assert!(repo.full_backups <= repo.backups);
    assert!(repo.newest.len() <= 3);
    for n in &repo.newest {
        assert!(n.age >= 0.0 && !n.age.is_nan(), "{n:?}");
    }
    let server = ServerWal {
        current: Some("000000010000000000000005".into()),
        segment_size: "16MB".into(),
    };
    let measured = Measured::PgBackRest {
        repository: repo,
        server,
    };
    let options = ["--pgbackrest", "main", "--min-full", "2", "-w", "25h", "-c", "49h"];
    let r = judge_with::<Backup>(&measured, &options).unwrap();
    let line = r.summary.clone();
    assert!(!line.is_empty());
    for p in &r.perfdata {
        assert!(p.value.is_finite() || p.value.is_infinite(), "{p:?}");
    }
});
