# Server host names: looked up off the worker threads (a slow name server stalls nobody), answers
# cached for dns_max_ttl, failures for dns_nxdomain_ttl, SHOW DNS_HOSTS. The name server is the
# test's own (sluice_it/dns_server.py), given to sluice with dns_nameserver.
import os
import signal
import threading
import time

import psycopg
import pytest

from sluice_it.dns_server import DnsServer
from sluice_it.pooler import wait_pid_gone
from sluice_it.util import tcp_accepts, wait_until

pytestmark = pytest.mark.sluice_only("PgBouncer has no dns_nameserver to point at a test server")

NAME = "pg.sluice.test"
GHOST = "nx.sluice.test"


@pytest.fixture
def dns():
    server = DnsServer().start()
    yield server
    server.stop()


def _pooler(make_pooler, dns, **settings):
    pooler = make_pooler(start=False, dns_nameserver=dns.address, **settings)
    pooler.databases["named"] = pooler.db_entry("appdb", host=NAME)
    pooler.databases["ghost"] = pooler.db_entry("appdb", host=GHOST)
    return pooler.start()


def _answered(dns, name) -> bool:
    with dns.lock:
        return any(n == name for _, n, _ in dns.answered)


@pytest.mark.parametrize("workers", [1, 2])
def test_slow_name_server_stalls_no_other_client(make_pooler, dns, workers):
    """A lookup that takes 3 s: every other client of the worker is answered meanwhile."""
    dns.add(NAME, ["127.0.0.1"], delay=3.0)
    pooler = _pooler(make_pooler, dns, pool_mode="transaction", workers=workers,
                     default_pool_size=2)
    busy = pooler.connect()
    busy.execute("select 1")
    # Background traffic on the same pool while the name is looked up.
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic():
        try:
            with pooler.connect() as c:
                while not stop.is_set():
                    c.execute("select pg_sleep(0.005)")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    bg = [threading.Thread(target=traffic) for _ in range(3)]
    for t in bg:
        t.start()

    slow_result: dict = {}

    def slow_client():
        t0 = time.monotonic()
        try:
            with pooler.connect(dbname="named") as c:
                slow_result["value"] = c.execute("select current_database()").fetchone()[0]
        except BaseException as exc:  # noqa: BLE001
            slow_result["error"] = exc
        slow_result["elapsed"] = time.monotonic() - t0

    slow = threading.Thread(target=slow_client)
    slow.start()
    try:
        wait_until(lambda: dns.count(NAME) >= 1, 10, "sluice to ask the test's name server")
        # While the answer is held back: queries on a linked connection and whole new logins.
        worst = 0.0
        samples = 0
        while not _answered(dns, NAME):
            t0 = time.monotonic()
            busy.execute("select 1")
            with pooler.connect() as fresh:
                fresh.execute("select 2")
            worst = max(worst, time.monotonic() - t0)
            samples += 1
        assert samples >= 3, (f"only {samples} round trips while the lookup was pending "
                              f"(the slowest took {worst:.2f}s)")
        assert worst < 1.0, f"a client waited {worst:.2f}s while a host name was being looked up"
        slow.join(20)
        assert "error" not in slow_result, slow_result.get("error")
        assert slow_result["value"] == "appdb"
        assert slow_result["elapsed"] >= 2.5, "the lookup was not the slow one"
    finally:
        stop.set()
        for t in bg:
            t.join(10)
        busy.close()
    assert not errors, errors


def test_answer_is_cached_for_dns_max_ttl(make_pooler, dns):
    """A second server connection within dns_max_ttl does not ask again; after it, it does.
    The record's own TTL (here 1 s) is not used: as PgBouncer, dns_max_ttl decides."""
    dns.add(NAME, ["127.0.0.1"], ttl=1)
    pooler = _pooler(make_pooler, dns, pool_mode="session", dns_max_ttl=4)
    first = pooler.connect(dbname="named")
    assert first.execute("select current_database()").fetchone()[0] == "appdb"
    looked_up = time.monotonic()
    assert dns.count(NAME) == 1
    rows = [r for r in pooler.admin("SHOW DNS_HOSTS") if r["hostname"] == NAME]
    assert len(rows) == 1 and rows[0]["addrs"] == "127.0.0.1" and 0 <= rows[0]["ttl"] <= 4, rows
    lists = {r["list"]: r["items"] for r in pooler.admin("SHOW LISTS")}
    assert lists["dns_names"] == 1 and lists["dns_queries"] == 0, lists

    second = pooler.connect(dbname="named")  # session mode: a second server connection
    assert second.execute("select 2").fetchone()[0] == 2
    assert time.monotonic() - looked_up < 4, "too slow to test the cache"
    assert dns.count(NAME) == 1, "looked up again within dns_max_ttl"

    wait_until(lambda: time.monotonic() - looked_up > 4.2, 10, "dns_max_ttl to pass")
    third = pooler.connect(dbname="named")
    assert third.execute("select 3").fetchone()[0] == 3
    assert dns.count(NAME) == 2, "not looked up again after dns_max_ttl"
    for c in (first, second, third):
        c.close()


