//! Monitoring daemons (Icinga2, Nagios 4) run for real, sandboxed in a temp
//! dir, as the user the tests run as.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The repository's root, where packaging/ is.
pub fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The user name and group name the tests run as (root in CI).
pub fn current_user() -> (String, String) {
    let id = |flag: &str| {
        let out = Command::new("id").arg(flag).output().expect("id");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    (id("-un"), id("-gn"))
}

/// A program the packaging tests need; scripts/setup.sh installs it.
pub fn require(program: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("{program} is not installed: run scripts/setup.sh")
}

/// `icinga2 daemon -c CONF` with every path it writes inside `dir`.
pub fn icinga2(dir: &Path, conf: &Path) -> Command {
    let (user, group) = current_user();
    let mut cmd = Command::new(require("icinga2"));
    cmd.arg("daemon").arg("-c").arg(conf);
    for (name, sub) in [
        ("DataDir", "lib"),
        ("LogDir", "log"),
        ("CacheDir", "cache"),
        ("SpoolDir", "spool"),
        ("InitRunDir", "run"),
    ] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).unwrap();
        cmd.arg("-D").arg(format!("{name}={}", path.display()));
    }
    cmd.arg("-D").arg(format!("RunAsUser={user}"));
    cmd.arg("-D").arg(format!("RunAsGroup={group}"));
    cmd
}

/// The constants a configuration that includes the Template Library must
/// set, with the plugins in `plugin_dir`.
pub fn icinga2_constants(plugin_dir: &Path) -> String {
    format!(
        "const PluginDir = \"{}\"\n\
         const PluginContribDir = PluginDir\n\
         const ManubulonPluginDir = PluginDir\n\
         const NodeName = \"pgvigil-test\"\n\
         const ZoneName = NodeName\n",
        plugin_dir.display()
    )
}

/// A daemon started in the foreground; TERM and reaped when dropped.
pub struct Daemon {
    child: Child,
}

impl Daemon {
    pub fn spawn(cmd: &mut Command) -> Daemon {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start daemon");
        Daemon { child }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP listener that keeps every line sent to it: a stand-in Graphite
/// (Carbon) server, to read what Icinga2 made of the perfdata.
pub struct LineSink {
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl LineSink {
    pub fn start() -> LineSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&lines);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        shared.lock().unwrap().push(line);
                    }
                });
            }
        });
        LineSink { port, lines }
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Polls `probe` every 200 ms until it returns something, for up to `limit`.
pub fn wait_until<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
