// A crossfiltered vgplot dashboard over a parcels-like table: parcels(lon DOUBLE, lat DOUBLE,
// area DOUBLE, <category> VARCHAR), such as duckstream's demo tenant (category `city`).
//
// Query parameters:
//   server  the Mosaic connector URI, used verbatim (required):
//           http(s)://...  -> RestConnector (POST JSON to that URL)
//           ws(s)://...    -> SocketConnector
//           e.g. ?server=http://127.0.0.1:3000/
//                ?server=ws%3A%2F%2F127.0.0.1%3A8080%2Fv1%2Fdemo%2Fmosaic%3Ftoken%3DT
//           (URL-encode it when it has its own query string)
//   table   table name (default parcels)
//   category  the categorical column of the bar chart (default city, the demo's)
//   preagg  "off" disables the coordinator's pre-aggregation (default on)
//
// window.__dashboard exposes {server, connector, table, preagg, queries, errors}
// for tests: every request the coordinator sent (type + sql) and every error it logged.
import * as vg from '@uwdata/vgplot';

const params = new URLSearchParams(location.search);
const server = params.get('server');
const table = params.get('table') || 'parcels';
const category = params.get('category') || 'city';
const preagg = params.get('preagg') !== 'off';

const state = (window.__dashboard = {
  server, connector: null, table, preagg, queries: [], errors: []
});

const statusEl = document.getElementById('status');
const errorsEl = document.getElementById('errors');
function showError(msg) {
  state.errors.push(msg);
  const li = document.createElement('li');
  li.textContent = msg;
  errorsEl.appendChild(li);
}

function errorText(e) {
  if (e == null) return String(e);
  if (typeof e === 'string') return e;
  if (e.message) return e.message;
  if (e.type) return `${e.type} event`;
  try { return JSON.stringify(e); } catch { return String(e); }
}

// a logger that keeps the queries and errors, and still prints to the console
const logger = {
  debug(...args) {
    if (args[0] === 'Query' && args[1]?.sql != null) {
      state.queries.push({ type: args[1].type, sql: args[1].sql });
    }
    console.debug(...args);
  },
  info: (...a) => console.info(...a),
  log: (...a) => console.log(...a),
  warn: (...a) => console.warn(...a),
  error(...args) {
    showError(args.map(errorText).join(' '));
    console.error(...args);
  },
  group: (...a) => console.group(...a),
  groupCollapsed: (...a) => console.groupCollapsed(...a),
  groupEnd: () => console.groupEnd()
};

function makeConnector(uri) {
  const scheme = new URL(uri).protocol;
  if (scheme === 'ws:' || scheme === 'wss:') {
    state.connector = 'socket';
    return new vg.SocketConnector({ uri });
  }
  if (scheme === 'http:' || scheme === 'https:') {
    state.connector = 'rest';
    return new vg.RestConnector({ uri });
  }
  throw new Error(`server must be an http(s):// or ws(s):// URI, got ${uri}`);
}

function main() {
  if (!server) {
    statusEl.textContent = 'Add ?server=<Mosaic connector URI> to the page URL, e.g. ?server=http://127.0.0.1:3000/';
    showError('no ?server= parameter');
    return;
  }
  const mc = vg.coordinator();
  mc.databaseConnector(makeConnector(server));
  mc.logger(logger);
  mc.manager.logQueries(true);
  mc.preaggregator.enabled = preagg;
  statusEl.textContent = `${state.connector} connector → ${server} · table ${table} · pre-aggregation ${preagg ? 'on' : 'off'}`;

  const $brush = vg.Selection.crossfilter();

  const histogram = vg.plot(
    vg.rectY(vg.from(table, { filterBy: $brush }), {
      x: vg.bin('area', { steps: 40 }), y: vg.count(), fill: 'steelblue', inset: 0.5
    }),
    vg.intervalX({ as: $brush }),
    vg.xDomain(vg.Fixed),
    vg.yTickFormat('s'),
    vg.xLabel('area →'),
    vg.yLabel('↑ parcels'),
    vg.width(560),
    vg.height(220),
    vg.marginLeft(50)
  );

  const zones = vg.plot(
    vg.barX(vg.from(table, { filterBy: $brush }), {
      x: vg.count(), y: category, fill: category, sort: { y: '-x' }
    }),
    vg.toggleY({ as: $brush }),
    vg.xTickFormat('s'),
    vg.xLabel('parcels →'),
    vg.yLabel(null),
    vg.width(560),
    vg.height(180),
    vg.marginLeft(90)
  );

  const map = vg.plot(
    vg.raster(vg.from(table, { filterBy: $brush }), {
      x: 'lon', y: 'lat', fill: 'density', pixelSize: 2
    }),
    vg.intervalXY({ as: $brush }),
    vg.xyDomain(vg.Fixed),
    vg.colorScale('sqrt'),
    vg.colorScheme('viridis'),
    vg.xLabel('lon →'),
    vg.yLabel('↑ lat'),
    vg.width(460),
    vg.height(420),
    vg.marginLeft(60)
  );

  const put = (id, el) => document.getElementById(id).appendChild(el);
  put('histogram', histogram);
  put('zones', zones);
  put('map', map);
}

try {
  main();
} catch (e) {
  showError(errorText(e));
  throw e;
}
