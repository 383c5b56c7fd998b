#!/usr/bin/env python3
"""Runs each pgvigil plugin and its peers' equivalent checks alternately and
measures, per run: wall time, CPU time (user+sys, the check's own children
included, through wait4) and peak RSS, with pgvigil-bench-run; then, with log_connections and
log_statement=all switched on, the connections and statements each run costs
the server. The figures go into one JSON file, each check's row replacing
the one an earlier run left (a run of some checks updates theirs alone), and
the whole table is written again as Markdown: one file per benchmark, under a
stable name; git keeps what they said before.

Called by bench/compare.sh, which starts the throwaway cluster."""

import argparse
import json
import os
import shlex
import socket
import statistics
import struct
import subprocess
import time

PA = "/usr/lib/nagios/plugins/check_pgactivity"
PGSQL = "/usr/lib/nagios/plugins/check_pgsql"
RUNNER = None  # set from --bin in main()


# check_pg_health's default checks.
HEALTH_DEFAULTS = ["alive", "connections", "replication_lag", "disk", "long_running", "locks", "archiver"]


def commands(a):
    """Per check: tool name to (argv, extra env). Peers that need superuser
    for a check (check_postgres disk_space, archive_ready; check_pgactivity
    archiver) run as postgres; everything else as the pg_monitor role. Every
    tool reaches the server through the same Unix socket."""
    def ours_in(db):
        return ["-H", a.base, "-p", str(a.port), "-U", "monitor", "-d", db]

    def cp_in(db):
        return ["check_postgres", f"--host={a.base}", f"--port={a.port}", f"--dbname={db}"]

    ours, cp = ours_in("postgres"), cp_in("postgres")
    # The scale scenario's 10,000 tables are in app, a database every tool
    # looks into: check_pgactivity skips postgres, and check_postgres reads
    # the one it is given.
    oursa, cpa = ours_in("app"), cp_in("app")
    pa = [PA, "-h", a.base, "-p", str(a.port), "-d", "postgres", "--status-file", a.status_file]
    floor = [PGSQL, "-H", a.base, "-P", str(a.port), "-d", "postgres", "-l", "monitor"]
    su = {"PGUSER": "postgres"}
    STATE = {"PGVIGIL_STATE_DIR": os.path.join(a.base, "pgvigil-state")}
    b = a.bin
    rows = {
        "alive": {
            "pgvigil": ([f"{b}/check_pg_alive", *ours, "-w", "2s", "-c", "8s"], STATE),
            "check_postgres": ([*cp, "--action=connection"], {}),
            "check_pgactivity": ([*pa, "-s", "connection"], {}),
            "check_pgsql": (floor, {}),
        },
        # A restart within --min-uptime, a crash reset since the previous run.
        "uptime": {
            "pgvigil": ([f"{b}/check_pg_alive", *ours, "--min-uptime", "10min"], STATE),
            "check_pgactivity": ([*pa, "-s", "uptime", "-w", "10m", "-c", "5m"], {}),
            "check_pgsql": (floor, {}),
        },
        "is_master": {
            "pgvigil": ([f"{b}/check_pg_role", *ours, "--expect", "primary"], STATE),
            "check_pgactivity": ([*pa, "-s", "is_master"], {}),
            "check_pgsql": (floor, {}),
        },
        # No peer counts recovery conflicts.
        "conflicts": {
            "pgvigil": ([f"{b}/check_pg_conflicts", *ours, "-w", "0", "-c", "10"], STATE),
            "check_pgsql": (floor, {}),
        },
        # No peer watches subscriptions; on a server without any this is the
        # cost of the version query and the statement.
        "subscriptions": {
            "pgvigil": ([f"{b}/check_pg_subscriptions", *ours], STATE),
            "check_pgsql": (floor, {}),
        },
        "connections": {
            "pgvigil": ([f"{b}/check_pg_connections", *ours, "-w", "80%", "-c", "90%"], {}),
            "check_postgres": ([*cp, "--action=backends", "-w", "80%", "-c", "90%"], {}),
            "check_pgactivity": ([*pa, "-s", "backends", "-w", "80%", "-c", "90%"], {}),
            "check_pgsql": (floor, {}),
        },
        "replication_lag": {
            "pgvigil": ([f"{b}/check_pg_replication_lag", *ours, "-w", "16MB", "-c", "1GB"], {}),
            "check_postgres": ([
                "check_postgres", f"--host={a.base},{a.base}", f"--port={a.port},{a.standby_port}",
                "--dbname=postgres", "--action=hot_standby_delay", "-w", "16777216", "-c", "1073741824"], {}),
            "check_pgactivity": ([*pa, "-s", "streaming_delta", "-w", "16MB", "-c", "1GB"], {}),
            "check_pgsql": (floor, {}),
        },
        "disk": {
            "pgvigil": ([f"{b}/check_pg_disk", *ours, "-w", "80%", "-c", "90%"], {}),
            "check_postgres": ([*cp, "--action=disk_space", "-w", "80%", "-c", "90%"], su),
            "check_pgsql": (floor, {}),
        },
        "locks": {
            "pgvigil": ([f"{b}/check_pg_locks", *ours, "-w", "5", "-c", "20"], {}),
            "check_postgres": ([*cp, "--action=locks", "-w", "5", "-c", "20"], {}),
            "check_pgactivity": ([*pa, "-s", "locks", "-w", "5", "-c", "20"], {}),
            "check_pgsql": (floor, {}),
        },
        "long_running": {
            "pgvigil": ([f"{b}/check_pg_long_running", *ours, "-w", "5min", "-c", "30min"], {}),
            "check_postgres": ([*cp, "--action=txn_time", "-w", "5 minutes", "-c", "30 minutes"], {}),
            "check_pgactivity": ([*pa, "-s", "oldest_idlexact", "-w", "5m", "-c", "30m"], {}),
            "check_pgsql": (floor, {}),
        },
        "prepared_txns": {
            "pgvigil": ([f"{b}/check_pg_prepared_txns", *ours, "-w", "5min", "-c", "1h"], {}),
            "check_postgres": ([*cp, "--action=prepared_txns", "-w", "300", "-c", "3600"], {}),
            "check_pgactivity": ([*pa, "-s", "oldest_2pc", "-w", "5m", "-c", "1h"], {}),
            "check_pgsql": (floor, {}),
        },
        "sequences": {
            "pgvigil": ([f"{b}/check_pg_sequences", *oursa, "-w", "75%", "-c", "90%"], {}),
            "check_postgres": ([*cpa, "--action=sequence", "-w", "75%", "-c", "90%"], {}),
            "check_pgactivity": ([*pa, "-s", "sequences_exhausted", "-w", "75%", "-c", "90%"], {}),
            "check_pgsql": (floor, {}),
        },
        "archiver": {
            "pgvigil": ([f"{b}/check_pg_archiver", *ours, "-w", "10", "-c", "50"], {}),
            "check_postgres": ([*cp, "--action=archive_ready", "-w", "10", "-c", "50"], su),
            "check_pgactivity": ([*pa, "-s", "archiver", "-w", "10", "-c", "50"], su),
            "check_pgsql": (floor, {}),
        },
        # The maintenance checks: pgvigil looks into every database, as
        # check_pgactivity does; check_postgres into the one it is given.
        "wraparound": {
            "pgvigil": ([f"{b}/check_pg_wraparound", *ours, "-w", "50%", "-c", "75%"], {}),
            "check_postgres": ([*cp, "--action=txn_wraparound"], {}),
            "check_pgactivity": ([*pa, "-s", "max_freeze_age"], {}),
            "check_pgsql": (floor, {}),
        },
        "last_vacuum": {
            "pgvigil": ([f"{b}/check_pg_vacuum", *ours, "--all-databases", "-w", "10%,1d", "-c", "50%,7d"], {}),
            "check_postgres": ([*cpa, "--action=last_vacuum", "-w", "1d", "-c", "7d"], {}),
            "check_pgactivity": ([*pa, "-s", "last_vacuum", "-w", "1d", "-c", "7d"], {}),
            "check_pgsql": (floor, {}),
        },
        "autovacuum": {
            "pgvigil": ([f"{b}/check_pg_vacuum", *ours, "-w", "10%,1d,workers=99%,worker_age=6h", "-c", "50%,7d"], {}),
            "check_pgactivity": ([*pa, "-s", "autovacuum"], {}),
            "check_pgsql": (floor, {}),
        },
        "last_analyze": {
            "pgvigil": ([f"{b}/check_pg_vacuum", *ours, "--all-databases", "-w", "10%,1d", "-c", "50%,7d"], {}),
            "check_postgres": ([*cpa, "--action=last_analyze", "-w", "1d", "-c", "7d"], {}),
            "check_pgactivity": ([*pa, "-s", "last_analyze", "-w", "1d", "-c", "7d"], {}),
            "check_pgsql": (floor, {}),
        },
        "table_bloat": {
            "pgvigil": ([f"{b}/check_pg_bloat", *ours, "--all-databases", "-w", "1GB,50%", "-c", "10GB,80%"], {}),
            "check_postgres": ([*cpa, "--action=bloat", "-w", "1G", "-c", "10G"], {}),
            "check_pgactivity": ([*pa, "-s", "table_bloat", "-w", "50%", "-c", "80%"], {}),
            "check_pgsql": (floor, {}),
        },
        "btree_bloat": {
            "pgvigil": ([f"{b}/check_pg_bloat", *ours, "--all-databases", "-w", "1GB,50%", "-c", "10GB,80%"], {}),
            "check_postgres": ([*cpa, "--action=bloat", "-w", "1G", "-c", "10G"], {}),
            "check_pgactivity": ([*pa, "-s", "btree_bloat", "-w", "50%", "-c", "80%"], {}),
            "check_pgsql": (floor, {}),
        },
        "invalid_indexes": {
            "pgvigil": ([f"{b}/check_pg_indexes", *ours, "--all-databases"], {}),
            "check_pgactivity": ([*pa, "-s", "invalid_indexes"], {}),
            "check_pgsql": (floor, {}),
        },
        # The same checks asked the narrower question check_postgres answers:
        # the one database with the tables (check_pgactivity: --dbinclude).
        "last_vacuum_app": {
            "pgvigil": ([f"{b}/check_pg_vacuum", *oursa, "-w", "10%,1d", "-c", "50%,7d"], {}),
            "check_postgres": ([*cpa, "--action=last_vacuum", "-w", "1d", "-c", "7d"], {}),
            "check_pgactivity": ([*pa, "-s", "last_vacuum", "--dbinclude", "^app$", "-w", "1d", "-c", "7d"], {}),
            "check_pgsql": (floor, {}),
        },
        "last_analyze_app": {
            "pgvigil": ([f"{b}/check_pg_vacuum", *oursa, "-w", "10%,1d", "-c", "50%,7d"], {}),
            "check_postgres": ([*cpa, "--action=last_analyze", "-w", "1d", "-c", "7d"], {}),
            "check_pgactivity": ([*pa, "-s", "last_analyze", "--dbinclude", "^app$", "-w", "1d", "-c", "7d"], {}),
            "check_pgsql": (floor, {}),
        },
        "table_bloat_app": {
            "pgvigil": ([f"{b}/check_pg_bloat", *oursa, "-w", "1GB,50%", "-c", "10GB,80%"], {}),
            "check_postgres": ([*cpa, "--action=bloat", "-w", "1G", "-c", "10G"], {}),
            "check_pgactivity": ([*pa, "-s", "table_bloat", "--dbinclude", "^app$", "-w", "50%", "-c", "80%"], {}),
            "check_pgsql": (floor, {}),
        },
        "btree_bloat_app": {
            "pgvigil": ([f"{b}/check_pg_bloat", *oursa, "-w", "1GB,50%", "-c", "10GB,80%"], {}),
            "check_postgres": ([*cpa, "--action=bloat", "-w", "1G", "-c", "10G"], {}),
            "check_pgactivity": ([*pa, "-s", "btree_bloat", "--dbinclude", "^app$", "-w", "50%", "-c", "80%"], {}),
            "check_pgsql": (floor, {}),
        },
        "invalid_indexes_app": {
            "pgvigil": ([f"{b}/check_pg_indexes", *oursa], {}),
            "check_pgactivity": ([*pa, "-s", "invalid_indexes", "--dbinclude", "^app$"], {}),
            "check_pgsql": (floor, {}),
        },
        "replication_slots": {
            "pgvigil": ([f"{b}/check_pg_replication_slots", *ours, "-w", "1GB", "-c", "10GB"], {}),
            "check_postgres": ([*cp, "--action=replication_slots", "-w", "1G", "-c", "10G"], {}),
            "check_pgactivity": ([*pa, "-s", "replication_slots", "-w", "1GB", "-c", "10GB"], {}),
            "check_pgsql": (floor, {}),
        },
        # The rate checks: both runs of pgvigil and check_pgactivity keep state
        # between runs; check_postgres reports totals since the last reset.
        "hit_ratio": {
            "pgvigil": ([f"{b}/check_pg_hit_ratio", *ours, "-w", "95:", "-c", "90:"], STATE),
            "check_postgres": ([*cp, "--action=hitratio", "-w", "95%", "-c", "90%"], {}),
            "check_pgactivity": ([*pa, "-s", "hit_ratio", "-w", "95%", "-c", "90%"], {}),
            "check_pgsql": (floor, {}),
        },
        "deadlocks": {
            "pgvigil": ([f"{b}/check_pg_deadlocks", *ours], STATE),
            "check_pgsql": (floor, {}),
        },
        "commit_ratio": {
            "pgvigil": ([f"{b}/check_pg_commit_ratio", *ours, "-w", "10%", "-c", "25%"], STATE),
            "check_postgres": ([*cp, "--action=commitratio", "-w", "90%", "-c", "75%"], {}),
            "check_pgactivity": ([*pa, "-s", "commit_ratio"], {}),
            "check_pgsql": (floor, {}),
        },
        "temp_files": {
            "pgvigil": ([f"{b}/check_pg_temp_files", *ours, "-w", "100,1GB", "-c", "1000,10GB"], STATE),
            "check_pgactivity": ([*pa, "-s", "temp_files", "-w", "100", "-c", "1000"], {}),
            "check_pgsql": (floor, {}),
        },
        "checksums": {
            "pgvigil": ([f"{b}/check_pg_checksums", *ours], STATE),
            "check_pgactivity": ([*pa, "-s", "checksum_errors", "-w", "1", "-c", "1"], {}),
            "check_pgsql": (floor, {}),
        },
        "checkpoints": {
            "pgvigil": ([f"{b}/check_pg_checkpoints", *ours, "-w", "30%", "-c", "60%"], STATE),
            "check_pgactivity": ([*pa, "-s", "bgwriter"], {}),
            "check_pgsql": (floor, {}),
        },
        "db_size": {
            "pgvigil": ([f"{b}/check_pg_db_size", *ours, "-w", "100GB", "-c", "200GB"], STATE),
            "check_postgres": ([*cp, "--action=database_size", "-w", "100G", "-c", "200G"], {}),
            "check_pgactivity": ([*pa, "-s", "database_size", "-w", "100GB", "-c", "200GB"], {}),
            "check_pgsql": (floor, {}),
        },
        # check_pgactivity has no relation size service.
        "relation_size": {
            "pgvigil": ([f"{b}/check_pg_relation_size", *oursa, "-w", "50GB", "-c", "200GB"], STATE),
            "check_postgres": ([*cpa, "--action=relation_size", "-w", "50G", "-c", "200G"], {}),
            "check_pgsql": (floor, {}),
        },
        # Sizes from pg_class.relpages: no relation opened.
        "relation_size_estimate": {
            "pgvigil": ([f"{b}/check_pg_relation_size", *oursa, "--estimate", "-w", "50GB", "-c", "200GB"], STATE),
            "check_postgres": ([*cpa, "--action=relation_size", "-w", "50G", "-c", "200G"], {}),
            "check_pgsql": (floor, {}),
        },
        "wal_files": {
            "pgvigil": ([f"{b}/check_pg_wal", *ours, "-w", "100%", "-c", "150%"], STATE),
            "check_postgres": ([*cp, "--action=wal_files", "-w", "100", "-c", "200"], su),
            "check_pgactivity": ([*pa, "-s", "wal_files", "-w", "100%", "-c", "150%"], su),
            "check_pgsql": (floor, {}),
        },
        # Reads the primary's log since the previous run: the cost of a
        # routine run, beside the floor (bench/log.sh measures throughput).
        "log": {
            "pgvigil": ([f"{b}/check_pg_log", *ours, "--log", os.path.join(a.base, "primary.log")], STATE),
            "check_pgsql": (floor, {}),
        },
        # A whole health check: one run over one connection, beside
        # check_pg_alive alone and the same seven plugins run one by one.
        "health": {
            "pgvigil": ([f"{b}/check_pg_health", *ours], STATE),
            "check_pg_alive": ([f"{b}/check_pg_alive", *ours], STATE),
            "separate plugins": (["/bin/sh", "-c", " ; ".join(
                shlex.join([f"{b}/check_pg_{c}", *ours]) for c in HEALTH_DEFAULTS)], STATE),
            "check_pgsql": (floor, {}),
        },
        "settings": {
            "pgvigil": ([f"{b}/check_pg_settings", *ours, "--ignore", "fsync", "--expect", "log_lock_waits=off"], {}),
            "check_postgres": ([*cp, "--action=settings_checksum", "--critical=0"], {}),
            "check_pgactivity": ([*pa, "-s", "configuration"], {}),
            "check_pgsql": (floor, {}),
        },
        "minor_version": {
            "pgvigil": ([f"{b}/check_pg_version", *ours, "--min-version", a.server_version, "--no-extensions"], STATE),
            "check_postgres": ([*cp, "--action=version", f"--warning={a.server_version}"], {}),
            "check_pgactivity": ([*pa, "-s", "minor_version", "-w", a.server_version], {}),
            "check_pgsql": (floor, {}),
        },
        "extensions_versions": {
            "pgvigil": ([f"{b}/check_pg_version", *ours, "--all-databases"], STATE),
            "check_pgactivity": ([*pa, "-s", "extensions_versions"], {}),
            "check_pgsql": (floor, {}),
        },
        # No peer audits roles.
        "roles": {
            "pgvigil": ([f"{b}/check_pg_roles", *ours], {}),
            "check_pgsql": (floor, {}),
        },
        # pgvigil reads the directory only; check_pgactivity also lists the
        # databases (and wants a dump of template0 and template1).
        "pg_dump_backup": {
            "pgvigil": ([f"{b}/check_pg_backup", "--dump-dir", os.path.join(a.base, "dumps"),
                         "--pattern", "*.sql"], {}),
            "check_pgactivity": ([PA, "-h", a.base, "-p", str(a.port), "-d", "postgres",
                                  "--status-file", os.path.join(a.base, "pgactivity-dumps.status"),
                                  "-s", "pg_dump_backup", "--path", os.path.join(a.base, "dumps", "*"),
                                  "--pattern", r"(\w+)-[\d-]+\.sql"], su),
            "check_pgsql": (floor, {}),
        },
        # Through PgBouncer's console; the floor still connects to PostgreSQL.
        "pgbouncer": {
            "pgvigil": ([f"{b}/check_pg_pgbouncer", "-H", os.path.join(a.base, "pgbouncer"),
                         "-p", str(a.bouncer_port), "-U", "monitor"], {}),
            "check_postgres": (["check_postgres", f"--host={os.path.join(a.base, 'pgbouncer')}",
                                f"--port={a.bouncer_port}", "--dbname=pgbouncer", "--dbuser=monitor",
                                "--action=pgb_pool_cl_waiting", "-w", "5", "-c", "20"], {}),
            "check_pgsql": (floor, {}),
        },
        # The event handler's dry run (no peer ships one): what an event
        # costs the server, beside the floor.
        "handle_connections": {
            "pgvigil": ([f"{b}/handle_pg_connections", *ours, "--idle-for", "10min"], {}),
            "check_pgsql": (floor, {}),
        },
        "query": {
            "pgvigil": ([f"{b}/check_pg_query", *ours, "--query", "SELECT 1", "-w", "10", "-c", "20"], {}),
            "check_postgres": ([*cp, "--action=custom_query", "--query=SELECT 1 AS result",
                                "--valtype=integer", "-w", "10", "-c", "20"], {}),
            "check_pgactivity": ([*pa, "-s", "custom_query", "--query", "SELECT 1", "--type", "integer",
                                  "-w", "10", "-c", "20"], {}),
            "check_pgsql": ([*floor, "-q", "SELECT 1", "-w", "10", "-c", "20"], {}),
        },
    }
    # A Patroni cluster, when compare.sh started one: ours judges leader,
    # replicas, lag, pause and schedules in one run; dalibo's check_patroni
    # (from PyPI) needs a run per question, cluster_has_replica the closest.
    if a.patroni_api:
        rows["patroni"] = {
            "pgvigil": ([f"{b}/check_pg_patroni", "--api", a.patroni_api, "-w", "16MB", "-c", "1:,1GB"], STATE),
            "check_patroni": ([a.check_patroni, "-e", a.patroni_api, "cluster_has_replica",
                               "-c", "1:", "--max-lag", "1GB"], {}),
            "check_pgsql": (floor, {}),
        }
    # Every other check `pgvigil --list` names, by the example the registry
    # gives it, beside the floor: a new check is measured with no line here.
    if b:
        measured = {argv[0].rsplit("/", 1)[-1] for row in rows.values() for argv, _ in [row["pgvigil"]]}
        listing = subprocess.run([f"{b}/pgvigil", "--list"], capture_output=True, text=True, check=True)
        for plugin in (line.split()[0] for line in listing.stdout.splitlines()):
            # Handlers act on a state change; they are not checks to time.
            if not plugin.startswith("check_pg_") or plugin in measured:
                continue
            example = subprocess.run([f"{b}/pgvigil", "--example", plugin], capture_output=True,
                                     text=True, check=True).stdout.split(None, 1)
            options = shlex.split(example[1]) if len(example) > 1 else []
            rows[plugin.removeprefix("check_pg_")] = {
                "pgvigil": ([f"{b}/{plugin}", *ours, *options], STATE),
                "check_pgsql": (floor, {}),
            }
    return rows


