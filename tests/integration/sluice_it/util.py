# Small shared helpers for the integration harness: ports, bounded waiting, OS users.
import os
import pwd
import socket
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Poll `predicate` until it returns a truthy value; raise TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - the predicate may fail until ready
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{detail}")
        time.sleep(interval)


def tcp_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class OsUser:
    """The OS identity a child process (Postgres, the pooler, psql) runs as."""

    def __init__(self, name: str):
        entry = pwd.getpwnam(name)
        self.name = name
        self.uid = entry.pw_uid
        self.gid = entry.pw_gid

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict:
        """subprocess.Popen arguments that switch to this user (nothing if it is us)."""
        if self.is_current:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def chown(self, path: str) -> None:
        if not self.is_current:
            os.chown(path, self.uid, self.gid)

    def makedirs(self, path: str, mode: int = 0o700) -> str:
        os.makedirs(path, mode=mode, exist_ok=True)
        self.chown(path)
        return path


def default_child_user(env_name: str) -> OsUser:
    """The user named by env_name, else `postgres` when we are root, else ourselves."""
    name = os.environ.get(env_name)
    if not name:
        name = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    return OsUser(name)


def child_env(home: str) -> dict:
    """Environment for children: ours minus libpq variables, with a HOME they can read."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = home
    env["LC_ALL"] = "C.UTF-8"
    return env
