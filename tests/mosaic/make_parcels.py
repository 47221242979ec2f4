"""Make a DuckDB file with a deterministic `parcels` table for the Mosaic tests.

Usage: python make_parcels.py OUT.duckdb [ROWS]   (ROWS defaults to 100000)

parcels(id BIGINT, lon DOUBLE, lat DOUBLE, area DOUBLE, zone VARCHAR)
Values come from hash(id), so every run gives the same rows.
"""
import sys

import duckdb

out = sys.argv[1]
rows = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000

con = duckdb.connect(out)
con.execute("DROP TABLE IF EXISTS parcels")
con.execute(
    """
    CREATE TABLE parcels AS
    WITH r AS (
      SELECT i AS id,
             (hash(i, 1) % 1000003) / 1000003.0 AS u1,
             (hash(i, 2) % 1000003) / 1000003.0 AS u2,
             (hash(i, 3) % 1000003) / 1000003.0 AS u3,
             (hash(i, 4) % 1000003) / 1000003.0 AS u4
      FROM range(?) t(i)
    )
    SELECT id::BIGINT AS id,
           (-122.52 + 0.17 * u1)::DOUBLE AS lon,
           (37.70 + 0.13 * (u2 + u1 * u1) / 2)::DOUBLE AS lat,
           round(exp(4 + 3 * (u3 + u4) / 2), 1)::DOUBLE AS area,
           ['residential', 'commercial', 'industrial', 'mixed', 'open'][1 + (hash(id, 5) % 5)::INTEGER]::VARCHAR AS zone
    FROM r ORDER BY id
    """,
    [rows],
)
n, = con.execute("SELECT count(*) FROM parcels").fetchone()
print(f"{out}: parcels has {n} rows")
con.close()