def run_once(argv, extra_env):
    """One run through pgvigil-bench-run, which forks the command from a
    small process so that its peak RSS is its own."""
    env = {**os.environ, "PGUSER": "monitor", **extra_env}
    out = subprocess.run([RUNNER, *argv], env=env, capture_output=True, text=True, check=True)
    wall_us, cpu_us, rss_kb, code = out.stdout.split()
    return {
        "wall_ms": int(wall_us) / 1000,
        "cpu_ms": int(cpu_us) / 1000,
        "rss_kb": int(rss_kb),
        "exit": int(code),
    }


def summary(values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "p25": q[0], "p75": q[2]}


def time_checks(a, cmds):
    results = {}
    for check, tools in cmds.items():
        names = list(tools)
        runs = {n: [] for n in names}
        for i in range(a.warmup + a.runs):
            # Alternate, and rotate who goes first, so drift hits all alike.
            order = names[i % len(names):] + names[:i % len(names)]
            for n in order:
                r = run_once(*tools[n])
                if i >= a.warmup:
                    runs[n].append(r)
        results[check] = {
            n: {
                "wall_ms": summary([r["wall_ms"] for r in rs]),
                "cpu_ms": summary([r["cpu_ms"] for r in rs]),
                "rss_kb": summary([r["rss_kb"] for r in rs]),
                "exit_codes": sorted({r["exit"] for r in rs}),
            }
            for n, rs in runs.items()
        }
    return results


