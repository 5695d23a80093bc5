#!/usr/bin/python3
"""PostgreSQL's regression suite direct and through a pooler, several modes in one run.

Started by tools/regress.sh, which fetches the suite and builds its C module; see there for the
usual commands. For each mode: a fresh PostgreSQL 15 cluster (so no mode inherits another's
leftovers), the pooler if the mode has one (every database reachable through a `*` entry, trust
auth), optional background clients on another database through the same pooler, then
pg_regress --use-existing against the pooler's (or the server's) port. The report gives passes
per mode and, for each failing test, the first changed lines of its diff.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

import psycopg  # noqa: E402

from sluice_it.pooler import Pooler, PoolerBinary  # noqa: E402
from sluice_it.postgres import PG_BINDIR, PgCluster  # noqa: E402
from sluice_it.util import OsUser, default_child_user, wait_until  # noqa: E402

PG_REGRESS = os.environ.get("PG_REGRESS", "/usr/lib/postgresql/15/lib/pgxs/src/test/regress/pg_regress")
BASELINE = os.path.join(ROOT, "tools", "regress-baseline.txt")


class Mode:
    def __init__(self, name: str, pool_mode: str | None, pool_size: int = 0, background: int = 0):
        self.name = name
        self.pool_mode = pool_mode  # None: straight to PostgreSQL
        self.pool_size = pool_size
        self.background = background

    def describe(self) -> str:
        if self.pool_mode is None:
            return "direct to PostgreSQL"
        bg = f", {self.background} background clients" if self.background else ""
        return f"{self.pool_mode} pooling, pool_size {self.pool_size}{bg}"


MODES = {
    "direct": Mode("direct", None),
    "session": Mode("session", "session", 20),
    "tx20": Mode("tx20", "transaction", 20),
    "tx4bg": Mode("tx4bg", "transaction", 4, background=3),
}

# One line per test in pg_regress's output ("test x ... ok 12 ms", "     x ... FAILED 3 ms",
# "     random ... failed (ignored)").
RESULT_RE = re.compile(r"^(?:test |     )?(\S+)\s+\.\.\. (ok|FAILED|failed \(ignored\))(?=\s|$)")


# -- the suite -----------------------------------------------------------------------------------
def schedule_tests(path: str) -> tuple[list[str], set[str]]:
    """Tests of a schedule in order, and the ones it marks `ignore:`."""
    tests, ignored = [], set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("test:"):
                tests += line[5:].split()
            elif line.startswith("ignore:"):
                ignored.update(line[7:].split())
    return tests, ignored


def write_schedule(path: str, tests: list[str], full: str) -> None:
    """A schedule of chosen tests: test_setup first (every test needs it), each in its original
    parallel group."""
    chosen = set(tests) | {"test_setup"}
    lines = []
    with open(full) as f:
        for line in f:
            line = line.strip()
            if line.startswith("test:"):
                group = [t for t in line[5:].split() if t in chosen]
                if group:
                    lines.append("test: " + " ".join(group))
            elif line.startswith("ignore:"):
                lines.append(line)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def parse_results(stdout: str) -> dict[str, str]:
    results = {}
    for line in stdout.splitlines():
        m = RESULT_RE.match(line)
        if m:
            results[m.group(1)] = {"ok": "ok", "FAILED": "failed"}.get(m.group(2), "ignored")
    return results


def parse_diffs(path: str, first_lines: int) -> dict[str, list[str]]:
    """The first changed lines (+/-) of each test's diff in regression.diffs."""
    diffs: dict[str, list[str]] = {}
    current = None
    try:
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\n")
                m = re.match(r"^diff .* (\S+)/results/(\S+)\.out$", line)
                if m:
                    current = diffs.setdefault(m.group(2), [])
                    continue
                if current is None or line.startswith(("---", "+++", "@@")):
                    continue
                if line.startswith(("+", "-")) and len(current) < first_lines:
                    current.append(line[:160])
    except OSError:
        pass
    return diffs


