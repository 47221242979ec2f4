"""The demo's `zones` table (src/demo.rs GEOMETRY_SQL), for the benchmark scripts."""
ZONES_SQL = """
CREATE TABLE zones AS
SELECT x * 18 + y AS id,
       'cell ' || (x * 10 - 180) || ',' || (y * 10 - 90) AS name,
       ('POLYGON((' || (x * 10 - 180) || ' ' || (y * 10 - 90) || ', '
                    || (x * 10 - 170) || ' ' || (y * 10 - 90) || ', '
                    || (x * 10 - 170) || ' ' || (y * 10 - 80) || ', '
                    || (x * 10 - 180) || ' ' || (y * 10 - 80) || ', '
                    || (x * 10 - 180) || ' ' || (y * 10 - 90) || '))')::GEOMETRY AS geom
FROM range(36) a(x), range(18) b(y)
"""
