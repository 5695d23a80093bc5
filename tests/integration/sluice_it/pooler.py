# Starting, configuring, signalling and stopping one pooler process (sluice, or PgBouncer to check the tests).
import functools
import os
import resource
import signal
import subprocess
import time

import psycopg
from psycopg.rows import dict_row

from .postgres import PASSWORDS, PgCluster, alive
from .secrets import userlist_line
from .util import OsUser, child_env, free_port, tcp_accepts

ADMIN_USER = "itadmin"
ADMIN_PASSWORD = "itadmin-pw"

# [pgbouncer] keys only sluice knows; left out of the ini when the binary is PgBouncer.
SLUICE_ONLY_KEYS = {"workers", "cancel_rate_limit", "affinity_wait", "dns_nameserver"}


class PoolerBinary:
    """The binary under test, the OS user it runs as, and whether it is PgBouncer."""

    def __init__(self, path: str, os_user: OsUser, is_pgbouncer: bool, version_line: str):
        self.path = path
        self.os_user = os_user
        self.is_pgbouncer = is_pgbouncer
        self.version_line = version_line


class Pooler:
    """One running pooler with its own directory, ini, auth file, log and ports."""

    def __init__(self, binary: PoolerBinary, pg: PgCluster, workdir: str, settings: dict,
                 databases: dict | None, users: dict | None, auth: dict | None):
        self.binary = binary
        self.pg = pg
        self.os_user = binary.os_user
        self.dir = self.os_user.makedirs(workdir, 0o755)
        self.ini_path = os.path.join(self.dir, "pooler.ini")
        self.auth_path = os.path.join(self.dir, "userlist.txt")
        self.logfile = os.path.join(self.dir, "pooler.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self.expect_exit = False
        self.env = child_env(self.dir)
        self.nofile_limit: int | None = None  # RLIMIT_NOFILE for the process (set before start)

        self.settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": self.dir,
            "auth_type": "trust",
            "auth_file": self.auth_path,
            "logfile": self.logfile,
            "admin_users": ADMIN_USER,
            "pool_mode": "session",
            "default_pool_size": "20",
            "max_client_conn": "1000",
            "ignore_startup_parameters": "extra_float_digits",
            "workers": "2",
        }
        self.settings.update({k: str(v) for k, v in settings.items() if v is not None})
        for k, v in settings.items():
            if v is None:
                self.settings.pop(k, None)
        self.databases = databases if databases is not None else self.default_databases()
        self.users = users or {}
        self.auth = {ADMIN_USER: ADMIN_PASSWORD, **PASSWORDS}
        if auth is not None:
            self.auth.update(auth)

    def default_databases(self, dbnames=("appdb", "db2", "bench")) -> dict:
        return {db: self.db_entry(db) for db in dbnames}

    def db_entry(self, dbname: str, port: int | None = None, **extra) -> str:
        items = {"host": self.pg.host, "port": port or self.pg.port, "dbname": dbname, **extra}
        return " ".join(f"{k}={v}" for k, v in items.items())

    # -- files ---------------------------------------------------------------------------
    def write_files(self) -> None:
        lines = ["[databases]"]
        lines += [f"{name} = {entry}" for name, entry in self.databases.items()]
        if self.users:
            lines += ["", "[users]"]
            lines += [f"{name} = {entry}" for name, entry in self.users.items()]
        lines += ["", "[pgbouncer]"]
        for k, v in self.settings.items():
            if self.binary.is_pgbouncer and k in SLUICE_ONLY_KEYS:
                continue
            lines.append(f"{k} = {v}")
        self._write(self.ini_path, "\n".join(lines) + "\n")
        self._write(self.auth_path, "".join(userlist_line(u, s) for u, s in self.auth.items()))

    def _write(self, path: str, text: str) -> None:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        self.os_user.chown(tmp)
        os.replace(tmp, path)

    # -- process -------------------------------------------------------------------------
    def command(self, *extra_args: str) -> list[str]:
        return [self.binary.path, *extra_args, self.ini_path]

    def start(self, *extra_args: str, wait: bool = True, timeout: float = 20.0) -> "Pooler":
        self.write_files()
        out = open(self.stdout_path, "ab")
        self.proc = subprocess.Popen(
            self.command(*extra_args),
            cwd=self.dir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=functools.partial(_child_limits, self.nofile_limit),
            **self.os_user.popen_kwargs(),
        )
        out.close()
        if wait:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def unix_socket(self) -> str:
        return os.path.join(self.settings["unix_socket_dir"], f".s.PGSQL.{self.port}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll until the TCP port accepts and the unix socket exists; fail at once if it exited."""
        deadline = time.monotonic() + timeout
        while not (tcp_accepts(self.host, self.port) and os.path.exists(self.unix_socket)):
            if not self.running():
                raise AssertionError(f"pooler exited with status {self.proc.returncode} while starting")
            if time.monotonic() > deadline:
                raise AssertionError(f"pooler not accepting connections after {timeout}s")
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        """Send a signal; an exit after SIGINT/SIGTERM/SIGQUIT is expected, not a crash."""
        if sig in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT):
            self.expect_exit = True
        os.kill(self.pid, sig)

    def wait_exit(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def reload(self, settings: dict | None = None, databases: dict | None = None) -> None:
        """Rewrite the ini with changes and send SIGHUP; callers poll for the effect."""
        for k, v in (settings or {}).items():
            if v is None:
                self.settings.pop(k, None)
            else:
                self.settings[k] = str(v)
        if databases is not None:
            self.databases = databases
        self.write_files()
        self.signal(signal.SIGHUP)

    def stop(self) -> str | None:
        """Stop the process by its PID. Returns a complaint if it had died on its own or hung."""
        if self.proc is None:
            return None
        complaint = None
        rc = self.proc.poll()
        if rc is not None and not self.expect_exit:
            complaint = f"pooler exited on its own during the test (status {rc})"
        if rc is None:
            os.kill(self.pid, signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                complaint = "pooler did not exit within 10 s of SIGINT; killed"
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(10)
        report = self.sanitizer_report()
        if report:
            complaint = (complaint + "; " if complaint else "") + "sanitizer report:\n" + report
        return complaint

    def sanitizer_report(self) -> str:
        """The first sanitizer report the process printed (ASan, UBSan, TSan, LSan), or ""."""
        text = _read(self.stdout_path)
        for marker in ("WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                       "ERROR: LeakSanitizer", "ThreadSanitizer: reported"):
            at = text.find(marker)
            if at >= 0:
                start = text.rfind("\n", 0, max(0, at - 200)) + 1
                return text[start:start + 6000]
        return ""

    # -- logs ----------------------------------------------------------------------------
    def log_text(self) -> str:
        """The log file, then whatever the process printed that is not already in it."""
        log = _read(self.logfile)
        logged = set(log.splitlines())
        extra = [line for line in _read(self.stdout_path).splitlines() if line not in logged]
        text = f"--- {self.logfile}\n{log}"
        if extra:
            text += f"\n--- other output ({self.stdout_path})\n" + "\n".join(extra)
        return text

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.logfile)
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                f.seek(offset)
                return f.read()
        except OSError:
            return ""

    # -- clients -------------------------------------------------------------------------
    def conninfo(self, user: str = "app", dbname: str = "appdb", password: str | None = None, **kw) -> dict:
        if password is None:
            password = PASSWORDS.get(user) or (ADMIN_PASSWORD if user == ADMIN_USER else None)
        info = {"host": self.host, "port": self.port, "user": user, "dbname": dbname,
                "connect_timeout": 10}
        if password is not None:
            info["password"] = password
        info.update(kw)
        return info

    def connect(self, user: str = "app", dbname: str = "appdb", password: str | None = None,
                autocommit: bool = True, **kw) -> psycopg.Connection:
        """psycopg connection through the pooler; server-side prepares off unless asked for."""
        kw.setdefault("prepare_threshold", None)
        return psycopg.connect(**{**self.conninfo(user, dbname, password), **kw}, autocommit=autocommit)

    async def aconnect(self, user: str = "app", dbname: str = "appdb", password: str | None = None,
                       **kw) -> psycopg.AsyncConnection:
        kw.setdefault("prepare_threshold", None)
        return await psycopg.AsyncConnection.connect(**{**self.conninfo(user, dbname, password), **kw},
                                                     autocommit=True)

    def admin(self, command: str) -> list[dict]:
        """A console command over TCP as the admin user (password from the auth file)."""
        with psycopg.connect(**self.conninfo(ADMIN_USER, "pgbouncer"), autocommit=True,
                             row_factory=dict_row) as conn:
            cur = conn.execute(command)
            return cur.fetchall() if cur.description else []

    def pool_row(self, dbname: str, user: str) -> dict | None:
        for row in self.admin("SHOW POOLS"):
            if row["database"] == dbname and row["user"] == user:
                return row
        return None

    def psql(self, sql: str, user: str = "app", dbname: str = "appdb", password: str | None = None,
             unix: bool = False, as_pooler_user: bool = False, timeout: float = 30):
        """Run psql through the pooler; returns the CompletedProcess (stdout unaligned, tuples only)."""
        info = self.conninfo(user, dbname, password)
        env = dict(self.env)
        if info.get("password") is not None:
            env["PGPASSWORD"] = info["password"]
        env["PGCONNECT_TIMEOUT"] = "10"
        host = self.settings["unix_socket_dir"] if unix else self.host
        args = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", str(self.port),
                "-U", user, "-d", dbname, "-c", sql]
        extra = self.os_user.popen_kwargs() if as_pooler_user else {}
        return subprocess.run(args, env=env, cwd=self.dir, capture_output=True, text=True,
                              timeout=timeout, **extra)


def _read(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _child_limits(nofile: int | None) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core dumps
    if nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def wait_pid_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"pid {pid} still alive after {timeout}s")
        time.sleep(0.02)
