#!/usr/bin/env node
// Mosaic client harness: drives a Mosaic server (duckdb-server, or duckstream's
// Mosaic endpoint) with @uwdata/mosaic-core's own, unmodified connectors.
//
//   node tests/mosaic/client.mjs <rest|socket> <uri> <requests.json> [--wire]
//     requests.json: [{"type": "arrow"|"exec"|"json", "sql": "..."}, ...]
//     Sends every request at once (pipelined, as the coordinator does) and
//     prints {"results": [...]} in request order, one entry per request:
//       arrow/json: {"ok":true,"rows":N,"columns":[...],"types":[...],"first":[...]}
//       exec:       {"ok":true}
//       failure:    {"ok":false,"error":"message"}
//
//   node tests/mosaic/client.mjs <rest|socket> <uri> --crossfilter [--no-preagg] [--table=parcels] [--wire]
//     Runs a mosaic-core Coordinator with two MosaicClients (a histogram of
//     `area` and a 2-D lon/lat bin count) filtered by one
//     Selection.crossfilter(), publishes interval selections from each in turn
//     and prints {"preagg":bool,"sql":[every request sent, in order],"steps":[...],"errors":[...]}.
//
// <uri> is handed to the connector verbatim (e.g. http://127.0.0.1:3000/ or
// http://127.0.0.1:8080/v1/demo/mosaic?token=T; ws://... for socket).
// --wire adds "wire": the requests as they went on the wire (URL, method,
// headers, body; for the socket: the URL it opened and each frame).
//
// Exit status: 0 when every request got an answer (failed queries are data),
// 2 on bad usage, 3 when some request got no answer in time
// (MOSAIC_TIMEOUT_MS, default 60000), 1 on any other harness failure.

import { readFileSync } from 'node:fs';
import WebSocketImpl from 'ws';
import {
  Coordinator, MosaicClient, Selection, clauseInterval, clauseIntervals,
  decodeIPC, restConnector, socketConnector
} from '@uwdata/mosaic-core';
import { Query, count, floor, div, sub, mul, literal, column } from '@uwdata/mosaic-sql';
import { Type, TimeUnit, DateUnit, IntervalUnit, Precision } from '@uwdata/flechette';

const TIMEOUT_MS = Number(process.env.MOSAIC_TIMEOUT_MS || 60000);
// stdout carries only the result JSON: socketConnector console.logs frames that
// arrive with nothing queued, so send console.log to stderr
console.log = (...args) => console.error('[console.log]', ...args);
const wire = [];

function usage(msg) {
  process.stderr.write(`${msg}\nusage: client.mjs <rest|socket> <uri> <requests.json> [--wire]\n` +
    `       client.mjs <rest|socket> <uri> --crossfilter [--no-preagg] [--table=NAME] [--wire]\n`);
  process.exit(2);
}

// ---- wire recording (wraps the globals the connectors use; connectors untouched)

function installWireRecorders() {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init = {}) => {
    const entry = {
      transport: 'http', url: String(url), method: init.method ?? 'GET',
      headers: init.headers ?? {}, mode: init.mode, credentials: init.credentials,
      body: typeof init.body === 'string' ? init.body : init.body == null ? null : `[${typeof init.body}]`
    };
    wire.push(entry);
    const res = await realFetch(url, init);
    entry.status = res.status;
    entry.contentType = res.headers.get('content-type');
    return res;
  };

  class RecordingWebSocket extends WebSocketImpl {
    constructor(url, protocols) {
      super(url, protocols);
      wire.push({ transport: 'ws', event: 'open-request', url: String(url) });
      this.on('message', (data, isBinary) => {
        wire.push({ transport: 'ws', event: 'recv', binary: isBinary, bytes: data.length ?? data.byteLength,
          text: isBinary ? undefined : data.toString().slice(0, 500) });
      });
      this.on('close', (code, reason) => {
        wire.push({ transport: 'ws', event: 'close', code, reason: reason.toString() });
      });
    }
    send(data, ...rest) {
      wire.push({ transport: 'ws', event: 'send', text: String(data) });
      return super.send(data, ...rest);
    }
  }
  globalThis.WebSocket = RecordingWebSocket;
}

