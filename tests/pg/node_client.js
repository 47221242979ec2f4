// node-postgres against duckstream's PostgreSQL endpoint (tests/api/pg.rs): the simple
// protocol without parameters, the extended one with them. Usage: node node_client.js PORT DB.
// Prints `ok` when every check held.
const assert = require('assert');
const { Client } = require('pg');

(async () => {
  const client = new Client({ host: '127.0.0.1', port: Number(process.argv[2]), database: process.argv[3], user: 'tester' });
  await client.connect();
  const simple = await client.query('SELECT id, name FROM people ORDER BY id');
  assert.deepStrictEqual(simple.rows, [
    { id: 1, name: 'Ada' }, { id: 2, name: 'Grace' }, { id: 3, name: null },
  ]);
  const params = await client.query('SELECT name, feeling FROM people WHERE id = $1', [2]);
  assert.deepStrictEqual(params.rows, [{ name: 'Grace', feeling: 'ok' }]);
  assert.strictEqual(params.fields[1].dataTypeID, 25);
  const typed = await client.query("SELECT 2::BIGINT AS big, 1.25::DOUBLE AS d, DATE '2024-01-02' AS day");
  assert.strictEqual(typed.rows[0].big, '2');
  assert.strictEqual(typed.rows[0].d, 1.25);
  assert.strictEqual(typed.rows[0].day.getFullYear(), 2024);
  await assert.rejects(client.query('SELECT * FROM nowhere'), (e) => e.code === '42P01');
  assert.strictEqual((await client.query('SELECT 7 AS seven')).rows[0].seven, 7);
  await client.end();
  console.log('ok');
})().catch((e) => { console.error(e); process.exit(1); });