def test_name_that_does_not_resolve_fails_waiting_clients_cleanly(make_pooler, dns):
    """NXDOMAIN: the connect fails like a refused one; the waiting client gets an error naming
    the cause at client_login_timeout; retries use the cached failure (dns_nxdomain_ttl)."""
    pooler = _pooler(make_pooler, dns, pool_mode="transaction", client_login_timeout=3,
                     server_login_retry=0.5, dns_nxdomain_ttl=60)
    mark = pooler.log_size()
    t0 = time.monotonic()
    with pytest.raises(psycopg.OperationalError) as exc:
        with pooler.connect(dbname="ghost", connect_timeout=20) as c:
            c.execute("select 1")
    elapsed = time.monotonic() - t0
    msg = str(exc.value)
    assert "DNS lookup failed" in msg and GHOST in msg, msg
    assert elapsed < 3 + 3, f"error after {elapsed:.1f}s"
    # Other databases are not affected.
    with pooler.connect() as c:
        assert c.execute("select 1").fetchone()[0] == 1
    # Several connect attempts, one query: the failure was cached.
    attempts = pooler.log_since(mark).count(f"DNS lookup failed: {GHOST}")
    assert attempts >= 2, f"{attempts} connect attempts in {elapsed:.1f}s"
    assert dns.count(GHOST) == 1
    rows = [r for r in pooler.admin("SHOW DNS_HOSTS") if r["hostname"] == GHOST]
    assert len(rows) == 1 and rows[0]["addrs"] == "" and rows[0]["ttl"] > 30, rows


def test_ip_addresses_and_unix_sockets_need_no_lookup(make_pooler, dns, pg):
    pooler = make_pooler(start=False, dns_nameserver=dns.address)
    pooler.databases["v4"] = pooler.db_entry("appdb", host="127.0.0.1")
    pooler.start()
    with pooler.connect(dbname="v4") as c:
        assert c.execute("select 1").fetchone()[0] == 1
    assert not dns.queries
    assert pooler.admin("SHOW DNS_HOSTS") == []


def test_daemon_looks_up_names(make_pooler, dns):
    """The resolver is a thread: started after daemon(), or the detached process has none."""
    dns.add(NAME, ["127.0.0.1"])
    pooler = make_pooler(start=False, dns_nameserver=dns.address)
    pooler.databases["named"] = pooler.db_entry("appdb", host=NAME)
    pidfile = os.path.join(pooler.dir, "pooler.pid")
    pooler.settings["pidfile"] = pidfile
    pooler.start("-d", wait=False)
    assert pooler.wait_exit(10) == 0, pooler.log_text()
    pooler.expect_exit = True
    wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 5,
               "the daemon's pidfile")
    daemon_pid = int(open(pidfile).read().strip())
    try:
        wait_until(lambda: tcp_accepts(pooler.host, pooler.port), 10, "the daemon to listen")
        with pooler.connect(dbname="named", connect_timeout=10) as c:
            assert c.execute("select current_database()").fetchone()[0] == "appdb"
        assert dns.count(NAME) == 1
    finally:
        try:
            os.kill(daemon_pid, signal.SIGINT)
            wait_pid_gone(daemon_pid, 10)
        except ProcessLookupError:
            pass


def test_resolv_conf_names_the_name_servers(make_pooler):
    """PgBouncer's resolv_conf: another resolv.conf (which has no port: the test's name server
    must be on port 53 of a loopback address, so this needs root)."""
    try:
        server = DnsServer(host="127.83.0.1", port=53).start()
    except OSError as exc:
        pytest.skip(f"cannot serve DNS on 127.83.0.1:53: {exc}")
    try:
        server.add(NAME, ["127.0.0.1"])
        pooler = make_pooler(start=False)
        conf = os.path.join(pooler.dir, "resolv.conf")
        with open(conf, "w") as f:
            f.write("nameserver 127.83.0.1\noptions timeout:1 attempts:1\n")
        os.chmod(conf, 0o644)
        pooler.settings["resolv_conf"] = conf
        pooler.databases["named"] = pooler.db_entry("appdb", host=NAME)
        pooler.start()
        with pooler.connect(dbname="named") as c:
            assert c.execute("select current_database()").fetchone()[0] == "appdb"
        assert server.count(NAME) == 1
    finally:
        server.stop()