// ---- result formatting

const typeNames = Object.fromEntries(Object.entries(Type).map(([k, v]) => [v, k]));
const keyOf = (obj, v) => Object.keys(obj).find(k => obj[k] === v) ?? String(v);

/** Arrow type as a string, in apache-arrow JS DataType.toString() style. */
export function typeString(t) {
  switch (t.typeId) {
    case Type.Int: return `${t.signed ? 'Int' : 'Uint'}${t.bitWidth}`;
    case Type.Float: return ['Float16', 'Float32', 'Float64'][t.precision] ?? `Float<${keyOf(Precision, t.precision)}>`;
    case Type.Decimal: return `Decimal${t.bitWidth}(${t.precision}, ${t.scale})`;
    case Type.Date: return `Date${t.unit === DateUnit.DAY ? '32' : '64'}<${keyOf(DateUnit, t.unit)}>`;
    case Type.Time: return `Time${t.bitWidth}<${keyOf(TimeUnit, t.unit)}>`;
    case Type.Timestamp: return `Timestamp<${keyOf(TimeUnit, t.unit)}${t.timezone ? `, ${t.timezone}` : ''}>`;
    case Type.Duration: return `Duration<${keyOf(TimeUnit, t.unit)}>`;
    case Type.Interval: return `Interval<${keyOf(IntervalUnit, t.unit)}>`;
    case Type.FixedSizeBinary: return `FixedSizeBinary[${t.stride}]`;
    case Type.List: case Type.LargeList: case Type.ListView: case Type.LargeListView:
      return `${typeNames[t.typeId]}<${typeString(t.children[0].type)}>`;
    case Type.FixedSizeList: return `FixedSizeList[${t.stride}]<${typeString(t.children[0].type)}>`;
    case Type.Struct: return `Struct<{${t.children.map(f => `${f.name}:${typeString(f.type)}`).join(', ')}}>`;
    case Type.Map: return `Map<${t.children[0].type.children.map(f => typeString(f.type)).join(', ')}>`;
    case Type.Dictionary: return `Dictionary<${typeString(t.indices)}, ${typeString(t.dictionary)}>`;
    default: return typeNames[t.typeId] ?? `Type${t.typeId}`;
  }
}

/** Plain JSON-able copy: BigInt -> string, Date -> ISO string, typed arrays -> arrays. */
export function plain(v) {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (ArrayBuffer.isView(v)) return Array.from(v, plain);
  if (Array.isArray(v)) return v.map(plain);
  if (v instanceof Map) return Object.fromEntries(Array.from(v, ([k, x]) => [String(k), plain(x)]));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

export function describeTable(table) {
  const shape = {
    rows: table.numRows,
    columns: table.names,
    types: table.schema.fields.map(f => typeString(f.type))
  };
  let first;
  try {
    // value extraction is lazy in flechette: e.g. an Int64 beyond 2^53 throws here
    first = table.toArray().slice(0, 3).map(plain);
  } catch (err) {
    return { ok: false, error: `extract: ${errorMessage(err)}`, ...shape };
  }
  return { ok: true, ...shape, first };
}

export function errorMessage(err) {
  if (err instanceof Error) {
    // undici's "fetch failed" keeps the reason (ECONNREFUSED, ...) in err.cause
    const cause = err.cause ? errorMessage(err.cause) : '';
    return cause && !err.message.includes(cause) ? `${err.message} (${cause})` : err.message;
  }
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object') {
    // a WebSocket error event (what socketConnector rejects with on socket errors)
    if (err.message) return String(err.message);
    if (err.error) return errorMessage(err.error);
    if (err.type) return `${err.type} event`;
  }
  try { return JSON.stringify(err); } catch { return String(err); }
}

function decodeJsonBytes(bytes) {
  const text = new TextDecoder().decode(bytes);
  const rows = JSON.parse(text);
  if (!Array.isArray(rows)) throw new Error(`json result is not an array: ${text.slice(0, 200)}`);
  const columns = rows.length ? Object.keys(rows[0]) : [];
  return {
    ok: true, rows: rows.length, columns,
    types: columns.map(c => rows[0][c] === null ? 'null' : typeof rows[0][c]),
    first: rows.slice(0, 3)
  };
}

