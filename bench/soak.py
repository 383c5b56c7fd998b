#!/usr/bin/env python3
"""The soak's two halves, called by scripts/soak.sh.

  soak.py config ...   the Icinga2 configuration: the packaged example's
                       services, scaled in time, pointed at the throwaway cluster
  soak.py run ...      the schedule (routine operations, then faults) against
                       the running Icinga2, read back from its PerfdataWriter,
                       and bench/results/soak.md

Every change to the shipped example is listed in SCALING and OVERRIDES and
printed in the results.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHECK_INTERVAL = 10
RETRY_INTERVAL = 5
MAX_ATTEMPTS = 3
# When a fault must be HARD at the latest: one check interval to the first
# non-OK result, then the retries.
CATCH = CHECK_INTERVAL + MAX_ATTEMPTS * RETRY_INTERVAL

SCALING = (
    f"every service: check_interval {CHECK_INTERVAL}s, retry_interval {RETRY_INTERVAL}s, "
    f"max_check_attempts {MAX_ATTEMPTS} unless the example sets its own "
    "(the example's hourly ones included)"
)
# Where this run's parts are, not thresholds: the services the example runs
# through an Icinga agent on the database host are run by this Icinga2
# itself, which is on that host.
PLACES = (
    "the agent's services (postgres-disk, postgres-log, postgres-dumps) run by this Icinga2 "
    "itself, on the database host (no command_endpoint), with the sandbox's socket and dump "
    "directories for /var/run/postgresql and /var/backups/postgresql"
)

# Duration thresholds too long for the run: (service, variable, shipped, used).
OVERRIDES = [
    ("postgres-alive", "pgvigil_min_uptime", "10min", "30s"),
    # Above the routine 2-minute reporting query, which must page nobody.
    ("postgres-long-running", "pgvigil_warning", "5min", "150s"),
    ("postgres-long-running", "pgvigil_critical", "30min", "10min"),
    ("postgres-prepared-txns", "pgvigil_warning", "5min", "20s"),
    ("postgres-prepared-txns", "pgvigil_critical", "1h", "2min"),
    ("postgres-replication-slots", "pgvigil_warning", "1GB,1h", "1GB,30s"),
    ("postgres-replication-slots", "pgvigil_critical", "10GB,1d", "10GB,10min"),
]


def config(args):
    text = Path(args.example).read_text()
    # The host: this machine's throwaway cluster, trust authentication.
    host = f"""object Host "db1" {{
	check_command = "dummy"
	address = "127.0.0.1"
	vars.postgres = true
	vars.pgvigil_username = "monitor"
	vars.pgvigil_dbname = "postgres"
	vars.pgvigil_port = {args.port}
	vars.pgvigil_standbys = 1
	vars.postgres_role = "primary"
	vars.postgres_peers = [ "127.0.0.1:{args.standby_port}" ]
	vars.pgbouncer = true
	vars.agent_endpoint = "this host"
}}
"""
    text = re.sub(r'object Host "db1" \{.*?\n\}\n', lambda _: host, text, count=1, flags=re.S)
    text = text.replace('"/var/run/postgresql"', f'"{args.socket_dir}"')
    text = text.replace('"/var/backups/postgresql"', f'"{args.dump_dir}"')
    out = []
    service = None
    own_attempts = set(re.findall(r'apply Service "([^"]+)" \{[^}]*?max_check_attempts', text, flags=re.S))
    for line in text.splitlines():
        if re.match(r"\s*command_endpoint = ", line):
            continue
        m = re.match(r'apply Service "([^"]+)"', line)
        if m:
            service = m.group(1)
            out.append(line)
            out.append(f"\tcheck_interval = {CHECK_INTERVAL}s")
            out.append(f"\tretry_interval = {RETRY_INTERVAL}s")
            if service not in own_attempts:
                out.append(f"\tmax_check_attempts = {MAX_ATTEMPTS}")
            if service == "pgbouncer-pools":
                out.append(f"\tvars.pgvigil_port = {args.bouncer_port}")
            for svc, var, _, used in OVERRIDES:
                if svc == service:
                    out.append(f'\tvars.{var} = "{used}"')
            continue
        if service and re.match(r"\s*check_interval = ", line):
            continue
        if service and any(
            svc == service and re.match(rf"\s*vars\.{var} = ", line) for svc, var, _, _ in OVERRIDES
        ):
            continue
        out.append(line)
    sandbox = Path(args.sandbox)
    fields = [
        ("SERVICE", "service.name"),
        ("TIME", "service.last_check"),
        ("STATE", "service.state"),
        ("TYPE", "service.state_type"),
        ("ATTEMPT", "service.check_attempt"),
        ("OUTPUT", "service.output"),
    ]
    template = "\\t".join(f"{k}::${m}$" for k, m in fields)
    print(f"""const PluginDir = "{args.plugins}"
