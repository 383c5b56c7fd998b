//! check_pg_indexes: invalid indexes (a failed CREATE INDEX CONCURRENTLY
//! leaves one that is maintained on every write and never used), unused and
//! duplicate indexes, and tables read mostly by sequential scans (the
//! usual sign of a missing index).

use crate::check::{Check, Context, Judging};
use crate::checks::common::visit::{self, Wording};
use crate::locked_relations;
use crate::session::databases::{self, DatabaseArgs, Visit};
use crate::session::get;
use crate::session::locked::{holders, skipped_note, Locked};
use crate::session::relations::RelationArgs;
use crate::session::Session;
use pgvigil_kit::units::{parse_size_option, pretty_bytes};
use pgvigil_kit::words::plural;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};
use postgres::types::Type;

pub struct Indexes;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Indexes")]
pub struct Args {
    /// Unused indexes and sequentially scanned tables smaller than this are left out
    #[arg(long, value_name = "SIZE", default_value = "10MB", value_parser = parse_size_option)]
    pub min_size: u64,
    /// A table whose sequential scans read more than N rows each on average, and outnumber its index scans, is reported as missing an index
    #[arg(long, value_name = "N", default_value_t = 10000)]
    pub min_seq_read: i64,
    #[command(flatten)]
    pub databases: DatabaseArgs,
    #[command(flatten)]
    pub relations: RelationArgs,
}

// Two indexes are duplicates when they index the same table with the same
// access method, columns, operator classes, collations, expressions and
// predicate (deparsed, so that spacing in CREATE INDEX does not matter);
// only indexes of tables with more than one are compared, and only those
// sharing table and columns are deparsed. An index still being built
// concurrently is not yet invalid. An index enforces a constraint when it is
// unique or backs an exclusion constraint: the only kinds pg_constraint's
// conindid names, without reading pg_constraint. pg_class is read once (on
// 10,000 tables each read costs about 10 ms), and the statistics functions
// are called directly, and only for what can still qualify, instead of
// through the views that call a dozen for every relation. A relation
// another session holds in ACCESS EXCLUSIVE mode is never opened (its size
// is NULL); it comes back as `locked`, its oid in `reads`.
const SQL: &str = concat!(
    "
WITH locked AS (SELECT ",
    locked_relations!(),
    " AS oids), rel AS MATERIALIZED (
  SELECT c.oid, c.relkind, c.relam, n.nspname::text AS schema, c.relname::text AS name,
         CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_numscans(c.oid) END AS scans
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'm', 'i', 'I')
     AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_(catalog|toast)'
), ix AS (
  SELECT i.indexrelid, i.indrelid, r.schema, r.name,
         i.indisvalid, a.amname, i.indkey, i.indclass,
         i.indcollation, i.indexprs, i.indpred,
         i.indisunique OR i.indisexclusion AS enforces
    FROM rel r
    JOIN pg_index i ON i.indexrelid = r.oid
    JOIN pg_am a ON a.oid = r.relam
   WHERE r.relkind IN ('i', 'I')
), alike AS (
  SELECT * FROM (
    SELECT ix.*, count(*) OVER (PARTITION BY indrelid, amname, indkey::text) AS same_columns
      FROM ix
     WHERE indisvalid
       AND indrelid IN (SELECT indrelid FROM ix WHERE indisvalid GROUP BY indrelid HAVING count(*) > 1)
  ) x WHERE same_columns > 1
), signed AS (
  SELECT alike.*,
         concat_ws(' ', indrelid, amname, indkey, indclass, indcollation,
                   pg_get_expr(indexprs, indrelid), pg_get_expr(indpred, indrelid)) AS signature
    FROM alike
)
SELECT 'invalid' AS kind, schema, name, indrelid::regclass::text AS table_name, (CASE WHEN indexrelid = ANY((SELECT oids FROM locked)::oid[]) THEN NULL ELSE pg_relation_size(indexrelid) END)::int8 AS size,
       NULL::int8 AS reads, NULL::text AS grp, enforces
  FROM ix
 WHERE NOT indisvalid
   AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = ix.indexrelid)
UNION ALL
SELECT 'unused', schema, name, indrelid::regclass::text, (CASE WHEN indexrelid = ANY((SELECT oids FROM locked)::oid[]) THEN NULL ELSE pg_relation_size(indexrelid) END)::int8, 0, NULL, false
  FROM ix
 WHERE CASE WHEN enforces OR NOT indisvalid THEN false
            ELSE pg_stat_get_numscans(indexrelid) = 0
                 AND CASE WHEN indexrelid = ANY((SELECT oids FROM locked)::oid[]) THEN NULL ELSE pg_relation_size(indexrelid) END >= $1 END
