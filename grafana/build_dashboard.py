#!/usr/bin/env python3
"""Generates grafana/dashboards/duckstream.json (run it after editing PANELS or CLUSTER_PANELS;
the JSON is committed). Every PromQL expression here is evaluated against a real Prometheus by
the end-to-end test (one gateway on local storage), with $__rate_interval replaced by a
concrete window: each must return a series there too."""
import json
import os

R = "$__rate_interval"
PANELS = [
    ("Time to first byte p50 / p95 / p99", "s", [
        (f"histogram_quantile({q}, sum by (le, transport) (rate(duckstream_query_ttfb_seconds_bucket[{R}])))",
         f"p{int(q * 100)} {{{{transport}}}}") for q in (0.5, 0.95, 0.99)]),
    ("Rows per second", "short", [
        (f"sum by (transport) (rate(duckstream_rows_sent_total[{R}]))", "{{transport}}")]),
    ("Bytes per second on the wire", "Bps", [
        (f"sum by (transport) (rate(duckstream_bytes_sent_total[{R}]))", "{{transport}}")]),
    ("Compression ratio (NDJSON bytes / wire bytes)", "none", [
        (f"sum by (transport) (rate(duckstream_uncompressed_bytes_total[{R}])) / sum by (transport) (rate(duckstream_bytes_sent_total[{R}]))",
         "{{transport}}")]),
    ("Active queries", "short", [("sum by (transport) (duckstream_active_queries)", "{{transport}}")]),
    ("Active connections", "short", [("sum by (transport) (duckstream_active_connections)", "{{transport}}")]),
    ("Query outcomes per second", "short", [
        (f"sum by (transport, outcome) (rate(duckstream_queries_total[{R}]))", "{{transport}} {{outcome}}")]),
    ("Query duration p95", "s", [
        (f"histogram_quantile(0.95, sum by (le, transport) (rate(duckstream_query_duration_seconds_bucket[{R}])))",
         "{{transport}}")]),
    ("Errors per second by code", "short", [
        (f"sum by (code) (rate(duckstream_query_errors_total[{R}])) or vector(0)", "{{code}}")]),
    ("Pool wait p50 / p99", "s", [
        (f"histogram_quantile({q}, sum by (le) (rate(duckstream_pool_wait_seconds_bucket[{R}])))", f"p{int(q * 100)}")
        for q in (0.5, 0.99)]),
    ("Slow-consumer disconnects", "short", [
        (f"sum by (transport) (increase(duckstream_slow_consumer_disconnects_total[{R}]))", "{{transport}}")]),
    ("Backpressure: executor time waiting for readers", "percentunit", [
        (f"sum by (transport) (rate(duckstream_backpressure_wait_seconds_total[{R}]))", "{{transport}}")]),
    ("Refused: authentication by reason, connections over a tenant's max", "short", [
        (f"sum by (reason) (increase(duckstream_auth_failures_total[{R}]))", "auth {{reason}}"),
        (f"increase(duckstream_connections_refused_total[{R}])", "too many connections")]),
    ("DuckDB executions and executions saved per second (cache hits, shared subscriptions)", "short", [
        (f"rate(duckstream_duckdb_executions_total[{R}])", "executions"),
        (f"rate(duckstream_executions_saved_total[{R}])", "saved")]),
    ("Result cache: hit ratio", "percentunit", [
        (f"rate(duckstream_cache_hits_total[{R}]) / clamp_min(rate(duckstream_cache_hits_total[{R}]) + rate(duckstream_cache_misses_total[{R}]), 1e-9)",
         "hits / lookups")]),
    ("Result cache: bytes held, evictions", "bytes", [
        ("duckstream_cache_bytes", "held"),
        (f"increase(duckstream_cache_evictions_total[{R}])", "evicted entries")]),
    ("Gateway RSS", "bytes", [("process_resident_memory_bytes{job=\"duckstream\"}", "RSS {{instance}}")]),
    ("Gateway CPU (cores)", "short", [(f"rate(process_cpu_seconds_total{{job=\"duckstream\"}}[{R}])", "CPU {{instance}}")]),
]

