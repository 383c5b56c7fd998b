//! check_pg_pgbouncer against a real PgBouncer (Debian's) in front of a test
//! cluster, with pool_size = 1: one client holds the server connection and
//! another waits for it.

use std::fs;
use std::path::PathBuf;
use std::process::Child;
use std::thread;
use std::time::{Duration, Instant};

use harness::{as_server_user, chown, temp_dir, Cluster, PluginOutput, PluginRun, MONITOR, PLAIN};

const PLUGIN: &str = "check_pg_pgbouncer";

/// PgBouncer on its own port and socket directory, stopped on drop.
struct Bouncer {
    dir: PathBuf,
    port: u16,
    process: Child,
}

impl Bouncer {
    fn start(cluster: &Cluster) -> Bouncer {
        let dir = temp_dir("pgbouncer");
        chown(&dir);
        let port = free_port();
        let ini = format!(
            "[databases]\npostgres = host={socket} port={pg} dbname=postgres\n\
             [pgbouncer]\nlisten_addr =\nlisten_port = {port}\nunix_socket_dir = {d}\n\
             auth_type = trust\nauth_file = {d}/users.txt\npool_mode = session\n\
             default_pool_size = 1\nmax_client_conn = 20\nadmin_users = postgres\n\
             stats_users = {MONITOR}\nlogfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n",
            socket = cluster.socket_dir.display(),
            pg = cluster.port,
            d = dir.display(),
        );
        fs::write(dir.join("pgbouncer.ini"), ini).unwrap();
        fs::write(
            dir.join("users.txt"),
            format!("\"postgres\" \"\"\n\"{MONITOR}\" \"\"\n\"{PLAIN}\" \"\"\n"),
        )
        .unwrap();
        // PgBouncer refuses to run as root: the server's user runs it.
        let process = as_server_user("pgbouncer")
            .arg("-q")
            .arg(dir.join("pgbouncer.ini"))
            .spawn()
            .expect("pgbouncer is installed: run scripts/setup.sh");
        let bouncer = Bouncer { dir, port, process };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !bouncer.dir.join(format!(".s.PGSQL.{port}")).exists() {
            assert!(Instant::now() < deadline, "pgbouncer did not start");
            thread::sleep(Duration::from_millis(50));
        }
        bouncer
    }

    fn plugin(&self, user: &str) -> PluginRun {
        let mut run = PluginRun::new(PLUGIN);
        run.args(&["-H", &self.dir.display().to_string()]).args(&[
            "-p",
            &self.port.to_string(),
            "-U",
            user,
        ]);
        run
    }

    /// A session through PgBouncer, as an application would open one.
    fn client(&self) -> postgres::Client {
        postgres::Config::new()
            .host_path(&self.dir)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("a session through pgbouncer")
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn waiting(out: &PluginOutput) -> f64 {
    out.perf("postgres/postgres waiting").value
}

#[test]
fn a_client_waiting_for_the_one_server_connection() {
    let cluster = Cluster::start("pgbouncer");
    let bouncer = Bouncer::start(&cluster);

    // One idle application session: its pool exists, nobody waits.
    let mut first = bouncer.client();
    first.simple_query("SELECT 1").unwrap();
    let out = bouncer.plugin(MONITOR).run();
    out.expect("OK");
    assert!(
        out.summary()
            .starts_with("1 pool, 0 clients waiting (longest 0 ms); "),
        "{}",
        out.summary()
    );
    assert!(
        out.summary().ends_with(" of 20 client connections (10%)"),
        "{}",
        out.summary()
    );
    assert_eq!(waiting(&out), 0.0);
    assert_eq!(out.perf("postgres/postgres servers").max, "1");

    // It holds the server connection in a long statement; a second client waits.
    // Longer than the test on any machine (5 s once ran out on a loaded
    // one, and the waiter got through); cancelled once judged.
    let holder = thread::spawn(move || {
        let _ = first.simple_query("SELECT pg_sleep(300)");
    });
    thread::sleep(Duration::from_millis(300));
    let port = bouncer.port;
    let dir = bouncer.dir.clone();
    let waiter = thread::spawn(move || {
        let mut second = postgres::Config::new()
            .host_path(&dir)
            .port(port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .unwrap();
        second.simple_query("SELECT 1").unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let out = loop {
        let out = bouncer
            .plugin(MONITOR)
            .args(&["-w", "0,30s", "-c", "5,1min"])
            .run();
        if out.code == 1 || Instant::now() > deadline {
            break out;
        }
        thread::sleep(Duration::from_millis(100));
    };
    out.expect("WARNING");
    assert!(
        out.summary()
            .starts_with("postgres/postgres: 1 waiting (longest "),
        "{}",
        out.summary()
    );
    assert!(
        out.summary()
            .contains("), 1 active; 1 of 1 server connections; "),
        "{}",
        out.summary()
    );
    assert_eq!(waiting(&out), 1.0);
    assert!(out
        .hint()
        .unwrap()
        .starts_with("clients wait because every server connection"));
    // The same wait judged by a count, a duration and a share.
    bouncer
        .plugin(MONITOR)
        .args(&["-w", "5", "-c", "0"])
        .run()
        .expect("CRITICAL");
    thread::sleep(Duration::from_millis(1200));
    let out = bouncer
        .plugin(MONITOR)
        .args(&["-w", "10,1s", "-c", "10,1h"])
        .run();
    out.expect("WARNING");
    assert!(out.perf("postgres/postgres maxwait").value >= 1.0);
    bouncer
        .plugin(MONITOR)
        .args(&["-w", "10,1h,10%", "-c", "10,1h,90%"])
        .run()
        .expect("WARNING");

    cluster.execute(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(300)'",
    );
    holder.join().unwrap();
    waiter.join().unwrap();
    let out = bouncer.plugin(MONITOR).run();
    out.expect("OK");
    assert_eq!(waiting(&out), 0.0);
}

#[test]
fn roles_pgbouncer_refuses_and_a_pgbouncer_that_is_down() {
    let cluster = Cluster::start("pgbouncer-refusals");
    let bouncer = Bouncer::start(&cluster);
    let out = bouncer.plugin(PLAIN).run();
    out.expect("UNKNOWN");
    assert_eq!(
        out.summary(),
        "the console refused role \"plain\": list it in PgBouncer's stats_users"
    );
    let port = bouncer.port.to_string();
    let dir = bouncer.dir.display().to_string();
    drop(bouncer);
    let out = PluginRun::new(PLUGIN)
        .args(&["-H", &dir, "-p", &port, "-U", MONITOR])
        .run();
    out.expect("CRITICAL");
    assert!(
        out.summary().starts_with("cannot connect to socket "),
        "{}",
        out.summary()
    );
}
