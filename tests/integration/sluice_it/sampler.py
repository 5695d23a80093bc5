# Samples, every few ms, how many server connections a pooler holds open to Postgres, per database/user.
import threading
import time
from collections import Counter

from .postgres import PgCluster

_ESTABLISHED = "01"


def established_client_ports(server_port: int) -> set[int]:
    """Local ports of ESTABLISHED TCP sockets whose remote end is 127.0.0.1:server_port."""
    ports = set()
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if state != _ESTABLISHED:
                continue
            rhost, rport = remote.split(":")
            if int(rport, 16) == server_port and rhost == "0100007F":
                ports.add(int(local.split(":")[1], 16))
    return ports


class ServerConnSampler(threading.Thread):
    """Counts server connections that are open on both ends at the sample instant.

    A backend listed in pg_stat_activity whose client port is still ESTABLISHED on the
    pooler's side (read after the listing) was open throughout the gap between the two reads,
    so each sample is a lower bound of the connections open at one instant. A connection
    the pooler already closed is not counted even while its backend is still exiting.
    """

    def __init__(self, pg: PgCluster, interval: float = 0.003):
        super().__init__(daemon=True)
        self.pg = pg
        self.interval = interval
        self.stop_event = threading.Event()
        self.samples = 0
        self.max_by_pool: Counter = Counter()
        self.max_by_db: Counter = Counter()
        self.max_by_user: Counter = Counter()
        self.max_total = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with self.pg.connect() as conn:
                while not self.stop_event.is_set():
                    rows = conn.execute(
                        "select client_port, datname, usename from pg_stat_activity"
                        " where backend_type = 'client backend' and client_port > 0"
                    ).fetchall()
                    open_ports = established_client_ports(self.pg.port)
                    live = [(db, user) for port, db, user in rows if port in open_ports]
                    self._record(live)
                    self.stop_event.wait(self.interval)
        except Exception as exc:  # noqa: BLE001 - surfaced by stop()
            self.error = exc

    def _record(self, live: list[tuple[str, str]]) -> None:
        self.samples += 1
        for counter, keys in (
            (self.max_by_pool, live),
            (self.max_by_db, [db for db, _ in live]),
            (self.max_by_user, [user for _, user in live]),
        ):
            for key, n in Counter(keys).items():
                counter[key] = max(counter[key], n)
        self.max_total = max(self.max_total, len(live))

    def __enter__(self):
        self.start()
        deadline = time.monotonic() + 5
        while self.samples == 0 and self.error is None and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.join(10)
        if self.error is not None and exc[0] is None:
            raise self.error