const PluginContribDir = PluginDir
const ManubulonPluginDir = PluginDir
const NodeName = "pgvigil-soak"
const ZoneName = NodeName
include <itl>
include <plugins>
include "{sandbox}/pgvigil.conf"
object CheckerComponent "checker" {{ }}
object FileLogger "log" {{
	path = "{sandbox}/log/icinga2.log"
	severity = "information"
}}
object PerfdataWriter "perfdata" {{
	service_perfdata_path = "{sandbox}/perfdata/service"
	service_temp_path = "{sandbox}/perfdata/service.tmp"
	host_perfdata_path = "{sandbox}/perfdata/host"
	host_temp_path = "{sandbox}/perfdata/host.tmp"
	rotation_interval = 1s
	service_format_template = "{template}"
}}
""")
    print("\n".join(out))


class Results:
    """Every check result Icinga2 recorded, read from the PerfdataWriter's files."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.seen = set()
        self.timeline = []
        self.latest = {}

    def poll(self):
        files = sorted(
            p for p in self.dir.iterdir() if p.name.startswith("service.") and not p.name.endswith(".tmp")
        )
        for f in files:
            if f.name in self.seen:
                continue
            self.seen.add(f.name)
            for line in f.read_text(errors="replace").splitlines():
                rec = dict(field.split("::", 1) for field in line.split("\t") if "::" in field)
                if "SERVICE" not in rec:
                    continue
                rec["TIME"] = float(rec.get("TIME") or 0)
                self.timeline.append(rec)
                self.latest[rec["SERVICE"]] = rec
        return self.latest

    def since(self, t0, t1=None):
        return [r for r in self.timeline if r["TIME"] >= t0 and (t1 is None or r["TIME"] <= t1)]


