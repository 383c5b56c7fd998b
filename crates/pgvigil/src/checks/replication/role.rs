//! check_pg_role: is this node the primary or a standby, as expected, and
//! did a failover happen since the previous run (its timeline moved)? With
//! --node, the whole set of nodes in one run: exactly one primary (two is
//! split brain, both taking writes), every standby on the primary's timeline
//! and of the same cluster (system identifier), each node's role and lag.

use crate::check::{Check, Context, Judging};
use crate::session::get;
use crate::session::Session;
use pgvigil_kit::judge::Findings;
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs};
use pgvigil_kit::units::pretty_bytes;
use pgvigil_kit::words::count;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Unit, UnitSpec};

pub struct Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Expected {
    Primary,
    Standby,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Role")]
pub struct Args {
    /// CRITICAL when the node (-H) is not this
    #[arg(long, value_enum, value_name = "ROLE")]
    pub expect: Option<Expected>,
    /// Another node of the same cluster, HOST[:PORT] (repeatable): the nodes are judged as a set
    #[arg(long, value_name = "HOST[:PORT]", value_parser = parse_node)]
    pub node: Vec<(String, Option<u16>)>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// `db2`, `db2:5433`, `[2001:db8::2]:5433`, or a socket directory.
pub fn parse_node(text: &str) -> Result<(String, Option<u16>), String> {
    let bad = || format!("'{text}' is not HOST[:PORT]");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_string(), Some(port.parse().map_err(|_| bad())?))),
            None if after.is_empty() => Ok((host.to_string(), None)),
            None => Err(bad()),
        };
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && !host.is_empty() => {
            Ok((host.to_string(), Some(port.parse().map_err(|_| bad())?)))
        }
        Some(_) => Err(bad()),
        None => Ok((text.to_string(), None)),
    }
}

// The timeline: a primary writes on the one its current WAL file names; a
// standby replays the one its receiver streams, else its last restartpoint's.
const SQL: &str = "
SELECT pg_is_in_recovery() AS in_recovery,
       (SELECT system_identifier::text FROM pg_control_system()) AS system_id,
       CASE WHEN pg_is_in_recovery()
            THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver),
                          (SELECT timeline_id FROM pg_control_checkpoint()))
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int4
       END AS timeline,
       CASE WHEN pg_is_in_recovery()
            THEN greatest(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)
       END::float8 AS replay_lag";

/// What one node says of itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// `db2:5432`, as the output names it.
    pub name: String,
    pub standby: bool,
    pub system_id: String,
    pub timeline: i32,
    /// On a standby: WAL received and not replayed.
    pub replay_lag: Option<f64>,
}

/// What one run sees: the node -H names, the other nodes (reachable or
/// not, with the reason), and what the previous run kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Measured {
    pub this: Node,
    pub others: Vec<Result<Node, (String, String)>>,
    /// The role and timeline the previous run saw, when they differ.
    pub changed: Option<String>,
}

impl Check for Role {
    const UNITS: UnitSpec = UnitSpec::of(&[], None);
    const HINT: &'static str = "two primaries take writes apart (split brain): stop or fence the one that should not be primary now, before more writes diverge, then rebuild it as a standby (pg_rewind or a new base backup); a standby on another timeline or of another cluster does not follow this primary: rebuild or re-point it (primary_conninfo, recovery_target_timeline = 'latest')";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  None. Another role than --expect is CRITICAL; a timeline or role changed
  since the previous run is WARNING once. With --node: more than one primary
  (split brain) or none is CRITICAL, and so is a standby on another timeline
  than the primary's or of another cluster (system identifier); a node that
  cannot be reached is WARNING, named with the reason.";
    type Args = Args;
    type Measured = Measured;

    fn fetch(args: &Args, db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(args, db, ctx)
    }

