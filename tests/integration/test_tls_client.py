# TLS between clients and the pooler: every client_tls_sslmode, direct TLS, channel binding,
# cancel requests over TLS, certificate reload while clients are connected.
import os
import shutil
import ssl
import subprocess
import time

import psycopg
import pytest

from sluice_it.postgres import PASSWORDS
from sluice_it.secrets import scram_secret
from sluice_it.tls import tls_client
from sluice_it.util import wait_until
from sluice_it.wire import ServerError, WireConn, cancel_request, query_message, startup_packet

pytestmark = pytest.mark.sluice_only("TLS settings need a PgBouncer built with TLS; checked by its own suite")


def tls_pooler(make_pooler, tls_certs, mode="require", cert="pooler1", ca="ca1", **settings):
    crt, key = tls_certs[cert]
    base = {"client_tls_sslmode": mode, "client_tls_cert_file": crt, "client_tls_key_file": key}
    if ca:
        base["client_tls_ca_file"] = tls_certs[ca].crt
    base.update(settings)
    return make_pooler(**base)


def psql(pooler, sql="select 1", user="app", dbname="appdb", password=None, unix=False,
         **conn) -> subprocess.CompletedProcess:
    """psql with libpq connection options (sslmode, sslrootcert, channel_binding, ...)."""
    host = pooler.settings["unix_socket_dir"] if unix else "localhost"
    parts = [f"host={host}", f"port={pooler.port}", f"user={user}", f"dbname={dbname}",
             "connect_timeout=10"]
    parts += [f"{k}={v}" for k, v in conn.items()]
    env = dict(pooler.env)
    pw = password if password is not None else PASSWORDS.get(user)
    if pw is not None:
        env["PGPASSWORD"] = pw
    return subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql,
                           " ".join(parts)], env=env, capture_output=True, text=True, timeout=30)


def connect(pooler, **kw) -> psycopg.Connection:
    kw.setdefault("host", "localhost")
    return pooler.connect(**kw)


def ssl_in_use(conn) -> bool:
    return conn.pgconn.ssl_in_use


# -- modes -------------------------------------------------------------------------------------

def test_disable_answers_n_and_serves_plaintext(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="disable")
    with pytest.raises(ConnectionError):
        tls_client(pooler.host, pooler.port).close()
    with connect(pooler, sslmode="prefer") as conn:
        assert not ssl_in_use(conn)
        assert conn.execute("select 1").fetchone() == (1,)
    assert psql(pooler, sslmode="require").returncode != 0


@pytest.mark.parametrize("mode", ["allow", "prefer"])
def test_allow_and_prefer_serve_both(make_pooler, tls_certs, mode):
    pooler = tls_pooler(make_pooler, tls_certs, mode=mode)
    with connect(pooler, sslmode="require") as conn:
        assert ssl_in_use(conn)
        assert conn.execute("select current_user").fetchone() == ("app",)
    with connect(pooler, sslmode="disable") as conn:
        assert not ssl_in_use(conn)
        assert conn.execute("select 1").fetchone() == (1,)


def test_require_refuses_plaintext_with_a_clean_fatal(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="require")
    with WireConn(pooler.host, pooler.port) as w:
        w.send(startup_packet("app", "appdb"))
        kind, body = w.read_message()
        assert kind == b"E"
        assert b"SSL required" in body and b"FATAL" in body
        assert w.read_until_closed(5) == []
    with connect(pooler, sslmode="require") as conn:
        assert ssl_in_use(conn)
    # The unix socket never uses TLS; require does not apply to it.
    assert psql(pooler, unix=True).stdout.strip() == "1"
    assert "closing because: SSL required" in pooler.log_text()


def test_require_verifies_with_the_pooler_certificate(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="require")
    ok = psql(pooler, "select current_user", sslmode="verify-full",
              sslrootcert=tls_certs["ca1"].crt)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "app"
    bad = psql(pooler, sslmode="verify-full", sslrootcert=tls_certs["ca2"].crt)
    assert bad.returncode != 0
    assert "certificate verify failed" in bad.stderr


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_verify_modes_need_a_client_certificate_from_the_ca(make_pooler, tls_certs, mode):
    pooler = tls_pooler(make_pooler, tls_certs, mode=mode)
    crt, key = tls_certs["client_app"]
    ok = psql(pooler, "select current_user", sslmode="require", sslcert=crt, sslkey=key)
    assert ok.returncode == 0, ok.stderr
    assert psql(pooler, sslmode="require").returncode != 0  # no certificate
    crt2, key2 = tls_certs["client_app_ca2"]
    assert psql(pooler, sslmode="require", sslcert=crt2, sslkey=key2).returncode != 0
    assert psql(pooler, sslmode="disable").returncode != 0
    assert "TLS handshake failed" in pooler.log_text()


def test_login_log_names_protocol_and_cipher(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, client_tls_protocols="tlsv1.2",
                        client_tls_ciphers="ECDHE-RSA-AES128-GCM-SHA256")
    with connect(pooler, sslmode="require") as conn:
        conn.execute("select 1")
    assert "tls=TLSv1.2/ECDHE-RSA-AES128-GCM-SHA256" in pooler.log_text()


