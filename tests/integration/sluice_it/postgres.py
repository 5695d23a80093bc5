# One throwaway PostgreSQL 15 cluster for a test session: initdb, roles, databases, start/stop.
import os
import signal
import subprocess

import psycopg

from .secrets import md5_secret
from .util import OsUser, child_env, free_port, wait_until

PG_BINDIR = os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")

# Roles the tests use. Server-side (pg_hba) methods: md5user -> md5, scramuser -> scram-sha-256,
# everyone else trust over TCP. Passwords are also what the pooler's auth file holds in plain text.
PASSWORDS = {
    "app": "app-pw",
    "app2": "app2-pw",
    "md5user": "md5-pw",
    "scramuser": "scram-pw",
}
DATABASES = {"appdb": "app", "db2": "app", "bench": "app"}

HBA = """\
local all all trust
host all md5user 127.0.0.1/32 md5
host all scramuser 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


class PgCluster:
    def __init__(self, root: str, os_user: OsUser):
        self.os_user = os_user
        self.root = os_user.makedirs(os.path.join(root, "pg"), 0o755)
        self.data = os.path.join(self.root, "data")
        self.logfile = os.path.join(self.root, "postgres.log")
        self.sockdir = self.root
        self.host = "127.0.0.1"
        self.port = free_port()
        self.pid: int | None = None
        self.env = child_env(self.root)

    # -- process control ---------------------------------------------------------------
    def _run(self, args: list[str], timeout: float = 120, check: bool = True):
        proc = subprocess.run(
            args,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            **self.os_user.popen_kwargs(),
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{self.log_tail()}")
        return proc

    def init(self) -> None:
        self._run(
            [f"{PG_BINDIR}/initdb", "-D", self.data, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        )
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(
                f"""
# --- sluice integration tests ---
port = {self.port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{self.sockdir}'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning
"""
            )
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write(HBA)

    def start(self) -> None:
        self._run([f"{PG_BINDIR}/pg_ctl", "-D", self.data, "-l", self.logfile, "-w", "-t", "60", "start"])
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        wait_until(self._accepts_queries, 30, "postgres to accept queries")

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            self._run([f"{PG_BINDIR}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "30", "stop"],
                      timeout=40, check=False)
        finally:
            if alive(self.pid):
                os.kill(self.pid, signal.SIGQUIT)
                wait_until(lambda: not alive(self.pid), 10, "postgres to exit after SIGQUIT")
            self.pid = None

    def restart(self, mode: str = "fast") -> None:
        """pg_ctl restart -m <mode> (immediate: every backend is killed at once)."""
        self._run([f"{PG_BINDIR}/pg_ctl", "-D", self.data, "-l", self.logfile, "-m", mode, "-w",
                   "-t", "60", "restart"], timeout=90)
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            self.pid = int(f.readline())
        wait_until(self._accepts_queries, 30, "postgres to accept queries after a restart")

    def _accepts_queries(self) -> bool:
        with self.connect() as conn:
            return conn.execute("select 1").fetchone()[0] == 1

    def log_tail(self, lines: int = 50) -> str:
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    # -- contents ------------------------------------------------------------------------
    def setup_objects(self) -> None:
        """Roles, databases and the pgbench tables every test may rely on."""
        with self.connect() as conn:
            for user, password in PASSWORDS.items():
                if user == "md5user":
                    conn.execute("set password_encryption = 'md5'")
                else:
                    conn.execute("set password_encryption = 'scram-sha-256'")
                conn.execute(f"create role {user} login password '{password}'")
            for db, owner in DATABASES.items():
                conn.execute(f"create database {db} owner {owner}")
            stored = conn.execute("select rolpassword from pg_authid where rolname='md5user'").fetchone()[0]
            assert stored == md5_secret("md5user", PASSWORDS["md5user"]), stored
        for db in DATABASES:
            with self.connect(db) as conn:
                conn.execute("grant all on schema public to public")
        self._run([f"{PG_BINDIR}/pgbench", "-i", "-s", "1", "-q", "-h", self.sockdir,
                   "-p", str(self.port), "-U", "app", "bench"])

    # -- queries (always straight to Postgres, as superuser, over the unix socket) ------------
    def connect(self, dbname: str = "postgres", **kw) -> psycopg.Connection:
        return psycopg.connect(host=self.sockdir, port=self.port, user="postgres", dbname=dbname,
                               autocommit=True, connect_timeout=5, **kw)

    def sql(self, query: str, params=None, dbname: str = "postgres") -> list[tuple]:
        with self.connect(dbname) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def server_conns(self, dbname: str | None = None, user: str | None = None, state: str | None = None) -> int:
        """Client backends (other than superuser sessions) for a database/user/state."""
        q = ("select count(*) from pg_stat_activity where backend_type = 'client backend'"
             " and usename <> 'postgres' and pid <> pg_backend_pid()")
        params = []
        for col, val in (("datname", dbname), ("usename", user), ("state", state)):
            if val is not None:
                q += f" and {col} = %s"
                params.append(val)
        return self.sql(q, params)[0][0]

    def wait_no_pooled_backends(self, timeout: float = 10.0) -> bool:
        """After a pooler stops: wait for its server backends to go; terminate stragglers."""
        try:
            wait_until(lambda: self.server_conns() == 0, timeout, "server backends to exit")
            return True
        except TimeoutError:
            self.sql("select pg_terminate_backend(pid) from pg_stat_activity"
                     " where backend_type = 'client backend' and usename <> 'postgres'")
            return False


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); pg_ctl's postgres is not our child.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
