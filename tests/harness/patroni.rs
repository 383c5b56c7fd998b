//! A real Patroni cluster for the tests: one etcd on loopback (with the v2
//! API Debian's Patroni 3.0 speaks) and N Patroni nodes, each running a
//! throwaway PostgreSQL of Debian's, all as the unprivileged server user.
//! The first node bootstraps and leads; the others join as streaming
//! replicas (Patroni makes them with pg_basebackup). Dropped, every process
//! is stopped and the directory removed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::system::{as_server_user, chown, free_port, run_ok, temp_dir};

/// Debian's PostgreSQL, whose pg_basebackup Patroni needs to make replicas.
pub const PATRONI_BINDIR: &str = "/usr/lib/postgresql/15/bin";

/// Timings short enough for a test: Patroni wants
/// loop_wait + 2 × retry_timeout ≤ ttl.
const TTL: u32 = 20;

pub struct Node {
    pub name: String,
    pub api_port: u16,
    pub pg_port: u16,
    pub config: PathBuf,
    pub data: PathBuf,
    https: bool,
    child: Option<Child>,
}

impl Node {
    /// `http://127.0.0.1:PORT`, the node's REST API (https:// for a
    /// cluster started with a certificate).
    pub fn api(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.api_port)
    }
}

pub struct PatroniCluster {
    pub base: PathBuf,
    pub scope: String,
    pub nodes: Vec<Node>,
    /// The REST API's certificate and key, when it speaks HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
    /// The CA the API requires client certificates from, and the harness's
    /// own client certificate and key for its requests.
    client_auth: Option<ClientAuth>,
    etcd: Option<Child>,
    etcd_port: u16,
    etcd_peer_port: u16,
}

/// Programs the Patroni tests need; scripts/setup.sh installs them.
pub fn patroni_available() -> Result<(), String> {
    for program in ["/usr/bin/patroni", "/usr/bin/patronictl", "/usr/bin/etcd"] {
        if !Path::new(program).exists() {
            return Err(format!("{program} is missing: run scripts/setup.sh"));
        }
    }
    if !Path::new(PATRONI_BINDIR).join("pg_basebackup").exists() {
        return Err(format!("{PATRONI_BINDIR}/pg_basebackup is missing"));
    }
    Ok(())
}

fn log_file(path: &Path) -> File {
    let file = File::create(path).expect("create log file");
    chown(path);
    file
}

impl PatroniCluster {
    /// etcd and `size` nodes, returned once there is a leader and every
    /// other node streams from it.
    pub fn start(scope: &str, size: usize) -> PatroniCluster {
        PatroniCluster::start_with(scope, size, None)
    }

    /// The same, the REST API serving HTTPS with `tls` (certificate, key).
    pub fn start_with(scope: &str, size: usize, tls: Option<(PathBuf, PathBuf)>) -> PatroniCluster {
        PatroniCluster::start_tls(scope, size, tls, None)
    }

    /// The same, the REST API also requiring a client certificate signed by
    /// `client_auth.ca` for every request (restapi verify_client: required).
    pub fn start_verifying_clients(
        scope: &str,
        size: usize,
        tls: (PathBuf, PathBuf),
        client_auth: ClientAuth,
    ) -> PatroniCluster {
        PatroniCluster::start_tls(scope, size, Some(tls), Some(client_auth))
    }

    fn start_tls(
        scope: &str,
        size: usize,
        tls: Option<(PathBuf, PathBuf)>,
        client_auth: Option<ClientAuth>,
    ) -> PatroniCluster {
        let base = temp_dir(&format!("patroni-{scope}"));
        let tls = tls.map(|(cert, key)| {
            let (to_cert, to_key) = (base.join("api.crt"), base.join("api.key"));
            std::fs::copy(cert, &to_cert).expect("copy certificate");
            std::fs::copy(key, &to_key).expect("copy key");
            chown(&to_cert);
            chown(&to_key);
            (to_cert, to_key)
        });
        let mut cluster = PatroniCluster {
            base: base.clone(),
            scope: scope.to_string(),
            nodes: Vec::new(),
            tls,
            client_auth,
            etcd: None,
            etcd_port: free_port(),
            etcd_peer_port: free_port(),
        };
        cluster.start_etcd();
        for i in 1..=size {
            let name = format!("node{i}");
            let node = Node {
                api_port: free_port(),
                pg_port: free_port(),
                config: base.join(format!("{name}.yml")),
                data: base.join(format!("data-{name}")),
                name,
                https: cluster.tls.is_some(),
                child: None,
            };
            cluster.write_config(&node);
            cluster.nodes.push(node);
        }
        // The first node bootstraps alone, so that it is the leader.
        cluster.start_node(0);
        cluster.wait_for("node1 to lead", |members| {
            members
                .iter()
                .any(|m| m["name"] == "node1" && m["role"] == "leader" && m["state"] == "running")
        });
        for i in 1..size {
            cluster.start_node(i);
        }
        cluster.wait_healthy();
        cluster
    }

