#!/usr/bin/python3
"""Live-socket fuzzer: mutated real client byte streams against a running (sanitizer) sluice.

    tests/fuzz/live/live_fuzz.py --seconds 60                      # what CI runs
    tests/fuzz/live/live_fuzz.py --seconds 1800 --seed long1 --keep-going
    tests/fuzz/live/live_fuzz.py --replay OUT/failure-1/case.json  # one saved case again

Starts a PostgreSQL 15 and sluice (build-asan/sluice by default; transaction pooling, a small
pool, workers=2) with the integration harness, records real clients through a recording proxy
(tests/fuzz/live/record.py), then sends mutated copies of their streams (mutate.py) in batches,
several at once. After every batch: sluice is running, a new client is answered within 1 s, no
server backend stays idle in transaction, and the pooler printed no sanitizer report. A failing
batch is saved (every case: its bytes, seed and mutations) and replayed case by case on a fresh
pooler to find the case that fails alone. Exit status 1 if anything failed.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from sluice_it.pooler import Pooler, PoolerBinary  # noqa: E402
from sluice_it.postgres import PgCluster  # noqa: E402
from sluice_it.util import default_child_user, wait_until  # noqa: E402
from sluice_it.wire import WireConn  # noqa: E402

from cases import Case, load_corpus, save_corpus  # noqa: E402
from mutate import make_case  # noqa: E402
from record import record_all  # noqa: E402
from replay import replay  # noqa: E402


def log(msg: str) -> None:
    print(f"[live-fuzz {time.strftime('%H:%M:%S')}] {msg}", flush=True)


HBA_RULES = """\
local all all                   trust
host  all md5user   127.0.0.1/32 md5
host  all scramuser 127.0.0.1/32 scram-sha-256
host  all all       127.0.0.1/32 trust
"""


class Target:
    """The Postgres cluster and the pooler under test (restartable)."""

    def __init__(self, args, root: str):
        self.args = args
        self.root = root
        self.pg = PgCluster(root, default_child_user("PG_OS_USER"))
        self.binary = _binary(args.binary, root)
        self.pooler: Pooler | None = None
        self.generation = 0

    def start_pg(self) -> None:
        self.pg.init()
        self.pg.start()
        self.pg.setup_objects()
        with self.pg.connect("appdb") as c:
            c.execute("create table fuzz_t (a int, b text)")
            c.execute("alter table fuzz_t owner to app")
        # A mutated query must not run for long (a flipped digit in generate_series, ...).
        self.pg.sql("alter role app set statement_timeout = '3s'")

    def start_pooler(self) -> Pooler:
        self.generation += 1
        a = self.args
        settings = dict(pool_mode="transaction", default_pool_size=a.pool_size, workers=a.workers,
                        max_prepared_statements=a.prepared, query_wait_timeout=20)
        p = Pooler(self.binary, self.pg, os.path.join(self.root, f"pooler-{self.generation}"),
                   settings, None, None, None)
        # Password exchanges to mutate: md5user logs in with md5 and scramuser with SCRAM (their
        # passwords are in the auth file; the server side asks for the same), everyone else is
        # trusted as before.
        hba = os.path.join(p.dir, "hba.conf")
        p._write(hba, HBA_RULES)
        p.settings.update(auth_type="hba", auth_hba_file=hba)
        p.start()
        self.pooler = p
        return p

    def stop_pooler(self) -> str | None:
        if self.pooler is None:
            return None
        complaint = self.pooler.stop()
        self.pg.wait_no_pooled_backends()
        return complaint

    def stop(self) -> None:
        try:
            self.stop_pooler()
        finally:
            self.pg.stop()


def _binary(path: str, root: str) -> PoolerBinary:
    user = default_child_user("POOLER_OS_USER")
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise SystemExit(f"no pooler binary at {path}: build it (see tests/fuzz/live/README.md)")
    try:
        subprocess.run([path, "--version"], capture_output=True, timeout=20, cwd="/",
                       **user.popen_kwargs(), check=True)
    except PermissionError:  # the pooler user cannot reach it: run a copy
        bindir = user.makedirs(os.path.join(root, "bin"), 0o755)
        copy = os.path.join(bindir, os.path.basename(path))
        shutil.copy2(path, copy)
        os.chmod(copy, 0o755)
        path = copy
    return PoolerBinary(path, user, False, "sluice")


# -- checks after a batch -------------------------------------------------------------------

def _answer_time(pooler: Pooler) -> float:
    t0 = time.monotonic()
    with WireConn(pooler.host, pooler.port, timeout=10) as w:
        w.login("app", "appdb")
        assert w.query("select 'health'") == [["health"]]
    return time.monotonic() - t0


def health(target: Target, limit: float) -> list[str]:
    """Problems after a batch: [] when all is well."""
    p, pg = target.pooler, target.pg
    problems = []
    if not p.running():
        problems.append(f"pooler exited (status {p.proc.returncode})")
    else:
        # Four clients: with workers=2 both workers' listeners are very likely reached.
        try:
            times = [_answer_time(p) for _ in range(4)]
            if max(times) > limit:
                # One slow answer on a loaded machine is confirmed before it counts.
                again = [_answer_time(p) for _ in range(4)]
                if max(again) > limit or max(times) > 5 * limit:
                    problems.append(f"slow answers: {[round(t, 2) for t in times]} then "
                                    f"{[round(t, 2) for t in again]} (limit {limit}s)")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"a new client got no answer: {exc!r}")
        try:
            wait_until(lambda: pg.server_conns(state="idle in transaction") == 0
                       and pg.server_conns(state="idle in transaction (aborted)") == 0,
                       5, "no backend idle in transaction")
        except TimeoutError:
            rows = pg.sql("select pid, usename, datname, state, now() - state_change, left(query, 80)"
                          " from pg_stat_activity where state like 'idle in transaction%'")
            problems.append(f"backends left idle in transaction: {rows}")
    report = p.sanitizer_report()
    if report:
        problems.append("sanitizer report:\n" + report)
    return problems


# -- running cases --------------------------------------------------------------------------

class Stats:
    def __init__(self):
        self.cases = 0
        self.batches = 0
        self.sent = 0
        self.timeouts = 0
        self.codes = collections.Counter()
        self.ops = collections.Counter()
        self.failures: list[dict] = []
        self.slow_checks = 0


def run_batch(target: Target, cases: list[Case], parallel: int, stats: Stats) -> None:
    p = target.pooler
    with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
        for case, out in zip(cases, ex.map(lambda c: replay(c, p.host, p.port), cases)):
            stats.cases += 1
            stats.sent += out.sent
            stats.timeouts += out.timed_out
            stats.codes.update(out.error_codes[:1] or ["-"])
            stats.ops.update(op.split(" ")[0] for op in case.ops)


def snapshot(target: Target) -> str:
    """The console's view and the server's, for the report."""
    out = []
    for cmd in ("SHOW POOLS", "SHOW SERVERS", "SHOW CLIENTS"):
        try:
            rows = target.pooler.admin(cmd) if target.pooler.running() else []
            out.append(f"--- {cmd}\n" + "\n".join(str(r) for r in rows))
        except Exception as exc:  # noqa: BLE001
            out.append(f"--- {cmd}: {exc!r}")
    try:
        rows = target.pg.sql("select pid, usename, datname, client_port, state, backend_xid,"
                             " now() - state_change, left(query, 100) from pg_stat_activity"
                             " where backend_type = 'client backend' and pid <> pg_backend_pid()")
        out.append("--- pg_stat_activity\n" + "\n".join(str(r) for r in rows))
    except Exception as exc:  # noqa: BLE001
        out.append(f"--- pg_stat_activity: {exc!r}")
    return "\n".join(out) + "\n"


def save_failure(out_dir: str, n: int, cases: list[Case], problems: list[str], target: Target) -> str:
    d = os.path.join(out_dir, f"failure-{n}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "batch.json"), "w") as f:
        json.dump([c.to_json() for c in cases], f)
    with open(os.path.join(d, "report.txt"), "w") as f:
        f.write("\n\n".join(problems) + "\n\n" + snapshot(target) + "\n--- pooler log (last 300 lines)\n")
        f.write("\n".join(target.pooler.log_text().splitlines()[-300:]) + "\n")
    return d


def isolate(target: Target, cases: list[Case], limit: float, fail_dir: str, budget: float) -> str:
    """Replay the failing batch's cases one at a time on fresh poolers; save the first that fails."""
    deadline = time.monotonic() + budget
    target.stop_pooler()
    target.start_pooler()
    for i, case in enumerate(cases):
        if time.monotonic() > deadline:
            return f"not isolated within {budget:.0f}s ({i} of {len(cases)} cases replayed alone)"
        replay(case, target.pooler.host, target.pooler.port)
        problems = health(target, limit)
        if problems:
            with open(os.path.join(fail_dir, "case.json"), "w") as f:
                json.dump(case.to_json(), f)
            with open(os.path.join(fail_dir, "case-report.txt"), "w") as f:
                f.write("\n\n".join(problems) + "\n")
            target.stop_pooler()
            target.start_pooler()
            return f"case {case.seed} ({case.name}: {'; '.join(case.ops)}) fails alone: {problems[0][:300]}"
    return "no case fails alone (needs the batch's concurrency): replay batch.json"


