//! A throwaway cluster: initdb (copied from one template per test process),
//! its own port and socket directory, fsync off; optionally a streaming standby.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;
use postgres::{Client, NoTls};

use crate::plugin::PluginRun;
use crate::system::{self, as_server_user, run_ok};

/// Roles every cluster has: `postgres` (superuser), `monitor` (only
/// pg_monitor, the role the plugins are meant to run as), `plain` (no grants).
pub const MONITOR: &str = "monitor";
pub const PLAIN: &str = "plain";

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub max_connections: u32,
    /// Sets archive_mode = on with this archive_command.
    pub archive_command: Option<String>,
    pub extra_conf: Vec<String>,
    /// Start from a cluster initialised with data checksums.
    pub data_checksums: bool,
    /// Keeps pg_wal in this directory (a symlink from the data directory,
    /// as initdb --waldir makes it), to fill a filesystem of its own.
    pub wal_dir: Option<PathBuf>,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            max_connections: 20,
            archive_command: None,
            extra_conf: Vec::new(),
            data_checksums: false,
            wal_dir: None,
        }
    }
}

pub struct Cluster {
    pub base: PathBuf,
    pub data: PathBuf,
    pub socket_dir: PathBuf,
    pub port: u16,
    pub name: String,
}

/// initdb once per test process; clusters start from copies of it.
static TEMPLATE: Lazy<PathBuf> = Lazy::new(|| make_template("template", false));
/// The same with data checksums, for the tests that need them.
static TEMPLATE_CHECKSUMS: Lazy<PathBuf> = Lazy::new(|| make_template("template-checksums", true));

fn make_template(name: &str, checksums: bool) -> PathBuf {
    let base = system::temp_dir(name);
    let data = base.join("data");
    let mut initdb = as_server_user(system::bindir().join("initdb"));
    initdb.args(["-N", "-A", "trust", "-U", "postgres", "-E", "UTF8"]);
    if checksums {
        initdb.arg("--data-checksums");
    } else if system::server_major() >= 18 {
        // PostgreSQL 18 turns data checksums on by default.
        initdb.arg("--no-data-checksums");
    }
    run_ok(initdb.arg("-D").arg(&data), "initdb");
    let pg_hba = "\
local all all trust
local replication all trust
host all pwuser 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
";
    fs::write(data.join("pg_hba.conf"), pg_hba).unwrap();
    let template = Cluster::from_data(base, data, name, &ClusterOptions::default());
    template.execute(&format!(
        "CREATE ROLE {MONITOR} LOGIN IN ROLE pg_monitor; CREATE ROLE {PLAIN} LOGIN;"
    ));
    system::stop_server(&template.data, "fast");
    let data = template.data.clone();
    // Kept until the process exits, when the exit hook removes it.
    system::register(&data, &template.base);
    std::mem::forget(template);
    data
}

impl Cluster {
    /// A running primary with default options.
    pub fn start(name: &str) -> Cluster {
        Cluster::start_with(name, ClusterOptions::default())
    }

    pub fn start_with(name: &str, options: ClusterOptions) -> Cluster {
        let base = system::temp_dir(name);
        let data = base.join("data");
        let template: &PathBuf = if options.data_checksums {
            &TEMPLATE_CHECKSUMS
        } else {
            &TEMPLATE
        };
        run_ok(
            as_server_user("cp").arg("-a").arg(template).arg(&data),
            "copy template cluster",
        );
        if let Some(wal_dir) = &options.wal_dir {
            move_wal(&data, wal_dir);
        }
        Cluster::from_data(base, data, name, &options)
    }

    /// A streaming standby of `primary`, named `name` in pg_stat_replication,
    /// started and streaming when this returns.
    ///
    /// Made by copying the primary's data directory while it is cleanly
    /// stopped, rather than with pg_basebackup, which the server-only builds
    /// of other majors lack; the primary is back up, on the same port, when
    /// this returns.
    pub fn standby_of(primary: &Cluster, name: &str) -> Cluster {
        let base = system::temp_dir(name);
        let data = base.join("data");
        system::stop_server(&primary.data, "fast");
        run_ok(
            as_server_user("cp").arg("-a").arg(&primary.data).arg(&data),
            "copy the stopped primary",
        );
        primary.start_server();
        let _ = fs::remove_file(data.join("postmaster.opts"));
        fs::write(data.join("standby.signal"), "").unwrap();
        system::chown(&data.join("standby.signal"));
        let conninfo = format!(
            "primary_conninfo = 'host={} port={} user=postgres application_name={name}'\n",
            primary.socket_dir.display(),
            primary.port
        );
        append(&data.join("postgresql.auto.conf"), &conninfo);
        let standby = Cluster::from_data(base, data, name, &ClusterOptions::default());
        primary.wait_for(
            &format!(
                "SELECT count(*) = 1 FROM pg_stat_replication WHERE application_name = '{name}' AND state = 'streaming'"
            ),
            "standby streaming",
        );
        standby
    }

