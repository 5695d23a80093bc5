# Client authentication (auth_type x stored secret kind) and server login (md5, SCRAM) through the pooler.
import struct

import psycopg
import pytest

from sluice_it.postgres import PASSWORDS
from sluice_it.secrets import md5_secret, scram_secret
from sluice_it.wire import ServerError, WireConn, startup_packet

AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL = 0, 3, 5, 10

# Roles that exist on the server (trust over TCP there); the pooler's auth file stores their
# secret in one of three forms.
CLIENT_PASSWORDS = {"au_plain": "plain-pw", "au_md5": "md5-pw", "au_scram": "scram-pw"}
STORED = {
    "au_plain": CLIENT_PASSWORDS["au_plain"],
    "au_md5": md5_secret("au_md5", CLIENT_PASSWORDS["au_md5"]),
    "au_scram": scram_secret(CLIENT_PASSWORDS["au_scram"]),
}


@pytest.fixture(scope="module", autouse=True)
def auth_roles(pg):
    for role in CLIENT_PASSWORDS:
        pg.sql(f"do $$ begin if not exists (select from pg_roles where rolname = '{role}') then"
               f" create role {role} login; end if; end $$")


def _pooler(make_pooler, auth_type: str, **kw):
    return make_pooler(auth_type=auth_type, auth=dict(STORED), **kw)


def _first_auth_request(pooler, user: str, dbname: str = "appdb") -> int:
    with WireConn(pooler.host, pooler.port) as w:
        w.send(startup_packet(user, dbname))
        msg = w.read_message()
        assert msg is not None, "closed without an authentication request"
        kind, body = msg
        if kind == b"E":
            pytest.fail(f"error instead of an auth request: {body!r}")
        assert kind == b"R"
        return struct.unpack("!i", body[:4])[0]


def _login_error(pooler, user: str, password: str, dbname: str = "appdb") -> dict:
    with WireConn(pooler.host, pooler.port) as w:
        with pytest.raises(ServerError) as exc:
            w.login(user, dbname, password)
        # After an authentication failure the pooler closes the connection.
        assert w.read_until_closed(5) == []
        return exc.value.fields


def _who(pooler, user: str, password: str | None) -> str:
    with pooler.connect(user=user, password=password) as conn:
        return conn.execute("select current_user").fetchone()[0]


@pytest.mark.parametrize(
    "auth_type,user,expected_request",
    [
        ("md5", "au_plain", AUTH_MD5),
        ("md5", "au_md5", AUTH_MD5),
        ("md5", "au_scram", AUTH_SASL),  # a SCRAM secret can only be checked with SCRAM
        ("scram-sha-256", "au_plain", AUTH_SASL),
        ("scram-sha-256", "au_scram", AUTH_SASL),
        ("plain", "au_plain", AUTH_CLEARTEXT),
        ("plain", "au_md5", AUTH_CLEARTEXT),
        ("trust", "au_plain", AUTH_OK),
        ("trust", "au_scram", AUTH_OK),
    ],
)
def test_client_auth_accepts_right_password(make_pooler, auth_type, user, expected_request):
    pooler = _pooler(make_pooler, auth_type)
    assert _first_auth_request(pooler, user) == expected_request
    assert _who(pooler, user, CLIENT_PASSWORDS[user]) == user
    with WireConn(pooler.host, pooler.port) as w:  # the raw client too (SCRAM, md5, cleartext)
        w.login(user, "appdb", CLIENT_PASSWORDS[user])
        assert w.query("select current_user") == [[user]]


def test_trust_needs_no_password(make_pooler):
    pooler = _pooler(make_pooler, "trust")
    assert _who(pooler, "au_md5", None) == "au_md5"


WRONG_PASSWORD_CASES = [("md5", "au_plain"), ("md5", "au_md5"), ("md5", "au_scram"), ("scram-sha-256", "au_plain"),
                        ("scram-sha-256", "au_scram"), ("plain", "au_plain"), ("plain", "au_md5")]


