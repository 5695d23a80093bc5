# auth_type = hba: pg_hba.conf rules choose the method per connection; refusals are logged with
# the rule that refused, clients are told only what Postgres would tell them.
import os
import struct
import subprocess

import psycopg
import pytest

from sluice_it.postgres import PASSWORDS
from sluice_it.secrets import md5_secret
from sluice_it.tls import tls_client
from sluice_it.util import wait_until
from sluice_it.wire import ServerError, WireConn, startup_packet

pytestmark = pytest.mark.sluice_only("PgBouncer's hba support is checked by its own suite")

AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL = 0, 3, 5, 10

RULES = """\
# comments and blank lines are fine
local   all       all                         trust
host    all       nobody_here  127.0.0.1/32   reject
host    db2       all          127.0.0.1/32   reject
hostssl all       app2         127.0.0.1/32   cert
hostnossl all     app2         0.0.0.0/0      reject
host    all       md5user      127.0.0.0      255.0.0.0   md5
host    all       scramuser    127.0.0.1/32   scram-sha-256
host    all       app          10.0.0.0/8     trust
host    "appdb","bench"  app,"x y"   127.0.0.1/32   password
"""


def hba_pooler(make_pooler, rules=RULES, files=None, **settings):
    pooler = make_pooler(start=False, auth_type="hba", **settings)
    path = os.path.join(pooler.dir, "hba.conf")
    pooler._write(path, rules)
    for name, text in (files or {}).items():
        pooler._write(os.path.join(pooler.dir, name), text)
    pooler.settings["auth_hba_file"] = path
    pooler.start()
    return pooler


def first_request(pooler, user, dbname="appdb") -> tuple[bytes, bytes]:
    with WireConn(pooler.host, pooler.port) as w:
        w.send(startup_packet(user, dbname))
        kind, body = w.read_message()
        return kind, body


def auth_code(pooler, user, dbname="appdb") -> int:
    kind, body = first_request(pooler, user, dbname)
    assert kind == b"R", body
    return struct.unpack("!i", body[:4])[0]


def refusal(pooler, user, dbname="appdb") -> dict:
    with WireConn(pooler.host, pooler.port) as w:
        with pytest.raises(ServerError) as exc:
            w.login(user, dbname, "whatever")
        return exc.value.fields


def test_rules_choose_the_method(make_pooler):
    pooler = hba_pooler(make_pooler)
    assert auth_code(pooler, "app") == AUTH_CLEARTEXT        # last rule: password
    assert auth_code(pooler, "md5user") == AUTH_MD5          # address with a separate mask
    assert auth_code(pooler, "scramuser") == AUTH_SASL
    for user in ("app", "md5user", "scramuser"):
        with pooler.connect(user=user) as conn:
            assert conn.execute("select current_user").fetchone() == (user,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pooler.connect(user="app", password="wrong")


def test_reject_rule_is_logged_with_its_line(make_pooler):
    pooler = hba_pooler(make_pooler)
    fields = refusal(pooler, "app", "db2")
    assert fields["C"] == "28000"
    assert fields["M"] == ('pg_hba.conf rejects connection for host "127.0.0.1", user "app",'
                           ' database "db2", SSL off')
    log = pooler.log_text()
    assert "db2/app@127.0.0.1" in log and "rejected by" in log and "hba.conf line 4" in log


def test_no_matching_rule_refuses(make_pooler):
    pooler = hba_pooler(make_pooler)
    fields = refusal(pooler, "au_nobody")
    assert fields["C"] == "28000"
    assert fields["M"].startswith('no pg_hba.conf entry for host "127.0.0.1", user "au_nobody"')
    assert "no rule in auth_hba_file matches" in pooler.log_text()
    # app from 127.0.0.1 to db2 hits the reject rule; to a database not in any list, nothing.
    assert refusal(pooler, "app", "postgres")["M"].startswith("no pg_hba.conf entry")


def test_hostnossl_and_hostssl(make_pooler, tls_certs):
    crt, key = tls_certs["pooler1"]
    pooler = hba_pooler(make_pooler, client_tls_sslmode="prefer", client_tls_cert_file=crt,
                        client_tls_key_file=key, client_tls_ca_file=tls_certs["ca1"].crt)
    # app2 without TLS: hostnossl reject.
    assert refusal(pooler, "app2")["M"].startswith("pg_hba.conf rejects connection")
    # app2 over TLS: hostssl cert; with a certificate for "app2" it gets in.
    ccrt, ckey = tls_certs["client_app2"]
    sock = tls_client(pooler.host, pooler.port, cert=(ccrt, ckey))
    with WireConn(pooler.host, pooler.port, sock=sock) as w:
        w.login("app2", "appdb")
        assert w.query("select current_user") == [["app2"]]
    # ... and with a certificate for someone else it does not.
    ccrt, ckey = tls_certs["client_app"]
    sock = tls_client(pooler.host, pooler.port, cert=(ccrt, ckey))
    with WireConn(pooler.host, pooler.port, sock=sock) as w:
        with pytest.raises(ServerError) as exc:
            w.login("app2", "appdb")
        assert exc.value.fields["M"] == 'certificate authentication failed for user "app2"'
    assert "TLS certificate name mismatch" in pooler.log_text()


def test_local_rules_apply_to_the_unix_socket(make_pooler):
    pooler = hba_pooler(make_pooler)
    out = pooler.psql("select current_user", user="app", unix=True, password="")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "app"


def test_peer_with_a_user_map(make_pooler, pooler_binary):
    os_user = pooler_binary.os_user.name
    rules = "local all all peer map=m\nhost all all 127.0.0.1/32 reject\n"
    pooler = hba_pooler(make_pooler, rules=rules, auth_ident_file="ident.conf",
                        files={"ident.conf": f"m {os_user} app\n"})
    ok = pooler.psql("select current_user", user="app", unix=True, as_pooler_user=True)
    assert ok.returncode == 0, ok.stderr
    denied = pooler.psql("select 1", user="app2", unix=True, as_pooler_user=True)
    assert denied.returncode != 0
    assert 'peer authentication failed for user "app2"' in denied.stderr
    assert "ident map m cannot be matched" in pooler.log_text()


def test_broken_file_refuses_everybody_and_says_why(make_pooler):
    pooler = hba_pooler(make_pooler, rules="host all all 127.0.0.1/33 trust\n")
    assert refusal(pooler, "app")["M"].startswith("no pg_hba.conf entry")
    log = pooler.log_text()
    assert "invalid address" in log and "every login is refused" in log


def test_reload_changes_the_rules(make_pooler):
    pooler = hba_pooler(make_pooler)
    assert auth_code(pooler, "app") == AUTH_CLEARTEXT
    pooler._write(os.path.join(pooler.dir, "hba.conf"), "host all all 127.0.0.1/32 md5\n")
    offset = pooler.log_size()
    pooler.reload()
    wait_until(lambda: "configuration reloaded" in pooler.log_since(offset), 5, "reload")
    assert auth_code(pooler, "app") == AUTH_MD5


def test_failures_say_which_rule_not_why_the_password_was_wrong(make_pooler):
    pooler = hba_pooler(make_pooler, auth={"md5user": md5_secret("md5user", PASSWORDS["md5user"])})
    fields = refusal(pooler, "md5user")
    assert fields["C"] == "28P01"
    log = pooler.log_text()
    assert "whatever" not in log  # the password tried
    assert PASSWORDS["md5user"] not in log
    assert md5_secret("md5user", PASSWORDS["md5user"]) not in log
