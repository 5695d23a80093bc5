# Certificates made with the openssl CLI at test time, and a PostgreSQL cluster with ssl=on.
import os
import shutil
import socket
import ssl
import struct
import subprocess

from .postgres import PgCluster
from .util import OsUser

SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _openssl(*args: str, cwd: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class CertAuthority:
    """A root CA in `dir`/<name>; issues leaf certificates (RSA 2048, SHA-256)."""

    def __init__(self, root: str, name: str):
        self.dir = os.path.join(root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.name = name
        self.crt = os.path.join(self.dir, "ca.crt")
        self.key = os.path.join(self.dir, "ca.key")
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2",
                 "-subj", f"/CN=sluice test {name}", "-keyout", self.key, "-out", self.crt,
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=self.dir)
        self._serial = 1

    def issue(self, stem: str, cn: str, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
              client: bool = False) -> tuple[str, str]:
        """(crt, key) paths of a new leaf certificate for `cn`."""
        key = os.path.join(self.dir, f"{stem}.key")
        csr = os.path.join(self.dir, f"{stem}.csr")
        crt = os.path.join(self.dir, f"{stem}.crt")
        ext = os.path.join(self.dir, f"{stem}.ext")
        sans = [f"DNS:{d}" for d in dns] + [f"IP:{i}" for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write(f"extendedKeyUsage={'clientAuth' if client else 'serverAuth,clientAuth'}\n")
            if sans:
                f.write("subjectAltName=" + ",".join(sans) + "\n")
        _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", key, "-out", csr, cwd=self.dir)
        self._serial += 1
        _openssl("x509", "-req", "-in", csr, "-CA", self.crt, "-CAkey", self.key,
                 "-set_serial", str(self._serial), "-days", "2", "-sha256",
                 "-extfile", ext, "-out", crt, cwd=self.dir)
        os.chmod(key, 0o600)
        return crt, key


def give_to(user: OsUser, *paths: str) -> None:
    """Make files readable by `user` (Postgres insists on owning its key with mode 0600)."""
    for p in paths:
        user.chown(p)


def copy_for(user: OsUser, src: str, dst_dir: str) -> str:
    """A copy of `src` in `dst_dir` owned by `user`, mode 0600."""
    dst = os.path.join(dst_dir, os.path.basename(src))
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o600)
    user.chown(dst)
    return dst


TLS_HBA = """\
local all all trust
hostssl all tlscert 127.0.0.1/32 cert
hostnossl all tlsonly 127.0.0.1/32 reject
hostssl all tlsonly 127.0.0.1/32 trust
host all scram_tls 127.0.0.1/32 scram-sha-256
host all aq_scram 127.0.0.1/32 scram-sha-256
host all aq_md5 127.0.0.1/32 md5
host all aq_expired 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""

# auth_query: a low-privilege login role that may only call a SECURITY DEFINER function owned
# by the superuser (PgBouncer's documented setup).
AUTH_QUERY_SETUP = """
create role authq login;
create function public.sluice_lookup(p_user text, out uname name, out secret text)
  returns setof record language sql security definer set search_path = pg_catalog as $$
    select rolname, case when rolvaliduntil < now() then null else rolpassword end
      from pg_authid where rolname = p_user and rolcanlogin
  $$;
revoke all on function public.sluice_lookup(text) from public;
grant execute on function public.sluice_lookup(text) to authq;
create function public.sluice_slow_lookup(p_user text, out uname name, out secret text)
  returns setof record language sql security definer set search_path = pg_catalog as $$
    select rolname, rolpassword from pg_authid, pg_sleep(2.5) where rolname = p_user
  $$;
revoke all on function public.sluice_slow_lookup(text) from public;
grant execute on function public.sluice_slow_lookup(text) to authq;
"""


class TlsPgCluster(PgCluster):
    """A second PostgreSQL 15 with ssl=on (certificate for "localhost" from `ca`) and an hba
    that has TLS-only and client-certificate roles. Roles: app (trust), tlsonly (TLS only),
    tlscert (client certificate), scram_tls (scram-sha-256)."""

    ROLES = {"app": None, "tlsonly": None, "tlscert": None, "scram_tls": "scram-tls-pw",
             "aq_scram": "aq-scram-pw", "aq_md5": "aq-md5-pw", "aq_expired": "aq-expired-pw"}

    def __init__(self, root: str, os_user: OsUser, ca: CertAuthority):
        super().__init__(root, os_user)
        self.ca = ca

    def init(self) -> None:
        super().init()
        crt, key = self.ca.issue("pg-server", "localhost", dns=("localhost",))
        crt = copy_for(self.os_user, crt, self.data)
        key = copy_for(self.os_user, key, self.data)
        ca = copy_for(self.os_user, self.ca.crt, self.data)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write(f"ssl = on\nssl_cert_file = '{crt}'\nssl_key_file = '{key}'\n"
                    f"ssl_ca_file = '{ca}'\n")
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write(TLS_HBA)

    def setup_objects(self) -> None:
        with self.connect() as conn:
            for role, pw in self.ROLES.items():
                enc = "md5" if role == "aq_md5" else "scram-sha-256"
                conn.execute(f"set password_encryption = '{enc}'")
                conn.execute(f"create role {role} login" + (f" password '{pw}'" if pw else ""))
            conn.execute("alter role aq_expired valid until '1999-01-01'")
            conn.execute("create database appdb owner app")
        for db in ("appdb", "postgres"):
            with self.connect(db) as conn:
                conn.execute(AUTH_QUERY_SETUP if db == "appdb" else
                             AUTH_QUERY_SETUP.replace("create role authq login;", ""))


def tls_client(host: str, port: int, ca: str | None = None, alpn: list[str] | None = None,
               cert: tuple[str, str] | None = None, direct: bool = False,
               timeout: float = 5.0, **ctx_opts) -> ssl.SSLSocket:
    """A TLS socket to a pooler: SSLRequest first unless `direct` (libpq 17 sslnegotiation)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(*cert)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    for k, v in ctx_opts.items():
        setattr(ctx, k, v)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if not direct:
            sock.sendall(SSL_REQUEST)
            answer = sock.recv(1)
            if answer != b"S":
                raise ConnectionError(f"pooler answered {answer!r} to SSLRequest")
        return ctx.wrap_socket(sock, server_hostname="localhost")
    except BaseException:
        sock.close()
        raise
