// Concurrent node-postgres clients through the pooler; prints one JSON summary line for the test to check.
'use strict';

const { Client } = require('pg');

const cfg = JSON.parse(process.argv[2]);

async function runClient(k) {
  const client = new Client({
    host: cfg.host,
    port: cfg.port,
    user: cfg.user,
    password: cfg.password,
    database: cfg.database,
    connectionTimeoutMillis: 10000,
  });
  await client.connect();
  try {
    let checked = 0;
    for (let i = 0; i < cfg.queries; i++) {
      const simple = await client.query('select 1 as one, current_user as who');
      if (simple.rows[0].one !== 1 || simple.rows[0].who !== cfg.user) throw new Error('bad simple row');
      const v = k * 1000 + i;
      const param = await client.query('select $1::int + 1 as next, $2::text as label', [v, `c${k}`]);
      if (param.rows[0].next !== v + 1 || param.rows[0].label !== `c${k}`) throw new Error('bad param row');
      if (cfg.named) {
        const named = await client.query({ name: 'it_named', text: 'select $1::int * 2 as twice', values: [v] });
        if (named.rows[0].twice !== v * 2) throw new Error('bad named row');
      }
      checked++;
    }
    return checked;
  } finally {
    await client.end();
  }
}

async function main() {
  const results = await Promise.allSettled([...Array(cfg.clients).keys()].map(runClient));
  const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const errors = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
  console.log(JSON.stringify({ ok, errors }));
  process.exit(errors.length ? 1 : 0);
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: [], errors: [String(e)] }));
  process.exit(1);
});
