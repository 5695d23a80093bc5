# A small fake PostgreSQL server on loopback for tests of servers that misbehave: it logs anyone
# in (trust), answers simple queries with one text column, and lets the test decide per query
# what bytes go back instead (garbage, bad lengths, nothing at all).
import socket
import struct
import threading

from .util import free_port
from .wire import message


def row_description(name: str = "?column?") -> bytes:
    # one column: name, table oid 0, attnum 0, type text (25), typlen -1, typmod -1, format text
    field = name.encode() + b"\0" + struct.pack("!ihihih", 0, 0, 25, -1, -1, 0)
    return message(b"T", struct.pack("!h", 1) + field)


def data_row(value: str) -> bytes:
    v = value.encode()
    return message(b"D", struct.pack("!hi", 1, len(v)) + v)


def command_complete(tag: str) -> bytes:
    return message(b"C", tag.encode() + b"\0")


def ready(status: bytes = b"I") -> bytes:
    return message(b"Z", status)


def select_answer(value: str) -> bytes:
    return row_description() + data_row(value) + command_complete("SELECT 1") + ready()


PARAMS = {
    "server_version": "15.0",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "TimeZone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "application_name": "",
}


class FakeServer:
    """Listens on 127.0.0.1:<port>. `on_query(sql) -> bytes | None` decides the answer to each
    simple query (None: the default, `select_answer(sql)` for a SELECT, else an empty command);
    return `FakeServer.STALL` to send nothing and keep the connection open."""

    STALL = object()

    def __init__(self, on_query=None):
        self.on_query = on_query or (lambda sql: None)
        self.port = free_port()
        self.sock: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.logins = 0
        self.active = 0  # connections being served now
        self.queries: list[str] = []
        self.lock = threading.Lock()
        self.closed = threading.Event()

    def start(self) -> "FakeServer":
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        threading.Thread(target=self._accept_loop, daemon=True).start()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def open_connections(self) -> int:
        with self.lock:
            return self.active

    def _accept_loop(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_exact(conn: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def _serve(self, conn: socket.socket) -> None:
        with self.lock:
            self.active += 1
        try:
            while True:  # startup (an SSLRequest is refused, then the StartupMessage)
                head = self._read_exact(conn, 8)
                if head is None:
                    return
                length, code = struct.unpack("!ii", head)
                rest = self._read_exact(conn, length - 8)
                if rest is None:
                    return
                if code == 80877103:
                    conn.sendall(b"N")
                    continue
                break
            out = message(b"R", struct.pack("!i", 0))
            for k, v in PARAMS.items():
                out += message(b"S", k.encode() + b"\0" + v.encode() + b"\0")
            with self.lock:
                self.logins += 1
                pid = 1000 + self.logins
            out += message(b"K", struct.pack("!ii", pid, 42)) + ready()
            conn.sendall(out)
            while True:
                head = self._read_exact(conn, 5)
                if head is None:
                    return
                kind = head[:1]
                (length,) = struct.unpack("!i", head[1:])
                body = self._read_exact(conn, length - 4)
                if body is None or kind == b"X":
                    return
                if kind != b"Q":
                    continue  # this fake speaks the simple protocol only
                sql = body.rstrip(b"\0").decode()
                with self.lock:
                    self.queries.append(sql)
                answer = self.on_query(sql)
                if answer is FakeServer.STALL:
                    continue
                if answer is None:
                    if not sql.strip():
                        answer = message(b"I") + ready()
                    elif sql.lower().startswith("select"):
                        answer = select_answer(sql)
                    else:
                        answer = command_complete(sql.split(" ")[0].upper() if sql else "") + ready()
                conn.sendall(answer)
        except OSError:
            return
        finally:
            with self.lock:
                self.active -= 1
            try:
                conn.close()
            except OSError:
                pass

    def stop(self) -> None:
        self.closed.set()
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        with self.lock:
            for s in self.conns:
                for op in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                    try:
                        op()
                    except OSError:
                        pass
            self.conns.clear()
