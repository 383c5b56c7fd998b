//! Monitoring daemons (Icinga2, Nagios 4) run for real, sandboxed in a temp
//! dir. Under root (CI) they run as the unprivileged server user, as a real
//! install runs them as `nagios` or `icinga`; everything they read (plugins,
//! configuration) is copied into the sandbox so that user can reach it
//! wherever the repository lives.

use std::ffi::CStr;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use once_cell::sync::Lazy;

use crate::system::{as_server_user, chown, server_user};

/// The repository's root, where packaging/ is.
pub fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The user name and group name the daemons run as: ours, or under root
/// the server user.
pub fn daemon_user() -> (String, String) {
    // Looked up once, as server_user: the libc lookups share one buffer.
    static NAMES: Lazy<(String, String)> = Lazy::new(|| {
        let (uid, gid) = server_user();
        // SAFETY: plain libc lookups, by the one thread initialising the
        // Lazy; the names are copied out at once.
        unsafe {
            let pw = libc::getpwuid(uid);
            let gr = libc::getgrgid(gid);
            assert!(
                !pw.is_null() && !gr.is_null(),
                "no name for uid {uid}/gid {gid}"
            );
            (
                CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned(),
                CStr::from_ptr((*gr).gr_name).to_string_lossy().into_owned(),
            )
        }
    });
    NAMES.clone()
}

/// A daemon's command line, run as the daemon user.
pub fn daemon_command(program: &Path, sandbox: &Path) -> Command {
    let mut cmd = as_server_user(program);
    // root's HOME is not the daemon user's to read.
    cmd.env("HOME", sandbox);
    // The plugins it runs inherit where to keep their state.
    cmd.env("PGVIGIL_STATE_DIR", sandbox_dir(sandbox, "state"));
    cmd
}

/// A directory in the sandbox the daemon user can write to.
pub fn sandbox_dir(sandbox: &Path, name: &str) -> PathBuf {
    let path = sandbox.join(name);
    std::fs::create_dir_all(&path).unwrap();
    chown(&path);
    path
}

/// A copy of a repository file in the sandbox.
pub fn sandbox_copy(sandbox: &Path, repo_file: &str) -> PathBuf {
    let from = repo_path(repo_file);
    let to = sandbox.join(from.file_name().unwrap());
    std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
    to
}

/// The package packaging/debian/build-deb.sh built (scripts/test.sh builds
/// it before the tests).
pub fn package() -> PathBuf {
    let arch = std::process::Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg --print-architecture");
    let arch = String::from_utf8_lossy(&arch.stdout).trim().to_string();
    let deb = repo_path(&format!(
        "target/debian/pgvigil_{}_{arch}.deb",
        env!("CARGO_PKG_VERSION")
    ));
    assert!(
        deb.exists(),
        "{} is missing: run packaging/debian/build-deb.sh (scripts/test.sh does)",
        deb.display()
    );
    deb
}

/// The plugins as the package installs them (one binary, every plugin a
/// link to it), unpacked into the sandbox; their directory.
pub fn sandbox_plugins(sandbox: &Path) -> PathBuf {
    let tree = sandbox_dir(sandbox, "package");
    let out = std::process::Command::new("dpkg-deb")
        .arg("-x")
        .arg(package())
        .arg(&tree)
        .output()
        .expect("dpkg-deb -x");
    assert!(out.status.success(), "dpkg-deb -x: {out:?}");
    tree.join("usr/lib/nagios/plugins")
}

/// A file as the package installs it (`etc/nagios-plugins/config/pgvigil.cfg`),
/// from the package unpacked into the sandbox.
pub fn packaged_file(sandbox: &Path, path: &str) -> PathBuf {
    let tree = sandbox.join("package");
    if !tree.join("usr").exists() {
        sandbox_plugins(sandbox);
    }
    let file = tree.join(path);
    assert!(file.exists(), "the package has no {path}");
    file
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
    icinga2_cli(dir, &["daemon", "-c", conf.to_str().expect("UTF-8 path")])
}

/// `icinga2 ARGS…` (`pki new-ca`, …) as the daemon user, every path it
/// writes inside `dir`.
pub fn icinga2_cli(dir: &Path, args: &[&str]) -> Command {
    let (user, group) = daemon_user();
    let mut cmd = daemon_command(&require("icinga2"), dir);
    cmd.args(args);
    for (name, sub) in [
        ("DataDir", "lib"),
        ("LogDir", "log"),
        ("CacheDir", "cache"),
        ("SpoolDir", "spool"),
        ("InitRunDir", "run"),
    ] {
        let path = sandbox_dir(dir, sub);
        cmd.arg("-D").arg(format!("{name}={}", path.display()));
    }
    cmd.arg("-D").arg(format!("RunAsUser={user}"));
    cmd.arg("-D").arg(format!("RunAsGroup={group}"));
    cmd
}

/// The constants a configuration that includes the Template Library must
/// set, with the plugins in `plugin_dir`.
pub fn icinga2_constants(plugin_dir: &Path) -> String {
    icinga2_node_constants(plugin_dir, "pgvigil-test")
}

/// The same for the node (endpoint and zone) named `node`.
pub fn icinga2_node_constants(plugin_dir: &Path, node: &str) -> String {
    format!(
        "const PluginDir = \"{}\"\n\
         const PluginContribDir = PluginDir\n\
         const ManubulonPluginDir = PluginDir\n\
         const NodeName = \"{node}\"\n\
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

    /// Panics unless the daemon runs with no root id (real, effective,
    /// saved or filesystem), as an operator's install would.
    pub fn assert_unprivileged(&self) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("daemon's /proc status");
        for key in ["Uid:", "Gid:"] {
            let ids: Vec<u32> = status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .expect("ids")
                .split_whitespace()
                .map(|id| id.parse().unwrap())
                .collect();
            assert!(!ids.contains(&0), "daemon runs with {key} {ids:?}");
        }
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

/// An Icinga2 PerfdataWriter writing into `dir`, one record a second, each
/// of `fields` as `KEY::$macro$` (read back by `perfdata_writer_records`).
pub fn perfdata_writer(dir: &Path, fields: &[(&str, &str)]) -> String {
    let template: Vec<String> = fields.iter().map(|(k, m)| format!("{k}::${m}$")).collect();
    format!(
        "object PerfdataWriter \"perfdata\" {{\n\
         \tservice_perfdata_path = \"{pd}/service\"\n\
         \tservice_temp_path = \"{pd}/service.tmp\"\n\
         \thost_perfdata_path = \"{pd}/host\"\n\
         \thost_temp_path = \"{pd}/host.tmp\"\n\
         \trotation_interval = 1s\n\
         \tservice_format_template = \"{template}\"\n\
         }}\n",
        pd = dir.display(),
        template = template.join("\\t"),
    )
}

/// Every record an Icinga2 PerfdataWriter wrote into `dir` (its rotated
/// `service.*` files, oldest first), each as its `KEY::value` fields.
pub fn perfdata_writer_records(dir: &Path) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("service.") && !name.ends_with(".tmp")
        })
        .collect();
    files.sort();
    let mut records = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(&file).unwrap_or_default().lines() {
            records.push(
                line.split('\t')
                    .filter_map(|f| f.split_once("::"))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            );
        }
    }
    records
}