    fn from_data(base: PathBuf, data: PathBuf, name: &str, options: &ClusterOptions) -> Cluster {
        let socket_dir = base.join("socket");
        fs::create_dir_all(&socket_dir).unwrap();
        system::chown(&socket_dir);
        let port = system::free_port();
        let mut conf = format!(
            "\n# pgvigil test cluster\nport = {port}\nunix_socket_directories = '{}'\n\
             listen_addresses = '127.0.0.1'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = {}\nsuperuser_reserved_connections = 3\nshared_buffers = 16MB\n\
             wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n{}\n\
             password_encryption = 'scram-sha-256'\ncluster_name = '{name}'\n",
            socket_dir.display(),
            options.max_connections,
            // Enough WAL kept for a standby copied from a stopped primary.
            if system::server_major() >= 13 {
                "wal_keep_size = 256MB"
            } else {
                "wal_keep_segments = 16"
            }
        );
        if let Some(command) = &options.archive_command {
            conf.push_str(&format!(
                "archive_mode = on\narchive_command = '{}'\n",
                command.replace('\'', "''")
            ));
        }
        for line in &options.extra_conf {
            conf.push_str(line);
            conf.push('\n');
        }
        append(&data.join("postgresql.conf"), &conf);
        let mut cluster = Cluster {
            base,
            data,
            socket_dir,
            port,
            name: name.to_string(),
        };
        // A port that was free when picked can be taken before the server
        // binds it (as another connection's ephemeral port): take another.
        let mut attempts = 0;
        while let Err(e) = cluster.try_start() {
            attempts += 1;
            assert!(
                attempts < 3 && cluster.log().contains("could not bind"),
                "{e}\n{}",
                cluster.log()
            );
            cluster.port = system::free_port();
            append(
                &cluster.data.join("postgresql.conf"),
                &format!("port = {}\n", cluster.port),
            );
        }
        system::register(&cluster.data, &cluster.base);
        cluster
    }

    fn start_server(&self) {
        self.try_start()
            .unwrap_or_else(|e| panic!("{e}\n{}", self.log()));
    }

