#!/usr/bin/env node
// How many requests mosaic-core's Coordinator keeps in flight at once, and how an
// exec gates the requests behind it. A local server (HTTP for restConnector, ws for
// socketConnector, both on 127.0.0.1:0) holds every request until 100 ms pass with
// no new one arriving, then answers all it holds, and records the peak number held.
//
//   node tests/mosaic/pipeline_limit.mjs
// Prints {"rest":{...},"socket":{...}}; exit 0 unless the harness fails.

import { createServer } from 'node:http';
import WebSocketImpl, { WebSocketServer } from 'ws';
import { Coordinator, restConnector, socketConnector } from '@uwdata/mosaic-core';
import { tableFromArrays, tableToIPC } from '@uwdata/flechette';

globalThis.WebSocket = WebSocketImpl;
const answer = tableToIPC(tableFromArrays({ n: Int32Array.of(1) }), { format: 'stream' });
const quietLogger = { debug() {}, info() {}, log() {}, warn() {}, error() {}, group() {}, groupCollapsed() {}, groupEnd() {} };

/** Holds requests; flushes them all after 100 ms of quiet. */
function holder() {
  const held = [];
  const log = { peak: 0, arrivals: [] };
  let timer = null;
  return {
    log,
    hold(kind, reply) {
      held.push(reply);
      log.arrivals.push({ kind, inFlight: held.length });
      log.peak = Math.max(log.peak, held.length);
      clearTimeout(timer);
      timer = setTimeout(() => { for (const r of held.splice(0)) r(); }, 100);
    }
  };
}

async function scenario(connector) {
  const mc = new Coordinator(connector, { logger: quietLogger, cache: false, consolidate: false });
  // 100 distinct arrow queries, then an exec, then 5 more arrow queries
  const ps = [];
  for (let i = 0; i < 100; ++i) ps.push(mc.query(`SELECT ${i} AS n`));
  ps.push(mc.exec('CREATE TABLE t AS SELECT 1'));
  for (let i = 0; i < 5; ++i) ps.push(mc.query(`SELECT ${1000 + i} AS n`));
  const results = await Promise.allSettled(ps);
  return results.filter(r => r.status === 'fulfilled').length;
}

function summarize(log) {
  // where did the exec arrive, and how many were in flight then / right after
  const i = log.arrivals.findIndex(a => a.kind === 'exec');
  return {
    peakInFlight: log.peak,
    arrivals: log.arrivals.length,
    execArrivedAs: i + 1,
    inFlightWhenExecArrived: log.arrivals[i]?.inFlight,
    firstArrivalsAfterExec: log.arrivals.slice(i + 1, i + 3)
  };
}

async function restCase() {
  const h = holder();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', c => { body += c; });
    req.on('end', () => {
      const q = JSON.parse(body);
      h.hold(q.type, () => q.type === 'exec' ? res.end() : res.end(answer));
    });
  });
  // undici's default pool allows unlimited connections per origin, so the
  // limit seen here is mosaic's own
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const fulfilled = await scenario(restConnector({ uri: `http://127.0.0.1:${server.address().port}/` }));
  server.closeAllConnections();
  server.close();
  return { fulfilled, ...summarize(h.log) };
}

async function socketCase() {
  const h = holder();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise(r => wss.on('listening', r));
  wss.on('connection', ws => ws.on('message', data => {
    const q = JSON.parse(data.toString());
    h.hold(q.type, () => ws.send(q.type === 'exec' ? '{}' : answer));
  }));
  const c = socketConnector({ uri: `ws://127.0.0.1:${wss.address().port}/` });
  const fulfilled = await scenario(c);
  c._ws?.close();
  for (const x of wss.clients) x.terminate();
  await new Promise(r => wss.close(r));
  return { fulfilled, ...summarize(h.log) };
}

const out = { rest: await restCase(), socket: await socketCase() };
process.stdout.write(JSON.stringify(out, null, 1) + '\n');
