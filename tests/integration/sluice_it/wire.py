# A minimal raw PostgreSQL v3 protocol client for tests that need exact bytes on the wire.
import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTOCOL_3 = 196608
SSL_REQUEST_CODE = 80877103
CANCEL_REQUEST_CODE = 80877102


def startup_packet(user: str, database: str, **params: str) -> bytes:
    body = struct.pack("!i", PROTOCOL_3)
    for k, v in {"user": user, "database": database, **params}.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def ssl_request() -> bytes:
    return struct.pack("!ii", 8, SSL_REQUEST_CODE)


def cancel_request(pid: int, key: int) -> bytes:
    return struct.pack("!iiii", 16, CANCEL_REQUEST_CODE, pid, key)


def message(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def query_message(sql: str) -> bytes:
    return message(b"Q", sql.encode() + b"\0")


def error_fields(body: bytes) -> dict:
    """ErrorResponse/NoticeResponse body -> {'S': ..., 'C': ..., 'M': ...}."""
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return fields


class ServerError(Exception):
    def __init__(self, fields: dict):
        super().__init__(f"{fields.get('C')}: {fields.get('M')}")
        self.fields = fields


class WireConn:
    """One socket speaking the protocol; every read is bounded by a timeout."""

    def __init__(self, host: str, port: int, timeout: float = 5.0, unix_path: str | None = None,
                 sock: socket.socket | None = None):
        if sock is not None:  # an already connected socket, e.g. a TLS one
            self.sock = sock
            self.sock.settimeout(timeout)
        elif unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix_path)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.timeout = timeout
        self.buf = bytearray()
        self.pos = 0  # start of unread bytes in buf
        self.backend_key: tuple[int, int] | None = None
        self.params: dict[str, str] = {}

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on EOF (or a reset, which is also a close)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no data from peer in time")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return False
        except socket.timeout as exc:
            raise TimeoutError("no data from peer in time") from exc
        if not chunk:
            return False
        if self.pos > 65536:
            del self.buf[: self.pos]
            self.pos = 0
        self.buf += chunk
        return True

    def _available(self) -> int:
        return len(self.buf) - self.pos

    def read_byte(self, timeout: float | None = None) -> bytes | None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self._available():
            if not self._fill(deadline):
                return None
        self.pos += 1
        return bytes(self.buf[self.pos - 1 : self.pos])

    def read_message(self, timeout: float | None = None):
        """(type byte, body) or None when the peer closed the connection."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._available() < 5:
            if not self._fill(deadline):
                return None
        p = self.pos
        kind = bytes(self.buf[p : p + 1])
        (length,) = struct.unpack_from("!i", self.buf, p + 1)
        if length < 4:
            raise ValueError(f"bad length {length} from peer")
        while self._available() < 1 + length:
            if not self._fill(deadline):
                return None
        p = self.pos
        body = bytes(self.buf[p + 5 : p + 1 + length])
        self.pos = p + 1 + length
        return kind, body

    def _read_until(self, last: bytes | None, timeout: float | None) -> list:
        deadline = time.monotonic() + (timeout or self.timeout)
        msgs = []
        while True:
            msg = self.read_message(max(0.001, deadline - time.monotonic()))
            if msg is None:
                return msgs
            msgs.append(msg)
            if msg[0] == last:
                return msgs

    def read_until_closed(self, timeout: float | None = None) -> list:
        """All messages up to EOF; raises TimeoutError if the peer keeps the connection open."""
        return self._read_until(None, timeout)

    def read_until_ready(self, timeout: float | None = None) -> list:
        """Messages up to and including the next ReadyForQuery (fewer if the peer closes)."""
        return self._read_until(b"Z", timeout)

    def login(self, user: str, database: str, password: str | None = None, *,
              packet: bytes | None = None, sent: bool = False, pipeline: bytes = b"",
              **params: str) -> None:
        """Startup and authentication (trust, cleartext, md5, SCRAM-SHA-256) up to ReadyForQuery.

        `packet` replaces the startup packet built from the arguments; `sent`: it was sent
        already. `pipeline` is sent in the same write as the last login message the client
        sends (the startup packet with trust, else the password or SCRAM final message).
        """
        scram = None
        rest = pipeline
        first = packet if packet is not None else startup_packet(user, database, **params)
        if not sent:
            self.send(first + (rest if password is None else b""))
            if password is None:
                rest = b""
        while True:
            msg = self.read_message()
            if msg is None:
                raise ConnectionError("closed during login")
            kind, body = msg
            if kind == b"R":
                (code,) = struct.unpack("!i", body[:4])
                if code == 0:
                    continue
                if code == 10:
                    scram = _ScramClient(password or "")
                    self.send(scram.initial_response())
                elif code == 11:
                    self.send(message(b"p", scram.final_message(body[4:])) + rest)
                    rest = b""
                elif code == 12:
                    scram.verify_server(body[4:])
                elif code == 3:
                    self.send(message(b"p", (password or "").encode() + b"\0") + rest)
                    rest = b""
                elif code == 5:
                    inner = hashlib.md5(((password or "") + user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                    self.send(message(b"p", b"md5" + outer.encode() + b"\0") + rest)
                    rest = b""
                else:
                    raise NotImplementedError(f"auth method {code}")
            elif kind == b"K":
                self.backend_key = struct.unpack("!ii", body[:8])
            elif kind == b"S":
                name, value = body.split(b"\0")[:2]
                self.params[name.decode()] = value.decode()
            elif kind == b"E":
                raise ServerError(error_fields(body))
            elif kind == b"Z":
                return

    def query(self, sql: str, timeout: float | None = None) -> list[list[str | None]]:
        """Simple query; the rows of all results as text. Raises ServerError on an error."""
        self.send(query_message(sql))
        return self.read_result(timeout)

    def read_result(self, timeout: float | None = None) -> list[list[str | None]]:
        rows, error = [], None
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self.read_message(max(0.001, deadline - time.monotonic()))
            if msg is None:
                raise ConnectionError(f"closed before ReadyForQuery (error: {error})")
            kind, body = msg
            if kind == b"D":
                rows.append(decode_data_row(body))
            elif kind == b"E":
                error = error_fields(body)
            elif kind == b"Z":
                if error:
                    raise ServerError(error)
                return rows


def decode_data_row(body: bytes) -> list[str | None]:
    (n,) = struct.unpack("!h", body[:2])
    pos, out = 2, []
    for _ in range(n):
        (ln,) = struct.unpack("!i", body[pos : pos + 4])
        pos += 4
        if ln < 0:
            out.append(None)
        else:
            out.append(body[pos : pos + ln].decode())
            pos += ln
    return out


class _ScramClient:
    """Client side of SCRAM-SHA-256 without channel binding (RFC 5802, 7677)."""

    def __init__(self, password: str):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = f"n=,r={self.nonce}"
        self.server_signature = b""

    def initial_response(self) -> bytes:
        first = ("n,," + self.first_bare).encode()
        body = b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
        return message(b"p", body)

    def final_message(self, server_first: bytes) -> bytes:
        attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ValueError("server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.first_bare},{server_first.decode()},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server(self, server_final: bytes) -> None:
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.server_signature:
            raise ValueError("server signature mismatch")