    /// Starts the server (stopped before), or says why pg_ctl could not;
    /// what the server wrote before its logging collector took over is in
    /// `server.log` under `base`.
    pub fn try_start(&self) -> Result<(), String> {
        let out = as_server_user(system::bindir().join("pg_ctl"))
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data)
            .arg("-l")
            .arg(self.base.join("server.log"))
            .current_dir(&self.base)
            .output()
            .map_err(|e| format!("pg_ctl: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "start cluster {} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// Stops the server cleanly (a shutdown checkpoint writes every page),
    /// keeping the cluster to start again with `resume`.
    pub fn halt(&self) {
        system::stop_server(&self.data, "fast");
    }

    pub fn resume(&self) {
        self.start_server();
    }

    pub fn restart(&self) {
        self.halt();
        self.resume();
    }

    pub fn stop(&self) {
        system::stop_server(&self.data, "immediate");
        system::unregister(&self.data);
    }

    /// A superuser connection over the socket.
    pub fn client(&self) -> Client {
        self.client_as("postgres")
    }

    pub fn client_as(&self, user: &str) -> Client {
        self.client_to(user, "postgres")
    }

    pub fn client_to(&self, user: &str, dbname: &str) -> Client {
        Client::configure()
            .host_path(&self.socket_dir)
            .port(self.port)
            .user(user)
            .dbname(dbname)
            .application_name("pgvigil-test")
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("connect to {} as {user}: {e:?}", self.name))
    }

    pub fn execute(&self, sql: &str) {
        self.execute_in("postgres", sql);
    }

    /// Runs `sql` as the superuser in database `dbname`, over a session that
    /// ends when it returns (which also flushes its statistics).
    pub fn execute_in(&self, dbname: &str, sql: &str) {
        self.client_to("postgres", dbname)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Polls `sql` (one boolean) until it is true, for up to 30 s.
    pub fn wait_for(&self, sql: &str, what: &str) {
        self.wait_for_in("postgres", sql, what);
    }

    /// Waits until the cumulative statistics show what `sql` asks, in a way
    /// any new session will see too: before PostgreSQL 15 the statistics
    /// collector's file may lag a new backend by up to half a second.
    pub fn wait_for_stats(&self, dbname: &str, sql: &str, what: &str) {
        self.wait_for_in(dbname, sql, what);
        if system::server_major() < 15 {
            std::thread::sleep(Duration::from_millis(700));
        }
    }

    /// Like `wait_for`, in database `dbname`.
    pub fn wait_for_in(&self, dbname: &str, sql: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut client = self.client_to("postgres", dbname);
        loop {
            let done: bool = client.query_one(sql, &[]).unwrap().get(0);
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A real deadlock: two sessions each hold a row of `pairs (id, n)`
    /// (ids 1 and 2, made here) the other then wants; the server picks one
    /// victim. Returns once both sessions have ended.
    pub fn deadlock(&self) {
        self.execute(
            "CREATE TABLE IF NOT EXISTS pairs (id int PRIMARY KEY, n int); \
             INSERT INTO pairs VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING",
        );
        let mut a = self.client();
        let mut b = self.client();
        a.batch_execute("BEGIN; UPDATE pairs SET n = n + 1 WHERE id = 1")
            .unwrap();
        b.batch_execute("BEGIN; UPDATE pairs SET n = n + 1 WHERE id = 2")
            .unwrap();
        let waiter = std::thread::spawn(move || {
            let failed = a
                .batch_execute("UPDATE pairs SET n = n + 1 WHERE id = 2")
                .is_err();
            let _ = a.batch_execute("ROLLBACK");
            failed
        });
        std::thread::sleep(Duration::from_millis(400));
        let second = b
            .batch_execute("UPDATE pairs SET n = n + 1 WHERE id = 1")
            .is_err();
        let _ = b.batch_execute("ROLLBACK");
        assert!(
            waiter.join().unwrap() != second,
            "exactly one deadlock victim"
        );
    }

    /// The plugin `name`, pointed at this cluster as the pg_monitor-only role.
    pub fn plugin(&self, name: &str) -> PluginRun {
        self.point(PluginRun::new(name))
    }

    /// `run` pointed at this cluster as the pg_monitor-only role.
    /// Plugin `name` pointed at this cluster as role `user`.
    pub fn plugin_as(&self, name: &str, user: &str) -> PluginRun {
        let mut run = self.plugin(name);
        run.env("PGUSER", user);
        run
    }

    pub fn point(&self, mut run: PluginRun) -> PluginRun {
        run.env("PGHOST", self.socket_dir.to_str().unwrap())
            .env("PGPORT", &self.port.to_string())
            .env("PGUSER", MONITOR)
            .env("PGDATABASE", "postgres");
        run
    }

    /// `-h SOCKET -p PORT -U postgres`, for the server's own client tools.
    pub fn connection_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            self.socket_dir.display().to_string(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "postgres".into(),
        ]
    }

    /// The postmaster's process id, from postmaster.pid.
    pub fn postmaster_pid(&self) -> i32 {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.base.join("server.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// A password made for this run only; never written anywhere that lands.
pub fn generated_password() -> String {
    let bytes = fs::read("/proc/sys/kernel/random/uuid").unwrap();
    String::from_utf8(bytes).unwrap().trim().replace('-', "")
}

/// pg_wal's files into `wal_dir`, and pg_wal a symlink to it.
fn move_wal(data: &Path, wal_dir: &Path) {
    fs::create_dir_all(wal_dir).unwrap();
    chown_to_server_user(wal_dir);
    let pg_wal = data.join("pg_wal");
    run_ok(
        as_server_user("cp")
            .arg("-a")
            .arg(pg_wal.join("."))
            .arg(wal_dir),
        "copy pg_wal",
    );
    fs::remove_dir_all(&pg_wal).unwrap();
    std::os::unix::fs::symlink(wal_dir, &pg_wal).unwrap();
}

/// Hands a directory made by the test to the user the servers run as.
pub fn chown_to_server_user(path: &Path) {
    system::chown(path);
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}
