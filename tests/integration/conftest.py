# pytest fixtures: one PostgreSQL 15 per session, a factory of pooler processes per test.
import itertools
import os
import shutil
import subprocess
import tempfile

import pytest

from sluice_it.pooler import Pooler, PoolerBinary
from sluice_it.postgres import PgCluster
from sluice_it.util import OsUser, default_child_user

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_BIN = os.path.join(REPO, "build", "sluice")
_test_numbers = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "sluice_only(reason): needs behaviour PgBouncer 1.18 does not have")


def pytest_collection_modifyitems(config, items):
    if not _is_pgbouncer_env():
        return
    for item in items:
        mark = item.get_closest_marker("sluice_only")
        if mark:
            why = mark.args[0] if mark.args else "sluice-only behaviour"
            item.add_marker(pytest.mark.skip(reason=f"sluice only: {why}"))


def _is_pgbouncer_env() -> bool:
    flag = os.environ.get("POOLER_IS_PGBOUNCER")
    if flag is not None:
        return flag not in ("", "0", "false", "no")
    return os.path.basename(os.environ.get("SLUICE_BIN", DEFAULT_BIN)).startswith("pgbouncer")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for i, pooler in enumerate(getattr(item, "_sluice_poolers", [])):
            text = pooler.log_text()
            tail = "\n".join(text.splitlines()[-200:])
            rep.sections.append((f"pooler {i} log (last 200 lines, {pooler.dir})", tail))


@pytest.fixture(scope="session")
def tmp_root():
    root = tempfile.mkdtemp(prefix="sluice-it-")
    os.chmod(root, 0o755)
    yield root
    if os.environ.get("IT_KEEP_TMP"):
        print(f"\nkept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(tmp_root):
    """PostgreSQL 15 on a free TCP port, run as the `postgres` OS user when we are root."""
    cluster = PgCluster(tmp_root, default_child_user("PG_OS_USER"))
    cluster.init()
    cluster.start()
    try:
        cluster.setup_objects()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pooler_binary(tmp_root) -> PoolerBinary:
    path = os.path.abspath(os.environ.get("SLUICE_BIN", DEFAULT_BIN))
    if not os.path.isfile(path):
        raise RuntimeError(f"pooler binary {path} does not exist: build it (tools/test.sh) or set SLUICE_BIN")
    user = default_child_user("POOLER_OS_USER")
    version = _version(path, user)
    if version is None:
        # The pooler user cannot reach the binary (e.g. a checkout under /root): run a copy.
        bindir = user.makedirs(os.path.join(tmp_root, "bin"), 0o755)
        copy = os.path.join(bindir, os.path.basename(path))
        shutil.copy2(path, copy)
        os.chmod(copy, 0o755)
        path, version = copy, _version(copy, user) or ""
    is_pgb = _is_pgbouncer_env() or version.startswith("PgBouncer")
    return PoolerBinary(path, user, is_pgb, version)


def _version(path: str, user: OsUser) -> str | None:
    """First line of `BIN --version` as `user`; None when that user cannot execute it."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             cwd="/", **user.popen_kwargs())
    except PermissionError:
        return None
    lines = out.stdout.splitlines()
    return lines[0].strip() if lines else ""


@pytest.fixture
def is_pgbouncer(pooler_binary) -> bool:
    return pooler_binary.is_pgbouncer


@pytest.fixture
def make_pooler(request, pg, pooler_binary, tmp_root):
    """make_pooler(pool_mode=..., databases=..., users=..., auth=..., args=(), start=True, **settings).

    Settings are [pgbouncer] keys (value None removes a default). Every pooler is stopped by
    PID at teardown; one that died on its own during the test fails the test.
    """
    poolers: list[Pooler] = []
    request.node._sluice_poolers = poolers
    test_dir = os.path.join(tmp_root, f"{next(_test_numbers):03d}-{_safe(request.node.name)[:24]}")

    def factory(databases=None, users=None, auth=None, args=(), start=True, **settings):
        workdir = f"{test_dir}-{len(poolers)}"  # short: unix socket paths are capped at 107 bytes
        p = Pooler(pooler_binary, pg, workdir, settings, databases, users, auth)
        poolers.append(p)
        if start:
            p.start(*args)
        return p

    yield factory

    complaints = [c for c in (p.stop() for p in poolers) if c]
    pg.wait_no_pooled_backends()
    if complaints:
        pytest.fail("; ".join(complaints))


@pytest.fixture
def pooler(make_pooler):
    """A pooler in session mode with the default databases."""
    return make_pooler()


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name.removeprefix("test_"))


# -- TLS (test_tls_*.py, test_auth_*.py): certificates and a second cluster with ssl=on ----------

@pytest.fixture(scope="session")
def tls_certs(tmp_root, pooler_binary):
    """Two CAs (ca1, ca2) and leaf certificates made with openssl, readable by the pooler."""
    from sluice_it.tls import CertAuthority

    root = pooler_binary.os_user.makedirs(os.path.join(tmp_root, "certs"), 0o755)
    ca1 = CertAuthority(root, "ca1")
    ca2 = CertAuthority(root, "ca2")
    certs = {
        "ca1": ca1,
        "ca2": ca2,
        # the pooler's own certificate (clients verify "localhost" / 127.0.0.1)
        "pooler1": ca1.issue("pooler", "localhost", dns=("localhost",), ips=("127.0.0.1",)),
        "pooler2": ca2.issue("pooler", "localhost", dns=("localhost",), ips=("127.0.0.1",)),
        # client certificates (CN = user name)
        "client_app": ca1.issue("client-app", "app", client=True),
        "client_app2": ca1.issue("client-app2", "app2", client=True),
        "client_app_ca2": ca2.issue("client-app", "app", client=True),
        # sluice's certificate toward the TLS Postgres (role tlscert)
        "server_client": ca1.issue("to-server", "tlscert", client=True),
    }
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            pooler_binary.os_user.chown(os.path.join(dirpath, name))
        pooler_binary.os_user.chown(dirpath)
    return certs


@pytest.fixture(scope="session")
def pg_tls(tmp_root, tls_certs):
    """PostgreSQL 15 with ssl=on and scram-sha-256 (sluice_it/tls.py), separate from `pg`."""
    from sluice_it.tls import TlsPgCluster

    cluster = TlsPgCluster(os.path.join(tmp_root, "tls"), default_child_user("PG_OS_USER"),
                           tls_certs["ca1"])
    cluster.init()
    cluster.start()
    try:
        cluster.setup_objects()
        yield cluster
    finally:
        cluster.stop()