def signature(problems: list[str]) -> str:
    for pr in problems:
        if pr.startswith("sanitizer report"):
            frames = [ln.split(" in ", 1)[-1].split(" /")[0] for ln in pr.splitlines()
                      if ln.strip().startswith("#")][:3]
            first = next((ln for ln in pr.splitlines() if "ERROR:" in ln or "runtime error" in ln), "")
            return (first.split("ERROR: ")[-1].split(" on ")[0][:80] + " | " + " < ".join(frames))
    return problems[0].split(":")[0] if problems else ""


def fuzz(args, target: Target, out_dir: str) -> int:
    if args.corpus:
        corpus = load_corpus(args.corpus)
        log(f"corpus: {len(corpus)} recordings from {args.corpus}")
    else:
        t0 = time.monotonic()
        corpus = record_all((target.pooler.host, target.pooler.port), log)
        log(f"recorded {len(corpus)} scenarios ({sum(len(r.conns) for r in corpus)} connections) in "
            f"{time.monotonic() - t0:.1f}s: {', '.join(r.name for r in corpus)}")
    save_corpus(os.path.join(out_dir, "corpus.json"), corpus)
    base = [r.to_case() for r in corpus]
    pre = health(target, args.answer_limit)
    if pre:
        log("unhealthy before fuzzing: " + "; ".join(pre))
        return 1

    stats = Stats()
    seen: dict[str, int] = {}
    start = time.monotonic()
    last_print = start
    index = args.first_case
    while time.monotonic() - start < args.seconds and (not args.cases or stats.cases < args.cases):
        cases = [make_case(base, f"{args.seed}:{i}") for i in range(index, index + args.batch)]
        index += args.batch
        run_batch(target, cases, args.parallel, stats)
        stats.batches += 1
        problems = health(target, args.answer_limit)
        if problems:
            sig = signature(problems)
            fail_dir = save_failure(out_dir, len(stats.failures) + 1, cases, problems, target)
            log(f"FAILURE after batch {stats.batches} (cases {index - args.batch}..{index - 1}): "
                f"{problems[0][:2000]}")
            where = isolate(target, cases, args.answer_limit, fail_dir, args.isolate_seconds)
            log(f"  saved in {fail_dir}; {where}")
            stats.failures.append({"dir": fail_dir, "signature": sig, "isolated": where})
            seen[sig] = seen.get(sig, 0) + 1
            if not args.keep_going:
                break
            if target.pooler.running() and not target.pooler.sanitizer_report():
                continue
            target.stop_pooler()
            target.start_pooler()
        if time.monotonic() - last_print > 30:
            last_print = time.monotonic()
            log(f"{stats.cases} cases, {stats.batches} batches, {time.monotonic() - start:.0f}s, "
                f"{len(stats.failures)} failures")
    elapsed = time.monotonic() - start
    summary = {
        "cases": stats.cases, "batches": stats.batches, "seconds": round(elapsed, 1),
        "cases_per_second": round(stats.cases / max(elapsed, 0.001), 1),
        "bytes_sent": stats.sent, "cases_out_of_time": stats.timeouts,
        "first_answer": dict(stats.codes.most_common(12)),
        "mutations": dict(stats.ops.most_common()),
        "failures": stats.failures, "distinct_failures": seen,
        "seed": args.seed, "first_case": args.first_case, "binary": target.binary.path,
    }
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log(f"done: {stats.cases} cases in {stats.batches} batches, {elapsed:.0f}s "
        f"({summary['cases_per_second']}/s), {len(stats.failures)} failures; summary in {out_dir}/summary.json")
    return 1 if stats.failures else 0


