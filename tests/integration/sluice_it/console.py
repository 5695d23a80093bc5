# Helpers for console tests: persistent admin sessions, commands that answer later, HTTP GETs.
import http.client
import threading

import psycopg
from psycopg.rows import dict_row

from .pooler import ADMIN_PASSWORD, ADMIN_USER, Pooler


def admin_conn(pooler: Pooler, user: str = ADMIN_USER, password: str | None = None) -> psycopg.Connection:
    """A console session over TCP that stays open (rows as dicts)."""
    if password is None and user == ADMIN_USER:
        password = ADMIN_PASSWORD
    info = pooler.conninfo(user, "pgbouncer", password)
    return psycopg.connect(**info, autocommit=True, row_factory=dict_row, prepare_threshold=None)


def run(conn: psycopg.Connection, command: str) -> tuple[list[str], list[dict]]:
    """Runs one console command; returns (column names, rows)."""
    cur = conn.execute(command)
    if cur.description is None:
        return [], []
    return [c.name for c in cur.description], cur.fetchall()


class Background:
    """Runs fn() in a thread; result() re-raises what it raised. For commands that answer later."""

    def __init__(self, fn):
        self.value = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn):
        try:
            self.value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc

    def finished_within(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def result(self, timeout: float):
        assert self.finished_within(timeout), f"still running after {timeout}s"
        if self.error is not None:
            raise self.error
        return self.value


def rows_by(rows: list[dict], **match) -> list[dict]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, dict, str]:
    """One GET; returns (status, headers with lowercase names, body text)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read().decode()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()
