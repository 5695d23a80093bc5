# SCRAM pass-through end to end: sluice holds only the server's SCRAM secret (auth file), the
# client authenticates with SCRAM-SHA-256-PLUS over TLS, sluice logs in to a TLS Postgres with
# the keys the client's proof revealed. No plaintext password is in any of sluice's files.
import os
import subprocess

import pytest

pytestmark = pytest.mark.sluice_only("channel binding toward clients is sluice's")


def test_channel_bound_client_and_scram_pass_through_over_tls(make_pooler, pg_tls, tls_certs):
    secret = pg_tls.sql("select rolpassword from pg_authid where rolname = 'scram_tls'")[0][0]
    assert secret.startswith("SCRAM-SHA-256$")
    crt, key = tls_certs["pooler1"]
    pooler = make_pooler(
        databases={"tdb": f"host=localhost port={pg_tls.port} dbname=appdb"},
        auth={"scram_tls": secret},
        auth_type="scram-sha-256", pool_mode="transaction",
        client_tls_sslmode="require", client_tls_cert_file=crt, client_tls_key_file=key,
        server_tls_sslmode="verify-full", server_tls_ca_file=tls_certs["ca1"].crt)
    env = dict(pooler.env, PGPASSWORD="scram-tls-pw")
    conninfo = (f"host=localhost port={pooler.port} user=scram_tls dbname=tdb sslmode=verify-full "
                f"sslrootcert={tls_certs['ca1'].crt} channel_binding=require connect_timeout=10")
    sql = "select current_user, ssl from pg_stat_ssl where pid = pg_backend_pid()"
    for _ in range(2):  # a new server login, then a pooled one
        out = subprocess.run(["psql", "-X", "-A", "-t", "-c", sql, conninfo], env=env,
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "scram_tls|t"
    # A wrong password is refused before any server is involved.
    bad = subprocess.run(["psql", "-X", "-c", "select 1", conninfo],
                         env=dict(env, PGPASSWORD="nope"), capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode != 0 and "SASL authentication failed" in bad.stderr
    for name in os.listdir(pooler.dir):
        path = os.path.join(pooler.dir, name)
        if os.path.isfile(path):
            with open(path, errors="replace") as f:
                assert "scram-tls-pw" not in f.read(), name
