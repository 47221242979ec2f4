#!/usr/bin/env node
// How mosaic-core's unmodified socketConnector behaves at the edges, against a
// scripted local WebSocket server (ws, on 127.0.0.1:0):
// positional matching, error frames, text frames for arrow requests, a server
// that closes mid-batch, reconnection, a refused connection, and whether the
// URI (path + query string) reaches the server verbatim.
//
//   node tests/mosaic/socket_edges.mjs
// Prints {"cases":[...]}; exit 0 unless the harness itself fails.

import WebSocketImpl, { WebSocketServer } from 'ws';
import { socketConnector, decodeIPC, Coordinator } from '@uwdata/mosaic-core';
import { tableFromArrays, tableToIPC } from '@uwdata/flechette';

globalThis.WebSocket = WebSocketImpl;

const arrowBytes = n => tableToIPC(tableFromArrays({ n: Int32Array.of(n) }), { format: 'stream' });
const settle = p => p.then(
  v => ({ ok: true, value: v === undefined ? 'undefined' : v instanceof ArrayBuffer ? `ArrayBuffer(${v.byteLength}) n=${firstValue(v)}` : v }),
  e => ({ ok: false, reason: e instanceof Error ? `Error: ${e.message}` : typeof e === 'string' ? `string: ${e}` : `${e?.constructor?.name ?? typeof e}${e?.message ? `: ${e.message}` : ''}` })
);
const firstValue = v => { try { return decodeIPC(v).toArray()[0]?.n; } catch (e) { return `decode error: ${e.message}`; } };

async function withServer(onMessage, fn) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise(r => wss.on('listening', r));
  const seen = { connections: 0, urls: [], messages: [] };
  wss.on('connection', (ws, req) => {
    seen.connections++;
    seen.urls.push(req.url);
    ws.on('message', (data, isBinary) => {
      const msg = isBinary ? data : data.toString();
      seen.messages.push(msg);
      onMessage(ws, JSON.parse(msg), seen.messages.length - 1);
    });
  });
  const uri = `ws://127.0.0.1:${wss.address().port}`;
  try {
    return await fn(uri, seen);
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise(r => wss.close(r));
  }
}