# -- background clients --------------------------------------------------------------------------
class Background:
    """Clients looping short transactions on another database through the same pooler, each with
    its own application_name and a session setting, checking that they see their own state."""

    def __init__(self, host: str, port: int, count: int):
        self.host, self.port, self.count = host, port, count
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.transactions = [0] * count
        self.errors: list[str] = []

    def start(self) -> None:
        for i in range(self.count):
            t = threading.Thread(target=self._loop, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def _loop(self, i: int) -> None:
        name = f"bg-{i}"
        while not self.stop_event.is_set():
            try:
                with psycopg.connect(host=self.host, port=self.port, user="bg", dbname="bgdb",
                                     application_name=name, autocommit=True, connect_timeout=30,
                                     prepare_threshold=None) as conn:
                    conn.execute(f"set work_mem = '{1 + i}MB'")
                    while not self.stop_event.is_set():
                        with conn.transaction():
                            conn.execute("insert into bg_log(client) values (%s)", (name,))
                            got = conn.execute("select current_setting('application_name'),"
                                               " current_setting('work_mem')").fetchone()
                        if got != (name, f"{1 + i}MB"):
                            self.errors.append(f"{name} saw {got}")
                        self.transactions[i] += 1
            except Exception as exc:  # noqa: BLE001 - reported, then the client reconnects
                if not self.stop_event.is_set():
                    self.errors.append(f"{name}: {exc!r}"[:300])
                    self.stop_event.wait(0.5)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)


# -- one mode ------------------------------------------------------------------------------------
def prepare_cluster(pg: PgCluster) -> None:
    """Same for every mode: a role and database for the background clients."""
    with pg.connect() as conn:
        conn.execute("create role bg login")
        conn.execute("create database bgdb owner bg")
    with pg.connect("bgdb") as conn:
        conn.execute("create table bg_log(id bigserial primary key, client text, at timestamptz default now())")
        conn.execute("alter table bg_log owner to bg")


def pooler_binary(path: str, workdir: str) -> PoolerBinary:
    user = default_child_user("POOLER_OS_USER")

    def version(p):
        try:
            out = subprocess.run([p, "--version"], capture_output=True, text=True, timeout=10,
                                 cwd="/", **user.popen_kwargs())
        except PermissionError:
            return None
        return (out.stdout.splitlines() or [""])[0].strip()

    v = version(path)
    if v is None:  # the pooler's user cannot reach the binary (a checkout under /root): a copy
        bindir = user.makedirs(os.path.join(workdir, "bin"), 0o755)
        copy = os.path.join(bindir, os.path.basename(path))
        shutil.copy2(path, copy)
        os.chmod(copy, 0o755)
        path, v = copy, version(copy) or ""
    return PoolerBinary(path, user, v.startswith("PgBouncer"), v)


def run_mode(mode: Mode, args, schedule: str, binary: PoolerBinary | None, pg_user: OsUser) -> dict:
    mdir = pg_user.makedirs(os.path.join(args.workdir, mode.name), 0o755)
    outdir = pg_user.makedirs(os.path.join(mdir, "out"), 0o755)
    pg = PgCluster(mdir, pg_user)
    result = {"mode": mode.name, "describe": mode.describe(), "results": {}, "notes": [], "diffs": {},
              "diffs_file": os.path.join(outdir, "regression.diffs")}
    t0 = time.monotonic()
    pg.init()
    pg.start()
    try:
        _run_mode(mode, args, schedule, binary, pg_user, pg, mdir, outdir, result)
    except Exception as exc:  # noqa: BLE001 - one mode failing to run is a result, not the end
        result["notes"].append(f"could not run: {exc!r}"[:2000])
    finally:
        pg.stop()
    result["seconds"] = round(time.monotonic() - t0, 1)
    return result