    /// The node against --expect and its previous run; with --node, the set:
    /// exactly one primary, every standby on its timeline and of its cluster,
    /// unreachable nodes named.
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let this = &m.this;
        let set = NodeSet::of(m);
        let mut findings = Findings::new();
        findings.add(unexpected_role(this, judging.args.expect));
        findings.add(role_changed(m));
        if set.many {
            findings.add(primaries_found(&set));
            findings.extend(strays(&set));
            findings.extend(
                set.unreachable
                    .iter()
                    .map(|(name, _)| (Status::Warning, format!("{name} unreachable"))),
            );
        }
        let primaries = set.primaries.len();
        let standbys = set.reachable.len() - primaries;
        let summary = if set.many {
            format!(
                "{} of {} reachable: {} primar{}, {}",
                set.reachable.len(),
                count(m.others.len() + 1, "node"),
                primaries,
                if primaries == 1 { "y" } else { "ies" },
                count(standbys, "standby")
            )
        } else {
            format!(
                "{} is {} on timeline {}",
                this.name,
                role(this),
                this.timeline
            )
        };
        let mut perf = vec![
            PerfData::new("primaries", primaries as f64, Unit::Count).min(0.0),
            PerfData::new("standbys", standbys as f64, Unit::Count).min(0.0),
            PerfData::new("timeline", f64::from(this.timeline), Unit::Count),
        ];
        let mut details = Vec::new();
        if set.many {
            let unreachable = set.unreachable.len() as f64;
            perf.push(PerfData::new("unreachable", unreachable, Unit::Count).min(0.0));
            details.extend(set.reachable.iter().map(|node| node_line(node)));
            details.extend(
                set.unreachable
                    .iter()
                    .map(|(name, reason)| format!("{name}: unreachable: {reason}")),
            );
        }
        CheckResult::new(findings.worst(), findings.after(summary))
            .perf(perf)
            .details(details)
    }
}

/// The nodes one run reached, and which of them take writes.
struct NodeSet<'a> {
    /// Other nodes were named (`--node`): the set is judged, not one node.
    many: bool,
    reachable: Vec<&'a Node>,
    unreachable: Vec<&'a (String, String)>,
    primaries: Vec<&'a Node>,
    /// What the others are held to: the one primary, else the node -H names.
    reference: &'a Node,
}

