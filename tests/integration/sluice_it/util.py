# Small shared helpers for the integration harness: ports, bounded waiting, OS users.
import fcntl
import os
import pwd
import random
import socket
import threading
import time


# Ports for listeners the tests start (Postgres, poolers, fake servers) come from a range below
# the kernel's ephemeral range (32768-60999 by default): the tests open thousands of client
# sockets, and a port chosen by bind(0) and released lies where those sockets take their local
# ports, so one of them could take it before the listener binds it. A port here is claimed in a
# registry shared by every test process on the machine (an flock on a file per port, held
# while it is among the process's 64 latest claims: long after the listener bound it), so parallel
# sessions never pick the same one, and is probed by binding it.
PORT_RANGE = tuple(int(x) for x in os.environ.get("SLUICE_IT_PORTS", "20000-30000").split("-"))
PORT_REGISTRY = os.environ.get("SLUICE_IT_PORT_REGISTRY", "/tmp/sluice-it-ports")
_HELD = 64
_claimed: dict[int, int | None] = {}  # port handed out -> fd of its lock file while still held
_claim_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on and no other test process holds; this
    process never hands it out twice."""
    lo, hi = PORT_RANGE
    span = hi - lo
    if not os.path.isdir(PORT_REGISTRY):
        os.makedirs(PORT_REGISTRY, exist_ok=True)
        try:
            os.chmod(PORT_REGISTRY, 0o1777)  # shared by test processes of every user
        except OSError:
            pass
    with _claim_lock:
        start = random.SystemRandom().randrange(span)
        for i in range(span):
            port = lo + (start + i) % span
            if port in _claimed:
                continue
            try:
                fd = os.open(os.path.join(PORT_REGISTRY, str(port)), os.O_CREAT | os.O_RDWR, 0o666)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            if _bindable(port):
                _claimed[port] = fd
                held = [p for p, f in _claimed.items() if f is not None]
                for old in held[:-_HELD]:
                    os.close(_claimed[old])
                    _claimed[old] = None
                return port
            os.close(fd)
    raise RuntimeError(f"no free port in {lo}-{hi}")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT leftover is fine
        try:
            s.bind(("127.0.0.1", port))
            s.listen(1)
        except OSError:
            return False
    return True


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