def test_tls13_cipher_setting(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, client_tls_protocols="tlsv1.3",
                        client_tls13_ciphers="TLS_CHACHA20_POLY1305_SHA256")
    with connect(pooler, sslmode="require") as conn:
        conn.execute("select 1")
    assert "tls=TLSv1.3/TLS_CHACHA20_POLY1305_SHA256" in pooler.log_text()
    # A TLS 1.2-only client is refused.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        tls_client(pooler.host, pooler.port, maximum_version=ssl.TLSVersion.TLSv1_2).close()
    # An unknown suite keeps the working settings and says why.
    pooler.admin("SET client_tls13_ciphers = 'NO_SUCH_SUITE'")
    wait_until(lambda: "failed to set the TLSv1.3 cipher suites" in pooler.log_text(), 5, "log")
    with connect(pooler, sslmode="require") as conn:
        conn.execute("select 1")


# -- direct TLS (libpq 17 sslnegotiation=direct) ----------------------------------------------

def test_direct_tls_with_alpn_is_accepted(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs)
    sock = tls_client(pooler.host, pooler.port, alpn=["postgresql"], direct=True,
                      ca=tls_certs["ca1"].crt)
    assert sock.selected_alpn_protocol() == "postgresql"
    with WireConn(pooler.host, pooler.port, sock=sock) as w:
        w.login("app", "appdb", PASSWORDS["app"])
        assert w.query("select current_user") == [["app"]]


def test_direct_tls_without_alpn_is_refused(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs)
    sock = tls_client(pooler.host, pooler.port, direct=True)  # the handshake itself succeeds
    with WireConn(pooler.host, pooler.port, sock=sock) as w:
        msgs = w.read_until_closed(5)  # refused before any startup packet is read
    assert [kind for kind, _ in msgs] == [b"E"]
    assert b"without ALPN" in msgs[0][1]
    # A client that offers only other protocols fails the handshake (as Postgres 17).
    with pytest.raises((ssl.SSLError, OSError)):
        tls_client(pooler.host, pooler.port, alpn=["http/1.1"], direct=True).close()


def test_direct_tls_is_refused_when_tls_is_disabled(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="disable")
    with pytest.raises((ssl.SSLError, OSError)):
        tls_client(pooler.host, pooler.port, alpn=["postgresql"], direct=True).close()
    with connect(pooler) as conn:
        conn.execute("select 1")


# -- SCRAM-SHA-256-PLUS -------------------------------------------------------------------------

def test_psql_with_channel_binding_require(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, auth_type="scram-sha-256",
                        auth={"app": scram_secret(PASSWORDS["app"])})
    ok = psql(pooler, "select current_user", sslmode="require", channel_binding="require")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "app"
    wrong = psql(pooler, sslmode="require", channel_binding="require", password="wrong")
    assert wrong.returncode != 0
    # Without TLS there is nothing to bind to: libpq refuses, as against Postgres.
    plain = tls_pooler(make_pooler, tls_certs, mode="prefer", auth_type="scram-sha-256")
    refused = psql(plain, sslmode="disable", channel_binding="require")
    assert refused.returncode != 0
    assert psql(plain, sslmode="disable", channel_binding="disable").returncode == 0


def test_plus_is_offered_only_over_tls(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="prefer", auth_type="scram-sha-256")

    def mechanisms(w):
        w.send(startup_packet("app", "appdb"))
        kind, body = w.read_message()
        assert kind == b"R" and body[:4] == b"\0\0\0\x0a"
        return [m for m in body[4:].split(b"\0") if m]

    with WireConn(pooler.host, pooler.port) as w:
        assert mechanisms(w) == [b"SCRAM-SHA-256"]
    sock = tls_client(pooler.host, pooler.port)
    with WireConn(pooler.host, pooler.port, sock=sock) as w:
        assert mechanisms(w) == [b"SCRAM-SHA-256-PLUS", b"SCRAM-SHA-256"]


# -- cancel requests ----------------------------------------------------------------------------

def _start_sleep(w, pg, tag, seconds=5):
    """Send a sleep and wait until it runs on the server (a cancel before that would find
    nothing to cancel)."""
    w.send(query_message(f"select pg_sleep({seconds}) /* {tag} */"))
    started = time.monotonic()
    wait_until(lambda: pg.sql("select count(*) from pg_stat_activity where state = 'active'"
                              " and query like %s and pid <> pg_backend_pid()",
                              (f"%/* {tag} */%",))[0][0] == 1,
               10, f"the sleep {tag} to run on the server")
    return started


