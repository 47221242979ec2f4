"""SQLAlchemy's PostgreSQL dialect (what Superset uses) introspecting a tenant through
duckstream's PostgreSQL endpoint (tests/api/pg.rs), with psycopg 3 as its driver: the tables,
their columns and types, keys and comments, as `inspect()` reads them, then a query through the
ORM's Core.
Usage: sqlalchemy_client.py PORT DBNAME. The database holds the catalog fixtures' `cat` tables
(parcels, roads). Prints `ok` when every check held."""

import sys

import sqlalchemy as sa

port, db = sys.argv[1], sys.argv[2]
engine = sa.create_engine(f"postgresql+psycopg://tester@127.0.0.1:{port}/{db}?sslmode=disable")

inspector = sa.inspect(engine)
assert inspector.default_schema_name == "main", inspector.default_schema_name
tables = sorted(inspector.get_table_names())
assert tables == ["parcels", "roads"], tables
columns = [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns("parcels")]
assert columns == [
    ("id", "INTEGER", True),
    ("name", "TEXT", True),
    ("ts", "TIMESTAMP", True),
    ("geom_wkt", "TEXT", True),
    ("area", "DOUBLE PRECISION", True),
], columns
assert inspector.get_pk_constraint("parcels")["constrained_columns"] == []
assert inspector.get_foreign_keys("parcels") == []
assert inspector.get_indexes("parcels") == []
assert inspector.get_table_comment("parcels") == {"text": None}
assert inspector.get_view_names() == []
assert "main" in inspector.get_schema_names(), inspector.get_schema_names()
assert inspector.has_table("roads") and not inspector.has_table("nowhere")

# The reflected table reads back through Core.
meta = sa.MetaData()
roads = sa.Table("roads", meta, autoload_with=engine)
assert [c.name for c in roads.columns] == ["id", "kind"]
with engine.connect() as conn:
    count = conn.execute(sa.select(sa.func.count()).select_from(roads)).scalar_one()
    found = conn.execute(sa.select(roads.c.kind).where(roads.c.id == 1)).all()
assert (count, found) == (0, []), (count, found)
print("ok")