def _run_mode(mode, args, schedule, binary, pg_user, pg, mdir, outdir, result) -> None:
    pooler = background = None
    try:
        prepare_cluster(pg)
        host, port = pg.host, pg.port
        if mode.pool_mode is not None:
            settings = {
                "pool_mode": mode.pool_mode,
                "default_pool_size": mode.pool_size,
                "workers": args.workers,
                "max_client_conn": 1000,
                "server_login_retry": 1,
                "log_connections": 0,
                "log_disconnections": 0,
                "auth_file": None,  # trust without an auth file: any role the tests create
            }
            auth = None
            if binary.is_pgbouncer:
                # PgBouncer's trust still needs the user in the auth file: look roles up instead.
                settings.update(auth_file=os.path.join(mdir, "pooler", "userlist.txt"), auth_user="postgres",
                                # pg_regress sends options=-c intervalstyle=...; PgBouncer 1.18 refuses it
                                ignore_startup_parameters="extra_float_digits,options")
                auth = {"postgres": "unused"}
            pooler = Pooler(binary, pg, os.path.join(mdir, "pooler"), settings,
                            {"*": f"host={pg.host} port={pg.port}"}, None, auth)
            pooler.start()
            host, port = pooler.host, pooler.port
            result["pooler"] = binary.version_line
        if mode.background:
            background = Background(host, port, mode.background)
            background.start()
            wait_until(lambda: all(background.transactions), 30, "background clients to commit")
        cmd = [args.pg_regress, f"--inputdir={args.srcdir}", f"--outputdir={outdir}",
               f"--bindir={args.client_bindir}", f"--dlpath={args.dlpath}", f"--schedule={schedule}",
               "--use-existing", f"--host={host}", f"--port={port}", "--user=postgres"]
        if args.max_connections:
            cmd.append(f"--max-connections={args.max_connections}")
        # pg_regress --use-existing neither drops nor creates the database: create it as pg_regress
        # would, through the same endpoint as the tests.
        create_database(host, port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["HOME"] = mdir
        log_path = os.path.join(mdir, "pg_regress.log")
        with open(log_path, "w") as log:
            pg_user.chown(log_path)
            proc = subprocess.Popen(cmd, cwd=outdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True, **pg_user.popen_kwargs())
            try:
                proc.wait(args.timeout)
            except subprocess.TimeoutExpired:
                result["notes"].append(f"pg_regress still running after {args.timeout}s: stopped")
                if pooler is not None:
                    result["hung_clients"] = hung_clients(pooler)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)  # pg_regress and its psql children
                    proc.wait(30)
        with open(log_path, errors="replace") as f:
            stdout = f.read()
        result["results"] = parse_results(stdout)
        result["diffs"] = parse_diffs(os.path.join(outdir, "regression.diffs"), args.diff_lines)
        result["diffs_file"] = os.path.join(outdir, "regression.diffs")
        if "could not" in stdout and not result["results"]:
            result["notes"].append(stdout[-2000:])
    finally:
        if background is not None:
            background.stop()
            result["background"] = {"transactions": sum(background.transactions),
                                    "errors": background.errors[:10], "error_count": len(background.errors)}
        if pooler is not None:
            complaint = pooler.stop()
            if complaint:
                result["notes"].append(complaint)
            result["pooler_log_errors"] = pooler_errors(pooler)


def create_database(host: str, port: int) -> None:
    """What pg_regress does without --use-existing (create_database in pg_regress.c)."""
    with psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True,
                         connect_timeout=30) as conn:
        conn.execute('create database "regression" template=template0')
        for setting, value in (("lc_messages", "C"), ("lc_monetary", "C"), ("lc_numeric", "C"),
                               ("lc_time", "C"), ("bytea_output", "hex"),
                               ("timezone_abbreviations", "Default")):
            conn.execute(f"alter database regression set {setting} to '{value}'")


def hung_clients(pooler: Pooler) -> list[str]:
    try:
        rows = pooler.admin("SHOW CLIENTS")
    except Exception as exc:  # noqa: BLE001
        return [f"SHOW CLIENTS failed: {exc!r}"]
    return [f"{r.get('database')}/{r.get('user')} {r.get('state')} app={r.get('application_name')}"
            for r in rows if r.get("database") != "pgbouncer"][:40]