function makeConnector(kind, uri) {
  if (kind === 'rest') return restConnector({ uri });
  if (kind === 'socket') return socketConnector({ uri });
  usage(`unknown connector kind: ${kind}`);
}

function closeConnector(connector) {
  // socketConnector keeps its WebSocket in a private field; close it so we exit cleanly
  try { connector._ws?.close(); } catch { /* ignore */ }
}

function withTimeout(promise, ms) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new TimeoutError(ms)), ms); })
  ]);
}
class TimeoutError extends Error {
  constructor(ms) { super(`timeout: no response within ${ms} ms`); }
}

// ---- mode 1: a batch of raw requests

async function runRequests(kind, uri, file) {
  let requests;
  try {
    requests = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    usage(`cannot read ${file}: ${e.message}`);
  }
  if (!Array.isArray(requests)) usage(`${file}: expected a JSON array of {type, sql}`);

  const connector = makeConnector(kind, uri);
  let timedOut = false;
  // every request is handed to the connector before any answer is awaited
  const pending = requests.map(({ type, sql }) => withTimeout(connector.query({ type, sql }), TIMEOUT_MS)
    .then(data => {
      if (type === 'exec') return { ok: true };
      if (data == null) {
        return { ok: true, rows: null, note: 'connector resolved with no data (socketConnector turns a non-error text frame into undefined)' };
      }
      if (type === 'json') return decodeJsonBytes(data);
      return describeTable(decodeIPC(data));
    })
    .catch(err => {
      if (err instanceof TimeoutError) timedOut = true;
      return { ok: false, error: errorMessage(err) };
    }));

  const results = await Promise.all(pending);
  closeConnector(connector);
  return { out: { results }, code: timedOut ? 3 : 0 };
}

// ---- mode 2: coordinator + crossfilter

class RecordingClient extends MosaicClient {
  constructor(name, selection, makeQuery, log) {
    super(selection);
    this.name = name;
    this.makeQuery = makeQuery;
    this.log = log;
    this.last = null;
  }
  query(filter = []) { return this.makeQuery(filter); }
  queryResult(data) {
    this.last = describeTable(data);
    this.log.push({ client: this.name, result: this.last });
    return this;
  }
  queryError(err) {
    this.last = { ok: false, error: errorMessage(err) };
    this.log.push({ client: this.name, error: this.last.error });
    return this;
  }
}

