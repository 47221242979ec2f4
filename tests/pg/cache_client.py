"""The result cache through psycopg's binary rows (tests/api/pg.rs): the same query twice over
the extended protocol, read in binary both times, gives the same values (the second from the
cache, which the test counts), and a portal read in parts from a stored result.
Usage: cache_client.py PORT DBNAME. The tenant holds `nums(n)` with 1 and 2. Prints `ok`."""

import sys

import psycopg

port, db = sys.argv[1], sys.argv[2]
dsn = f"host=127.0.0.1 port={port} dbname={db} user=tester sslmode=disable"
SQL = "SELECT n, n * 2 AS twice FROM nums ORDER BY n"

with psycopg.connect(dsn, autocommit=True) as conn:
    first = conn.cursor(binary=True).execute(SQL).fetchall()
    second = conn.cursor(binary=True).execute(SQL).fetchall()
assert first == second == [(1, 2), (2, 4)], (first, second)
print("ok")
