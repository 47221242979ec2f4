#!/usr/bin/env python3
"""Generates grafana/dashboards/duckstream-demo.json: the demo tenant (src/demo.rs) through
duckstream's PostgreSQL endpoint, with Grafana's own PostgreSQL data source (provisioned by
grafana/provisioning/datasources/duckstream-pg.yml). Run it after editing the queries below; the
JSON is committed.

The SQL is what a user would write in Grafana's code editor: Grafana replaces $__interval in the
browser and expands the other macros in its backend before the statement reaches duckstream.
tests/data/grafana_pg.tsv holds these queries as duckstream receives them (expanded for fixed
ranges and intervals, exactly as Grafana's macros.go does) with the answers the demo gives, and
tests/pg/grafana_client.py replays them: when a query here changes, update its rows there
(expanded as the TSV's header says).

Columns Grafana needs: a time series query returns a column named `time` (epoch seconds or a
timestamp) and numeric values; the geomap reads points from two numeric columns, `latitude` and
`longitude` (Grafana's geomap knows no PostGIS: the coordinates come out of the GEOMETRY column
with ST_Y/ST_X, as float8)."""
import json
import os

DATASOURCE = {"type": "grafana-postgresql-datasource", "uid": "duckstream-pg"}

# Parcels by their `updated` timestamp (2000-01-01 to 2024-12-31 in the demo), counted per
# interval: $__timeGroupAlias names the bucket `time`.
TIMESERIES_COUNT = """SELECT
  $__timeGroupAlias(updated, $__interval),
  count(*) AS "parcels updated"
FROM parcels
WHERE $__timeFilter(updated)
GROUP BY 1
ORDER BY 1"""

# The same buckets with $__timeGroup, aliased by hand and repeated in GROUP BY.
TIMESERIES_MEAN = """SELECT
  $__timeGroup(updated, $__interval) AS "time",
  avg(population) AS "mean population"
FROM parcels
WHERE $__timeFilter(updated)
GROUP BY $__timeGroup(updated, $__interval)
ORDER BY 1"""

TABLE = """SELECT
  city,
  count(*) AS parcels,
  round(avg(population)) AS "mean population",
  round(sum(area)) AS "total area",
  max(updated) AS "last updated"
FROM parcels
WHERE $__timeFilter(updated)
GROUP BY city
ORDER BY 2 DESC, city
LIMIT 50"""

# The 1,000 parcels updated last in the range, placed by their point in parcel_points.
GEOMAP = """WITH recent AS (
  SELECT id, city, population, updated
  FROM parcels
  WHERE $__timeFilter(updated)
  ORDER BY updated DESC, id
  LIMIT 1000
)
SELECT
  r.id,
  r.city,
  r.population,
  ST_Y(p.geom) AS latitude,
  ST_X(p.geom) AS longitude
FROM recent r
JOIN parcel_points p ON p.id = r.id
ORDER BY r.updated DESC, r.id"""


def target(ref_id, sql, fmt):
    return {"refId": ref_id, "datasource": DATASOURCE, "editorMode": "code", "format": fmt,
            "rawQuery": True, "rawSql": sql}


def panels():
    return [
        {
            "id": 1,
            "type": "timeseries",
            "title": "Parcels updated per interval, and their mean population",
            "datasource": DATASOURCE,
            "gridPos": {"h": 9, "w": 24, "x": 0, "y": 0},
            # A bucket never narrower than a day, however far one zooms in.
            "interval": "1d",
            "fieldConfig": {
                "defaults": {"unit": "short"},
                "overrides": [{
                    "matcher": {"id": "byName", "options": "mean population"},
                    "properties": [{"id": "custom.axisPlacement", "value": "right"}],
                }],
            },
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [target("A", TIMESERIES_COUNT, "time_series"),
                        target("B", TIMESERIES_MEAN, "time_series")],
        },
        {
            "id": 2,
            "type": "table",
            "title": "Cities: parcels updated in the range",
            "datasource": DATASOURCE,
            "gridPos": {"h": 12, "w": 10, "x": 0, "y": 9},
            "fieldConfig": {"defaults": {}, "overrides": []},
            "options": {"showHeader": True},
            "targets": [target("A", TABLE, "table")],
        },
        {
            "id": 3,
            "type": "geomap",
            "title": "The 1,000 parcels updated last in the range",
            "datasource": DATASOURCE,
            "gridPos": {"h": 12, "w": 14, "x": 10, "y": 9},
            "fieldConfig": {"defaults": {"color": {"mode": "fixed", "fixedColor": "green"}},
                            "overrides": []},
            "options": {
                "view": {"id": "zero", "lat": 0, "lon": 0, "zoom": 1, "allLayers": True},
                "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
                "basemap": {"type": "default", "name": "Basemap"},
                "layers": [{
                    "type": "markers",
                    "name": "Parcels",
                    "location": {"mode": "coords", "latitude": "latitude", "longitude": "longitude"},
                    "tooltip": True,
                    "config": {
                        "showLegend": False,
                        "style": {
                            "size": {"fixed": 4},
                            "color": {"fixed": "green"},
                            "opacity": 0.7,
                            "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                        },
                    },
                }],
                "tooltip": {"mode": "details"},
            },
            "targets": [target("A", GEOMAP, "table")],
        },
    ]


def main():
    dashboard = {
        "uid": "duckstream-demo",
        "title": "duckstream demo (PostgreSQL)",
        "tags": ["duckstream", "postgresql"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        # The demo's timestamps: `updated` runs from 2000-01-01 to 2024-12-31.
        "time": {"from": "2000-01-01T00:00:00.000Z", "to": "2025-01-01T00:00:00.000Z"},
        "panels": panels(),
    }
    out = os.path.join(os.path.dirname(__file__), "dashboards", "duckstream-demo.json")
    with open(out, "w") as f:
        json.dump(dashboard, f, indent=2)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
