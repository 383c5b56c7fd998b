//! check_pg_backup's reading of `pgbackrest info --output=json`: any JSON
//! gives a repository whose counts and ages hold together, and a verdict
//! whose status line is one line.
#![no_main]
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use pgvigil::checks::tools::backup::{judge_pgbackrest, read_stanza, ServerWal};
use pgvigil::{Thresholds, Unit, UnitSpec};

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
    let spec = UnitSpec {
        accepted: &[Unit::Seconds],
        bare: None,
        labels: &[],
        time_left: false,
    };
    let t = Thresholds::parse(Some("25h"), Some("49h"), spec).unwrap();
    let server = ServerWal {
        current: Some("000000010000000000000005".into()),
        segment_size: "16MB".into(),
    };
    let r = judge_pgbackrest("main", &repo, &server, Some(2), &t);
    let line = r.summary.clone();
    assert!(!line.is_empty());
    for p in &r.perfdata {
        assert!(p.value.is_finite() || p.value.is_infinite(), "{p:?}");
    }
});