def pooler_errors(pooler: Pooler) -> list[str]:
    lines = [ln for ln in pooler.log_text().splitlines()
             if re.search(r"\b(ERROR|FATAL|WARNING|PANIC|assert)", ln)]
    return lines[:20] + ([f"... {len(lines) - 20} more"] if len(lines) > 20 else [])


# -- report --------------------------------------------------------------------------------------
def report(runs: list[dict], tests: list[str], ignored: set[str], out) -> None:
    total = len(tests)
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("\n==== PostgreSQL regression suite per mode")
    for r in runs:
        res = r["results"]
        passed = sum(1 for t in tests if res.get(t) in ("ok", "ignored"))
        missing = [t for t in tests if t not in res]
        extra = beyond_direct(runs, tests, r) if r["mode"] != "direct" else None
        more = f" ({len(extra)} beyond direct)" if extra is not None else ""
        line = f"  {r['mode']:<8} {passed:>4}/{total}{more:<22} {r['seconds']:>6}s   {r['describe']}"
        if missing:
            line += f"; {len(missing)} not run"
        p(line)
    p("")
    for r in runs:
        res = r["results"]
        failed = [t for t in tests if res.get(t) == "failed"]
        missing = [t for t in tests if t not in res]
        if not failed and not missing and not r["notes"] and not r.get("background", {}).get("error_count"):
            continue
        p(f"---- {r['mode']}: {len(failed)} failed" + (f", {len(missing)} not run" if missing else ""))
        for note in r["notes"]:
            p(f"  note: {note}")
        if r.get("hung_clients"):
            p("  clients when stopped: " + "; ".join(r["hung_clients"]))
        bg = r.get("background")
        if bg:
            p(f"  background: {bg['transactions']} transactions, {bg['error_count']} errors "
              + "; ".join(bg["errors"][:3]))
        for t in failed:
            p(f"  {t}")
            for line in r["diffs"].get(t, [])[:8]:
                p(f"      {line}")
        if missing:
            p("  not run: " + " ".join(missing))
        if r.get("pooler_log_errors"):
            p("  pooler log: " + " | ".join(r["pooler_log_errors"][:5]))
        p(f"  diffs: {r['diffs_file']}")
    # Tests whose outcome differs between modes: the list to classify.
    modes = [r["mode"] for r in runs]
    diff_tests = [t for t in tests if len({r["results"].get(t, "missing") for r in runs}) > 1]
    if diff_tests and len(runs) > 1:
        p("\n---- tests whose outcome differs between modes")
        p("  " + f"{'test':<24}" + "".join(f"{m:>9}" for m in modes))
        for t in diff_tests:
            p("  " + f"{t:<24}" + "".join(f"{r['results'].get(t, '-'):>9}" for r in runs))


def read_baseline(path: str) -> dict[str, int]:
    base = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.split("#", 1)[0].split()
                if len(line) == 2:
                    base[line[0]] = int(line[1])
    except FileNotFoundError:
        pass
    return base


def beyond_direct(runs: list[dict], tests: list[str], run: dict) -> list[str] | None:
    """Tests that pass direct and not in `run` (None without a direct run)."""
    direct = next((r for r in runs if r["mode"] == "direct"), None)
    if direct is None or not direct["results"]:
        return None
    ok = ("ok", "ignored")
    return [t for t in tests if direct["results"].get(t) in ok and run["results"].get(t) not in ok]


