# /metrics, /healthz and /readyz over HTTP: the exposition parsed by prometheus_client's parser
# (python3-prometheus-client) plus strict checks of our own, figures checked against SHOW POOLS
# and SHOW STATS_TOTALS, readiness following databases, and the HTTP server's edges.
import re
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sluice_it.console import Background, admin_conn, http_get, rows_by, run
from sluice_it.util import free_port, wait_until

pytestmark = pytest.mark.sluice_only("metrics over HTTP are sluice's own")

POOL_GAUGES = {("cl_active", "clients", "active"), ("cl_waiting", "clients", "waiting"),
               ("sv_active", "servers", "active"), ("sv_idle", "servers", "idle"),
               ("sv_used", "servers", "used"), ("sv_tested", "servers", "tested"),
               ("sv_login", "servers", "login")}
SAMPLE_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')


def _metrics_pooler(make_pooler, **settings):
    port = free_port()
    pooler = make_pooler(metrics_listen_addr="127.0.0.1", metrics_listen_port=port, **settings)
    return pooler, port


def _strict_check(text: str) -> None:
    """What the parser forgives: each family declared once with HELP and TYPE before its samples,
    no duplicate series, histogram buckets cumulative and ending in +Inf == _count."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    helped: set[str] = set()
    seen: set[str] = set()
    buckets: dict[tuple, list[tuple[float, float]]] = {}
    counts: dict[tuple, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split()[2]
            assert name not in helped, f"HELP twice for {name}"
            helped.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name not in declared, f"TYPE twice for {name}"
            assert kind in ("counter", "gauge", "histogram")
            assert name in helped, f"TYPE before HELP for {name}"
            declared[name] = kind
            continue
        m = SAMPLE_LINE.match(line)
        assert m, f"bad sample line {line!r}"
        name, labels, value = m.group(1), m.group(3) or "", float(m.group(4))
        assert line not in seen and f"{name}{{{labels}}}" not in seen, f"duplicate series {line!r}"
        seen.add(f"{name}{{{labels}}}")
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in declared else name
        assert family in declared, f"sample {name} of an undeclared family"
        if declared[family] == "counter":
            assert name.endswith("_total") and value >= 0
        if declared[family] == "histogram":
            pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels))
            le = pairs.pop("le", None)
            key = (family, tuple(sorted(pairs.items())))
            if name.endswith("_bucket"):
                buckets.setdefault(key, []).append((float(le), value))
            elif name.endswith("_count"):
                counts[key] = value
    for key, series in buckets.items():
        bounds = [b for b, _ in series]
        values = [v for _, v in series]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf"), key
        assert values == sorted(values), f"buckets not cumulative: {key}"
        assert values[-1] == counts[key], f"+Inf bucket != _count: {key}"


def _scrape(port: int) -> dict:
    status, headers, body = http_get("127.0.0.1", port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    _strict_check(body)
    return {f.name: f for f in text_string_to_metric_families(body)}


def _value(fams: dict, family: str, sample: str, **labels) -> float:
    for s in fams[family].samples:
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise KeyError((family, sample, labels))


def test_metrics_agree_with_show_pools_and_stats(make_pooler):
    pooler, port = _metrics_pooler(make_pooler, pool_mode="transaction", default_pool_size=2,
                                   query_wait_timeout=30)
    with admin_conn(pooler) as admin:
        with pooler.connect() as conn:
            for _ in range(10):
                conn.execute("select 1")
        holders = [pooler.connect() for _ in range(2)]
        try:
            for h in holders:
                h.execute("begin")
                h.execute("select 1")
            waiter = Background(lambda: _select_in_new_client(pooler))
            wait_until(lambda: rows_by(run(admin, "SHOW POOLS")[1], database="appdb")[0]["cl_waiting"] == 1,
                       10, "a client to wait")
            # Nothing moves now: two transactions open, one client queued.
            pools = rows_by(run(admin, "SHOW POOLS")[1], database="appdb", user="app")[0]
            fams = _scrape(port)
            for col, family, state in POOL_GAUGES:
                got = _value(fams, f"sluice_pool_{family}", f"sluice_pool_{family}",
                             database="appdb", user="app", state=state)
                assert got == pools[col], (col, got, pools[col])
            assert _value(fams, "sluice_pool_clients", "sluice_pool_clients", database="appdb",
                          state="waiting") == 1
            assert _value(fams, "sluice_pool_maxwait_seconds", "sluice_pool_maxwait_seconds",
                          database="appdb") > 0
            assert _value(fams, "sluice_up", "sluice_up") == 1
        finally:
            for h in holders:
                h.execute("commit")
                h.close()
        assert waiter.result(10) == 42
        totals = rows_by(run(admin, "SHOW STATS_TOTALS")[1], database="appdb")[0]
        fams = _scrape(port)
        lab = {"database": "appdb", "user": "app"}
        assert _value(fams, "sluice_pool_transactions", "sluice_pool_transactions_total", **lab) == totals["xact_count"]
        assert _value(fams, "sluice_pool_queries", "sluice_pool_queries_total", **lab) == totals["query_count"]
        assert _value(fams, "sluice_pool_received_bytes", "sluice_pool_received_bytes_total", **lab) == totals["bytes_received"]
        assert _value(fams, "sluice_pool_sent_bytes", "sluice_pool_sent_bytes_total", **lab) == totals["bytes_sent"]
        assignments = _value(fams, "sluice_pool_server_assignments", "sluice_pool_server_assignments_total", **lab)
        assert assignments == totals["server_assignment_count"]
        # One observation per transaction, per request, per assignment.
        assert _value(fams, "sluice_pool_transaction_seconds", "sluice_pool_transaction_seconds_count", **lab) == totals["xact_count"]
        assert _value(fams, "sluice_pool_query_seconds", "sluice_pool_query_seconds_count", **lab) == totals["query_count"]
        assert _value(fams, "sluice_pool_wait_seconds", "sluice_pool_wait_seconds_count", **lab) == assignments
        wait_sum = _value(fams, "sluice_pool_wait_seconds", "sluice_pool_wait_seconds_sum", **lab)
        assert abs(wait_sum - float(totals["wait_time"]) / 1e6) < 1e-6


def _select_in_new_client(pooler, sql="select 42"):
    with pooler.connect() as conn:
        return conn.execute(sql).fetchone()[0]


def test_histogram_puts_a_slow_query_in_its_bucket(make_pooler):
    pooler, port = _metrics_pooler(make_pooler, pool_mode="transaction")
    lab = {"database": "appdb", "user": "app"}

    def below(le: str) -> float:
        return _value(_scrape(port), "sluice_pool_query_seconds", "sluice_pool_query_seconds_bucket", le=le, **lab)

    _select_in_new_client(pooler, "select 1")
    before_fast, before_slow = below("0.25"), below("0.5")
    _select_in_new_client(pooler, "select pg_sleep(0.3)::text")
    assert below("0.25") == before_fast
    assert below("0.5") == before_slow + 1


def test_healthz_and_readyz_follow_databases(make_pooler):
    pooler, port = _metrics_pooler(make_pooler)
    status, _, body = http_get("127.0.0.1", port, "/healthz")
    assert status == 200 and "worker 0: ok" in body
    status, _, body = http_get("127.0.0.1", port, "/readyz")
    assert status == 200 and "appdb: ok" in body, body
    # A database whose server does not answer makes the pooler not ready...
    pooler.reload(databases={**pooler.databases, "ghost": f"host=127.0.0.1 port={free_port()} dbname=x"})
    wait_until(lambda: http_get("127.0.0.1", port, "/readyz")[0] == 503, 10, "/readyz to report ghost")
    assert "ghost: unreachable" in http_get("127.0.0.1", port, "/readyz")[2]
    # ...until an operator disables it.
    pooler.admin("DISABLE ghost")
    status, _, body = http_get("127.0.0.1", port, "/readyz")
    assert status == 200 and "ghost: disabled" in body, body
    pooler.admin("PAUSE")
    assert http_get("127.0.0.1", port, "/readyz")[0] == 503
    pooler.admin("RESUME")
    assert http_get("127.0.0.1", port, "/readyz")[0] == 200
    assert http_get("127.0.0.1", port, "/nowhere")[0] == 404


def _exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Sends `data` and reads until the server closes or stays quiet for 0.3 s."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        s.settimeout(0.3)
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                return out + b"<closed>"
            out += chunk
        return out


def test_http_server_edges(make_pooler):
    _, port = _metrics_pooler(make_pooler)
    two = _exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert two.count(b"HTTP/1.1 200 OK") == 2 and not two.endswith(b"<closed>")
    post = _exchange(port, b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert post.startswith(b"HTTP/1.1 405") and b"Allow: GET, HEAD" in post and post.endswith(b"<closed>")
    assert _exchange(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert _exchange(port, b"GET / HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 505")
    body = _exchange(port, b"GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
    assert body.startswith(b"HTTP/1.1 413")
    big = _exchange(port, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 431")
    old = _exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert old.startswith(b"HTTP/1.1 200") and b"Connection: close" in old and old.endswith(b"<closed>")
    head = _exchange(port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    assert length > 0 and head.endswith(b"\r\n\r\n")
    # Still serving after all that.
    assert http_get("127.0.0.1", port, "/healthz")[0] == 200