# The row below the gateway's panels: each replica on its own line (`instance`: the address
# Prometheus scrapes, deploy/prometheus-cluster.yml), and the health of the lake they share.
# One gateway shows one line each; a local store shows zeros.
CLUSTER_TITLE = "Cluster: each replica, and the lake they share"
CLUSTER_PANELS = [
    ("Queries per second, by replica", "short", [
        (f"sum by (instance) (rate(duckstream_queries_total[{R}]))", "{{instance}}")]),
    ("Query duration p99, by replica", "s", [
        (f"histogram_quantile(0.99, sum by (le, instance) (rate(duckstream_query_duration_seconds_bucket[{R}])))",
         "{{instance}}")]),
    ("Active connections, by replica", "short", [
        ("sum by (instance) (duckstream_active_connections)", "{{instance}}")]),
    ("Active queries, by replica", "short", [
        ("sum by (instance) (duckstream_active_queries)", "{{instance}}")]),
    ("Change feed lag: a catalog commit until this replica heard it, p50 / p99", "s", [
        (f"histogram_quantile({q}, sum by (le, instance) (rate(duckstream_store_feed_lag_seconds_bucket[{R}])))",
         f"p{int(q * 100)} {{{{instance}}}}") for q in (0.5, 0.99)]),
    ("Change feed connected (1: listening to the catalog)", "short", [
        ("max by (instance) (duckstream_store_feed_connected)", "{{instance}}")]),
    ("Catalog errors, and work refused while the storage was down, per second, by replica", "short", [
        (f"sum by (instance) (rate(duckstream_store_catalog_errors_total[{R}])) or on() vector(0)", "errors {{instance}}"),
        (f"sum by (instance) (rate(duckstream_store_refused_total[{R}])) or on() vector(0)", "refused {{instance}}")]),
    ("Lake upkeep: runs by outcome, seconds since the last", "short", [
        (f"sum by (instance, outcome) (increase(duckstream_store_maintenance_runs_total[{R}]))",
         "{{instance}} {{outcome}}"),
        ("time() - max by (instance) (duckstream_store_maintenance_last_run_timestamp_seconds)",
         "{{instance}} seconds since last")]),
    ("Lake storage: data files and MB of each replica's loaded tenants", "short", [
        ("max by (instance) (duckstream_store_data_files)", "files {{instance}}"),
        ("max by (instance) (duckstream_store_data_bytes) / 1e6", "MB {{instance}}")]),
]


def timeseries(panel_id, title, unit, targets, x, y):
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "prometheus"},
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend,
             "datasource": {"type": "prometheus", "uid": "prometheus"}}
            for j, (expr, legend) in enumerate(targets)
        ],
    }


def main():
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append(timeseries(len(panels) + 1, title, unit, targets, (i % 2) * 12, (i // 2) * 8))
    # A row (no queries of its own: `targets` stays empty), then its panels below it.
    top = (len(PANELS) + 1) // 2 * 8
    panels.append({"id": len(panels) + 1, "type": "row", "title": CLUSTER_TITLE, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": top}, "panels": [], "targets": []})
    for i, (title, unit, targets) in enumerate(CLUSTER_PANELS):
        panels.append(timeseries(len(panels) + 1, title, unit, targets, (i % 2) * 12, top + 1 + (i // 2) * 8))
    dashboard = {
        "uid": "duckstream",
        "title": "duckstream",
        "tags": ["duckstream"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "5s",
        "time": {"from": "now-15m", "to": "now"},
        "panels": panels,
    }
    out = os.path.join(os.path.dirname(__file__), "dashboards", "duckstream.json")
    with open(out, "w") as f:
        json.dump(dashboard, f, indent=2)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