UNION ALL
SELECT 'duplicate', schema, name, indrelid::regclass::text, (CASE WHEN indexrelid = ANY((SELECT oids FROM locked)::oid[]) THEN NULL ELSE pg_relation_size(indexrelid) END)::int8, NULL, md5(signature), enforces
  FROM (SELECT signed.*, count(*) OVER (PARTITION BY signature) AS copies FROM signed) d
 WHERE copies > 1
UNION ALL
SELECT 'seqscan', schema, name, NULL,
       (CASE WHEN oid = ANY((SELECT oids FROM locked)::oid[]) THEN NULL ELSE pg_relation_size(oid) END)::int8,
       per_scan, NULL, false
  FROM (SELECT t.oid, t.schema, t.name, t.scans,
               pg_stat_get_tuples_returned(t.oid) / t.scans AS per_scan
          FROM rel t WHERE t.scans > 0 OFFSET 0) s
 WHERE CASE WHEN per_scan <= $2 THEN false
            WHEN (SELECT coalesce(sum(pg_stat_get_numscans(x.indexrelid)), 0)
                    FROM pg_index x WHERE x.indrelid = s.oid) >= scans THEN false
            ELSE CASE WHEN oid = ANY((SELECT oids FROM locked)::oid[]) THEN NULL ELSE pg_relation_size(oid) END >= $1 END
UNION ALL
SELECT 'locked', schema, name, NULL, NULL, oid::int8, NULL, false
  FROM rel
 WHERE oid = ANY((SELECT oids FROM locked)::oid[]) AND relkind <> 'I'
ORDER BY 1, 7, 8 DESC, 5 DESC, 2, 3"
);

/// One finding of the statement: an index that is `invalid`, `unused` or a
/// `duplicate` (with its group of identical definitions, enforcing and
/// largest first), or a table read mostly by sequential scans (`seqscan`,
/// with the rows each scan reads).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    pub database: String,
    pub kind: String,
    pub schema: String,
    pub name: String,
    pub table: Option<String>,
    pub size: i64,
    pub reads: Option<i64>,
    pub group: Option<String>,
}