def server_cost(a, cmds, rounds=3):
    """Connections and statements per run, read from the server logs."""
    logs = [os.path.join(a.base, f) for f in ("primary.log", "standby.log")]
    costs = {}
    for check, tools in cmds.items():
        costs[check] = {}
        for n, (argv, env) in tools.items():
            sizes = [os.path.getsize(p) for p in logs]
            for _ in range(rounds):
                run_once(argv, env)
            time.sleep(0.3)  # let the backends' last log lines land
            conns = stmts = 0
            server_ms = 0.0
            for path, size in zip(logs, sizes):
                with open(path, "rb") as f:
                    f.seek(size)
                    for line in f.read().decode(errors="replace").splitlines():
                        if "connection authorized" in line:
                            conns += 1
                        elif "LOG:  statement: " in line or "LOG:  execute " in line:
                            stmts += 1
                        elif "LOG:  duration: " in line:
                            server_ms += float(line.split("LOG:  duration: ")[1].split()[0])
            costs[check][n] = {"connections": conns / rounds, "statements": stmts / rounds,
                               "server_ms": server_ms / rounds}
    return costs


def idle_sessions(a, count):
    """Opens `count` sessions that log in and stay idle: a startup packet over
    the Unix socket (trust authentication), read up to ReadyForQuery."""
    path = os.path.join(a.base, f".s.PGSQL.{a.port}")
    sessions = []
    for _ in range(count):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        params = b"user\0postgres\0database\0postgres\0application_name\0bench-idle\0\0"
        s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        buf = b""
        while b"Z\0\0\0\x05" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise SystemExit("idle session refused: " + buf.decode(errors="replace"))
            buf += chunk
        sessions.append(s)
    return sessions


