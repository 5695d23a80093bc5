# Recording real client byte streams at run time: a small TCP proxy in front of the pooler keeps
# what each client wrote (one entry per write, with the pause before it), and scenarios drive
# real clients (psql, psycopg 3) and the raw wire client through it.
import os
import socket
import subprocess
import threading
import time

import psycopg

from cases import Recording

MAX_GAP = 0.15  # recorded pauses are capped: replay speed matters more than exact timing


class RecordingProxy:
    """127.0.0.1:<port> -> pooler. Connections accepted between begin() and end() belong to
    that scenario; end() waits for them to close and returns what their clients wrote."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns: list[list[tuple[int, float, bytes]]] = []
        self.threads: list[threading.Thread] = []
        self.seq = 0
        self.last = time.monotonic()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def begin(self) -> None:
        with self.lock:
            self.conns, self.threads, self.seq, self.last = [], [], 0, time.monotonic()

    def end(self, name: str, timeout: float = 10.0) -> Recording:
        deadline = time.monotonic() + timeout
        for t in list(self.threads):
            t.join(max(0.01, deadline - time.monotonic()))
        with self.lock:
            return Recording(name, [c for c in self.conns if c])

    def close(self) -> None:
        self.closed = True
        self.lsock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                record: list[tuple[int, float, bytes]] = []
                self.conns.append(record)
                up = threading.Thread(target=self._pump, args=(client, server, record), daemon=True)
                down = threading.Thread(target=self._pump, args=(server, client, None), daemon=True)
                self.threads += [up, down]
            up.start()
            down.start()

    def _pump(self, src: socket.socket, dst: socket.socket, record) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record is not None:
                    with self.lock:
                        now = time.monotonic()
                        record.append((self.seq, min(MAX_GAP, now - self.last), data))
                        self.seq += 1
                        self.last = now
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            src.close()


# -- scenarios ----------------------------------------------------------------------------------
# Each takes the proxy's port and drives one client session (or two: a query and its cancel).

def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(PGCONNECT_TIMEOUT="10", LC_ALL="C.UTF-8", PGPASSWORD="itadmin-pw")
    return env


def _psql(port: int, *args: str, stdin: str | None = None, db: str = "appdb", user: str = "app",
          sslmode: str = "prefer", check: bool = True) -> None:
    cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=0",
           f"host=127.0.0.1 port={port} user={user} dbname={db} sslmode={sslmode}", *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30, env=_env())
    if check and proc.returncode not in (0, 1, 3):
        raise RuntimeError(f"psql failed: {proc.stderr}")


def _pg(port: int, **kw) -> psycopg.Connection:
    kw.setdefault("autocommit", True)
    return psycopg.connect(host="127.0.0.1", port=port, user="app", dbname="appdb",
                           connect_timeout=10, sslmode="disable", **kw)


def sc_psql_simple(port):
    _psql(port, "-c", "select 1 as one, 'two' as two; select now() is not null",
          "-c", "begin; create temp table tt(a int); insert into tt values (1),(2); "
                "select sum(a) from tt; commit",
          "-c", "select 1/0", "-c", "set search_path to public; show search_path")


def sc_psql_script(port):
    script = ("\\set ON_ERROR_STOP 0\nbegin;\nselect pg_advisory_xact_lock(4242);\n"
              "insert into fuzz_t values (1, 'a'), (2, 'b');\nsavepoint s1;\nselect no_such_col;\n"
              "rollback to s1;\nselect count(*) from fuzz_t;\nrollback;\n"
              "prepare p1(int) as select $1 + 1;\nexecute p1(41);\ndeallocate p1;\n"
              "listen fuzz_chan;\nnotify fuzz_chan, 'hello';\nunlisten *;\n"
              "select pg_advisory_lock(4343);\nselect pg_advisory_unlock_all();\n"
              "set application_name = 'fuzzer';\nreset all;\ndiscard all;\n")
    _psql(port, "-f", "-", stdin=script)


def sc_psql_copy(port):
    rows = "".join(f"{i}\trow {i}\n" for i in range(200))
    _psql(port, "-c", "\\copy fuzz_t from stdin", stdin=rows)
    _psql(port, "-c", "\\copy (select * from fuzz_t limit 50) to stdout")
    _psql(port, "-c", "copy fuzz_t to stdout with (format csv)")
    _psql(port, "-c", "delete from fuzz_t where a >= 0")


def sc_psql_nossl(port):
    _psql(port, "-c", "select version()", sslmode="disable")


def sc_console(port):
    _psql(port, "-c", "SHOW POOLS", "-c", "SHOW CLIENTS", "-c", "SHOW SERVERS", "-c", "SHOW STATS",
          "-c", "SHOW DATABASES", "-c", "SHOW VERSION", "-c", "SHOW LISTS",
          db="pgbouncer", user="itadmin", sslmode="disable")


def sc_console_psycopg(port):
    with psycopg.connect(host="127.0.0.1", port=port, user="itadmin", dbname="pgbouncer",
                         password="itadmin-pw", autocommit=True, sslmode="disable",
                         connect_timeout=10, prepare_threshold=None) as c:
        for cmd in ("SHOW POOLS", "SHOW CONFIG", "SHOW MEM"):
            c.execute(cmd).fetchall()


def sc_psycopg_extended(port):
    with _pg(port, prepare_threshold=0) as c:  # every statement prepared under a name
        for i in range(3):
            c.execute("select %s::int + 1, %s::text", (i, f"v{i}")).fetchall()
        c.execute("select %b::bytea, %s::numeric", (b"\x00\x01", 3)).fetchall()
        try:
            c.execute("select 1 / %s::int", (0,))
        except psycopg.Error:
            pass
        with c.cursor() as cur:
            cur.executemany("insert into fuzz_t values (%s, %s)", [(i, "x") for i in range(5)])
        with c.transaction():
            c.execute("select * from fuzz_t where a = %s for update", (1,)).fetchall()
        c.execute("delete from fuzz_t where b = %s", ("x",))


def sc_psycopg_unnamed(port):
    with _pg(port, prepare_threshold=None, autocommit=False) as c:
        c.execute("select %s::int, %s::float8", (7, 1.5)).fetchall()
        c.execute("set local statement_timeout = 2000")
        c.commit()
        with c.cursor(name="fuzz_cur") as cur:  # a named portal fetched in pieces
            cur.execute("select g from generate_series(1, 50) g")
            cur.fetchmany(10)
            cur.fetchmany(10)
        c.rollback()


def sc_psycopg_pipeline(port):
    with _pg(port, prepare_threshold=0) as c:
        with c.pipeline():
            for i in range(4):
                c.execute("select %s::int", (i,))
            c.execute("insert into fuzz_t values (%s, %s)", (99, "pipe"))
        try:
            with c.pipeline():
                c.execute("select 1")
                c.execute("select 1/0")
                c.execute("select 2")
        except psycopg.Error:
            pass
        c.execute("delete from fuzz_t where a = 99")


def sc_psycopg_copy(port):
    with _pg(port) as c:
        with c.cursor() as cur:
            with cur.copy("copy fuzz_t (a, b) from stdin") as cp:
                for i in range(100):
                    cp.write_row((i, f"c{i}"))
            with cur.copy("copy fuzz_t to stdout") as cp:
                for _ in cp:
                    pass
            with cur.copy("copy (select 1, 'x'::text) to stdout (format binary)") as cp:
                for _ in cp:
                    pass
            try:
                with cur.copy("copy fuzz_t from stdin") as cp:
                    cp.write_row((1, "before the failure"))
                    raise ValueError("abort the copy")  # psycopg sends CopyFail
            except (ValueError, psycopg.Error):
                pass
            cur.execute("delete from fuzz_t where a >= 0")


def sc_psycopg_cancel(port):
    with _pg(port) as c:
        timer = threading.Timer(0.1, c.cancel)
        timer.start()
        try:
            c.execute("select pg_sleep(0.6)")
        except psycopg.Error:
            pass
        timer.join()
        c.execute("select 'after cancel'").fetchall()


def sc_psycopg_options(port):
    with _pg(port, options="-c search_path=public -c statement_timeout=4000 -c work_mem=2MB",
             application_name="fuzz-opts") as c:
        c.execute("set datestyle = 'ISO, DMY'")
        c.execute("select current_setting('search_path'), current_setting('work_mem')").fetchall()
        c.execute("select set_config('application_name', 'changed', false)")
        c.execute("begin")
        c.execute("create temp table ttt(a int) on commit drop")
        c.execute("commit")


def sc_wire_misc(port):
    """Messages no driver here sends: FunctionCall, Flush, Describe/Close of statements and
    portals, Execute with a row limit, a query during COPY, Terminate."""
    from sluice_it.wire import WireConn, message

    def cstr(s: str) -> bytes:
        return s.encode() + b"\0"

    with WireConn("127.0.0.1", port, timeout=5) as w:
        w.login("app", "appdb")
        oid_int4 = (23).to_bytes(4, "big")
        w.send(message(b"P", cstr("s1") + cstr("select $1::int * 2") + b"\0\x01" + oid_int4)
               + message(b"D", b"S" + cstr("s1"))
               + message(b"B", cstr("p1") + cstr("s1") + b"\0\x01\0\x00" + b"\0\x01"
                         + (2).to_bytes(4, "big") + b"21" + b"\0\x01\0\x00")
               + message(b"D", b"P" + cstr("p1"))
               + message(b"E", cstr("p1") + (1).to_bytes(4, "big"))
               + message(b"H")
               + message(b"C", b"P" + cstr("p1")) + message(b"C", b"S" + cstr("s1"))
               + message(b"S"))
        _drain(w)
        # FunctionCall: abs(int4) = 1397, one int4 argument in text
        w.send(message(b"F", (1397).to_bytes(4, "big") + b"\0\x01\0\x00" + b"\0\x01"
                       + (2).to_bytes(4, "big") + b"-5" + b"\0\x00"))
        _drain(w)
        w.send(message(b"Q", cstr("copy fuzz_t from stdin")))
        _drain(w)
        w.send(message(b"d", b"1\tone\n") + message(b"d", b"2\ttwo\n") + message(b"c"))
        _drain(w)
        w.send(message(b"Q", cstr("copy fuzz_t from stdin")))
        _drain(w)
        w.send(message(b"d", b"3\tthree\n") + message(b"f", cstr("client gave up")))
        _drain(w)
        w.send(message(b"Q", cstr("delete from fuzz_t; select 1")) + message(b"X"))
        _drain(w)


def _login(port, user, password, *queries, sslmode="disable"):
    """A psycopg login with a password exchange (the fuzzing pooler's hba asks md5user for
    md5 and scramuser for SCRAM), then a few queries; a wrong password is tried first."""
    try:
        psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="appdb",
                        password=password + "-wrong", connect_timeout=10, sslmode=sslmode).close()
    except psycopg.OperationalError:
        pass
    with psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="appdb", password=password,
                         connect_timeout=10, sslmode=sslmode, autocommit=True) as c:
        for q in queries:
            c.execute(q).fetchall()


def sc_auth_md5(port):
    _login(port, "md5user", "md5-pw", "select current_user", "select 1")


def sc_auth_scram(port):
    _login(port, "scramuser", "scram-pw", "select current_user", "select 2")
    # psql too (libpq's SCRAM client, channel binding not offered without TLS).
    env = {**_env(), "PGPASSWORD": "scram-pw"}
    subprocess.run(["psql", "-X", "-q", "-c", "select 3",
                    f"host=127.0.0.1 port={port} user=scramuser dbname=appdb sslmode=disable"],
                   capture_output=True, timeout=30, env=env)


def _drain(w, wait: float = 0.3) -> None:
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            msg = w.read_message(max(0.01, deadline - time.monotonic()))
            if msg is None or msg[0] in (b"Z", b"G"):
                return
    except (TimeoutError, OSError):
        return


SCENARIOS = {
    "psql_simple": sc_psql_simple,
    "psql_script": sc_psql_script,
    "psql_copy": sc_psql_copy,
    "psql_nossl": sc_psql_nossl,
    "console_psql": sc_console,
    "console_psycopg": sc_console_psycopg,
    "psycopg_extended": sc_psycopg_extended,
    "psycopg_unnamed": sc_psycopg_unnamed,
    "psycopg_pipeline": sc_psycopg_pipeline,
    "psycopg_copy": sc_psycopg_copy,
    "psycopg_cancel": sc_psycopg_cancel,
    "psycopg_options": sc_psycopg_options,
    "wire_misc": sc_wire_misc,
    "auth_md5": sc_auth_md5,
    "auth_scram": sc_auth_scram,
}


def record_all(upstream: tuple[str, int], log=print) -> list[Recording]:
    proxy = RecordingProxy(upstream)
    out = []
    try:
        for name, fn in SCENARIOS.items():
            proxy.begin()
            try:
                fn(proxy.port)
            except Exception as exc:  # noqa: BLE001 - a scenario that fails still recorded bytes
                log(f"scenario {name}: {exc!r}")
            rec = proxy.end(name)
            if rec.conns:
                out.append(rec)
    finally:
        proxy.close()
    return out
