//! check_pg_patroni: a Patroni cluster as its REST API describes it. Node by
//! node everything may look green while the cluster has no leader (it is
//! read-only), maintenance mode is left on (the next failure gets no
//! failover), a replica follows an old timeline, or someone scheduled a
//! switchover. One node's API gives the whole cluster (`/cluster`) and its
//! own view (`/patroni`), which still answers when the DCS does not.

use std::collections::BTreeSet;

use crate::check::{Check, Context, Judging};
use pgvigil_kit::judge::Findings;
use std::path::PathBuf;

use crate::rest::{Client, Failure, Https};
use crate::session::Session;
use pgvigil_kit::state::{Loaded, Snapshot, StateArgs};
use pgvigil_kit::units::{pretty_bytes, pretty_duration};
use pgvigil_kit::words::count;
use pgvigil_kit::{CheckResult, Error, PerfData, Status, Thresholds, Unit, UnitSpec};

pub struct Patroni;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Expected {
    /// The leader (or the standby leader of a standby cluster).
    #[value(alias = "primary")]
    Leader,
    #[value(alias = "standby")]
    Replica,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Patroni")]
pub struct Args {
    /// Patroni's REST API on one node, http(s)://HOST:PORT [default: port 8008 of the host -H names]
    #[arg(long, value_name = "URL", value_parser = parse_api)]
    pub api: Option<String>,
    /// CRITICAL when the node whose API is asked has not this role
    #[arg(long, value_enum, value_name = "ROLE")]
    pub expect: Option<Expected>,
    /// CA certificate the API's certificate must chain to, host name included [default: the connection's sslrootcert under verify-ca/verify-full]
    #[arg(long, alias = "ca_file", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate, for an API with restapi verify_client (PEM; may hold the key too)
    #[arg(long, alias = "cert_file", value_name = "FILE")]
    pub cert_file: Option<PathBuf>,
    /// The client certificate's key, readable by its owner only [default: --cert-file]
    #[arg(long, alias = "key_file", value_name = "FILE", requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// The leader, timeline and members of the previous run, to report a
    /// failover and a member gone once; since when the cluster is paused.
    #[command(flatten)]
    pub state: StateArgs,
}

/// `http://db1:8008`, without a trailing slash.
pub fn parse_api(text: &str) -> Result<String, String> {
    let text = text.trim().trim_end_matches('/');
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| format!("'{text}' is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.contains(char::is_whitespace) {
        return Err(format!("'{text}' names no host"));
    }
    Ok(text.to_string())
}

/// One member as `/cluster` lists it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Member {
    pub name: String,
    /// leader, standby_leader, replica, sync_standby, quorum_standby…
    pub role: String,
    /// running, streaming (3.0.4+), stopped, starting, crashed…
    pub state: String,
    pub timeline: Option<i64>,
    /// Bytes behind the leader; None when Patroni says "unknown".
    pub lag: Option<f64>,
    pub api_url: String,
    pub scheduled_restart: Option<String>,
}

impl Member {
    fn leads(&self) -> bool {
        is_leader_role(&self.role)
    }
}

fn is_leader_role(role: &str) -> bool {
    matches!(role, "leader" | "standby_leader" | "master" | "primary")
}

/// What `/cluster` says of the whole cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterView {
    pub members: Vec<Member>,
    pub paused: bool,
    /// When, from, to.
    pub scheduled_switchover: Option<(String, String, String)>,
}

/// What `/patroni` says of the node asked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeView {
    pub role: String,
    pub state: String,
    pub version: String,
    /// The node's Patroni sees no leader key in the DCS.
    pub cluster_unlocked: bool,
}

/// What the previous run saw, from the state file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Previous {
    pub leader: String,
    pub timeline: Option<i64>,
    pub members: BTreeSet<String>,
}

/// What one run reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub api: String,
    pub node: Result<NodeView, Failure>,
    pub cluster: Result<ClusterView, Failure>,
    pub previous: Option<Previous>,
    /// Seconds since the first run that saw the cluster paused.
    pub paused_for: Option<f64>,
}