    fn start_etcd(&mut self) {
        let dir = self.base.join("etcd");
        let client = format!("http://127.0.0.1:{}", self.etcd_port);
        let peer = format!("http://127.0.0.1:{}", self.etcd_peer_port);
        let child = as_server_user("/usr/bin/etcd")
            .env("HOME", &self.base)
            .args(["--name", "e1", "--enable-v2"])
            .arg("--data-dir")
            .arg(&dir)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e1={peer}")])
            .stdin(Stdio::null())
            .stdout(log_file(&self.base.join("etcd.log")))
            .stderr(Stdio::null())
            .spawn()
            .expect("start etcd");
        self.etcd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.etcd_port)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops etcd for good (SIGKILL): the DCS is down.
    pub fn kill_etcd(&mut self) {
        if let Some(mut child) = self.etcd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn write_config(&self, node: &Node) {
        let base = self.base.display();
        let tls = match &self.tls {
            Some((cert, key)) => {
                format!(", certfile: {}, keyfile: {}", cert.display(), key.display())
            }
            None => String::new(),
        };
        let tls = match &self.client_auth {
            Some(auth) => format!(
                "{tls}, cafile: {}, verify_client: required",
                auth.ca.display()
            ),
            None => tls,
        };
        let yaml = format!(
            "scope: {scope}
name: {name}
restapi: {{listen: 127.0.0.1:{api}, connect_address: 127.0.0.1:{api}{tls}}}
etcd: {{host: 127.0.0.1:{etcd}}}
bootstrap:
  dcs: {{ttl: {TTL}, loop_wait: 2, retry_timeout: 5, postgresql: {{use_pg_rewind: false}}}}
  initdb: [{{encoding: UTF8}}]
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {data}
  bin_dir: {PATRONI_BINDIR}
  pgpass: {base}/pgpass-{name}
  authentication: {{replication: {{username: postgres}}, superuser: {{username: postgres}}}}
  parameters: {{unix_socket_directories: '{base}', fsync: 'off'}}
  pg_hba: [local all all trust, host all all 127.0.0.1/32 trust, host replication all 127.0.0.1/32 trust]
",
            scope = self.scope,
            name = node.name,
            api = node.api_port,
            etcd = self.etcd_port,
            pg = node.pg_port,
            data = node.data.display(),
        );
        std::fs::write(&node.config, yaml).expect("write Patroni config");
        chown(&node.config);
    }

    /// Starts node `i`'s Patroni (which starts its PostgreSQL).
    pub fn start_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let log = self.base.join(format!("{}.log", node.name));
        let child = as_server_user("/usr/bin/patroni")
            .env("HOME", &self.base)
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log_file(&log))
            .stderr(log_file(&self.base.join(format!("{}.err", node.name))))
            .spawn()
            .expect("start patroni");
        self.nodes[i].child = Some(child);
    }

    /// Stops node `i` as an operator would (SIGTERM: Patroni stops its
    /// PostgreSQL and says so in the DCS), waiting for it to exit.
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills node `i` outright, Patroni and PostgreSQL (SIGKILL): a crash.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(pid) = postmaster_pid(&self.nodes[i].data) {
            // SAFETY: a server of this test's own.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// `patronictl -c node1.yml ARGS…`, which must succeed.
    pub fn patronictl(&self, args: &[&str]) -> String {
        let out = run_ok(
            as_server_user("/usr/bin/patronictl")
                .env("HOME", &self.base)
                .arg("-c")
                .arg(&self.nodes[0].config)
                .args(args),
            &format!("patronictl {}", args.join(" ")),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `/cluster`'s members as any running node answers, or None.
    pub fn members(&self) -> Option<Vec<serde_json::Value>> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .find_map(|n| get_json(&format!("{}/cluster", n.api()), self.client_auth.as_ref()))
            .and_then(|v| v["members"].as_array().cloned())
    }

    /// Waits (up to 90 s) until `/cluster` satisfies `done`.
    pub fn wait_for(&self, what: &str, done: impl Fn(&[serde_json::Value]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(members) = self.members() {
                if done(&members) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {:?}",
                self.members()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Every running node a member, one leader, every replica streaming and
    /// caught up by Patroni's count.
    pub fn wait_healthy(&self) {
        let running = self.nodes.iter().filter(|n| n.child.is_some()).count();
        self.wait_for("every node to stream", |members| {
            members.len() == running
                && members.iter().filter(|m| m["role"] == "leader").count() == 1
                && members.iter().all(|m| {
                    (m["state"] == "running" || m["state"] == "streaming")
                        && (m["role"] == "leader" || m["lag"].is_number())
                })
        });
        // After a WAL switch (each pg_basebackup makes one) an idle leader's
        // position is the next segment's start while its replicas have
        // replayed up to the switch: Patroni counts them up to 16 MB behind,
        // and refuses to promote a replica more than maximum_lag_on_failover
        // (1 MB) behind. A little WAL moves everyone into the new segment.
        let leader_port = self
            .members()
            .and_then(|m| {
                m.iter()
                    .find(|m| m["role"] == "leader")
                    .and_then(|l| l["port"].as_u64())
            })
            .expect("the leader's port");
        let mut client = postgres::Client::configure()
            .host("127.0.0.1")
            .port(leader_port as u16)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("connect to the leader");
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS harness_tick (at timestamptz); INSERT INTO harness_tick VALUES (now())")
            .expect("write WAL on the leader");
        let tick: i64 = client
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
                &[],
            )
            .expect("the leader's WAL position")
            .get(0);
        // Patroni counts lag from the leader's position in the DCS, which it
        // writes once a loop: lag 0 against an older one would turn into a
        // segment's worth when the leader writes the tick's.
        self.wait_for("every replica to catch up", |members| {
            self.leader_optime().is_some_and(|at| at >= tick)
                && members
                    .iter()
                    .all(|m| m["role"] == "leader" || m["lag"].as_u64() == Some(0))
        });
    }

    /// The leader's WAL position as last written to the DCS (`/status`).
    fn leader_optime(&self) -> Option<i64> {
        let key = get_json(
            &format!(
                "http://127.0.0.1:{}/v2/keys/service/{}/status",
                self.etcd_port, self.scope
            ),
            None,
        )?;
        let status: serde_json::Value =
            serde_json::from_str(key["node"]["value"].as_str()?).ok()?;
        status["optime"].as_i64()
    }

    /// A port with nothing listening, for a check pointed at no API.
    pub fn closed_api() -> String {
        format!("http://127.0.0.1:{}", free_port())
    }
}

fn postmaster_pid(data: &Path) -> Option<i32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// A client CA for the REST API, and a certificate it signed for the harness.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// GET a JSON document with curl (-k: the harness only waits; the plugin
/// under test has its own client and its own TLS checks).
fn get_json(url: &str, client: Option<&ClientAuth>) -> Option<serde_json::Value> {
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sk", "--max-time", "5", url]);
    if let Some(client) = client {
        curl.arg("--cert")
            .arg(&client.cert)
            .arg("--key")
            .arg(&client.key);
    }
    let out = curl.output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_node(i);
        }
        // A node killed, or one Patroni did not stop: its server goes now.
        for node in &self.nodes {
            if postmaster_pid(&node.data).is_some() {
                let _ = as_server_user(Path::new(PATRONI_BINDIR).join("pg_ctl"))
                    .args(["stop", "-m", "immediate", "-w", "-D"])
                    .arg(&node.data)
                    .output();
            }
        }
        self.kill_etcd();
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// For a look at what Patroni said when a test fails.
pub fn logs(cluster: &PatroniCluster) -> String {
    let mut all = String::new();
    for node in &cluster.nodes {
        for ext in ["log", "err"] {
            let path = cluster.base.join(format!("{}.{ext}", node.name));
            if let Ok(text) = std::fs::read_to_string(&path) {
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                all.push_str(&format!("== {}\n", path.display()));
                for line in tail.into_iter().rev() {
                    all.push_str(line);
                    all.push('\n');
                }
            }
        }
    }
    all
}