impl<'a> NodeSet<'a> {
    fn of(m: &'a Measured) -> NodeSet<'a> {
        let reachable: Vec<&Node> = std::iter::once(&m.this)
            .chain(m.others.iter().filter_map(|n| n.as_ref().ok()))
            .collect();
        let primaries: Vec<&Node> = reachable.iter().copied().filter(|n| !n.standby).collect();
        let reference = match primaries.as_slice() {
            [one] => *one,
            _ => &m.this,
        };
        NodeSet {
            many: !m.others.is_empty(),
            unreachable: m.others.iter().filter_map(|n| n.as_ref().err()).collect(),
            reachable,
            primaries,
            reference,
        }
    }
}

/// CRITICAL when the node has not the role --expect names.
fn unexpected_role(this: &Node, expect: Option<Expected>) -> Option<(Status, String)> {
    let wanted = expect? == Expected::Standby;
    (this.standby != wanted).then(|| {
        (
            Status::Critical,
            format!(
                "{} is {} where {} is expected",
                this.name,
                role(this),
                if wanted { "standby" } else { "primary" }
            ),
        )
    })
}

/// WARNING, once, when the role or timeline changed since the previous run.
fn role_changed(m: &Measured) -> Option<(Status, String)> {
    let before = m.changed.as_ref()?;
    Some((
        Status::Warning,
        format!(
            "was {before} at the previous run, now {} on timeline {}: a promotion or failover happened (reported once)",
            role(&m.this),
            m.this.timeline
        ),
    ))
}

/// CRITICAL for no primary among the reachable nodes, or more than one.
fn primaries_found(set: &NodeSet) -> Option<(Status, String)> {
    match set.primaries.as_slice() {
        [] => Some((
            Status::Critical,
            format!(
                "no primary among {}: the cluster takes no writes",
                count(set.reachable.len(), "reachable node")
            ),
        )),
        [_] => None,
        many => Some((
            Status::Critical,
            format!(
                "split brain: {} primaries ({}) take writes apart",
                many.len(),
                many.iter()
                    .map(|p| format!("{} on timeline {}", p.name, p.timeline))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// CRITICAL for a node of another cluster, and for a standby that does not
/// follow the one primary's timeline.
fn strays(set: &NodeSet) -> Vec<(Status, String)> {
    let reference = set.reference;
    set.reachable
        .iter()
        .filter_map(|node| {
            if node.system_id != reference.system_id {
                Some(format!(
                    "{} belongs to another cluster (system identifier {}, not {})",
                    node.name, node.system_id, reference.system_id
                ))
            } else if node.standby
                && set.primaries.len() == 1
                && node.timeline != reference.timeline
            {
                Some(format!(
                    "standby {} is on timeline {}, the primary {} on {}: it does not follow it",
                    node.name, node.timeline, reference.name, reference.timeline
                ))
            } else {
                None
            }
        })
        .map(|text| (Status::Critical, text))
        .collect()
}

/// `db2: standby on timeline 3, 16 MB received and not replayed`.
fn node_line(node: &Node) -> String {
    format!(
        "{}: {} on timeline {}{}",
        node.name,
        role(node),
        node.timeline,
        node.replay_lag
            .map(|l| format!(", {} received and not replayed", pretty_bytes(l)))
            .unwrap_or_default()
    )
}

fn node_of(session: &mut Session, name: String) -> Result<Node, Error> {
    let row = session.query_one(SQL)?;
    Ok(Node {
        name,
        standby: get(&row, "in_recovery")?,
        system_id: get(&row, "system_id")?,
        timeline: get::<Option<i32>>(&row, "timeline")?.unwrap_or(0),
        replay_lag: get(&row, "replay_lag")?,
    })
}

fn measure(args: &Args, db: &mut Session, ctx: &Context) -> Result<Measured, Error> {
    let this = node_of(db, ctx.conn.target())?;
    let mut others = Vec::new();
    for (host, port) in &args.node {
        let settings = ctx.conn.for_node(host, port.unwrap_or(ctx.conn.port()));
        let name = settings.target();
        match Session::connect(&settings, ctx.timeout) {
            Ok(mut session) => {
                let node = node_of(&mut session, name);
                session.close_in_background();
                others.push(Ok(node?));
            }
            Err(Error::Connect { reason, .. }) => others.push(Err((name, reason))),
            Err(e) => return Err(e),
        }
    }
    // The role and timeline are kept only when they change.
    let store = ctx.state_store(&args.state)?;
    let seen = format!("{} on timeline {}", role(&this), this.timeline);
    let previous = match store.load() {
        Loaded::Found(s) => s.markers.get("role").cloned(),
        Loaded::Missing | Loaded::Unusable(_) => None,
    };
    if previous.as_ref() != Some(&seen) {
        let mut snapshot = Snapshot::default();
        snapshot.markers.insert("role".into(), seen.clone());
        store.save(&snapshot)?;
    }
    let changed = previous.filter(|p| *p != seen);
    Ok(Measured {
        this,
        others,
        changed,
    })
}

fn role(node: &Node) -> &'static str {
    if node.standby {
        "standby"
    } else {
        "primary"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, perf, reported, thresholds};

    fn args(argv: &[&str]) -> Args {
        crate::checks::testing::options(argv)
    }

    fn node(name: &str, standby: bool, timeline: i32) -> Node {
        Node {
            name: name.into(),
            standby,
            system_id: "7300000000000000001".into(),
            timeline,
            replay_lag: standby.then_some(0.0),
        }
    }

    #[test]
    fn nodes_parse_as_host_and_port() {
        assert_eq!(parse_node("db2"), Ok(("db2".into(), None)));
        assert_eq!(parse_node("db2:5433"), Ok(("db2".into(), Some(5433))));
        assert_eq!(
            parse_node("[2001:db8::2]:5433"),
            Ok(("2001:db8::2".into(), Some(5433)))
        );
        assert_eq!(
            parse_node("/tmp/sockets"),
            Ok(("/tmp/sockets".into(), None))
        );
        for bad in ["", "db2:x", "[::1", "2001:db8::2", ":5432"] {
            assert!(parse_node(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_role_against_expect_and_a_failover_reported_once() {
        let m = Measured {
            this: node("db1:5432", false, 2),
            changed: Some("standby on timeline 1".into()),
            ..Measured::default()
        };
        let r = judge::<Role>(
            &m,
            &args(&["--expect", "primary"]),
            &thresholds::<Role>(None, None),
            0,
        );
        assert_eq!(r.status, Status::Warning);
        assert_eq!(
            r.summary,
            "db1:5432 is primary on timeline 2; was standby on timeline 1 at the previous run, now primary on timeline 2: a promotion or failover happened (reported once)"
        );
        let r = reported::<Role>(judge::<Role>(
            &m,
            &args(&["--expect", "standby"]),
            &thresholds::<Role>(None, None),
            0,
        ));
        assert_eq!(r.status, Status::Critical);
        assert!(r
            .summary
            .contains("; db1:5432 is primary where standby is expected"));
        assert!(r.hint.as_deref().unwrap().contains("split brain"));
        assert_eq!(
            perf(&r),
            ["primaries=1;;;0", "standbys=0;;;0", "timeline=2"]
        );
    }

    #[test]
    fn the_set_has_one_primary_on_one_timeline_of_one_cluster() {
        let a = args(&["--node", "db2", "--node", "db3"]);
        let healthy = Measured {
            this: node("db1:5432", false, 3),
            others: vec![Ok(node("db2:5432", true, 3)), Ok(node("db3:5432", true, 3))],
            changed: None,
        };
        let r = judge::<Role>(&healthy, &a, &thresholds::<Role>(None, None), 0);
        assert_eq!(r.status, Status::Ok);
        assert_eq!(r.summary, "3 of 3 nodes reachable: 1 primary, 2 standbys");
        assert_eq!(
            r.details[1],
            "db2:5432: standby on timeline 3, 0 bytes received and not replayed"
        );

        let mut split = healthy.clone();
        split.others[1] = Ok(node("db3:5432", false, 4));
        let r = judge::<Role>(&split, &a, &thresholds::<Role>(None, None), 0);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.contains("; split brain: 2 primaries (db1:5432 on timeline 3, db3:5432 on timeline 4) take writes apart"),
            "{}",
            r.summary
        );

        let mut behind = healthy.clone();
        behind.others[0] = Ok(node("db2:5432", true, 2));
        let mut stranger = node("db3:5432", true, 3);
        stranger.system_id = "7300000000000000999".into();
        behind.others[1] = Ok(stranger);
        let r = judge::<Role>(&behind, &a, &thresholds::<Role>(None, None), 0);
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.contains(
            "; standby db2:5432 is on timeline 2, the primary db1:5432 on 3: it does not follow it"
        ));
        assert!(r.summary.contains("; db3:5432 belongs to another cluster (system identifier 7300000000000000999, not 7300000000000000001)"));

        let mut gone = healthy.clone();
        gone.this.standby = true;
        gone.others[1] = Err(("db3:5432".into(), "connection refused".into()));
        let r = judge::<Role>(&gone, &a, &thresholds::<Role>(None, None), 0);
        assert_eq!(r.status, Status::Critical);
        assert_eq!(
            r.summary,
            "2 of 3 nodes reachable: 0 primaries, 2 standbys; no primary among 2 reachable nodes: the cluster takes no writes; db3:5432 unreachable"
        );
        assert_eq!(r.details[2], "db3:5432: unreachable: connection refused");
    }
}