class Load:
    """pgbench for the whole run: read-write at a fixed rate on the primary,
    read-only on the standby; started again after a fault stopped a server."""

    def __init__(self, soak):
        self.s = soak
        self.procs = {}

    def ensure(self):
        a = self.s.a
        pgbench = str(Path(a.pgbin) / "pgbench")
        for name, port, extra in (("primary", a.port, []), ("standby", a.standby_port, ["-S"])):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                self.procs[name] = subprocess.Popen(
                    [pgbench, "-n", *extra, "-R", "50", "-c", "4" if name == "primary" else "2", "-T", "86400",
                     "-h", a.base, "-p", str(port), "-U", "postgres", "app"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        for p in self.procs.values():
            p.terminate()


class Soak:
    def __init__(self, args):
        self.a = args
        self.results = Results(args.perfdata)
        self.psql_bin = str(Path(args.pgbin) / "psql")
        if not Path(self.psql_bin).exists():
            self.psql_bin = "psql"
        self.log = []
        self.early = []

    # --- PostgreSQL ---------------------------------------------------
    def conn(self, port=None, db="postgres"):
        # PgBouncer has its own socket directory; its TCP port is simpler.
        host = "127.0.0.1" if str(port) == str(self.a.bouncer_port) else self.a.base
        return ["-h", host, "-p", str(port or self.a.port), "-U", "postgres", "-d", db]

    def sql(self, statement, port=None, db="postgres", check=True):
        out = subprocess.run(
            [self.psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement] + self.conn(port, db),
            capture_output=True, text=True,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"{statement}: {out.stderr.strip()}")
        return out.stdout.strip()

    def session(self, port=None, db="postgres"):
        """A psql that stays connected; statements are written to it."""
        p = subprocess.Popen(
            [self.psql_bin, "-X", "-q", "-v", "ON_ERROR_STOP=0"] + self.conn(port, db),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        )
        return p

    def send(self, p, statement):
        p.stdin.write(statement + "\n")
        p.stdin.flush()

    def close(self, *sessions):
        for p in sessions:
            try:
                p.stdin.close()
            except OSError:
                pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def as_server(self, *cmd):
        return subprocess.run(["runuser", "-u", self.a.pg_user, "--"] + list(cmd), capture_output=True, text=True)

    def pg_ctl(self, which, action, *extra):
        data = str(Path(self.a.base) / which)
        return self.as_server(str(Path(self.a.pgbin) / "pg_ctl"), action, "-w", "-D", data,
                              "-l", str(Path(self.a.base) / f"{which}.log"), *extra)

    def pgbench(self, script, clients, seconds, port=None, db="postgres", rate=None):
        f = tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False, dir=self.a.base)
        f.write(script)
        f.close()
        os.chmod(f.name, 0o644)
        cmd = [str(Path(self.a.pgbin) / "pgbench"), "-n", "-f", f.name, "-c", str(clients), "-T", str(seconds)]
        if rate:
            cmd += ["-R", str(rate)]
        log = open(f.name + ".log", "w")
        p = subprocess.Popen(cmd + self.conn(port, db)[:-2] + [db], stdout=subprocess.DEVNULL, stderr=log)
        p.log = f.name + ".log"
        return p

    def stop(self, p):
        """Ends a fault's pgbench; one that had already ended is noted, with its words."""
        if p.poll() is not None:
            words = Path(p.log).read_text(errors="replace").strip().splitlines()[-3:]
            self.early.append(f"pgbench ended early (exit {p.returncode}): {' / '.join(words)}")
        else:
            p.terminate()

    # --- Icinga2 ------------------------------------------------------
    def wait(self, seconds, until=None):
        deadline = time.time() + seconds
        while time.time() < deadline:
            latest = self.results.poll()
            if until and until(latest):
                return True
            time.sleep(0.5)
        return False

    def non_ok(self, latest=None):
        latest = latest if latest is not None else self.results.poll()
        return {s: r for s, r in latest.items() if r["STATE"] != "OK"}

    def settle(self, limit=180):
        """Until every service has reported and its latest result is OK."""
        return self.wait(limit, lambda latest: len(latest) >= self.a.services and not self.non_ok(latest))


def minutes_text(seconds):
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# --- Routine operations: each must page nobody. ------------------------------

def dump_all(s):
    """The nightly dump: every database, gzipped, where postgres-dumps looks."""
    stamp = time.strftime("%Y%m%d%H%M%S")
    for db in s.sql("SELECT datname FROM pg_database WHERE datallowconn").split():
        target = Path(s.a.dump_dir) / f"{db}-{stamp}.sql.gz"
        with open(target, "wb") as out:
            dump = subprocess.Popen([str(Path(s.a.pgbin) / "pg_dump")] + s.conn(db=db), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            gz = subprocess.run(["gzip", "-c"], stdin=dump.stdout, stdout=out)
            err = dump.communicate()[1]
        assert dump.returncode == 0 and gz.returncode == 0, err.decode(errors="replace")
        os.chmod(target, 0o644)


def routine(s):
    base = s.a.base
    pgbin = Path(s.a.pgbin)
    ops = []

    def op(name):
        def register(f):
            ops.append((name, f))
            return f
        return register

    @op("pg_dump of every database")
    def _():
        dump_all(s)

    @op("pg_basebackup")
    def _():
        target = Path(base) / "basebackup"
        r = s.as_server(str(pgbin / "pg_basebackup"), "-h", base, "-p", str(s.a.port), "-U", "postgres",
                        "-D", str(target), "-X", "stream", "-c", "fast",
                        "-T", f"{s.a.tablespace}={target}-tablespace")
        subprocess.run(["rm", "-rf", str(target), f"{target}-tablespace"])
        assert r.returncode == 0, r.stderr

    @op("VACUUM FULL of the busiest table")
    def _():
        s.sql("VACUUM FULL pgbench_accounts", db="app")

    @op("CLUSTER of a busy table")
    def _():
        s.sql("CLUSTER pgbench_tellers USING pgbench_tellers_pkey", db="app")

    @op("CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY")
    def _():
        s.sql("CREATE INDEX CONCURRENTLY IF NOT EXISTS soak_abalance ON pgbench_accounts (abalance)", db="app")
        s.sql("REINDEX INDEX CONCURRENTLY soak_abalance", db="app")
        s.sql("DROP INDEX CONCURRENTLY soak_abalance", db="app")

    @op("ANALYZE of everything")
    def _():
        s.sql("ANALYZE", db="app")
        s.sql("ANALYZE")

    @op("three manual CHECKPOINTs")
    def _():
        for _ in range(3):
            s.sql("CHECKPOINT")
            time.sleep(2)

    @op("pg_stat_reset()")
    def _():
        s.sql("SELECT pg_stat_reset()", db="app")
        s.sql("SELECT pg_stat_reset()")

    @op("log rotation")
    def _():
        s.sql("SELECT pg_rotate_logfile()")

    @op("a reload with a harmless change")
    def _():
        s.sql("ALTER SYSTEM SET log_autovacuum_min_duration = '10s'")
        s.sql("SELECT pg_reload_conf()")

    @op("a bulk COPY load")
    def _():
        s.sql("CREATE TABLE IF NOT EXISTS soak_load (id int, pad text)", db="app")
        s.sql("COPY soak_load FROM PROGRAM 'seq 1 500000 | sed s/$/,x/' WITH (FORMAT csv)", db="app")
        s.sql("DROP TABLE soak_load", db="app")

    @op("a 2-minute reporting query")
    def _():
        s.sql("SELECT count(*) FROM pgbench_accounts a, pg_sleep(120) WHERE a.aid < 100", db="app")

    @op("a burst of 200 short connections")
    def _():
        threads = [threading.Thread(target=lambda: s.sql("SELECT 1", check=False)) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    @op("pgbench -i of a new database")
    def _():
        s.sql("CREATE DATABASE soak_new")
        r = s.as_server(str(pgbin / "pgbench"), "-i", "-q", "-s", "5", "-h", base, "-p", str(s.a.port),
                        "-U", "postgres", "soak_new")
        assert r.returncode == 0, r.stderr
        s.sql("DROP DATABASE soak_new")

    return ops


# --- Faults: each caught by its service, in time. -------------------------

class Fault:
    def __init__(self, name, service, inject, undo, extra=0, why=""):
        self.name, self.service, self.inject, self.undo = name, service, inject, undo
        # Seconds beyond CATCH the fault needs before its service can see it.
        self.extra, self.why = extra, why


def faults(s):
    base = s.a.base
    held = {}
    out = []

    def add(*args, **kw):
        out.append(Fault(*args, **kw))

    # Server and sessions.
    add("server stopped, then started", "postgres-alive",
        lambda: s.pg_ctl("primary", "stop", "-m", "fast"),
        lambda: s.pg_ctl("primary", "start"))

    def crash():
        pid = s.sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
                    "AND application_name LIKE 'pgbench%' LIMIT 1")
        os.kill(int(pid), signal.SIGKILL)
    add("a backend SIGKILLed (crash reset)", "postgres-alive", crash, lambda: None)

    def exhaust():
        held["sleepers"] = s.pgbench("SELECT pg_sleep(60);\n", 85, 60)
    def release():
        # pgbench ended leaves its sessions sleeping on the server.
        s.stop(held.pop("sleepers"))
        s.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60);'")
    add("connections exhausted (85 of 100 held)", "postgres-connections", exhaust, release,
        extra=5, why="85 sessions take a few seconds to open")

    def pile_up():
        s.sql("CREATE TABLE IF NOT EXISTS soak_locked (i int)", db="app")
        holder = s.session(db="app")
        s.send(holder, "BEGIN; LOCK TABLE soak_locked IN ACCESS EXCLUSIVE MODE;")
        held["holder"] = holder
        held["waiters"] = s.pgbench("SELECT count(*) FROM soak_locked;\n", 25, 90, db="app")

    def unpile():
        s.stop(held.pop("waiters"))
        s.close(held.pop("holder"))
        s.sql("DROP TABLE soak_locked", db="app")
    add("a lock pile-up (25 sessions behind an ACCESS EXCLUSIVE)", "postgres-locks", pile_up, unpile)

    def idle_tx():
        p = s.session(db="app")
        s.send(p, "BEGIN; SELECT count(*) FROM pgbench_branches;")
        held["idle"] = p
    add("a session idle in transaction", "postgres-long-running", idle_tx,
        lambda: s.close(held.pop("idle")), extra=150, why="the (shortened) warning threshold is 150 s")

    def long_statement():
        held["long"] = s.pgbench("SELECT pg_sleep(300);\n", 1, 300)
    def end_long_statement():
        s.stop(held.pop("long"))
        s.sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(300);'")
    add("a long statement", "postgres-long-running", long_statement, end_long_statement,
        extra=150, why="the (shortened) warning threshold is 150 s")

    def prepared():
        p = s.session(db="app")
        s.send(p, "BEGIN; UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1; "
                  "PREPARE TRANSACTION 'soak_left_behind';")
        s.close(p)
    add("a prepared transaction left behind", "postgres-prepared-txns", prepared,
        lambda: s.sql("ROLLBACK PREPARED 'soak_left_behind'", db="app"),
        extra=20, why="the (shortened) warning threshold is 20 s")

    # Replication and WAL.
    def archive_failing():
        s.sql("ALTER SYSTEM SET archive_command = 'false'")
        s.sql("SELECT pg_reload_conf()")
        for _ in range(12):
            s.sql("SELECT pg_switch_wal()")
            s.sql("CREATE TABLE IF NOT EXISTS soak_wal (i int); INSERT INTO soak_wal SELECT 1")

    def archive_fixed():
        s.sql("ALTER SYSTEM SET archive_command = 'true'")
        s.sql("SELECT pg_reload_conf()")
        s.sql("DROP TABLE IF EXISTS soak_wal")
    add("archive_command failing", "postgres-archiver", archive_failing, archive_fixed)

    add("the standby stopped", "postgres-replication-lag",
        lambda: s.pg_ctl("standby", "stop", "-m", "fast"),
        lambda: s.pg_ctl("standby", "start"))

    add("replay paused on the standby", "postgres-replication-lag",
        lambda: s.sql("SELECT pg_wal_replay_pause()", port=s.a.standby_port),
        lambda: s.sql("SELECT pg_wal_replay_resume()", port=s.a.standby_port),
        extra=30, why="the replay lag must first reach the 30 s warning")

    def stall_receiver():
        pid = s.sql("SELECT pid FROM pg_stat_wal_receiver", port=s.a.standby_port)
        held["receiver"] = int(pid)
        os.kill(int(pid), signal.SIGSTOP)
    add("the WAL receiver stalled (SIGSTOP)", "postgres-replication-lag", stall_receiver,
        lambda: os.kill(held.pop("receiver"), signal.SIGCONT),
        extra=30, why="the lag must first reach the 30 s warning")

    add("an inactive slot retaining WAL", "postgres-replication-slots",
        lambda: s.sql("SELECT pg_create_physical_replication_slot('soak_forgotten', true)"),
        lambda: s.sql("SELECT pg_drop_replication_slot('soak_forgotten')"),
        extra=40, why="the (shortened) inactive threshold is 30 s, from the first run that sees the slot "
                      "before PostgreSQL 17")

    # Storage and data.
    def fill():
        mount = s.a.tablespace
        s.sql("CREATE TABLE soak_fill (pad text) TABLESPACE soak_ts", db="app")
        while True:
            st = os.statvfs(mount)
            if 1 - st.f_bavail / st.f_blocks >= 0.93:
                break
            s.sql("INSERT INTO soak_fill SELECT repeat(md5(g::text), 60) FROM generate_series(1, 500) g",
                  db="app", check=False)
    add("a tablespace's filesystem filling (a 32 MB tmpfs to 93%)", "postgres-disk", fill,
        lambda: s.sql("DROP TABLE soak_fill", db="app"))

    def corrupt():
        s.sql("CREATE TABLE soak_corrupt AS SELECT g AS i, repeat('x', 100) AS pad "
              "FROM generate_series(1, 1000) g", db="app")
        # VACUUM FULL writes the new file past shared buffers, so the next
        # read comes from the file.
        s.sql("VACUUM FULL soak_corrupt", db="app")
        s.sql("CHECKPOINT")
        path = s.sql("SELECT current_setting('data_directory') || '/' || pg_relation_filepath('soak_corrupt')",
                     db="app")
        with open(path, "r+b") as f:
            f.seek(4000)
            f.write(b"\xde\xad\xbe\xef" * 8)
        # The application reads it, once.
        s.sql("SELECT count(*) FROM soak_corrupt", db="app", check=False)
    add("a data checksum failure (a page corrupted on disk, read once)", "postgres-checksums", corrupt,
        lambda: s.sql("DROP TABLE soak_corrupt", db="app"))

    def invalid_index():
        s.sql("CREATE TABLE IF NOT EXISTS soak_dup (i int); INSERT INTO soak_dup VALUES (1), (1)", db="app")
        s.sql("CREATE UNIQUE INDEX CONCURRENTLY soak_dup_i ON soak_dup (i)", db="app", check=False)
    add("an invalid index (a failed CREATE INDEX CONCURRENTLY)", "postgres-indexes", invalid_index,
        lambda: s.sql("DROP TABLE soak_dup", db="app"))

    add("a sequence near its end", "postgres-sequences",
        lambda: s.sql("CREATE SEQUENCE soak_seq AS smallint; SELECT setval('soak_seq', 32000)", db="app"),
        lambda: s.sql("DROP SEQUENCE soak_seq", db="app"))

    # Log-visible events counted by the statistics.
    def deadlocks():
        script = ("BEGIN;\nUPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1;\n"
                  "SELECT pg_sleep(0.2);\nUPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 2;\nEND;\n")
        script2 = script.replace("bid = 1", "bid = 9").replace("bid = 2", "bid = 1").replace("bid = 9", "bid = 2")
        held["dl1"] = s.pgbench(script, 1, 120, db="app")
        held["dl2"] = s.pgbench(script2, 1, 120, db="app")

    def no_deadlocks():
        s.stop(held.pop("dl1"))
        s.stop(held.pop("dl2"))
    add("a deadlock storm", "postgres-deadlocks", deadlocks, no_deadlocks)

    # The log.
    def repeat(key, every, action):
        stop = threading.Event()

        def loop():
            while not stop.is_set():
                action()
                stop.wait(every)
        t = threading.Thread(target=loop)
        t.start()
        held[key] = (stop, t)

    def unrepeat(key):
        stop, t = held.pop(key)
        stop.set()
        t.join()

    def error_burst():
        p = s.session(db="app")
        held["errors_session"] = p
        repeat("errors", 0.05, lambda: s.send(p, "SELECT 1/0;"))

    def no_errors():
        unrepeat("errors")
        s.close(held.pop("errors_session"))
    add("an error burst (20 errors a second)", "postgres-log", error_burst, no_errors)

    def failed_login():
        # soak_app has no password, and pg_hba.conf asks it for one over TCP.
        subprocess.run([s.psql_bin, "-X", "-w", "-h", "127.0.0.1", "-p", str(s.a.port), "-U", "soak_app",
                        "-d", "app", "-c", "SELECT 1"],
                       env={**os.environ, "PGPASSWORD": os.urandom(8).hex()}, capture_output=True)
    add("failed logins (2 a second)", "postgres-log",
        lambda: repeat("logins", 0.5, failed_login), lambda: unrepeat("logins"))

    # Configuration and roles.
    add("a new superuser", "postgres-roles",
        lambda: s.sql("CREATE ROLE soak_intruder SUPERUSER LOGIN"),
        lambda: s.sql("DROP ROLE soak_intruder"))

    def pending():
        s.sql("ALTER SYSTEM SET shared_buffers = '129MB'")
        s.sql("SELECT pg_reload_conf()")

    def unpending():
        s.sql("ALTER SYSTEM RESET shared_buffers")
        s.sql("SELECT pg_reload_conf()")
    add("a setting pending restart", "postgres-settings", pending, unpending)

    # Workload and pooler.
    def rollbacks():
        # Transactions that read a table, as an application's do. From
        # PostgreSQL 15 a backend flushes its transaction counts with its
        # table statistics: ones that touch no table (BEGIN; SELECT 1;
        # ROLLBACK) reach pg_stat_database when the session ends (seen on
        # 15.18 at 200 a second: 201 rollbacks counted, then none for 6 s;
        # the same transactions reading a table were counted throughout).
        held["rb"] = s.pgbench("\\set aid random(1, 1000000)\nBEGIN;\n"
                               "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\nROLLBACK;\n",
                               4, 120, db="app", rate=400)
    add("a rollback storm", "postgres-commit-ratio", rollbacks, lambda: s.stop(held.pop("rb")))

    def waiting():
        held["bouncer"] = s.pgbench("SELECT pg_sleep(5);\n", 12, 120, port=s.a.bouncer_port)
    add("PgBouncer clients waiting (12 for a pool of 2)", "pgbouncer-pools", waiting,
        lambda: s.stop(held.pop("bouncer")), extra=10, why="the wait must reach 10 s")
    return out


def run(args):
    s = Soak(args)
    load = Load(s)
    load.ensure()
    only = re.compile(os.environ.get("SOAK_ONLY", ""))
    started = time.time()
    findings = []
    print(f"soak: waiting for every service to report OK (up to 3 min)", flush=True)
    ok = s.settle(180)
    print(f"soak: {len(s.results.latest)} of {args.services} services report", flush=True)
    if not ok:
        bad = s.non_ok()
        findings.append("not OK at the start: " + "; ".join(f"{k} {v['STATE']} ({v['TYPE']}): {v.get('OUTPUT', '')}" for k, v in bad.items()))
        print("soak: " + findings[-1], flush=True)
    services = sorted(s.results.latest)

    op_rows = []
    for name, action in routine(s):
        if not only.search(name):
            continue
        load.ensure()
        t0 = time.time()
        print(f"soak: routine: {name}", flush=True)
        error = ""
        try:
            action()
        except Exception as e:  # an operation that failed is a finding, not a crash
            error = str(e)
        t1 = time.time()
        s.wait(CATCH)
        bad = [r for r in s.results.since(t0) if r["STATE"] != "OK"]
        hard = [r for r in bad if r["TYPE"] == "HARD"]
        op_rows.append((name, t1 - t0, bad, hard, error))
        print(f"soak:   took {t1 - t0:.0f}s; non-OK {[(r['SERVICE'], r['STATE'], r['TYPE']) for r in bad] or '-'}"
              f"{'; ' + error if error else ''}", flush=True)
        s.settle(120)

    fault_rows = []
    for fault in faults(s):
        if not only.search(fault.name):
            continue
        print(f"soak: fault: {fault.name} -> {fault.service}", flush=True)
        s.settle(60)
        t0 = time.time()
        error = ""
        try:
            fault.inject()
        except Exception as e:
            error = str(e)
        limit = CATCH + fault.extra + 5
        s.wait(limit + 30, lambda latest: any(
            r["SERVICE"] == fault.service and r["STATE"] != "OK" and r["TYPE"] == "HARD"
            for r in s.results.since(t0)))
        mine = [r for r in s.results.since(t0) if r["SERVICE"] == fault.service]
        first = next((r["TIME"] - t0 for r in mine if r["STATE"] != "OK"), None)
        hard = next((r["TIME"] - t0 for r in mine if r["STATE"] != "OK" and r["TYPE"] == "HARD"), None)
        t_undo = time.time()
        try:
            fault.undo()
        except Exception as e:
            error += f" undo: {e}"
        if s.early:
            error += " " + "; ".join(s.early)
            s.early.clear()
        s.wait(180, lambda latest: latest.get(fault.service, {}).get("STATE") == "OK"
               and any(r["SERVICE"] == fault.service and r["STATE"] == "OK" for r in s.results.since(t_undo)))
        back = next((r["TIME"] - t_undo for r in s.results.since(t_undo)
                     if r["SERVICE"] == fault.service and r["STATE"] == "OK"), None)
        others = sorted({r["SERVICE"] for r in s.results.since(t0) if r["STATE"] != "OK" and r["SERVICE"] != fault.service})
        load.ensure()
        s.settle(90)
        left = sorted(s.non_ok())
        # What the service said meanwhile, for a fault missed or late.
        said = [(r["TIME"] - t0, r["STATE"], r["TYPE"], r.get("OUTPUT", "")[:160]) for r in mine]
        fault_rows.append((fault, first, hard, back, others, left, limit, error, said))
        fmt = lambda v: "-" if v is None else f"{v:.0f}s"
        print(f"soak:   first non-OK {fmt(first)}, HARD {fmt(hard)} (limit {limit}s), back {fmt(back)}; "
              f"others {others or '-'}; left {left or '-'}{'; ' + error if error else ''}", flush=True)

    # Idle under load for the rest of the run: no page wanted.
    rest = args.minutes * 60 - (time.time() - started)
    idle_bad = []
    if rest > 0:
        print(f"soak: idle under load for {minutes_text(rest)}", flush=True)
        t0 = time.time()
        s.wait(rest)
        idle_bad = [r for r in s.results.since(t0) if r["STATE"] != "OK"]
    load.stop()
    s.results.poll()
    report(args, s, services, op_rows, fault_rows, idle_bad, findings, time.time() - started)


def percentile(values, q):
    values = sorted(values)
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def report(args, s, services, op_rows, fault_rows, idle_bad, findings, took):
    lines = ["# The suite for a run under load, measured", ""]
    server = s.sql("SHOW server_version")
    lines += [
        f"Run of `scripts/soak.sh {args.minutes}`: {minutes_text(took)}, {len(services)} services of "
        f"packaging/icinga2/pgvigil-example.conf on one host, {args.icinga2_version}, PostgreSQL {server}; "
        "a primary with a streaming standby and PgBouncer; pgbench at 50 transactions/s on the primary "
        "and 50 read-only on the standby throughout.",
        "",
        "Changes to the shipped example:",
        f"- {SCALING};",
    ]
    for svc, var, shipped, used in OVERRIDES:
        lines.append(f"- {svc}: {var} {shipped} -> {used};")
    lines += [f"- {PLACES};",
              "- not instantiated: subscriptions, pgBackRest and Patroni (parts this run does not start).", ""]

    caught = sum(1 for f in fault_rows if f[2] is not None and f[2] <= f[6])
    missed = [f for f in fault_rows if f[2] is None or f[2] > f[6]]
    op_alerts = sum(len(r[3]) for r in op_rows)
    lines += [
        "## Summary", "",
        f"- faults caught in time: {caught} of {len(fault_rows)}",
        f"- HARD alerts from routine operations: {op_alerts} (non-OK results: {sum(len(r[2]) for r in op_rows)})",
        f"- non-OK results while idle under load: {len(idle_bad)}",
    ]
    lines += [f"- {f}" for f in findings]
    lines += ["", "## Faults", "",
              f"Caught in time: HARD within check_interval + max_check_attempts x retry_interval = {CATCH} s, "
              "plus what the fault needs to become visible (said per fault).", "",
              "| fault | service | first non-OK | HARD | limit | back to OK | other services non-OK meanwhile | left non-OK |",
              "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "-" if v is None else f"{v:.1f} s"
    for fault, first, hard, back, others, left, limit, error, _ in fault_rows:
        name = fault.name + (f" ({fault.why})" if fault.why else "") + (f" **error: {error}**" if error else "")
        verdict = "" if hard is not None and hard <= limit else " **late or missed**"
        lines.append(f"| {name} | {fault.service} | {fmt(first)} | {fmt(hard)}{verdict} | {limit} s | {fmt(back)} | "
                     f"{', '.join(others) or '-'} | {', '.join(left) or '-'} |")
    for fault, *_, said in missed:
        lines += ["", f"What {fault.service} said during \"{fault.name}\" (seconds after it began):", ""]
        lines += [f"- {t:.1f} s {state} ({kind}): {output}" for t, state, kind, output in said] or ["- nothing"]
    lines += ["", "## Routine operations", "", "| operation | took | non-OK results | HARD |", "|---|---|---|---|"]
    for name, t, bad, hard, error in op_rows:
        shown = "; ".join(f"{r['SERVICE']} {r['STATE']} ({r['TYPE']}): {r.get('OUTPUT', '')[:120]}" for r in bad) or "none"
        lines.append(f"| {name}{' **error: ' + error + '**' if error else ''} | {t:.1f} s | {shown} | {len(hard)} |")
    if idle_bad:
        lines += ["", "## Non-OK while idle", ""]
        lines += [f"- {r['SERVICE']} {r['STATE']} ({r['TYPE']}): {r.get('OUTPUT', '')[:160]}" for r in idle_bad]

    runs = {}
    for line in Path(args.runs).read_text(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) != 7:
            continue
        name, start, end, user, sys_, rss, code = parts
        try:
            wall = float(end) - float(start)
            runs.setdefault(name, []).append((wall, float(user) + float(sys_), int(rss), int(code)))
        except ValueError:
            continue
    timeouts = {}
    unknowns = {}
    for r in s.results.timeline:
        if "timed out" in r.get("OUTPUT", ""):
            timeouts[r["SERVICE"]] = timeouts.get(r["SERVICE"], 0) + 1
        if r["STATE"] == "UNKNOWN":
            unknowns[r["SERVICE"]] = unknowns.get(r["SERVICE"], 0) + 1
    lines += ["", "## Every check", "",
              f"Timeouts: {sum(timeouts.values())} {timeouts or ''}; UNKNOWN results: {sum(unknowns.values())} {unknowns or ''}.", "",
              "| plugin | runs | wall p50 | wall p99 | CPU mean | peak RSS | exit 3 |", "|---|---|---|---|---|---|---|"]
    for name in sorted(runs):
        rs = runs[name]
        walls = [r[0] for r in rs]
        lines.append(f"| {name} | {len(rs)} | {percentile(walls, 0.5) * 1000:.0f} ms | {percentile(walls, 0.99) * 1000:.0f} ms | "
                     f"{statistics.mean(r[1] for r in rs) * 1000:.1f} ms | {max(r[2] for r in rs) / 1024:.1f} MB | "
                     f"{sum(1 for r in rs if r[3] == 3)} |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("config")
    c.add_argument("--example", required=True)
    c.add_argument("--port", required=True)
    c.add_argument("--standby-port", required=True)
    c.add_argument("--bouncer-port", required=True)
    c.add_argument("--plugins", required=True)
    c.add_argument("--sandbox", required=True)
    c.add_argument("--socket-dir", required=True)
    c.add_argument("--dump-dir", required=True)
    r = sub.add_parser("run")
    r.add_argument("--minutes", type=int, default=30)
    r.add_argument("--services", type=int, required=True)
    for name in ["base", "pgbin", "pg-user", "port", "standby-port", "bouncer-port", "perfdata", "runs",
                 "icinga2-version", "out", "dump-dir", "tablespace"]:
        r.add_argument(f"--{name}", required=True)
    args = p.parse_args()
    (config if args.what == "config" else run)(args)


if __name__ == "__main__":
    sys.exit(main())
