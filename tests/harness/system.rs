//! Where the server binaries are, who runs them, and cleaning up at exit.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use once_cell::sync::Lazy;

/// The directory holding initdb, pg_ctl and postgres: PGVIGIL_PG_BINDIR, else
/// the newest /usr/lib/postgresql/*/bin, else whatever PATH finds.
pub fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("PGVIGIL_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    let initdb = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .expect("sh");
    let path = String::from_utf8_lossy(&initdb.stdout).trim().to_string();
    assert!(
        !path.is_empty(),
        "no PostgreSQL server binaries: install postgresql or set PGVIGIL_PG_BINDIR"
    );
    Path::new(&path).parent().unwrap().to_path_buf()
}

/// A client program for the server under test: from `bindir()`, else from
/// another installed major no older than the server's (pg_dump and
/// pg_basebackup refuse newer servers), or with `any_major` from any (pgbench
/// only speaks SQL). None when there is none: the server-only builds of
/// other majors carry no client programs.
pub fn client_program(name: &str, any_major: bool) -> Option<PathBuf> {
    let own = bindir().join(name);
    if own.exists() {
        return Some(own);
    }
    let server = server_major();
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let major: u32 = e.file_name().to_str()?.parse().ok()?;
            let program = e.path().join("bin").join(name);
            (program.exists() && (any_major || major >= server)).then_some(program)
        })
        .next()
}

/// The major version of the server binaries in `bindir()`, from `postgres -V`
/// ("postgres (PostgreSQL) 17.6 (Debian …)" gives 17).
pub fn server_major() -> u32 {
    static MAJOR: Lazy<u32> = Lazy::new(|| {
        let out = run_ok(
            Command::new(bindir().join("postgres")).arg("-V"),
            "postgres -V",
        );
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .skip_while(|w| *w != "(PostgreSQL)")
            .nth(1)
            .and_then(|v| v.split(['.', 'b', 'r']).next()?.parse().ok())
            .unwrap_or_else(|| panic!("cannot read a version from {text:?}"))
    });
    *MAJOR
}

/// The uid and gid the servers run as: ours, or when we are root, the
/// `postgres` user (else `nobody`).
pub fn server_user() -> (u32, u32) {
    // Looked up once: getpwnam returns a buffer shared by the process, which
    // another test's thread calling it at the same time overwrites (a
    // directory then went to the wrong owner, and the server could not
    // write into it).
    static USER: Lazy<(u32, u32)> = Lazy::new(|| {
        // SAFETY: plain libc queries, made by one thread while the Lazy
        // initialises; the passwd entry is copied out at once.
        unsafe {
            if libc::geteuid() != 0 {
                return (libc::geteuid(), libc::getegid());
            }
            for name in ["postgres", "nobody"] {
                let c = CString::new(name).unwrap();
                let pw = libc::getpwnam(c.as_ptr());
                if !pw.is_null() {
                    return ((*pw).pw_uid, (*pw).pw_gid);
                }
            }
        }
        panic!("running as root, but neither a postgres nor a nobody user exists");
    });
    *USER
}

/// Whether the tests run as root (CI does).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A command that runs as the server user.
pub fn as_server_user(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    if is_root() {
        let (uid, gid) = server_user();
        cmd.uid(uid).gid(gid);
    }
    cmd.env_remove("PGDATA").env("LC_ALL", "C");
    cmd
}

pub fn chown(path: &Path) {
    let (uid, gid) = server_user();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
}

pub fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A fresh directory under `temp_root()`, readable by the server user;
/// removed when the test process exits.
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNT: Mutex<u32> = Mutex::new(0);
    let n = {
        let mut c = COUNT.lock().unwrap();
        *c += 1;
        *c
    };
    let dir = temp_root().join(format!("pgvigil-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    chown(&dir);
    TEMP_DIRS.lock().unwrap().push(dir.clone());
    dir
}

static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Where the tests' directories go. As root (CI), a tmpfs of this test
/// process's own: check_pg_disk then measures a filesystem whose fill the
/// suite decides, not the host's disk (a host disk over 80% full made every
/// "each plugin is OK" test WARNING), and nothing outlives the process.
/// Otherwise the temp dir. PGVIGIL_TEST_TMPFS=0 turns the tmpfs off.
pub fn temp_root() -> &'static Path {
    &TEMP_ROOT.0
}

/// The root, and whether it is a tmpfs mounted here.
static TEMP_ROOT: Lazy<(PathBuf, bool)> = Lazy::new(|| {
    // SAFETY: registering a plain extern "C" function. Registered before any
    // cluster's stop_all, so it runs after it.
    unsafe { libc::atexit(remove_temp_dirs) };
    let tmp = std::env::temp_dir();
    if !is_root() || std::env::var("PGVIGIL_TEST_TMPFS").as_deref() == Ok("0") {
        return (tmp, false);
    }
    let root = tmp.join(format!("pgvigil-{}-tmpfs", std::process::id()));
    std::fs::create_dir_all(&root).expect("create the tmpfs mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16g,mode=0755", "pgvigil-tests"])
        .arg(&root)
        .status()
        .is_ok_and(|s| s.success());
    if mounted {
        (root, true)
    } else {
        eprintln!(
            "harness: cannot mount a tmpfs at {}: using the temp dir",
            root.display()
        );
        let _ = std::fs::remove_dir(&root);
        (tmp, false)
    }
});

/// Setting PGVIGIL_KEEP_TEMP keeps them (and the tmpfs) for a look after a failure.
extern "C" fn remove_temp_dirs() {
    if std::env::var_os("PGVIGIL_KEEP_TEMP").is_some() {
        return;
    }
    if let Ok(dirs) = TEMP_DIRS.lock() {
        for dir in dirs.iter() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if let Some((root, true)) = Lazy::get(&TEMP_ROOT) {
        // Lazily: a daemon a failed test left behind may still hold it.
        let _ = Command::new("umount").arg("-l").arg(root).status();
        let _ = std::fs::remove_dir(root);
    }
}

/// Clusters still running when the test process exits are stopped and removed.
static RUNNING: Lazy<Mutex<Vec<(PathBuf, PathBuf)>>> = Lazy::new(|| {
    // SAFETY: registering a plain extern "C" function.
    unsafe { libc::atexit(stop_all) };
    Mutex::new(Vec::new())
});

pub fn register(data: &Path, base: &Path) {
    RUNNING
        .lock()
        .unwrap()
        .push((data.to_path_buf(), base.to_path_buf()));
}

pub fn unregister(data: &Path) {
    RUNNING.lock().unwrap().retain(|(d, _)| d != data);
}

extern "C" fn stop_all() {
    let list = match RUNNING.lock() {
        Ok(mut list) => std::mem::take(&mut *list),
        Err(_) => return,
    };
    for (data, base) in list {
        stop_server(&data, "immediate");
        let _ = std::fs::remove_dir_all(base);
    }
}

/// Stops a server; `immediate` for throwaway clusters, `fast` to keep what was written.
pub fn stop_server(data: &Path, mode: &str) {
    let _ = as_server_user(bindir().join("pg_ctl"))
        .args(["stop", "-m", mode, "-w", "-D"])
        .arg(data)
        .output();
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    static USED: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let mut used = USED.lock().unwrap();
        if !used.contains(&port) {
            used.push(port);
            return port;
        }
    }
}

/// `openssl` with `args` split at spaces, run in `dir`: certificates made
/// for one test run.
pub fn openssl(args: &str, dir: &Path) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd`: whether it succeeded, and its stdout then stderr as text.
pub fn output_text(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("run");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