impl Check for Patroni {
    const UNITS: UnitSpec = UnitSpec::of(&[Unit::Count, Unit::Bytes], Some(Unit::Count));
    const HINT: &'static str = "patronictl list shows the cluster as Patroni sees it; patronictl resume ends maintenance mode, patronictl flush removes a scheduled switchover or restart; a replica that is not streaming: read its Patroni and PostgreSQL logs; no leader or no answer: check the DCS (etcdctl endpoint health) and Patroni's log";
    const THRESHOLD_HELP: &'static str = "THRESHOLDS
  A bare number applies to the count of healthy replicas (running, streaming
  or in archive recovery, on the leader's timeline, lag known; sync and
  quorum standbys count too), a size to each replica's
  lag behind the leader. No leader, or the API not answering, is CRITICAL; a
  replica not healthy, maintenance mode (pause), a scheduled switchover or
  restart, a new leader or timeline since the previous run (once) and a
  member gone since the previous run (once) are at least WARNING.
  Default: {defaults} (no healthy replica is CRITICAL).
  Examples: -w 2:,16MB -c 1:,1GB";
    const DEFAULT_THRESHOLDS: Option<(&'static str, &'static str)> = Some(("16MB", "1:,1GB"));
    type Args = Args;
    type Measured = Measured;

    /// Patroni's REST API answers, never the server: the run does not
    /// connect.
    fn fetch_local(args: &Args, ctx: &Context) -> Option<Result<Self::Measured, Error>> {
        Some(measure(args, ctx))
    }

    fn fetch(args: &Args, _db: &mut Session, ctx: &Context) -> Result<Self::Measured, Error> {
        measure(args, ctx)
    }
    fn judge(m: &Self::Measured, judging: &Judging<Args>) -> CheckResult {
        let (t, verbose) = (judging.thresholds, judging.verbose);
        let (node, view) = match answered(m) {
            Ok(both) => both,
            Err(why) => return CheckResult::new(Status::Critical, why),
        };
        let leaders: Vec<&Member> = view.members.iter().filter(|x| x.leads()).collect();
        let leader = leaders.first().copied();
        let replicas: Vec<&Member> = view.members.iter().filter(|x| !x.leads()).collect();
        let judged: Vec<(&Member, Status, Vec<String>)> = replicas
            .iter()
            .map(|r| {
                let (state, problems) = judge_replica(r, leader, t);
                (*r, state, problems)
            })
            .collect();
        let healthy = replicas.iter().filter(|r| is_healthy(r, leader)).count();

        let mut findings = Findings::new();
        findings.add(leaders_found(&leaders));
        findings.add(unexpected_role(m, judging.args.expect));
        findings.add(paused(m, view));
        findings.extend(scheduled(view));
        findings.extend(since_previous(m, view, leader));
        findings.extend(judged.iter().filter(|(_, s, _)| *s != Status::Ok).map(
            |(r, state, problems)| {
                let name = &r.name;
                let problems = problem_list(problems);
                (
                    *state,
                    format!("replica {name} {}{problems}", or_unknown(&r.state)),
                )
            },
        ));
        let healthy_status = t.status(&[(Unit::Count, healthy as f64)]);
        if healthy_status != Status::Ok {
            let replicas = count(replicas.len(), "replica");
            findings.push(healthy_status, format!("{healthy} of {replicas} healthy"));
        }

        let status = findings.worst();
        let leader_text = match leader {
            Some(l) => format!(
                "leader {}{}",
                l.name,
                l.timeline
                    .map(|tl| format!(" (timeline {tl})"))
                    .unwrap_or_default()
            ),
            None => "no leader".into(),
        };
        let max_lag = replicas.iter().filter_map(|r| r.lag).fold(0.0, f64::max);
        let overview = format!(
            "{leader_text}, {healthy} of {} streaming, max lag {}",
            count(replicas.len(), "replica"),
            pretty_bytes(max_lag)
        );
        let problems = findings.alerts();
        let summary = if problems.is_empty() {
            overview
        } else {
            format!("{}; {overview}", problems.join(", "))
        };
        let mut perf = vec![
            PerfData::new("members", view.members.len() as f64, Unit::Count).min(0.0),
            PerfData::new("healthy_replicas", healthy as f64, Unit::Count)
                .thresholds(t)
                .min(0.0),
            PerfData::new("paused", if view.paused { 1.0 } else { 0.0 }, Unit::Count)
                .min(0.0)
                .max(1.0),
        ];
        if let Some(tl) = leader.and_then(|l| l.timeline) {
            perf.push(PerfData::new("timeline", tl as f64, Unit::Count));
        }
        for r in &replicas {
            if let Some(lag) = r.lag {
                perf.push(
                    PerfData::new(format!("{} lag", r.name), lag, Unit::Bytes)
                        .thresholds(t)
                        .min(0.0),
                );
            }
        }
        let details = if status != Status::Ok || verbose > 0 {
            let version = if node.version.is_empty() {
                String::new()
            } else {
                format!(" (Patroni {})", node.version)
            };
            let mut d = vec![format!("asked {}{version}", m.api)];
            d.extend(
                judged
                    .iter()
                    .map(|(r, state, problems)| replica_line(r, *state, problems)),
            );
            d
        } else {
            Vec::new()
        };
        CheckResult::new(status, summary)
            .perf(perf)
            .details(details)
    }
}

