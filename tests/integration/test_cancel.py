# Query cancellation through the pooler: CancelRequest with the right key cancels, a wrong key does nothing.
import socket
import threading
import time

import psycopg
import pytest

from sluice_it.util import wait_until
from sluice_it.wire import ServerError, WireConn, cancel_request, query_message

MODES = ["transaction", "session"]


def _wait_active(pg, marker: str) -> None:
    wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where state = 'active' and query like %s",
                              (f"%{marker}%",))[0][0] == 1, 10, f"query {marker} to run on the server")


def _send_cancel(pooler, pid: int, key: int) -> bytes:
    """Send a CancelRequest on a fresh connection; returns what the pooler sent back before closing."""
    with socket.create_connection((pooler.host, pooler.port), timeout=5) as s:
        s.sendall(cancel_request(pid, key))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return data
            data += chunk


@pytest.mark.parametrize("mode", MODES)
def test_psycopg_cancel_interrupts_a_running_query(make_pooler, pg, mode):
    pooler = make_pooler(pool_mode=mode, default_pool_size=2)
    with pooler.connect() as conn:
        canceller = threading.Thread(target=lambda: (_wait_active(pg, "it_cancel_me"), conn.cancel()))
        canceller.start()
        t0 = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("select pg_sleep(10) /* it_cancel_me */")
        canceller.join(10)
        assert time.monotonic() - t0 < 4
        assert conn.execute("select 'still usable'").fetchone() == ("still usable",)


@pytest.mark.parametrize("mode", MODES)
def test_cancel_with_right_key_gives_57014(make_pooler, pg, mode):
    pooler = make_pooler(pool_mode=mode)
    with WireConn(pooler.host, pooler.port, timeout=10) as w:
        w.login("app", "appdb")
        assert w.backend_key is not None
        w.send(query_message("select pg_sleep(10) /* it_raw_cancel */"))
        _wait_active(pg, "it_raw_cancel")
        assert _send_cancel(pooler, *w.backend_key) == b""
        with pytest.raises(ServerError) as exc:
            w.read_result(5)
        assert exc.value.fields["C"] == "57014"
        assert w.query("select 1") == [["1"]]


@pytest.mark.parametrize("mode", MODES)
def test_cancel_with_wrong_key_does_nothing(make_pooler, pg, mode):
    pooler = make_pooler(pool_mode=mode)
    with WireConn(pooler.host, pooler.port, timeout=10) as w:
        w.login("app", "appdb")
        pid, key = w.backend_key
        w.send(query_message("select pg_sleep(1.5), 'done' /* it_wrong_key */"))
        t0 = time.monotonic()
        _wait_active(pg, "it_wrong_key")
        _send_cancel(pooler, pid, key ^ 0x5A5A5A5A)
        _send_cancel(pooler, pid ^ 0x7FFF, key)
        assert w.read_result(10) == [["", "done"]]
        assert time.monotonic() - t0 >= 1.4


def test_cancel_only_hits_the_right_client(make_pooler, pg):
    pooler = make_pooler(pool_mode="transaction", default_pool_size=4)
    with WireConn(pooler.host, pooler.port, timeout=10) as a, WireConn(pooler.host, pooler.port, timeout=10) as b:
        a.login("app", "appdb")
        b.login("app", "appdb")
        a.send(query_message("select pg_sleep(10) /* it_target */"))
        b.send(query_message("select pg_sleep(1), 'b-done' /* it_bystander */"))
        _wait_active(pg, "it_target")
        _wait_active(pg, "it_bystander")
        _send_cancel(pooler, *a.backend_key)
        with pytest.raises(ServerError) as exc:
            a.read_result(5)
        assert exc.value.fields["C"] == "57014"
        assert b.read_result(10) == [["", "b-done"]]
