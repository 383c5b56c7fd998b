//! check_pg_pgbouncer's reading of the console's SHOW rows. Sections are
//! separated by an empty line (POOLS, DATABASES, CONFIG, LISTS); in each,
//! the first line names the columns and the others are rows, tab-separated,
//! `\N` for NULL. Rows read or are refused with a reason; what is read is
//! finite, and the verdict names every pool.
#![no_main]
use libfuzzer_sys::fuzz_target;
use pgvigil::checks::tools::pgbouncer::{read_console, Console, Pgbouncer};
use pgvigil::runner::judge_with;
use pgvigil::session::TextRow;

fn section(text: &str) -> Vec<TextRow> {
    let mut lines = text.lines();
    let columns: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    lines
        .map(|line| {
            let values = columns
                .iter()
                .zip(line.split('\t'))
                .map(|(c, v)| (c.to_string(), (v != "\\N").then(|| v.to_string())))
                .collect();
            TextRow::new(values)
        })
        .collect()
}

fuzz_target!(|text: &str| {
    let mut parts = text.split("\n\n").map(section);
    let console = Console {
        pools: parts.next().unwrap_or_default(),
        databases: parts.next().unwrap_or_default(),
        config: parts.next().unwrap_or_default(),
        lists: parts.next().unwrap_or_default(),
    };
    let measured = match read_console(&console) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().contains('\n') || text.contains('\n'));
            return;
        }
    };
    assert!(measured.clients.is_finite() && measured.max_clients.is_finite());
    for p in &measured.pools {
        assert!(p.active.is_finite() && p.waiting.is_finite() && p.servers.is_finite());
        assert!(p.maxwait.is_finite());
        assert!(p.pool_size.map_or(true, f64::is_finite));
    }
    let r = judge_with::<Pgbouncer>(&measured, &["-w", "5,10s,80%", "-c", "20,1min,95%"]).unwrap();
    assert_eq!(r.details.len(), measured.pools.len());
});
