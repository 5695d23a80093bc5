# Real drivers through the pooler: asyncpg (prepared statements) and node-postgres, 10 clients at once.
import asyncio
import json
import os
import subprocess

import asyncpg
import pytest

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")


async def _asyncpg_client(pooler, k: int, queries: int) -> int:
    info = pooler.conninfo()
    conn = await asyncpg.connect(host=info["host"], port=info["port"], user=info["user"],
                                 password=info["password"], database=info["dbname"], timeout=10)
    try:
        stmt = await conn.prepare("select $1::int + $2::int")
        for i in range(queries):
            assert await stmt.fetchval(k, i) == k + i
            # asyncpg's statement cache prepares these behind the scenes, too.
            row = await conn.fetchrow("select $1::text as label, $2::int8 as n", f"c{k}", i)
            assert (row["label"], row["n"]) == (f"c{k}", i)
        async with conn.transaction():
            await conn.execute("create temp table if not exists t(x int)")
            await conn.executemany("insert into t values ($1)", [(i,) for i in range(20)])
            assert await conn.fetchval("select count(*) from t") == 20
        return queries
    finally:
        await conn.close()


def test_asyncpg_session_mode_prepared_statements(make_pooler):
    pooler = make_pooler(pool_mode="session", default_pool_size=10)

    async def main():
        return await asyncio.gather(*(_asyncpg_client(pooler, k, 30) for k in range(10)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert results == [30] * 10, results


def test_asyncpg_session_mode_more_clients_than_pool(make_pooler):
    """Clients beyond pool_size wait for a server and then get served (session mode queues)."""
    pooler = make_pooler(pool_mode="session", default_pool_size=3)

    async def main():
        return await asyncio.gather(*(_asyncpg_client(pooler, k, 5) for k in range(10)),
                                    return_exceptions=True)

    results = asyncio.run(main())
    assert results == [5] * 10, results


@pytest.mark.parametrize("mode,named", [("session", True), ("transaction", False)])
def test_node_postgres_simple_and_parameterized(make_pooler, mode, named):
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "pg")):
        pytest.fail(f"node-postgres is not installed: run `npm ci` in {NODE_DIR} (tools/install-deps.sh does)")
    pooler = make_pooler(pool_mode=mode, default_pool_size=4 if mode == "transaction" else 10)
    info = pooler.conninfo()
    cfg = {"host": info["host"], "port": info["port"], "user": info["user"], "password": info["password"],
           "database": info["dbname"], "clients": 10, "queries": 30, "named": named}
    out = subprocess.run(["node", os.path.join(NODE_DIR, "clients.js"), json.dumps(cfg)], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary == {"ok": [30] * 10, "errors": []}