@pytest.mark.parametrize("auth_type,user", WRONG_PASSWORD_CASES)
def test_wrong_password_is_refused(make_pooler, auth_type, user):
    pooler = _pooler(make_pooler, auth_type)
    fields = _login_error(pooler, user, "wrong-password")
    assert fields["S"] == "FATAL", fields
    with pytest.raises(psycopg.OperationalError):
        _who(pooler, user, "wrong-password")
    assert _who(pooler, user, CLIENT_PASSWORDS[user]) == user  # the pooler is still fine


@pytest.mark.sluice_only("PgBouncer reports failed authentication as 08P01; Postgres and sluice use 28P01")
@pytest.mark.parametrize("auth_type,user", WRONG_PASSWORD_CASES)
def test_wrong_password_is_28P01(make_pooler, auth_type, user):
    pooler = _pooler(make_pooler, auth_type)
    assert _login_error(pooler, user, "wrong-password")["C"] == "28P01"
    assert _login_error(pooler, "au_nobody", "wrong-password")["C"] == "28P01"


@pytest.mark.parametrize("auth_type", ["md5", "scram-sha-256", "plain"])
def test_failed_login_does_not_reveal_whether_the_user_exists(make_pooler, auth_type):
    pooler = _pooler(make_pooler, auth_type)
    known_user = "au_plain"
    unknown_user = "au_nobody"  # same length, so even the message length gives nothing away
    assert _first_auth_request(pooler, unknown_user) == _first_auth_request(pooler, known_user)
    known = _login_error(pooler, known_user, "wrong-password")
    unknown = _login_error(pooler, unknown_user, "wrong-password")
    assert known["C"] == unknown["C"]
    assert known["M"].replace(known_user, "U") == unknown["M"].replace(unknown_user, "U")
    assert "exist" not in unknown["M"].lower()


# -- server login ------------------------------------------------------------------------------

@pytest.mark.parametrize("server_user", ["md5user", "scramuser"])
def test_server_login_with_password_from_auth_file(make_pooler, server_user):
    pooler = make_pooler(pool_mode="transaction")  # auth file holds the plain passwords
    assert _who(pooler, server_user, PASSWORDS[server_user]) == server_user


@pytest.mark.parametrize("server_user", ["md5user", "scramuser"])
def test_server_login_with_password_in_database_entry(make_pooler, server_user):
    pooler = make_pooler(pool_mode="transaction", start=False)
    pooler.databases["forced"] = pooler.db_entry("appdb", user=server_user, password=PASSWORDS[server_user])
    pooler.start()
    with pooler.connect(dbname="forced") as conn:  # the client logs in as app (trust)
        assert conn.execute("select current_user, current_database()").fetchone() == (server_user, "appdb")


def test_server_login_with_md5_secret_from_auth_file(make_pooler):
    pooler = make_pooler(pool_mode="transaction", auth_type="md5",
                         auth={"md5user": md5_secret("md5user", PASSWORDS["md5user"])})
    assert _who(pooler, "md5user", PASSWORDS["md5user"]) == "md5user"


def test_server_scram_login_passes_through_client_scram_proof(make_pooler, pg):
    """The auth file holds the server's own SCRAM secret; the client's proof opens the server login."""
    secret = pg.sql("select rolpassword from pg_authid where rolname = 'scramuser'")[0][0]
    pooler = make_pooler(pool_mode="transaction", auth_type="scram-sha-256", auth={"scramuser": secret})
    assert _who(pooler, "scramuser", PASSWORDS["scramuser"]) == "scramuser"


def test_wrong_server_password_gives_client_an_error(make_pooler):
    pooler = make_pooler(pool_mode="transaction", auth={"md5user": "not-the-password"},
                         server_login_retry=1)
    with pytest.raises(psycopg.OperationalError):
        with pooler.connect(user="md5user", password="not-the-password") as conn:
            conn.execute("select 1")