impl Check for Indexes {
    const INTERVAL: u32 = 3600;
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count], Some(Unit::Count));
    const HINT: &'static str = "unused indexes cost writes and space: confirm on every standby too (usage is per server) before DROP INDEX CONCURRENTLY; invalid ones come from failed CREATE INDEX CONCURRENTLY: drop and rebuild them";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A number applies to the count of unused plus redundant duplicate indexes. An
  invalid index (left by a failed CREATE INDEX CONCURRENTLY) is CRITICAL
  whatever the thresholds. Unused means no scan since the statistics were
  reset, not unique and not backing a constraint; on a standby the counts are
  the standby's own. Tables read mostly by sequential scans are listed, not
  judged.";
    type Args = Args;
    type Measured = Visit<Seen>;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(args, db, ctx)
    }

    /// An invalid index is CRITICAL; unused plus redundant duplicate indexes
    /// (a count) against `-w`/`-c`; sequentially scanned tables are listed, not
    /// judged; a database that could not be visited is at least WARNING.
    fn judge(visit: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        let visited = visit.checked.len();
        let found: Vec<Found> = visit
            .results()
            .flat_map(|(_, s)| s.found.iter().cloned())
            .collect();
        let locked: Vec<&Locked> = visit.results().flat_map(|(_, s)| &s.locked).collect();

        let of = |kind: &str| {
            found
                .iter()
                .filter(|f| f.kind == kind)
                .cloned()
                .collect::<Vec<_>>()
        };
        let invalid = of("invalid");
        let seqscan = of("seqscan");
        let redundant = redundant_duplicates(&of("duplicate"));
        // A redundant duplicate that is also unused counts once, as a duplicate.
        let unused: Vec<Found> = of("unused")
            .into_iter()
            .filter(|u| {
                !redundant.iter().any(|(d, _)| {
                    d.database == u.database && d.schema == u.schema && d.name == u.name
                })
            })
            .collect();
        let judged = unused.len() + redundant.len();

        let mut status = t.status(&[(Unit::Count, judged as f64)]);
        if !invalid.is_empty() {
            status = Status::Critical;
        }
        status = visit.floor(status);

        let many = visited > 1;
        let name = |f: &Found| visit::qualified(&f.database, &f.schema, &f.name, many);
        let mut summary = String::new();
        if !invalid.is_empty() {
            let names: Vec<String> = invalid.iter().map(name).collect();
            summary.push_str(&format!(
                "{} invalid index{} ({}); ",
                invalid.len(),
                if invalid.len() == 1 { "" } else { "es" },
                names.join(", ")
            ));
        }
        summary.push_str(&format!(
            "{} unused index{}, {} duplicate{}; {} table{} read mostly by sequential scans",
            unused.len(),
            if unused.len() == 1 { "" } else { "es" },
            redundant.len(),
            plural(redundant.len() as i64),
            seqscan.len(),
            plural(seqscan.len() as i64),
        ));
        summary.push_str(&skipped_note(locked.len()));
        summary.push_str(&visit.unreachable_note());
        let unused_bytes: i64 = unused
            .iter()
            .chain(redundant.iter().map(|(f, _)| f))
            .map(|f| f.size)
            .sum();
        let perf = [
            PerfData::new("invalid", invalid.len() as f64, Unit::Count).min(0.0),
            PerfData::new("unused_and_duplicate", judged as f64, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("unused", unused.len() as f64, Unit::Count).min(0.0),
            PerfData::new("duplicate", redundant.len() as f64, Unit::Count).min(0.0),
            PerfData::new(
                "unused_and_duplicate_size",
                unused_bytes as f64,
                Unit::Bytes,
            )
            .min(0.0),
            PerfData::new("seq_scanned_tables", seqscan.len() as f64, Unit::Count).min(0.0),
            PerfData::new("skipped", locked.len() as f64, Unit::Count).min(0.0),
        ];
        let mut details = visit.unreachable_details();
        let index_line = |f: &Found, what: &str| {
            format!(
                "{what} index {} on {} ({})",
                name(f),
                f.table.as_deref().unwrap_or_default(),
                pretty_bytes(f.size as f64)
            )
        };
        for f in &invalid {
            details.push(format!(
                "{}: drop it, or REINDEX INDEX CONCURRENTLY",
                index_line(f, "invalid")
            ));
        }
        if status != Status::Ok || verbose > 0 {
            for (f, kept) in &redundant {
                details.push(format!(
                    "{}: same definition as {kept}",
                    index_line(f, "duplicate")
                ));
            }
            for f in &unused {
                details.push(format!(
                    "{}: no scan since statistics were reset",
                    index_line(f, "unused")
                ));
            }
        }
        for f in &seqscan {
            details.push(format!(
                "table {} ({}) read mostly by sequential scans, {} rows per scan: missing index?",
                name(f),
                pretty_bytes(f.size as f64),
                f.reads.unwrap_or(0)
            ));
        }
        details.extend(locked.iter().map(|l| l.describe(many)));
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// What one database gave: the findings, and the relations skipped because
/// another session held them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    pub found: Vec<Found>,
    pub locked: Vec<Locked>,
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Visit<Seen>, Error> {
    let min_size = i64::try_from(args.min_size).unwrap_or(i64::MAX);
    databases::visit(
        &args.databases,
        db,
        &ctx.conn,
        ctx.timeout,
        |database, session| {
            let rows = session.query_with(
                SQL,
                &[(&min_size, Type::INT8), (&args.min_seq_read, Type::INT8)],
            )?;
            let mut found = Vec::new();
            let mut locked = Vec::new();
            for row in &rows {
                let f = Found {
                    database: database.to_string(),
                    kind: get(row, "kind")?,
                    schema: get(row, "schema")?,
                    name: get(row, "name")?,
                    table: get(row, "table_name")?,
                    size: get::<Option<i64>>(row, "size")?.unwrap_or(0),
                    reads: get(row, "reads")?,
                    group: get(row, "grp")?,
                };
                let table = f.table.as_deref().unwrap_or(&f.name);
                if !args.relations.keeps(&f.schema, &f.name)
                    && !args.relations.keeps(&f.schema, table)
                {
                    continue;
                }
                if f.kind == "locked" {
                    locked.extend(f.reads.and_then(|oid| u32::try_from(oid).ok()));
                } else {
                    found.push(f);
                }
            }
            let locked = holders(session, database, &locked)?;
            Ok(Seen { found, locked })
        },
    )
}

/// From groups of identical indexes, the ones that could go, each with the
/// index that stays: one that enforces uniqueness or a constraint if any.
fn redundant_duplicates(duplicates: &[Found]) -> Vec<(Found, String)> {
    let mut redundant = Vec::new();
    let mut groups: Vec<(&str, &str, Vec<&Found>)> = Vec::new();
    for f in duplicates {
        let key = f.group.as_deref().unwrap_or("");
        match groups
            .iter_mut()
            .find(|(db, g, _)| *db == f.database && *g == key)
        {
            Some((_, _, members)) => members.push(f),
            None => groups.push((&f.database, key, vec![f])),
        }
    }
    for (_, _, members) in groups {
        // Rows come enforcing first, then largest: the first one stays.
        let kept = members[0];
        for f in &members[1..] {
            redundant.push(((*f).clone(), kept.name.clone()));
        }
    }
    redundant
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn found(kind: &str, name: &str, size: i64) -> Found {
        Found {
            database: "app".into(),
            kind: kind.into(),
            schema: "public".into(),
            name: name.into(),
            table: (kind != "seqscan").then(|| "orders".to_string()),
            size,
            reads: (kind == "seqscan").then_some(50_000),
            group: (kind == "duplicate").then(|| "g1".to_string()),
        }
    }

    fn visit(found: Vec<Found>) -> Visit<Seen> {
        Visit {
            checked: vec![(
                "app".into(),
                Seen {
                    found,
                    locked: vec![],
                },
            )],
            unreachable: vec![],
        }
    }

    const MB: i64 = 1048576;

    #[test]
    fn unused_and_duplicates_count_against_the_thresholds_no_default() {
        let v = visit(vec![
            found("duplicate", "orders_pkey", 20 * MB),
            found("duplicate", "orders_id_idx", 20 * MB),
            found("unused", "orders_id_idx", 20 * MB),
            found("unused", "orders_note_idx", 30 * MB),
        ]);
        let r = judge::<Indexes>(&v, &options(&[]), &thresholds::<Indexes>(None, None), 0);
        assert_eq!(r.status, Status::Ok);
        // The redundant duplicate that is also unused counts once.
        assert_eq!(
            r.summary,
            "1 unused index, 1 duplicate; 0 tables read mostly by sequential scans"
        );
        assert_eq!(
            judge::<Indexes>(
                &v,
                &options(&[]),
                &thresholds::<Indexes>(Some("2"), None),
                0
            )
            .status,
            Status::Ok
        );
        let r = reported::<Indexes>(judge::<Indexes>(
            &v,
            &options(&[]),
            &thresholds::<Indexes>(Some("1"), Some("5")),
            0,
        ));
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.details,
            [
                "duplicate index public.orders_id_idx on orders (20 MB): same definition as orders_pkey",
                "unused index public.orders_note_idx on orders (30 MB): no scan since statistics were reset"
            ]
        );
        assert_eq!(perf(&r)[1], "unused_and_duplicate=2;1;5;0");
        assert_eq!(perf(&r)[4], "unused_and_duplicate_size=52428800B;;;0");
        assert!(r
            .hint
            .unwrap()
            .starts_with("unused indexes cost writes and space"));
    }

    #[test]
    fn an_invalid_index_is_critical_whatever_the_thresholds() {
        let v = visit(vec![found("invalid", "orders_broken", 0)]);
        let r = judge::<Indexes>(
            &v,
            &options(&[]),
            &thresholds::<Indexes>(Some("100"), None),
            0,
        );
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "1 invalid index (public.orders_broken); 0 unused indexes, 0 duplicates; 0 tables read mostly by sequential scans"
        );
        assert_eq!(
            r.details,
            ["invalid index public.orders_broken on orders (0 bytes): drop it, or REINDEX INDEX CONCURRENTLY"]
        );
    }

    #[test]
    fn sequential_scans_are_listed_not_judged() {
        let v = visit(vec![found("seqscan", "events", 64 * MB)]);
        let r = judge::<Indexes>(
            &v,
            &options(&[]),
            &thresholds::<Indexes>(Some("0"), Some("0")),
            0,
        );
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.details,
            ["table public.events (64 MB) read mostly by sequential scans, 50000 rows per scan: missing index?"]
        );
        let empty = judge::<Indexes>(
            &visit(vec![]),
            &options(&[]),
            &thresholds::<Indexes>(None, None),
            0,
        );
        assert_eq!((empty.status, empty.details.len()), (Status::Ok, 0));
    }

    #[test]
    fn duplicates_group_per_database_and_the_first_stays() {
        let mut other = found("duplicate", "orders_id_idx", MB);
        other.database = "shop".into();
        let groups = redundant_duplicates(&[
            found("duplicate", "a", MB),
            found("duplicate", "b", MB),
            found("duplicate", "c", MB),
            other,
        ]);
        let pairs: Vec<(&str, &str)> = groups
            .iter()
            .map(|(f, k)| (f.name.as_str(), k.as_str()))
            .collect();
        assert_eq!(pairs, [("b", "a"), ("c", "a")]);
    }
}