def check_baseline(runs: list[dict], tests: list[str], base: dict[str, int], subset: bool) -> int:
    """1 if a pooled mode fails more tests that pass direct than the baseline allows. Counting
    against direct in the same run keeps the check independent of the suite's minor version."""
    rc = 0
    for r in runs:
        if r["mode"] == "direct":
            if len(r["results"]) < len(tests):
                print(f"regress: FAIL direct ran {len(r['results'])} of {len(tests)} tests", flush=True)
                rc = 1
            continue
        not_run = [t for t in tests if t not in r["results"]]
        if not_run or r["notes"]:
            # A hang (stopped at --timeout), a pooler that died or a mode that could not start
            # fails whatever the baseline says.
            print(f"regress: FAIL {r['mode']}: {len(not_run)} tests not run; "
                  + "; ".join(n[:200] for n in r["notes"]), flush=True)
            rc = 1
        extra = beyond_direct(runs, tests, r)
        if extra is None:
            print("regress: FAIL --ci needs the direct mode to compare with", flush=True)
            return 1
        allowed = base.get(r["mode"])
        if allowed is None:
            continue
        if len(extra) > allowed:
            print(f"regress: FAIL {r['mode']}: {len(extra)} tests fail that pass direct, baseline "
                  f"allows {allowed}: {' '.join(extra)}", flush=True)
            rc = 1
        elif len(extra) < allowed and not subset:
            print(f"regress: {r['mode']}: {len(extra)} beyond direct, better than the baseline "
                  f"({allowed}): lower it in {os.path.relpath(BASELINE, ROOT)}", flush=True)
    return rc


def _interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through every mode's cleanup


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGHUP, _interrupted)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--srcdir", required=True, help="src/test/regress of PostgreSQL 15")
    ap.add_argument("--dlpath", required=True, help="directory with regress.so, autoinc.so, refint.so")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sluice", required=True, help="pooler binary (sluice, or PgBouncer to compare)")
    ap.add_argument("--modes", default="direct,session,tx20,tx4bg",
                    help="comma-separated, from " + ", ".join(MODES))
    ap.add_argument("--tests", default="", help="run only these tests (space-separated), in their groups")
    ap.add_argument("--max-connections", type=int, default=0,
                    help="pg_regress --max-connections (1 = serial, as `make installcheck`)")
    ap.add_argument("--client-bindir", default=PG_BINDIR,
                    help="where pg_regress finds psql (of the suite's version)")
    ap.add_argument("--pg-regress", default=PG_REGRESS, help="the pg_regress binary")
    ap.add_argument("--workers", type=int, default=2, help="sluice workers")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds per mode before pg_regress is stopped (a full mode takes 1-3 minutes)")
    ap.add_argument("--diff-lines", type=int, default=8)
    ap.add_argument("--json", help="write the results here as JSON")
    ap.add_argument("--ci", action="store_true",
                    help="exit 1 if a pooled mode fails more of the tests that pass direct than "
                    f"{os.path.relpath(BASELINE, ROOT)} allows")
    ap.add_argument("--baseline", default=BASELINE)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    modes = [MODES[m] for m in args.modes.split(",") if m]
    full = os.path.join(args.srcdir, "parallel_schedule")
    schedule = full
    if args.tests:
        schedule = os.path.join(args.workdir, "schedule")
        write_schedule(schedule, args.tests.split(), full)
    tests, ignored = schedule_tests(schedule)
    pg_user = default_child_user("PG_OS_USER")
    binary = pooler_binary(os.path.abspath(args.sluice), args.workdir) if any(m.pool_mode for m in modes) else None

    runs = []
    for mode in modes:
        print(f"regress: {mode.name}: {mode.describe()} ...", flush=True)
        r = run_mode(mode, args, schedule, binary, pg_user)
        passed = sum(1 for t in tests if r["results"].get(t) in ("ok", "ignored"))
        print(f"regress: {mode.name}: {passed}/{len(tests)} in {r['seconds']}s", flush=True)
        runs.append(r)
    report(runs, tests, ignored, sys.stdout)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"tests": tests, "runs": runs}, f, indent=1)

    rc = 0
    if args.ci:
        rc = check_baseline(runs, tests, read_baseline(args.baseline), bool(args.tests))
    if args.keep or rc:
        print(f"regress: work directory kept: {args.workdir}")
    else:
        shutil.rmtree(args.workdir, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
