# TLS between the pooler and Postgres: every server_tls_sslmode against a server with ssl=on
# (and one without), CA and host name checks, a client certificate toward the server.
import time

import psycopg
import pytest

pytestmark = pytest.mark.sluice_only("the separate ssl=on cluster is only wired for sluice here")


def server_pooler(make_pooler, pg_tls, tls_certs, mode, host="127.0.0.1", dbname="appdb",
                  **settings):
    databases = {"tdb": f"host={host} port={pg_tls.port} dbname={dbname}"}
    base = {"server_tls_sslmode": mode, "server_login_retry": "1"}
    base.update(settings)
    # trust toward clients; the roles must be in the auth file (passwords are not used)
    auth = {"tlsonly": "unused", "tlscert": "unused"}
    return make_pooler(databases=databases, auth=auth, **base)


def ssl_of_backend(conn) -> bool:
    return conn.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()").fetchone()[0]


def who(pooler, user="app", dbname="tdb"):
    with pooler.connect(user=user, dbname=dbname) as conn:
        return conn.execute("select current_user").fetchone()[0], ssl_of_backend(conn)


def test_disable_never_asks_for_tls(make_pooler, pg_tls, tls_certs):
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "disable")
    assert who(pooler) == ("app", False)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        who(pooler, user="tlsonly")


def test_allow_tries_plaintext_then_tls(make_pooler, pg_tls, tls_certs):
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "allow")
    assert who(pooler) == ("app", False)
    assert who(pooler, user="tlsonly") == ("tlsonly", True)
    assert "retrying with TLS" in pooler.log_text()


def test_prefer_uses_tls_when_the_server_has_it(make_pooler, pg_tls, tls_certs):
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "prefer")
    assert who(pooler) == ("app", True)
    assert who(pooler, user="tlsonly") == ("tlsonly", True)


def test_prefer_falls_back_to_plaintext(make_pooler):
    pooler = make_pooler(server_tls_sslmode="prefer")  # the session server has ssl=off
    with pooler.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)


# TLS failures toward the server are not the server refusing the login: as in PgBouncer, the
# clients keep waiting while attempts are retried (a server may get its certificate fixed), and
# client_login_timeout ends the wait saying why.
def test_require_against_a_server_without_tls_keeps_clients_waiting(make_pooler):
    pooler = make_pooler(server_tls_sslmode="require", server_login_retry=1,
                         client_login_timeout=3)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError,
                       match=r"client_login_timeout \(server down: .*does not support TLS"):
        with pooler.connect() as conn:
            conn.execute("select 1")
    assert 2 < time.monotonic() - started < 8
    assert pooler.log_text().count("server does not support TLS") >= 2, "retried meanwhile"


def test_require_uses_tls_without_checking_the_certificate(make_pooler, pg_tls, tls_certs):
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "require",
                           server_tls_ca_file=tls_certs["ca2"].crt)  # wrong CA: not checked
    assert who(pooler) == ("app", True)


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_verify_with_the_right_ca(make_pooler, pg_tls, tls_certs, mode):
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, mode, host="localhost",
                           server_tls_ca_file=tls_certs["ca1"].crt)
    assert who(pooler) == ("app", True)


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_wrong_ca_keeps_clients_waiting_then_says_why(make_pooler, pg_tls, tls_certs, mode):
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, mode, host="localhost",
                           server_tls_ca_file=tls_certs["ca2"].crt, query_wait_timeout=30,
                           client_login_timeout=3)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError, match="client_login_timeout.*certificate verify"):
        who(pooler)
    assert 2 < time.monotonic() - started < 8
    assert "TLS handshake failed: certificate verify failed" in pooler.log_text()
    # With the right CA the next attempt succeeds and the next client is served.
    pooler.admin(f"SET server_tls_ca_file = '{tls_certs['ca1'].crt}'")
    assert who(pooler) == ("app", True)


def test_verify_full_checks_the_host_name(make_pooler, pg_tls, tls_certs):
    # The server's certificate names "localhost" only; 127.0.0.1 is not in it.
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "verify-full", host="127.0.0.1",
                           server_tls_ca_file=tls_certs["ca1"].crt, client_login_timeout=2)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        who(pooler)
    ca_only = server_pooler(make_pooler, pg_tls, tls_certs, "verify-ca", host="127.0.0.1",
                            server_tls_ca_file=tls_certs["ca1"].crt)
    assert who(ca_only) == ("app", True)


def test_client_certificate_toward_the_server(make_pooler, pg_tls, tls_certs):
    crt, key = tls_certs["server_client"]  # CN=tlscert; pg_hba: hostssl ... tlscert ... cert
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "verify-full", host="localhost",
                           server_tls_ca_file=tls_certs["ca1"].crt, server_tls_cert_file=crt,
                           server_tls_key_file=key)
    assert who(pooler, user="tlscert") == ("tlscert", True)
    without = server_pooler(make_pooler, pg_tls, tls_certs, "verify-full", host="localhost",
                            server_tls_ca_file=tls_certs["ca1"].crt)
    with pytest.raises(psycopg.OperationalError):
        who(without, user="tlscert")


def test_servers_move_between_workers_with_their_tls_session(make_pooler, pg_tls, tls_certs):
    """Server connections are handed between worker threads; the TLS session goes along."""
    pooler = server_pooler(make_pooler, pg_tls, tls_certs, "require", pool_mode="transaction",
                           default_pool_size=1, workers=4)
    conns = [pooler.connect(dbname="tdb") for _ in range(8)]
    try:
        for round_ in range(5):
            for c in conns:
                assert c.execute("select %s::int, (select ssl from pg_stat_ssl"
                                 " where pid = pg_backend_pid())", (round_,)).fetchone() == (round_, True)
    finally:
        for c in conns:
            c.close()