def replay_files(args, target: Target) -> int:
    failed = 0
    for path in args.replay:
        with open(path) as f:
            obj = json.load(f)
        cases = [Case.from_json(o) for o in (obj if isinstance(obj, list) else [obj])]
        if args.pick is not None:
            cases = [cases[i] for i in args.pick]
        cases = cases * args.repeat
        p = target.pooler
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as ex:
            outs = list(ex.map(lambda c: replay(c, p.host, p.port), cases))
        problems = health(target, args.answer_limit)
        log(f"{path}: {len(cases)} cases, first answers {[o.error_codes[:1] for o in outs][:10]}; "
            + ("; ".join(pr[:3000] for pr in problems) if problems else "healthy"))
        if problems:
            failed += 1
            target.stop_pooler()
            target.start_pooler()
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", default=os.environ.get("SLUICE_BIN", os.path.join(REPO, "build-asan", "sluice")))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--cases", type=int, default=0, help="stop after this many cases (0: time only)")
    ap.add_argument("--seed", default="ci")
    ap.add_argument("--first-case", type=int, default=0)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--parallel", type=int, default=6)
    ap.add_argument("--pool-size", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--prepared", type=int, default=50, help="max_prepared_statements")
    ap.add_argument("--answer-limit", type=float, default=1.0)
    ap.add_argument("--isolate-seconds", type=float, default=180)
    ap.add_argument("--keep-going", action="store_true", help="go on after a failure (long runs)")
    ap.add_argument("--corpus", help="recorded streams to use instead of recording (corpus.json)")
    ap.add_argument("--replay", nargs="+", help="case.json / batch.json files to send again")
    ap.add_argument("--pick", type=int, nargs="+", help="with --replay: only these cases of a batch")
    ap.add_argument("--repeat", type=int, default=1, help="with --replay: send the cases this many times")
    ap.add_argument("--out", help="directory for the corpus, failures and summary")
    args = ap.parse_args()

    os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
    os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    out_dir = args.out or tempfile.mkdtemp(prefix="sluice-livefuzz-")
    os.makedirs(out_dir, exist_ok=True)
    root = tempfile.mkdtemp(prefix="sluice-livefuzz-run-")
    os.chmod(root, 0o755)
    target = Target(args, root)
    rc = 1
    try:
        target.start_pg()
        target.start_pooler()
        log(f"postgres :{target.pg.port}, pooler :{target.pooler.port} ({target.binary.path}), out {out_dir}")
        rc = replay_files(args, target) if args.replay else fuzz(args, target, out_dir)
    finally:
        complaint = target.stop_pooler()
        if complaint and rc == 0:
            log(f"at shutdown: {complaint[:3000]}")
            rc = 1
        target.pg.stop()
        if os.environ.get("LIVE_FUZZ_KEEP_TMP"):
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