def table(results, costs):
    lines = [
        "| check | tool | wall median ms (p25–p75) | CPU ms | peak RSS MB | connections/run | statements/run | server ms/run | wall vs pgvigil |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for check, tools in results.items():
        ours = tools["pgvigil"]["wall_ms"]["median"]
        for n, r in tools.items():
            w = r["wall_ms"]
            c = costs[check][n]
            ratio = "1×" if n == "pgvigil" else f"{w['median'] / ours:.1f}×"
            lines.append(
                f"| {check} | {n} | {w['median']:.1f} ({w['p25']:.1f}–{w['p75']:.1f}) | "
                f"{r['cpu_ms']['median']:.1f} | {r['rss_kb']['median'] / 1024:.1f} | "
                f"{c['connections']:g} | {c['statements']:g} | {c.get('server_ms', 0):.1f} | {ratio} |"
            )
    return "\n".join(lines)


# Checks of maintenance state, held to their own targets: ten times faster
# than each peer, and the server's statement time bounded.
MAINTENANCE = {"wraparound", "last_vacuum", "last_analyze", "table_bloat", "btree_bloat",
               "invalid_indexes", "last_vacuum_app", "last_analyze_app", "table_bloat_app",
               "btree_bloat_app", "invalid_indexes_app", "replication_slots", "extensions_versions", "autovacuum",
               "relation_size", "relation_size_estimate"}


def order():
    """The checks in the order commands() gives them."""
    from types import SimpleNamespace
    dummy = SimpleNamespace(base="", bin="", port=0, standby_port=0, bouncer_port=0,
                            status_file="", patroni_api="api", check_patroni="", server_version="")
    return list(commands(dummy))


def merge(path, report, cmds):
    """The report at path with this run's checks put in (or replaced)."""
    try:
        with open(path) as f:
            merged = json.load(f)
    except FileNotFoundError:
        merged = {"scenarios": {}, "checks": {}}
    merged.setdefault("checks", {})
    merged["machine"] = report["machine"]
    for name, scenario in report["scenarios"].items():
        into = merged["scenarios"].setdefault(name, {"label": scenario["label"], "timing": {}, "server": {}})
        into["label"] = scenario["label"]
        for part in ("timing", "server"):
            into[part].update(scenario[part])
    for check in cmds:
        merged["checks"][check] = {
            "date": report["machine"]["date"], "runs": report["runs"],
            "server_version": report["server_version"],
            # The checks run with --all-databases visit postgres and app.
            "visited": 2 if "--all-databases" in cmds[check]["pgvigil"][0] else 1,
        }
    return merged


def render(merged):
    """The whole report as Markdown."""
    known = order()
    rank = {c: i for i, c in enumerate(known)}
    m = merged["machine"]
    lines = [f"Machine: {m['cores']} cores, {m['memory_gib']} GiB. Each check's last run "
             "(date, PostgreSQL release, runs per tool) is in the last table.", ""]
    for scenario in merged["scenarios"].values():
        def ordered(d):
            return dict(sorted(d.items(), key=lambda kv: rank.get(kv[0], len(rank))))
        results, costs = ordered(scenario["timing"]), ordered(scenario["server"])
        lines += [f"### {scenario['label']}", "", table(results, costs), "", "Targets:", "",
                  targets(results, costs, merged["checks"]), ""]
    lines += ["### When each check was measured", "", "| check | date | PostgreSQL | runs per tool |",
              "|---|---|---|---|"]
    for check, c in sorted(merged["checks"].items(), key=lambda kv: rank.get(kv[0], len(rank))):
        lines.append(f"| {check} | {c['date']} | {c['server_version']} | {c['runs']} |")
    return "\n".join(lines) + "\n"


def mark(ok):
    return "✓" if ok else "✗"


def targets(results, costs, checks):
    """The targets the project set itself, one line per check."""
    lines = ["| check | pgvigil / check_pgsql (≤ 1.2) | check_postgres / pgvigil (≥ 16) | CPU ms (≤ 5) | connections (= 1) |",
             "|---|---|---|---|---|"]
    for check, tools in results.items():
        if check in MAINTENANCE or check == "health":
            continue
        ours = tools["pgvigil"]["wall_ms"]["median"]
        floor = tools["check_pgsql"]["wall_ms"]["median"]
        cpu = tools["pgvigil"]["cpu_ms"]["median"]
        conns = costs[check]["pgvigil"]["connections"]
        # The dump directory, PgBouncer's console and Patroni's API cost
        # PostgreSQL nothing.
        wanted = 0 if check in ("pg_dump_backup", "pgbouncer", "patroni") else 1
        if "check_postgres" in tools:
            cp = tools["check_postgres"]["wall_ms"]["median"] / ours
            vs_cp = f"{cp:.1f} {mark(cp >= 16)}"
        else:
            vs_cp = "n/a (no such check)"
        lines.append(
            f"| {check} | {ours / floor:.2f} {mark(ours / floor <= 1.2)} | {vs_cp} | "
            f"{cpu:.1f} {mark(cpu <= 5)} | {conns:g} {mark(conns == wanted)} |"
        )
    lines += ["", "| maintenance check | check_postgres / pgvigil (≥ 10) | check_pgactivity / pgvigil (≥ 10) | "
              "server ms (< 250, bloat < 1000) | CPU ms | connections (= 1 per database) |",
              "|---|---|---|---|---|---|"]
    for check, tools in results.items():
        if check not in MAINTENANCE:
            continue
        ours = tools["pgvigil"]["wall_ms"]["median"]
        ratios = []
        for peer in ("check_postgres", "check_pgactivity"):
            if peer in tools:
                r = tools[peer]["wall_ms"]["median"] / ours
                ratios.append(f"{r:.1f} {mark(r >= 10)}")
            else:
                ratios.append("n/a (no such check)")
        server = costs[check]["pgvigil"].get("server_ms", 0)
        limit = 1000 if "bloat" in check else 250
        conns = costs[check]["pgvigil"]["connections"]
        cpu = tools["pgvigil"]["cpu_ms"]["median"]
        visited = checks[check]["visited"]
        lines.append(
            f"| {check} | {ratios[0]} | {ratios[1]} | {server:.1f} {mark(server < limit)} | {cpu:.1f} | "
            f"{conns:g} for {visited} {mark(conns == visited)} |"
        )
    if "health" in results:
        tools = results["health"]
        ours = tools["pgvigil"]["wall_ms"]["median"]
        alive = tools["check_pg_alive"]["wall_ms"]["median"]
        separate = tools["separate plugins"]["wall_ms"]["median"]
        cpu = tools["pgvigil"]["cpu_ms"]["median"]
        separate_cpu = tools["separate plugins"]["cpu_ms"]["median"]
        conns = costs["health"]["pgvigil"]["connections"]
        lines += ["", "| combined check | check_pg_health / check_pg_alive (≤ 2) | separate plugins / check_pg_health, wall (≥ 3) | "
                  "separate / health, CPU | CPU ms | connections (= 1) |",
                  "|---|---|---|---|---|---|",
                  f"| health ({len(HEALTH_DEFAULTS)} checks) | {ours / alive:.2f} {mark(ours / alive <= 2)} | "
                  f"{separate / ours:.1f} {mark(separate / ours >= 3)} | {separate_cpu / max(cpu, 0.01):.1f} | "
                  f"{cpu:.1f} | {conns:g} {mark(conns == 1)} |"]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    for name in ("base", "bin", "status-file", "json", "logging-on", "logging-off"):
        p.add_argument("--" + name, required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--standby-port", type=int, required=True)
    p.add_argument("--bouncer-port", type=int, required=True)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--tables", type=int, default=10000)
    p.add_argument("--idle", type=int, default=500)
    p.add_argument("--make-tables", required=True, help="command that creates the tables")
    p.add_argument("--checks", default="", help="comma-separated checks to run (default: all)")
    p.add_argument("--server-version", required=True, help="the server's release, e.g. 15.18")
    p.add_argument("--patroni-api", default="", help="a Patroni node's REST API, for the patroni row")
    p.add_argument("--check-patroni", default="", help="dalibo's check_patroni, for the patroni row")
    p.add_argument("--markdown", required=True, help="the Markdown report, rewritten whole")
    a = p.parse_args()
    global RUNNER
    RUNNER = os.path.join(a.bin, "pgvigil-bench-run")
    cmds = commands(a)
    if a.checks:
        cmds = {k: v for k, v in cmds.items() if k in a.checks.split(",")}
    report = {"machine": machine(), "runs": a.runs, "server_version": a.server_version, "scenarios": {}}
    idle = []
    for scenario in ("empty", "scale"):
        if scenario == "scale":
            subprocess.run(a.make_tables, shell=True, check=True)
            idle = idle_sessions(a, a.idle)
        label = ("empty cluster" if scenario == "empty"
                 else f"{a.tables} tables, {a.idle} idle sessions")
        results = time_checks(a, cmds)
        subprocess.run(a.logging_on, shell=True, check=True)
        costs = server_cost(a, cmds)
        subprocess.run(a.logging_off, shell=True, check=True)
        report["scenarios"][scenario] = {"label": label, "timing": results, "server": costs}
        print(f"\n### {label}\n\n{table(results, costs)}")
    for s in idle:
        s.close()
    merged = merge(a.json, report, cmds)
    with open(a.json, "w") as f:
        json.dump(merged, f, indent=1)
    with open(a.markdown, "w") as f:
        f.write(render(merged))
    print(f"\nThe whole report, targets included: {a.markdown} ({a.json})")


def machine():
    mem = next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1]
    return {"cores": os.cpu_count(), "memory_gib": round(int(mem) / 1048576),
            "kernel": os.uname().release, "date": time.strftime("%Y-%m-%d %H:%M")}


if __name__ == "__main__":
    main()