async function runCrossfilter(kind, uri, { preagg, table }) {
  const errors = [];
  const logger = {
    debug() {}, info() {}, log() {}, group() {}, groupCollapsed() {}, groupEnd() {},
    warn(...a) { errors.push(`warn: ${a.map(errorMessage).join(' ')}`); },
    error(...a) { errors.push(a.map(errorMessage).join(' ')); }
  };
  const connector = makeConnector(kind, uri);
  const mc = new Coordinator(connector, { logger, preagg: { enabled: preagg } });
  const sel = Selection.crossfilter();
  const log = [];

  // bounds for binning and for the interval clause's scale metadata
  const statsTable = await mc.query(
    `SELECT min(area) AS a0, max(area) AS a1, min(lon) AS x0, max(lon) AS x1, min(lat) AS y0, max(lat) AS y1 FROM "${table}"`
  );
  const s = plain(statsTable.toArray()[0]);
  const AREA_BINS = 40, GRID = 32;
  const areaStep = (s.a1 - s.a0) / AREA_BINS;
  const lonStep = (s.x1 - s.x0) / GRID, latStep = (s.y1 - s.y0) / GRID;

  const hist = new RecordingClient('hist', sel, filter => Query.from(table)
    .select({ x0: floor(div(sub(column('area'), literal(s.a0)), literal(areaStep))), count: count() })
    .groupby('x0')
    .where(filter), log);
  const grid = new RecordingClient('grid', sel, filter => Query.from(table)
    .select({
      i: floor(div(sub(column('lon'), literal(s.x0)), literal(lonStep))),
      j: floor(div(sub(column('lat'), literal(s.y0)), literal(latStep))),
      count: count()
    })
    .groupby('i', 'j')
    .where(filter), log);

  const steps = [];
  const sqlMark = () => wire.filter(w => w.event === 'send' || w.transport === 'http').length;
  const step = async (name, fn) => {
    const before = sqlMark();
    const logBefore = log.length;
    await withTimeout((async () => { await fn(); })(), TIMEOUT_MS);
    steps.push({
      step: name,
      sql: sentSql().slice(before),
      results: log.slice(logBefore)
    });
  };

  await step('connect', async () => {
    mc.connect(hist);
    mc.connect(grid);
    await hist.pending;
    await grid.pending;
  });

  const areaScale = { type: 'linear', domain: [s.a0, s.a1], range: [0, 600] };
  const lonScale = { type: 'linear', domain: [s.x0, s.x1], range: [0, 400] };
  const latScale = { type: 'linear', domain: [s.y0, s.y1], range: [400, 0] };
  const areaClause = v => clauseInterval('area', v, { source: hist, clients: new Set([hist]), scale: areaScale });
  const boxClause = v => clauseIntervals(['lon', 'lat'], v, { source: grid, clients: new Set([grid]), scales: [lonScale, latScale] });

  const publish = async clause => {
    sel.update(clause);
    await sel.pending('value');
    await hist.pending;
    await grid.pending;
  };

  // brush on the histogram: activation (as on pointer-down) then two drags
  await step('activate area brush', async () => {
    sel.activate(areaClause([s.a0, s.a0 + (s.a1 - s.a0) / 2]));
    await new Promise(r => setTimeout(r, 50));
    await waitIdle(mc);
  });
  await step('area brush 1', () => publish(areaClause([s.a0 + 10 * areaStep, s.a0 + 20 * areaStep])));
  await step('area brush 2', () => publish(areaClause([s.a0 + 12 * areaStep, s.a0 + 25 * areaStep])));
  // brush on the grid: a second source, so the preaggregator switches over
  const box = [[s.x0 + 4 * lonStep, s.x0 + 20 * lonStep], [s.y0 + 8 * latStep, s.y0 + 24 * latStep]];
  await step('grid brush', () => publish(boxClause(box)));
  await step('clear grid brush', () => publish(boxClause(null)));

  closeConnector(connector);
  return {
    out: { preagg, connector: kind, sql: sentSql(), steps, errors },
    code: 0
  };
}

async function waitIdle(mc) {
  // wait until the query manager has nothing queued or in flight
  for (let i = 0; i < 1000; ++i) {
    const m = mc.manager;
    if (!m.pendingResults.length && m.queue.isEmpty()) return;
    await new Promise(r => setTimeout(r, 10));
  }
}

function sentSql() {
  return wire.flatMap(w => {
    const body = w.transport === 'http' ? w.body : w.event === 'send' ? w.text : null;
    if (body == null) return [];
    try { const q = JSON.parse(body); return [{ type: q.type, sql: q.sql }]; } catch { return [{ raw: body }]; }
  });
}

// ---- main

async function main() {
  const args = process.argv.slice(2);
  const flags = new Set(args.filter(a => a.startsWith('--')));
  const pos = args.filter(a => !a.startsWith('--'));
  const [kind, uri, file] = pos;
  if (!kind || !uri) usage('missing arguments');
  if (kind !== 'rest' && kind !== 'socket') usage(`unknown connector kind: ${kind}`);
  installWireRecorders();

  let result;
  if (flags.has('--crossfilter')) {
    const tableFlag = args.find(a => a.startsWith('--table='));
    result = await runCrossfilter(kind, uri, {
      preagg: !flags.has('--no-preagg'),
      table: tableFlag ? tableFlag.slice('--table='.length) : 'parcels'
    });
  } else {
    if (!file) usage('missing requests.json');
    result = await runRequests(kind, uri, file);
  }
  if (flags.has('--wire')) result.out.wire = wire;
  process.stdout.write(JSON.stringify(result.out, null, 1) + '\n', () => process.exit(result.code));
}

main().catch(err => {
  process.stderr.write(`harness failure: ${err?.stack ?? errorMessage(err)}\n`);
  if (err instanceof TimeoutError) process.exit(3);
  process.exit(1);
});