async function main() {
  const cases = [];

  // 1. positional matching: the server answers in order; replies carry no id
  cases.push(await withServer((ws, q) => {
    if (q.type === 'exec') ws.send('{}');
    else if (q.sql.includes('fail')) ws.send(JSON.stringify({ error: 'boom: ' + q.sql }));
    else ws.send(arrowBytes(Number(q.sql.match(/\d+/)[0])));
  }, async (uri, seen) => {
    const c = socketConnector({ uri: `${uri}/v1/demo/mosaic?token=abc%20def&x=1` });
    const ps = [
      c.query({ type: 'arrow', sql: 'SELECT 1' }),
      c.query({ type: 'exec', sql: 'CREATE TABLE t AS SELECT 2' }),
      c.query({ type: 'arrow', sql: 'SELECT fail 3' }),
      c.query({ type: 'arrow', sql: 'SELECT 4' })
    ];
    const sentBeforeOpen = seen.messages.length;
    const r = await Promise.all(ps.map(settle));
    c._ws.close();
    return {
      case: 'in-order answers, exec {} and {"error"} text frames, URI with path and query string',
      urlSeenByServer: seen.urls[0], messagesSeenByServer: seen.messages,
      sentBeforeOpen, results: r
    };
  }));

  // 2. what is resolved for each frame kind (arrow request answered by text, exec answered by binary)
  cases.push(await withServer((ws, q, i) => {
    if (i === 0) ws.send('{"rows":[1,2]}');       // text, no "error" key
    else if (i === 1) ws.send(arrowBytes(7));      // binary for an exec
    else if (i === 2) ws.send('not json');         // text, not JSON
    else ws.send(JSON.stringify({ error: '' }));   // empty error string
  }, async uri => {
    const c = socketConnector({ uri });
    const r = await Promise.all([
      c.query({ type: 'arrow', sql: 'a' }), c.query({ type: 'exec', sql: 'b' }),
      c.query({ type: 'arrow', sql: 'c' }), c.query({ type: 'arrow', sql: 'd' })
    ].map(settle));
    c._ws.close();
    return { case: 'frame kinds: text without error -> resolve(undefined); binary -> ArrayBuffer; bad JSON -> reject(SyntaxError); {"error":""} -> resolve', results: r };
  }));

  // 3. the server closes the socket with requests outstanding, then a new query reconnects
  cases.push(await withServer((ws, q, i) => {
    if (i === 0) ws.send(arrowBytes(1));
    else if (i === 1) ws.close(1011, 'going away');
    else ws.send(arrowBytes(99));
  }, async (uri, seen) => {
    const c = socketConnector({ uri });
    const first = await Promise.all([
      c.query({ type: 'arrow', sql: 'SELECT 1' }),
      c.query({ type: 'arrow', sql: 'SELECT 2' }),
      c.query({ type: 'arrow', sql: 'SELECT 3' })
    ].map(settle));
    const after = await settle(c.query({ type: 'arrow', sql: 'SELECT 99' }));
    c._ws?.close();
    return { case: 'server closes mid-batch; next query reconnects lazily', first, after, connections: seen.connections };
  }));

  // 4. a request that is never answered: the connector has no timeout of its own
  cases.push(await withServer(() => {}, async (uri, seen) => {
    const c = socketConnector({ uri });
    const r = await settle(Promise.race([c.query({ type: 'arrow', sql: 'x' }), new Promise((_, rej) => setTimeout(() => rej('still pending after 300 ms'), 300))]));
    c._ws.close();
    return { case: 'request never answered (no timeout in the connector)', result: r, connections: seen.connections };
  }));

  // 4b. a frame the server sends on its own (a greeting, a progress note) is taken as the first answer
  {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise(r => wss.on('listening', r));
    wss.on('connection', ws => {
      ws.send('{"hello":"server"}');
      ws.on('message', data => ws.send(arrowBytes(Number(JSON.parse(data.toString()).sql.match(/\d+/)[0]))));
    });
    const logged = [];
    const orig = console.log;
    console.log = (...a) => logged.push(a.map(x => x instanceof ArrayBuffer ? `ArrayBuffer(${x.byteLength}) n=${firstValue(x)}` : String(x)).join(' '));
    const c = socketConnector({ uri: `ws://127.0.0.1:${wss.address().port}/` });
    const r = await Promise.all([c.query({ type: 'arrow', sql: 'SELECT 1' }), c.query({ type: 'arrow', sql: 'SELECT 2' })].map(settle));
    await new Promise(res => setTimeout(res, 200));
    console.log = orig;
    c._ws.close();
    for (const x of wss.clients) x.terminate();
    await new Promise(res => wss.close(res));
    cases.push({ case: 'unsolicited frame shifts every answer by one; the extra last answer is console.logged', results: r, logged });
  }

  // 5. connection refused
  {
    const c = socketConnector({ uri: 'ws://127.0.0.1:9/' });
    const r = await Promise.all([c.query({ type: 'arrow', sql: 'a' }), c.query({ type: 'arrow', sql: 'b' })].map(settle));
    cases.push({ case: 'connection refused: pending requests rejected with the error event (not an Error)', results: r });
  }

  // 6. through the Coordinator: what an error frame becomes for a client
  cases.push(await withServer((ws, q) => ws.send(JSON.stringify({ error: 'Catalog Error: nope' })), async uri => {
    const logs = [];
    const logger = { debug() {}, info() {}, log() {}, warn() {}, group() {}, groupCollapsed() {}, groupEnd() {}, error: (...a) => logs.push(a.map(x => x?.message ?? String(x)).join(' ')) };
    const c = socketConnector({ uri });
    const mc = new Coordinator(c, { logger });
    const r = await settle(mc.query('SELECT 1'));
    c._ws.close();
    return { case: 'coordinator.query rejects with the server error string', result: r };
  }));

  process.stdout.write(JSON.stringify({ cases }, null, 1) + '\n');
}

main().catch(err => { process.stderr.write(`harness failure: ${err.stack}\n`); process.exit(1); });
