#!/usr/bin/env node
// How flechette's tableFromIPC (what mosaic-core's decodeIPC calls) treats
// Arrow IPC streams that are cut or padded: a stream with no end-of-stream
// marker, a stream cut at a message boundary, a message cut in the middle,
// trailing bytes after the stream, a JSON error body where Arrow was expected.
//
//   node tests/mosaic/ipc_edges.mjs [rest-uri]
//
// With a rest-uri (e.g. http://127.0.0.1:3000/), also runs the cases on an
// Arrow stream the server produced (pyarrow's writer in duckdb-server).
// Prints one JSON object: {"cases":[{"source","case","ok","rows"|"error"}...]}.

import { tableFromArrays, tableToIPC } from '@uwdata/flechette';
import { decodeMessage } from '@uwdata/flechette/src/decode/message.js';
import { decodeIPC, restConnector } from '@uwdata/mosaic-core';
import { createServer } from 'node:http';
import { gzipSync, brotliCompressSync, deflateSync } from 'node:zlib';

const EOS = Uint8Array.of(255, 255, 255, 255, 0, 0, 0, 0);

/** Byte offsets at which each message of a stream ends (the EOS marker not included). */
function messageEnds(bytes) {
  const ends = [];
  let offset = 0;
  for (;;) {
    const m = decodeMessage(bytes, offset);
    if (m === null) break;
    offset = m.index;
    ends.push({ end: offset, type: m.type });
  }
  return ends;
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};

function attempt(bytes) {
  try {
    const t = decodeIPC(bytes);
    // force value extraction, as a client would
    const rows = t.toArray();
    return { ok: true, rows: rows.length, columns: t.numCols };
  } catch (err) {
    return { ok: false, error: err.message };
  }
}

function casesFor(source, full) {
  const ends = messageEnds(full);
  const hasEos = full.length >= 8 && full.subarray(full.length - 8).every((b, i) => b === EOS[i]);
  const body = hasEos ? full.subarray(0, full.length - 8) : full;
  const out = [];
  const add = (name, bytes) => out.push({ source, case: name, bytes: bytes.length, ...attempt(bytes) });

  out.push({ source, case: 'layout', messages: ends.map(e => e.type === 1 ? 'schema' : e.type === 3 ? 'record' : e.type === 2 ? 'dictionary' : `type${e.type}`), eos: hasEos, bytes: full.length });
  add('full stream', full);
  add('no EOS marker', body);
  add('schema message only', body.subarray(0, ends[0].end));
  add('schema message + EOS', concat(body.subarray(0, ends[0].end), EOS));
  const records = ends.filter(e => e.type === 3);
  if (records.length > 1) {
    add('cut after first record batch (boundary, no EOS)', body.subarray(0, records[0].end));
    add('cut after first record batch (boundary) + EOS', concat(body.subarray(0, records[0].end), EOS));
  }
  if (ends.length > 1) {
    const last = ends[ends.length - 1].end, prev = ends[ends.length - 2].end;
    add('cut inside last record batch body', body.subarray(0, last - 3));
    add('cut inside last message metadata', body.subarray(0, prev + 12));
    add('cut 2 bytes into last message (continuation marker)', body.subarray(0, prev + 2));
  }
  add('cut inside schema', body.subarray(0, Math.floor(ends[0].end / 2)));
  add('trailing zero bytes after EOS', concat(full, new Uint8Array(16)));
  add('trailing text after EOS', concat(full, new TextEncoder().encode('trailing garbage!')));
  add('trailing text without EOS', concat(body, new TextEncoder().encode('trailing garbage!')));
  add('stream repeated twice', concat(full, full));
  add('empty body (0 bytes)', new Uint8Array(0));
  add('JSON error body', new TextEncoder().encode('{"error":"Catalog Error: Table with name x does not exist!"}'));
  add('plain text error body', new TextEncoder().encode('Internal Server Error'));
  return out;
}

/**
 * What restConnector + decodeIPC make of an HTTP response that ends early:
 * a tiny local server answers each case; the connector is mosaic-core's own.
 */
async function transportCases(full) {
  const ends = messageEnds(full).filter(e => e.type === 3);
  const firstRecordEnd = ends[0].end;
  const behaviours = {
    'chunked, complete stream': res => { res.writeHead(200, { 'Content-Type': 'application/vnd.apache.arrow.stream' }); res.write(full.subarray(0, 100)); res.end(full.subarray(100)); },
    'chunked, cut at first record batch boundary, clean end': res => { res.writeHead(200); res.write(full.subarray(0, firstRecordEnd)); res.end(); },
    'chunked, connection destroyed after first record batch': res => { res.writeHead(200); res.write(full.subarray(0, firstRecordEnd)); setTimeout(() => res.socket.destroy(), 50); },
    'content-length too long, connection closed': res => { res.writeHead(200, { 'Content-Length': full.length + 100 }); res.write(full); setTimeout(() => res.socket.destroy(), 50); },
    'Content-Encoding: gzip': res => { res.writeHead(200, { 'Content-Encoding': 'gzip' }); res.end(gzipSync(full)); },
    'Content-Encoding: br': res => { res.writeHead(200, { 'Content-Encoding': 'br' }); res.end(brotliCompressSync(full)); },
    'Content-Encoding: deflate': res => { res.writeHead(200, { 'Content-Encoding': 'deflate' }); res.end(deflateSync(full)); },
    'status 200, empty body': res => { res.writeHead(200); res.end(); },
    'status 500, JSON body': res => { res.writeHead(500, { 'Content-Type': 'application/json' }); res.end('{"error":"boom"}'); },
    'status 401, text body': res => { res.writeHead(401); res.end('bad token'); }
  };
  const names = Object.keys(behaviours);
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => behaviours[names[Number(new URL(req.url, 'http://x').searchParams.get('case'))]](res));
  });
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const out = [];
  for (let i = 0; i < names.length; ++i) {
    const rc = restConnector({ uri: `http://127.0.0.1:${port}/?case=${i}` });
    try {
      const t = decodeIPC(await rc.query({ type: 'arrow', sql: 'SELECT 1' }));
      out.push({ source: 'restConnector over a local http server', case: names[i], ok: true, rows: t.toArray().length, columns: t.numCols });
    } catch (err) {
      out.push({ source: 'restConnector over a local http server', case: names[i], ok: false, error: `${err.message}${err.cause ? ` (cause: ${err.cause.message ?? err.cause})` : ''}` });
    }
  }
  server.closeAllConnections();
  server.close();
  return out;
}

async function main() {
  const cases = [];
  // a 3-batch stream encoded by flechette itself
  const t = tableFromArrays({ id: Int32Array.from({ length: 9 }, (_, i) => i), s: Array.from({ length: 9 }, (_, i) => `v${i}`) }, { maxBatchRows: 3 });
  const flechetteStream = tableToIPC(t, { format: 'stream' });
  cases.push(...casesFor('flechette tableToIPC (3 batches)', flechetteStream));
  cases.push(...await transportCases(flechetteStream));

  const uri = process.argv[2];
  if (uri) {
    const rc = restConnector({ uri });
    const buf = new Uint8Array(await rc.query({ type: 'arrow', sql: 'SELECT range AS id, range::VARCHAR AS s FROM range(10)' }));
    cases.push(...casesFor(`server ${uri} (pyarrow stream writer)`, buf));
  }
  process.stdout.write(JSON.stringify({ cases }, null, 1) + '\n');
}

main().catch(err => { process.stderr.write(`harness failure: ${err.stack}\n`); process.exit(1); });