@pytest.mark.parametrize("cancel_over_tls", [True, False])
def test_cancel_reaches_a_tls_session_on_a_require_listener(make_pooler, pg, tls_certs,
                                                            cancel_over_tls):
    pooler = tls_pooler(make_pooler, tls_certs, mode="require")
    with WireConn(pooler.host, pooler.port, timeout=15,
                  sock=tls_client(pooler.host, pooler.port)) as w:
        w.login("app", "appdb", PASSWORDS["app"])
        pid, key = w.backend_key
        started = _start_sleep(w, pg, f"tls-cancel-{cancel_over_tls}", 30)
        # libpq's PQcancel sends the request in plaintext; PQcancelCreate (libpq 17) over TLS.
        sock = tls_client(pooler.host, pooler.port) if cancel_over_tls else None
        with WireConn(pooler.host, pooler.port, sock=sock) as c:
            c.send(cancel_request(pid, key))
            assert c.read_until_closed(5) == []
        with pytest.raises(ServerError) as exc:
            w.read_result(15)
        assert exc.value.fields["C"] == "57014"
        assert time.monotonic() - started < 20  # cancelled, not finished
        assert w.query("select 1") == [["1"]]


def test_cancel_with_a_wrong_key_does_nothing(make_pooler, pg, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="require")
    with WireConn(pooler.host, pooler.port, timeout=15,
                  sock=tls_client(pooler.host, pooler.port)) as w:
        w.login("app", "appdb", PASSWORDS["app"])
        pid, key = w.backend_key
        _start_sleep(w, pg, "tls-wrong-key", 30)
        for bad_pid, bad_key in ((pid, key ^ 0x100), (pid ^ 1, key), (pid, key ^ 0x7f000000)):
            with WireConn(pooler.host, pooler.port,
                          sock=tls_client(pooler.host, pooler.port)) as c:
                c.send(cancel_request(bad_pid, bad_key))
                assert c.read_until_closed(5) == []
        with pytest.raises(TimeoutError):
            w.read_message(timeout=0.5)  # proving a negative needs a bounded wait
        assert pg.sql("select count(*) from pg_stat_activity where state = 'active'"
                      " and query like '%/* tls-wrong-key */%' and pid <> pg_backend_pid()")[0][0] == 1, \
        "the sleep was cancelled"
        # The right key still works: the sleep was running all along.
        with WireConn(pooler.host, pooler.port, sock=tls_client(pooler.host, pooler.port)) as c:
            c.send(cancel_request(pid, key))
            assert c.read_until_closed(5) == []
        with pytest.raises(ServerError) as exc:
            w.read_result(15)
        assert exc.value.fields["C"] == "57014"


# -- reload -------------------------------------------------------------------------------------

def test_certificate_reload_keeps_connections_and_bad_files_keep_the_old_one(make_pooler,
                                                                             tls_certs):
    workdir_cert = {}

    def install(name):
        crt, key = tls_certs[name]
        for src, dst in ((crt, workdir_cert["crt"]), (key, workdir_cert["key"])):
            shutil.copyfile(src, dst + ".tmp")
            pooler.os_user.chown(dst + ".tmp")
            os.replace(dst + ".tmp", dst)

    pooler = make_pooler(start=False)
    workdir_cert["crt"] = os.path.join(pooler.dir, "server.crt")
    workdir_cert["key"] = os.path.join(pooler.dir, "server.key")
    install("pooler1")
    pooler.settings.update({"client_tls_sslmode": "require",
                            "client_tls_cert_file": workdir_cert["crt"],
                            "client_tls_key_file": workdir_cert["key"]})
    pooler.start()
    ca1, ca2 = tls_certs["ca1"].crt, tls_certs["ca2"].crt
    held = connect(pooler, sslmode="verify-full", sslrootcert=ca1)
    try:
        assert held.execute("select 1").fetchone() == (1,)
        install("pooler2")
        pooler.reload()
        wait_until(lambda: psql(pooler, sslmode="verify-full", sslrootcert=ca2).returncode == 0,
                   10, "the new certificate to be served")
        assert psql(pooler, sslmode="verify-full", sslrootcert=ca1).returncode != 0
        assert held.execute("select 2").fetchone() == (2,)  # the old session goes on

        # A broken certificate file: the running one stays, the log says why.
        with open(workdir_cert["crt"], "w") as f:
            f.write("not a certificate\n")
        pooler.os_user.chown(workdir_cert["crt"])
        offset = pooler.log_size()
        pooler.reload()
        wait_until(lambda: "keeping the previous TLS settings" in pooler.log_since(offset), 10,
                   "the reload to report the bad certificate")
        assert "cannot load certificate file" in pooler.log_since(offset)
        assert psql(pooler, sslmode="verify-full", sslrootcert=ca2).returncode == 0
        assert held.execute("select 3").fetchone() == (3,)
    finally:
        held.close()


def test_verify_mode_without_a_ca_file_fails_closed(make_pooler, tls_certs):
    pooler = tls_pooler(make_pooler, tls_certs, mode="verify-ca", ca=None)
    crt, key = tls_certs["client_app"]
    assert psql(pooler, sslmode="require", sslcert=crt, sslkey=key).returncode != 0
    assert "without client_tls_ca_file" in pooler.log_text()
