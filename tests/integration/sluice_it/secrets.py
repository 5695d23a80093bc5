# Password secrets in the forms Postgres and pgbouncer auth files store them (md5, SCRAM-SHA-256).
import base64
import hashlib
import hmac
import os


def md5_secret(user: str, password: str) -> str:
    return "md5" + hashlib.md5((password + user).encode()).hexdigest()


def scram_secret(password: str, iterations: int = 4096, salt: bytes | None = None) -> str:
    """SCRAM-SHA-256$iter:salt$StoredKey:ServerKey, as in pg_authid (RFC 5802/7677)."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def userlist_line(user: str, secret: str) -> str:
    """One line of a pgbouncer-style auth file; double quotes inside are doubled."""
    q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    return f"{q(user)} {q(secret)}\n"