/// The node's view and the cluster's, or why not: an API that does not
/// answer, or a Patroni that cannot reach its DCS (CRITICAL either way).
fn answered(m: &Measured) -> Result<(&NodeView, &ClusterView), String> {
    let node = m.node.as_ref().map_err(|Failure(why)| {
        format!("Patroni's REST API at {} does not answer: {why}", m.api)
    })?;
    let view = m.cluster.as_ref().map_err(|Failure(why)| {
        let unlocked = if node.cluster_unlocked {
            ", no leader key in the DCS"
        } else {
            ""
        };
        format!(
            "Patroni at {} cannot give the cluster (is its DCS reachable?): {why}; this node: {} {}{unlocked}",
            m.api,
            or_unknown(&node.role),
            or_unknown(&node.state)
        )
    })?;
    Ok((node, view))
}

/// CRITICAL for no leader (the cluster is read-only) or more than one.
fn leaders_found(leaders: &[&Member]) -> Option<(Status, String)> {
    match leaders {
        [] => Some((
            Status::Critical,
            "no leader: the cluster is read-only".to_string(),
        )),
        [_] => None,
        many => Some((
            Status::Critical,
            format!(
                "{} leaders: {}",
                many.len(),
                many.iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// CRITICAL when the node asked has not the role --expect names.
fn unexpected_role(m: &Measured, expect: Option<Expected>) -> Option<(Status, String)> {
    let (expected, leads) = (expect?, node_leads(m)?);
    let wanted = match expected {
        Expected::Leader => leads,
        Expected::Replica => !leads,
    };
    let is = if leads { "the leader" } else { "a replica" };
    let should = match expected {
        Expected::Leader => "the leader",
        Expected::Replica => "a replica",
    };
    (!wanted).then(|| {
        (
            Status::Critical,
            format!("this node is {is}, expected {should}"),
        )
    })
}

/// WARNING in maintenance mode: no automatic failover.
fn paused(m: &Measured, view: &ClusterView) -> Option<(Status, String)> {
    if !view.paused {
        return None;
    }
    let since = m
        .paused_for
        .filter(|s| *s >= 1.0)
        .map(|s| format!(" for at least {}", pretty_duration(s)))
        .unwrap_or_default();
    Some((
        Status::Warning,
        format!("maintenance mode (paused){since}: no automatic failover"),
    ))
}

/// WARNING for a scheduled switchover, and for each scheduled restart.
fn scheduled(view: &ClusterView) -> Vec<(Status, String)> {
    let switchover = view.scheduled_switchover.iter().map(|(at, from, to)| {
        let to = if to.is_empty() {
            String::new()
        } else {
            format!(" to {to}")
        };
        format!("switchover scheduled at {at} from {from}{to}")
    });
    let restarts = view.members.iter().filter_map(|member| {
        let at = member.scheduled_restart.as_ref()?;
        Some(format!("restart of {} scheduled at {at}", member.name))
    });
    switchover
        .chain(restarts)
        .map(|text| (Status::Warning, text))
        .collect()
}

/// WARNING, once, for a new leader or timeline and for members gone since
/// the previous run.
fn since_previous(
    m: &Measured,
    view: &ClusterView,
    leader: Option<&Member>,
) -> Vec<(Status, String)> {
    let Some(previous) = &m.previous else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let now_leader = leader.map(|l| l.name.as_str()).unwrap_or_default();
    let now_timeline = leader.and_then(|l| l.timeline);
    if !previous.leader.is_empty() && !now_leader.is_empty() && previous.leader != now_leader {
        let timelines = match (previous.timeline, now_timeline) {
            (Some(a), Some(b)) if a != b => format!(", timeline {a} → {b}"),
            _ => String::new(),
        };
        found.push(format!(
            "new leader since the previous run: {} → {now_leader}{timelines} (a failover or switchover)",
            previous.leader
        ));
    } else if let (Some(a), Some(b)) = (previous.timeline, now_timeline) {
        if a != b {
            found.push(format!(
                "the leader's timeline changed since the previous run: {a} → {b}"
            ));
        }
    }
    let current: BTreeSet<&str> = view.members.iter().map(|x| x.name.as_str()).collect();
    let gone: Vec<&str> = previous
        .members
        .iter()
        .map(String::as_str)
        .filter(|n| !current.contains(n))
        .collect();
    if !gone.is_empty() {
        found.push(format!("gone since the previous run: {}", gone.join(", ")));
    }
    found
        .into_iter()
        .map(|text| (Status::Warning, text))
        .collect()
}

/// `: not streaming, lag 2 GB`, or nothing.
fn problem_list(problems: &[String]) -> String {
    if problems.is_empty() {
        String::new()
    } else {
        format!(": {}", problems.join(", "))
    }
}

/// `OK db2 (replica, streaming, timeline 3) lag 0 bytes`, for the long output.
fn replica_line(r: &Member, state: Status, problems: &[String]) -> String {
    let lag = r.lag.map(pretty_bytes).unwrap_or_else(|| "unknown".into());
    let timeline = r
        .timeline
        .map(|tl| format!(", timeline {tl}"))
        .unwrap_or_default();
    format!(
        "{state} {} ({}, {}{timeline}) lag {lag}{}",
        r.name,
        r.role,
        or_unknown(&r.state),
        problem_list(problems)
    )
}

/// The API's URL: --api, else port 8008 on -H (on this host for a socket).
fn api_url(args: &Args, ctx: &Context) -> String {
    if let Some(api) = &args.api {
        return api.clone();
    }
    let hosts = ctx.conn.hosts();
    let host = hosts
        .iter()
        .find(|h| !h.starts_with('/'))
        .map(String::as_str)
        .unwrap_or("127.0.0.1");
    if host.contains(':') {
        format!("http://[{host}]:8008")
    } else {
        format!("http://{host}:8008")
    }
}

fn measure(args: &Args, ctx: &Context) -> Result<Measured, Error> {
    let api = api_url(args, ctx);
    // Two requests share the -t budget, each bounded well inside it, so
    // that an API that hangs (Patroni waiting on a stuck DCS) is reported
    // as not answering rather than cut short by the watchdog.
    let https = api.starts_with("https://").then(|| Https {
        ca_file: args.ca_file.clone(),
        cert_file: args.cert_file.clone(),
        key_file: args.key_file.clone(),
    });
    let client = Client::new(&ctx.conn, https, ctx.timeout.mul_f64(0.4))?;
    let node = client
        .json(&format!("{api}/patroni"))
        .map(|v| read_node(&v));
    // A node that does not answer at all makes /cluster moot.
    let cluster = match &node {
        Err(e) => Err(e.clone()),
        Ok(_) => client
            .json(&format!("{api}/cluster"))
            .and_then(|v| read_cluster(&v)),
    };
    let mut previous = None;
    let mut paused_for = None;
    if let Ok(view) = &cluster {
        let store = ctx.state_store(&args.state)?;
        let loaded = match store.load() {
            Loaded::Found(snapshot) => Some(snapshot),
            _ => None,
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        previous = loaded.as_ref().map(read_previous);
        let (seen, paused) = remember(view, loaded.as_ref(), now);
        paused_for = paused;
        store.save(&seen)?;
    }
    Ok(Measured {
        api,
        node,
        cluster,
        previous,
        paused_for,
    })
}

fn text(v: &serde_json::Value, key: &str) -> String {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// `/patroni`, as far as it is understood.
pub fn read_node(v: &serde_json::Value) -> NodeView {
    NodeView {
        role: text(v, "role"),
        state: text(v, "state"),
        version: v
            .get("patroni")
            .map(|p| text(p, "version"))
            .unwrap_or_default(),
        cluster_unlocked: v
            .get("cluster_unlocked")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    }
}

/// `/cluster`; a document without members is not Patroni's.
pub fn read_cluster(v: &serde_json::Value) -> Result<ClusterView, Failure> {
    let members = v
        .get("members")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| Failure("the answer to /cluster lists no members".into()))?;
    let switchover = v.get("scheduled_switchover").map(|s| {
        let at = text(s, "at");
        (at, text(s, "from"), text(s, "to"))
    });
    Ok(ClusterView {
        members: members
            .iter()
            .map(|m| Member {
                name: text(m, "name"),
                role: text(m, "role"),
                state: text(m, "state"),
                timeline: m.get("timeline").and_then(serde_json::Value::as_i64),
                lag: m.get("lag").and_then(serde_json::Value::as_f64),
                api_url: text(m, "api_url"),
                scheduled_restart: m.get("scheduled_restart").map(|r| text(r, "schedule")),
            })
            .collect(),
        paused: v
            .get("pause")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        scheduled_switchover: switchover,
    })
}

fn read_previous(s: &Snapshot) -> Previous {
    Previous {
        leader: s.markers.get("leader").cloned().unwrap_or_default(),
        timeline: s.markers.get("timeline").and_then(|t| t.parse().ok()),
        members: s
            .markers
            .get("members")
            .map(|m| {
                m.split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The snapshot to keep for the next run, and how long the cluster has been
/// paused (counted from the first run that saw it so).
pub fn remember(
    view: &ClusterView,
    previous: Option<&Snapshot>,
    now: f64,
) -> (Snapshot, Option<f64>) {
    let mut seen = Snapshot {
        taken_at: now,
        ..Snapshot::default()
    };
    // Without a leader (an election under way) the last one seen is kept,
    // so that the run which sees the next leader still reports the change.
    match view.members.iter().find(|m| m.leads()) {
        Some(leader) => {
            seen.markers.insert("leader".into(), leader.name.clone());
            if let Some(timeline) = leader.timeline {
                seen.markers.insert("timeline".into(), timeline.to_string());
            }
        }
        None => {
            for key in ["leader", "timeline"] {
                if let Some(value) = previous.and_then(|p| p.markers.get(key)) {
                    seen.markers.insert(key.into(), value.clone());
                }
            }
        }
    }
    let names: Vec<&str> = view.members.iter().map(|m| m.name.as_str()).collect();
    seen.markers.insert("members".into(), names.join(","));
    let mut paused_for = None;
    if view.paused {
        let since = previous
            .and_then(|p| p.markers.get("paused since"))
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|since| *since <= now)
            .unwrap_or(now);
        seen.markers
            .insert("paused since".into(), since.to_string());
        paused_for = Some(now - since);
    }
    (seen, paused_for)
}

/// `http://127.0.0.1:8008/patroni` and `http://127.0.0.1:8008` name one node.
fn same_api(member_url: &str, api: &str) -> bool {
    let strip = |u: &str| {
        u.trim_end_matches('/')
            .trim_end_matches("/patroni")
            .trim_end_matches('/')
            .to_ascii_lowercase()
    };
    strip(member_url) == strip(api)
}

/// One replica's state and what is wrong with it.
fn judge_replica(m: &Member, leader: Option<&Member>, t: &Thresholds) -> (Status, Vec<String>) {
    let mut problems = Vec::new();
    let mut status = Status::Ok;
    if !replicates(&m.state) {
        status = Status::Warning;
        problems.push(format!("state {}", or_unknown(&m.state)));
    }
    let leader_timeline = leader.and_then(|l| l.timeline);
    if let (Some(own), Some(leaders)) = (m.timeline, leader_timeline) {
        if own != leaders {
            status = Status::Warning;
            problems.push(format!("on timeline {own}, the leader on {leaders}"));
        }
    }
    match m.lag {
        Some(lag) => status = status.worst(t.status(&[(Unit::Bytes, lag)])),
        None => {
            status = Status::Warning;
            problems.push("lag unknown".into());
        }
    }
    (status, problems)
}

/// A replica that applies WAL: running (Patroni < 3.0.4), streaming, or
/// in archive recovery (restore_command; its lag tells whether it keeps up).
fn replicates(state: &str) -> bool {
    matches!(state, "running" | "streaming" | "in archive recovery")
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() {
        "unknown"
    } else {
        s
    }
}

fn is_healthy(m: &Member, leader: Option<&Member>) -> bool {
    replicates(&m.state)
        && m.lag.is_some()
        && match (m.timeline, leader.and_then(|l| l.timeline)) {
            (Some(own), Some(leaders)) => own == leaders,
            _ => true,
        }
}

/// The node asked, as leader or replica.
fn node_leads(m: &Measured) -> Option<bool> {
    if let Ok(view) = &m.cluster {
        if let Some(member) = view.members.iter().find(|x| same_api(&x.api_url, &m.api)) {
            return Some(member.leads());
        }
    }
    m.node.as_ref().ok().map(|n| is_leader_role(&n.role))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{judge, options, perf, reported, thresholds};

    fn member(name: &str, role: &str, timeline: i64, lag: Option<f64>) -> Member {
        Member {
            name: name.into(),
            role: role.into(),
            state: "running".into(),
            timeline: Some(timeline),
            lag,
            api_url: format!("http://127.0.0.1:80{}/patroni", &name[4..]),
            scheduled_restart: None,
        }
    }

    fn healthy() -> ClusterView {
        ClusterView {
            members: vec![
                member("node1", "leader", 1, None),
                member("node2", "replica", 1, Some(0.0)),
                member("node3", "replica", 1, Some(0.0)),
            ],
            ..ClusterView::default()
        }
    }

    fn measured(view: ClusterView) -> Measured {
        Measured {
            api: "http://127.0.0.1:801".into(),
            node: Ok(NodeView {
                role: "master".into(),
                state: "running".into(),
                version: "3.0.2".into(),
                cluster_unlocked: false,
            }),
            cluster: Ok(view),
            previous: None,
            paused_for: None,
        }
    }

    fn run(m: &Measured, expect: Option<Expected>) -> CheckResult {
        let mut args: Args = options(&[]);
        args.expect = expect;
        reported::<Patroni>(judge::<Patroni>(
            m,
            &args,
            &thresholds::<Patroni>(None, None),
            0,
        ))
    }

    #[test]
    fn the_api_documents_of_patroni_3_are_read() {
        let v: serde_json::Value = serde_json::from_str(r#"{"members": [{"name": "node1", "role": "leader", "state": "running", "api_url": "http://127.0.0.1:18011/patroni", "host": "127.0.0.1", "port": 18501, "timeline": 1}, {"name": "node2", "role": "replica", "state": "stopped", "api_url": "http://127.0.0.1:18012/patroni", "host": "127.0.0.1", "port": 18502, "lag": "unknown"}, {"name": "node3", "role": "replica", "state": "running", "api_url": "http://127.0.0.1:18013/patroni", "timeline": 1, "scheduled_restart": {"schedule": "2030-01-02T00:00:00+00:00", "postmaster_start_time": "x"}, "lag": 0}], "pause": true, "scheduled_switchover": {"at": "2030-01-01T00:00:00+00:00", "from": "node1", "to": "node2"}}"#).unwrap();
        let view = read_cluster(&v).unwrap();
        assert!(view.paused);
        assert_eq!(view.members[1].lag, None);
        assert_eq!(view.members[1].timeline, None);
        assert_eq!(
            view.members[2].scheduled_restart.as_deref(),
            Some("2030-01-02T00:00:00+00:00")
        );
        assert_eq!(
            view.scheduled_switchover,
            Some((
                "2030-01-01T00:00:00+00:00".into(),
                "node1".into(),
                "node2".into()
            ))
        );
        assert!(read_cluster(&serde_json::json!({"state": "running"})).is_err());
        let node = read_node(
            &serde_json::json!({"state": "running", "role": "replica", "cluster_unlocked": true, "patroni": {"version": "3.0.2", "scope": "exp"}}),
        );
        assert_eq!(
            (
                node.role.as_str(),
                node.version.as_str(),
                node.cluster_unlocked
            ),
            ("replica", "3.0.2", true)
        );
    }

    #[test]
    fn a_healthy_cluster_is_ok() {
        let r = run(&measured(healthy()), Some(Expected::Leader));
        assert_eq!(r.status, Status::Ok);
        assert_eq!(
            r.summary,
            "leader node1 (timeline 1), 2 of 2 replicas streaming, max lag 0 bytes"
        );
        assert_eq!(
            perf(&r),
            [
                "members=3;;;0",
                "healthy_replicas=2;;1:;0",
                "paused=0;;;0;1",
                "timeline=1",
                "'node2 lag'=0B;16777216;1073741824;0",
                "'node3 lag'=0B;16777216;1073741824;0"
            ]
        );
    }

    #[test]
    fn no_leader_or_no_answer_is_critical() {
        let mut view = healthy();
        view.members.remove(0);
        let r = run(&measured(view), None);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary
                .starts_with("no leader: the cluster is read-only; no leader, 2 of 2 replicas"),
            "{}",
            r.summary
        );
        let mut m = measured(healthy());
        m.node = Err(Failure("Connection refused".into()));
        let r = run(&m, None);
        assert_eq!(
            (r.status, r.summary.as_str()),
            (
                Status::Critical,
                "Patroni's REST API at http://127.0.0.1:801 does not answer: Connection refused"
            )
        );
        let mut m = measured(healthy());
        m.cluster = Err(Failure("connection closed".into()));
        m.node.as_mut().unwrap().role = "replica".into();
        m.node.as_mut().unwrap().cluster_unlocked = true;
        let r = run(&m, None);
        assert_eq!(r.status, Status::Critical);
        assert!(
            r.summary.ends_with(
                "connection closed; this node: replica running, no leader key in the DCS"
            ),
            "{}",
            r.summary
        );
        assert!(r.hint.unwrap().contains("etcdctl"));
    }

    #[test]
    fn pause_and_schedules_warn() {
        let mut view = healthy();
        view.paused = true;
        view.scheduled_switchover = Some((
            "2030-01-01T00:00:00+00:00".into(),
            "node1".into(),
            "node2".into(),
        ));
        view.members[2].scheduled_restart = Some("2030-01-02T00:00:00+00:00".into());
        let mut m = measured(view);
        m.paused_for = Some(600.0);
        let r = run(&m, None);
        assert_eq!(r.status, Status::Warning);
        assert!(r.summary.starts_with("maintenance mode (paused) for at least 10 min 0 s: no automatic failover, switchover scheduled at 2030-01-01T00:00:00+00:00 from node1 to node2, restart of node3 scheduled at 2030-01-02T00:00:00+00:00; leader node1"), "{}", r.summary);
    }

    #[test]
    fn replicas_stopped_behind_or_on_an_old_timeline() {
        let mut view = healthy();
        view.members[1].state = "stopped".into();
        view.members[1].lag = None;
        view.members[1].timeline = None;
        view.members[2].timeline = Some(0);
        let r = run(&measured(view.clone()), None);
        // No healthy replica left: CRITICAL by the default -c 1:.
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.starts_with("0 of 2 replicas healthy, replica node2 stopped: state stopped, lag unknown, replica node3 running: on timeline 0, the leader on 1;"), "{}", r.summary);
        view.members[2].timeline = Some(1);
        view.members[2].lag = Some(32.0 * 1048576.0);
        let r = run(&measured(view), None);
        assert_eq!(r.status, Status::Warning);
        // Patroni 3.0.4+ says streaming.
        let mut view = healthy();
        view.members[1].state = "streaming".into();
        assert_eq!(run(&measured(view), None).status, Status::Ok);
    }

    #[test]
    fn a_failover_and_a_member_gone_are_reported_once() {
        let mut view = healthy();
        view.members[0].role = "replica".into();
        view.members[0].lag = Some(0.0);
        view.members[0].timeline = Some(2);
        view.members[1].role = "leader".into();
        view.members[1].timeline = Some(2);
        view.members[2].timeline = Some(2);
        view.members.push(member("node4", "replica", 2, Some(0.0)));
        view.members.retain(|x| x.name != "node3");
        let mut m = measured(view.clone());
        m.previous = Some(Previous {
            leader: "node1".into(),
            timeline: Some(1),
            members: ["node1", "node2", "node3"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        });
        let r = run(&m, Some(Expected::Leader));
        assert_eq!(r.status, Status::Critical);
        assert!(r.summary.starts_with("this node is a replica, expected the leader, new leader since the previous run: node1 → node2, timeline 1 → 2 (a failover or switchover), gone since the previous run: node3; leader node2 (timeline 2)"), "{}", r.summary);
        // The next run remembers the new leader: OK.
        let (seen, _) = remember(&view, None, 1000.0);
        m.previous = Some(read_previous(&seen));
        assert_eq!(run(&m, Some(Expected::Replica)).status, Status::Ok);
    }

    #[test]
    fn a_run_without_leader_keeps_the_last_one_for_the_next() {
        let (first, _) = remember(&healthy(), None, 1000.0);
        let mut election = healthy();
        election.members.remove(0);
        let (during, _) = remember(&election, Some(&first), 1010.0);
        assert_eq!(during.markers["leader"], "node1");
        assert_eq!(during.markers["timeline"], "1");
        assert_eq!(during.markers["members"], "node2,node3");
        // node2 wins on timeline 2: the change is reported.
        let mut after = election.clone();
        after.members[0].role = "leader".into();
        after.members[0].timeline = Some(2);
        after.members[1].timeline = Some(2);
        let mut m = measured(after);
        m.previous = Some(read_previous(&during));
        let r = run(&m, None);
        assert!(
            r.summary
                .starts_with("new leader since the previous run: node1 → node2, timeline 1 → 2"),
            "{}",
            r.summary
        );
    }

    #[test]
    fn paused_time_counts_from_the_first_run_that_saw_it() {
        let mut view = healthy();
        view.paused = true;
        let (first, paused) = remember(&view, None, 1000.0);
        assert_eq!(paused, Some(0.0));
        let (_, paused) = remember(&view, Some(&first), 1600.0);
        assert_eq!(paused, Some(600.0));
        view.paused = false;
        let (resumed, paused) = remember(&view, Some(&first), 1700.0);
        assert_eq!(paused, None);
        assert!(!resumed.markers.contains_key("paused since"));
    }

    #[test]
    fn api_urls_are_checked() {
        assert_eq!(parse_api("http://db1:8008/").unwrap(), "http://db1:8008");
        assert!(parse_api("db1:8008")
            .unwrap_err()
            .contains("not an http:// or https:// URL"));
        assert!(same_api(
            "http://127.0.0.1:8008/patroni",
            "http://127.0.0.1:8008"
        ));
    }
}
