# Logging settings end to end: log_connections, log_disconnections, log_pooler_errors, the
# stats_period summary line, and one-JSON-object-per-line logs (log_json).
import json
import re

import psycopg
import pytest

from sluice_it.util import wait_until

STATS_LINE = re.compile(r"stats: (\d+) xacts/s, (\d+) queries/s, .*in (\d+) B/s, out (\d+) B/s")


def _one_session(pooler) -> None:
    with pooler.connect() as conn:
        conn.execute("select 1")


def test_stats_period_summary_line(make_pooler):
    pooler = make_pooler(pool_mode="transaction", stats_period=1)
    with pooler.connect() as conn:

        def busy_line():
            for _ in range(20):
                conn.execute("select 1")
            return [m for m in STATS_LINE.finditer(pooler.log_text()) if int(m.group(1)) > 0]

        found = wait_until(busy_line, 10, "a stats line with transactions in it")
    assert int(found[0].group(2)) >= int(found[0].group(1)) > 0


def test_connections_and_disconnections_are_logged_by_default(make_pooler):
    pooler = make_pooler(pool_mode="transaction")
    _one_session(pooler)
    text = pooler.log_text()
    assert "login attempt: db=appdb user=app" in text
    assert "new connection to server" in text
    wait_until(lambda: "closing because: client close request" in pooler.log_text(), 5,
               "the disconnection line")


def test_log_connections_and_disconnections_off(make_pooler):
    pooler = make_pooler(pool_mode="transaction", log_connections=0, log_disconnections=0)
    _one_session(pooler)
    pooler.admin("RECONNECT")  # closes the idle server: no line for it either
    _one_session(pooler)
    text = pooler.log_text()
    for needle in ("login attempt", "new connection to server", "closing because"):
        assert needle not in text, needle


def test_log_pooler_errors(make_pooler):
    pooler = make_pooler(log_pooler_errors=1)
    with pytest.raises(psycopg.OperationalError):
        pooler.connect(dbname="nosuchdb").close()
    wait_until(lambda: "pooler error: no such database: nosuchdb" in pooler.log_text(), 5,
               "the pooler error line")
    quiet = make_pooler(log_pooler_errors=0)
    with pytest.raises(psycopg.OperationalError):
        quiet.connect(dbname="nosuchdb").close()
    assert "pooler error" not in quiet.log_text()


@pytest.mark.sluice_only("log_json is sluice's own setting")
def test_log_json_writes_one_object_per_line(make_pooler):
    pooler = make_pooler(pool_mode="transaction", log_json=1, stats_period=1)
    _one_session(pooler)
    weird = 'we"ird\\db'
    with pytest.raises(psycopg.OperationalError):
        pooler.connect(dbname=weird).close()
    wait_until(lambda: "stats: " in pooler.log_text(), 5, "a stats line")
    with open(pooler.logfile) as f:
        lines = f.read().splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for r in records:
        assert set(r) >= {"ts", "pid", "level", "msg"} and r["pid"] == pooler.pid
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z", r["ts"])
    messages = [r["msg"] for r in records]
    assert any("login attempt: db=appdb user=app" in m for m in messages)
    assert any(f"db={weird} " in m for m in messages), "quotes and backslashes survive"
    assert any(m.startswith("stats: ") for m in messages)
