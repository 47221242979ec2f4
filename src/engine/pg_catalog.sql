-- The PostgreSQL catalogs as PostgreSQL clients read them (issue #26, docs/design/pgwire.md §7),
-- answered from DuckDB's own catalog functions for the tenant's tables only.
--
-- Run on every DuckDB database before the sandbox settings (it also runs after them: ATTACH of
-- ':memory:' is not external access), on one connection: ATTACH is database-wide, so every pooled
-- connection sees the macros. Idempotent (IF NOT EXISTS / OR REPLACE): running it twice is harmless.
--
-- Contract with the rewrite (design §7.6; scripts/pg_catalog_rewrite.py is its reference):
-- - Every relation a client names (pg_catalog.pg_class, bare pg_class, information_schema.tables)
--   becomes a TABLE macro call `ds_pg.<name>(<scope>) AS <alias>`; each relation macro takes exactly
--   one argument, the scope.
-- - <scope> is a VARCHAR[] literal of the token's tables, lower case, each `table` (schema main) or
--   `schema.table`, or NULL: every table of the tenant. Rows of other tables never appear, and no
--   function below answers for a table outside the scope (to_regclass gives NULL, as for a table
--   that does not exist).
-- - Functions that look a table up take the scope as their last argument (to_regclass, regclass,
--   regclass_name, regnamespace, regnamespace_name, has_table_privilege, has_column_privilege,
--   has_any_column_privilege, pg_get_indexdef, pg_get_constraintdef, pg_get_viewdef,
--   obj_description, col_description). The others read no table.
-- - Only the tenant's database: current_database() (the tenant's catalog: its file, or its DuckLake
--   catalog after USE), never system, temp, mosaic, ds_pg or a DuckLake metadata catalog.
-- - The schema `main` is presented as `main` (not aliased as `public`): current_schema() is main
--   in DuckDB, and clients write the schema they read here into their data queries ("main"."t"),
--   which DuckDB then runs unchanged.
-- - OIDs: tables, views, sequences and schemas keep DuckDB's catalog OIDs (stable while the
--   database is open; a DDL that recreates an object gives it a new one); pg_catalog = 11,
--   information_schema = 13207, role 10, as in PostgreSQL 15; types have PostgreSQL's OIDs
--   (pg_attribute.atttypid joins pg_type.oid). Constraints, their indexes and column defaults get
--   derived OIDs: 1e9 / 2e9 / 3e9 + table OID * 1000 + index.
-- - Nothing here reads a setting, a path or a file: pg_settings and current_setting answer from a
--   fixed list (ds_pg.guc_map).
-- - Macros whose subqueries meet the caller's arguments name everything ds_pg_*: a macro's
--   argument is the caller's expression (`c.oid`, a bare `oid`) and must bind to the caller.

ATTACH IF NOT EXISTS ':memory:' AS ds_pg;

-- ---------------------------------------------------------------------------------------------
-- Internal helpers
-- ---------------------------------------------------------------------------------------------

-- Whether a relation is in the scope (NULL = all of the tenant's relations).
CREATE OR REPLACE MACRO ds_pg.in_scope(scope, sch, rel) AS
    scope IS NULL
    OR list_contains(scope, lower(sch) || '.' || lower(rel))
    OR (lower(sch) = 'main' AND list_contains(scope, lower(rel)));

-- The fixed role every object belongs to.
CREATE OR REPLACE MACRO ds_pg.role_name() AS 'duckstream';

-- PostgreSQL type OID of a DuckDB type (duckdb_columns().data_type), docs/design/pgwire.md §5.1.
-- (MAP lookups rather than CASE x WHEN: a macro's argument is an expression that CASE would
-- evaluate once per branch.)
CREATE OR REPLACE MACRO ds_pg.scalar_type_oid(t) AS coalesce(MAP {
        'BOOLEAN': 16, 'TINYINT': 21, 'SMALLINT': 21, 'UTINYINT': 21, 'INTEGER': 23,
        'USMALLINT': 23, 'BIGINT': 20, 'UINTEGER': 20, 'UBIGINT': 1700, 'HUGEINT': 1700,
        'UHUGEINT': 1700, 'BIGNUM': 1700, 'VARINT': 1700, 'FLOAT': 700, 'DOUBLE': 701,
        'VARCHAR': 25, 'BLOB': 17, 'BIT': 1562, 'UUID': 2950, 'JSON': 114, 'DATE': 1082,
        'TIME': 1083, 'TIME_NS': 1083, 'TIME WITH TIME ZONE': 1266, 'TIMESTAMP': 1114,
        'TIMESTAMP_S': 1114, 'TIMESTAMP_MS': 1114, 'TIMESTAMP_NS': 1114,
        'TIMESTAMP WITH TIME ZONE': 1184, 'INTERVAL': 1186, 'NULL': 25, '"NULL"': 25,
        'GEOMETRY': 25, 'VARIANT': 114
    }[t],
    CASE WHEN starts_with(t, 'DECIMAL(') THEN 1700
         WHEN starts_with(t, 'VARCHAR COLLATE ') OR starts_with(t, 'ENUM(') OR starts_with(t, 'GEOMETRY') THEN 25
         WHEN starts_with(t, 'STRUCT(') OR starts_with(t, 'MAP(') OR starts_with(t, 'UNION(') THEN 114
    END);

-- The array type of a scalar PostgreSQL type, NULL when it has none.
CREATE OR REPLACE MACRO ds_pg.array_type_oid(e) AS MAP {
    16: 1000, 21: 1005, 23: 1007, 20: 1016, 700: 1021, 701: 1022, 1700: 1231, 25: 1009, 17: 1001,
    1082: 1182, 1083: 1183, 1114: 1115, 1184: 1185, 1186: 1187, 2950: 2951, 114: 199, 1266: 1270,
    1562: 1563
}[e];

-- LIST(T) and ARRAY(T, n) of a scalar T are T[]; nested lists, lists of STRUCT/MAP/UNION and
-- STRUCT/MAP/UNION themselves are json; an unknown type (a user type) is text.
CREATE OR REPLACE MACRO ds_pg.list_type_oid(elem) AS CASE
    WHEN ends_with(elem, ']') OR regexp_matches(elem, '^(STRUCT|MAP|UNION)\(|^VARIANT$') THEN 114
    ELSE coalesce(ds_pg.array_type_oid(ds_pg.scalar_type_oid(elem)), 114) END;
CREATE OR REPLACE MACRO ds_pg.type_oid(t) AS CASE
    WHEN ends_with(t, ']') THEN ds_pg.list_type_oid(regexp_replace(t, '\[\d*\]$', ''))
    ELSE coalesce(ds_pg.scalar_type_oid(t), 25) END;

-- atttypmod: numeric(p,s) as PostgreSQL encodes it, -1 else.
CREATE OR REPLACE MACRO ds_pg.type_mod(t, prec, scale) AS CASE
    WHEN t LIKE 'DECIMAL(%' THEN ((prec::BIGINT << 16) | scale::BIGINT) + 4
    ELSE -1 END;

-- The builtin types: PostgreSQL 15's pg_type rows for these OIDs, with format_type's name in
-- `fmt`. A MAP literal, so that lookups need no subquery (DuckDB refuses subqueries in a table
-- function's arguments, and a subquery in a macro can capture the caller's column names).
CREATE OR REPLACE MACRO ds_pg.type_map() AS MAP {
    16: {oid: 16, typname: 'bool', typlen: 1, typbyval: true, typtype: 'b', typcategory: 'B', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1000, typsubscript: '-', typinput: 'boolin', typoutput: 'boolout', typreceive: 'boolrecv', typsend: 'boolsend', typalign: 'c', typstorage: 'p', typcollation: 0, fmt: 'boolean'},
    17: {oid: 17, typname: 'bytea', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'U', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1001, typsubscript: '-', typinput: 'byteain', typoutput: 'byteaout', typreceive: 'bytearecv', typsend: 'byteasend', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'bytea'},
    18: {oid: 18, typname: 'char', typlen: 1, typbyval: true, typtype: 'b', typcategory: 'Z', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1002, typsubscript: '-', typinput: 'charin', typoutput: 'charout', typreceive: 'charrecv', typsend: 'charsend', typalign: 'c', typstorage: 'p', typcollation: 0, fmt: '"char"'},
    19: {oid: 19, typname: 'name', typlen: 64, typbyval: false, typtype: 'b', typcategory: 'S', typispreferred: false, typdelim: ',', typelem: 18, typarray: 1003, typsubscript: 'raw_array_subscript_handler', typinput: 'namein', typoutput: 'nameout', typreceive: 'namerecv', typsend: 'namesend', typalign: 'c', typstorage: 'p', typcollation: 950, fmt: 'name'},
    20: {oid: 20, typname: 'int8', typlen: 8, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1016, typsubscript: '-', typinput: 'int8in', typoutput: 'int8out', typreceive: 'int8recv', typsend: 'int8send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'bigint'},
    21: {oid: 21, typname: 'int2', typlen: 2, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1005, typsubscript: '-', typinput: 'int2in', typoutput: 'int2out', typreceive: 'int2recv', typsend: 'int2send', typalign: 's', typstorage: 'p', typcollation: 0, fmt: 'smallint'},
    22: {oid: 22, typname: 'int2vector', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 21, typarray: 0, typsubscript: 'raw_array_subscript_handler', typinput: 'int2vectorin', typoutput: 'int2vectorout', typreceive: 'int2vectorrecv', typsend: 'int2vectorsend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'int2vector'},
    23: {oid: 23, typname: 'int4', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1007, typsubscript: '-', typinput: 'int4in', typoutput: 'int4out', typreceive: 'int4recv', typsend: 'int4send', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'integer'},
    24: {oid: 24, typname: 'regproc', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'regprocin', typoutput: 'regprocout', typreceive: 'regprocrecv', typsend: 'regprocsend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'regproc'},
    25: {oid: 25, typname: 'text', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'S', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1009, typsubscript: '-', typinput: 'textin', typoutput: 'textout', typreceive: 'textrecv', typsend: 'textsend', typalign: 'i', typstorage: 'x', typcollation: 100, fmt: 'text'},
    26: {oid: 26, typname: 'oid', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1028, typsubscript: '-', typinput: 'oidin', typoutput: 'oidout', typreceive: 'oidrecv', typsend: 'oidsend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'oid'},
    30: {oid: 30, typname: 'oidvector', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 26, typarray: 0, typsubscript: 'raw_array_subscript_handler', typinput: 'oidvectorin', typoutput: 'oidvectorout', typreceive: 'oidvectorrecv', typsend: 'oidvectorsend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'oidvector'},
    114: {oid: 114, typname: 'json', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'U', typispreferred: false, typdelim: ',', typelem: 0, typarray: 199, typsubscript: '-', typinput: 'json_in', typoutput: 'json_out', typreceive: 'json_recv', typsend: 'json_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'json'},
    199: {oid: 199, typname: '_json', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 114, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'json[]'},
    700: {oid: 700, typname: 'float4', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1021, typsubscript: '-', typinput: 'float4in', typoutput: 'float4out', typreceive: 'float4recv', typsend: 'float4send', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'real'},
    701: {oid: 701, typname: 'float8', typlen: 8, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1022, typsubscript: '-', typinput: 'float8in', typoutput: 'float8out', typreceive: 'float8recv', typsend: 'float8send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'double precision'},
    705: {oid: 705, typname: 'unknown', typlen: -2, typbyval: false, typtype: 'p', typcategory: 'X', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'unknownin', typoutput: 'unknownout', typreceive: 'unknownrecv', typsend: 'unknownsend', typalign: 'c', typstorage: 'p', typcollation: 0, fmt: 'unknown'},
    790: {oid: 790, typname: 'money', typlen: 8, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'cash_in', typoutput: 'cash_out', typreceive: 'cash_recv', typsend: 'cash_send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'money'},
    1000: {oid: 1000, typname: '_bool', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 16, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'boolean[]'},
    1001: {oid: 1001, typname: '_bytea', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 17, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'bytea[]'},
    1002: {oid: 1002, typname: '_char', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 18, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: '"char"[]'},
    1003: {oid: 1003, typname: '_name', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 19, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 950, fmt: 'name[]'},
    1005: {oid: 1005, typname: '_int2', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 21, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'smallint[]'},
    1007: {oid: 1007, typname: '_int4', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 23, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'integer[]'},
    1009: {oid: 1009, typname: '_text', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 25, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 100, fmt: 'text[]'},
    1014: {oid: 1014, typname: '_bpchar', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1042, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 100, fmt: 'character[]'},
    1015: {oid: 1015, typname: '_varchar', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1043, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 100, fmt: 'character varying[]'},
    1016: {oid: 1016, typname: '_int8', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 20, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'bigint[]'},
    1021: {oid: 1021, typname: '_float4', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 700, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'real[]'},
    1022: {oid: 1022, typname: '_float8', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 701, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'double precision[]'},
    1028: {oid: 1028, typname: '_oid', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 26, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'oid[]'},
    1042: {oid: 1042, typname: 'bpchar', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'S', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1014, typsubscript: '-', typinput: 'bpcharin', typoutput: 'bpcharout', typreceive: 'bpcharrecv', typsend: 'bpcharsend', typalign: 'i', typstorage: 'x', typcollation: 100, fmt: 'character'},
    1043: {oid: 1043, typname: 'varchar', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'S', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1015, typsubscript: '-', typinput: 'varcharin', typoutput: 'varcharout', typreceive: 'varcharrecv', typsend: 'varcharsend', typalign: 'i', typstorage: 'x', typcollation: 100, fmt: 'character varying'},
    1082: {oid: 1082, typname: 'date', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'D', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1182, typsubscript: '-', typinput: 'date_in', typoutput: 'date_out', typreceive: 'date_recv', typsend: 'date_send', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'date'},
    1083: {oid: 1083, typname: 'time', typlen: 8, typbyval: true, typtype: 'b', typcategory: 'D', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1183, typsubscript: '-', typinput: 'time_in', typoutput: 'time_out', typreceive: 'time_recv', typsend: 'time_send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'time without time zone'},
    1114: {oid: 1114, typname: 'timestamp', typlen: 8, typbyval: true, typtype: 'b', typcategory: 'D', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1115, typsubscript: '-', typinput: 'timestamp_in', typoutput: 'timestamp_out', typreceive: 'timestamp_recv', typsend: 'timestamp_send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'timestamp without time zone'},
    1115: {oid: 1115, typname: '_timestamp', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1114, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'timestamp without time zone[]'},
    1182: {oid: 1182, typname: '_date', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1082, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'date[]'},
    1183: {oid: 1183, typname: '_time', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1083, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'time without time zone[]'},
    1184: {oid: 1184, typname: 'timestamptz', typlen: 8, typbyval: true, typtype: 'b', typcategory: 'D', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1185, typsubscript: '-', typinput: 'timestamptz_in', typoutput: 'timestamptz_out', typreceive: 'timestamptz_recv', typsend: 'timestamptz_send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'timestamp with time zone'},
    1185: {oid: 1185, typname: '_timestamptz', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1184, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'timestamp with time zone[]'},
    1186: {oid: 1186, typname: 'interval', typlen: 16, typbyval: false, typtype: 'b', typcategory: 'T', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1187, typsubscript: '-', typinput: 'interval_in', typoutput: 'interval_out', typreceive: 'interval_recv', typsend: 'interval_send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'interval'},
    1187: {oid: 1187, typname: '_interval', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1186, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'interval[]'},
    1231: {oid: 1231, typname: '_numeric', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1700, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'numeric[]'},
    1266: {oid: 1266, typname: 'timetz', typlen: 12, typbyval: false, typtype: 'b', typcategory: 'D', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1270, typsubscript: '-', typinput: 'timetz_in', typoutput: 'timetz_out', typreceive: 'timetz_recv', typsend: 'timetz_send', typalign: 'd', typstorage: 'p', typcollation: 0, fmt: 'time with time zone'},
    1270: {oid: 1270, typname: '_timetz', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1266, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'time with time zone[]'},
    1560: {oid: 1560, typname: 'bit', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'V', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'bit_in', typoutput: 'bit_out', typreceive: 'bit_recv', typsend: 'bit_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'bit'},
    1562: {oid: 1562, typname: 'varbit', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'V', typispreferred: true, typdelim: ',', typelem: 0, typarray: 1563, typsubscript: '-', typinput: 'varbit_in', typoutput: 'varbit_out', typreceive: 'varbit_recv', typsend: 'varbit_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'bit varying'},
    1563: {oid: 1563, typname: '_varbit', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 1562, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'bit varying[]'},
    1700: {oid: 1700, typname: 'numeric', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 1231, typsubscript: '-', typinput: 'numeric_in', typoutput: 'numeric_out', typreceive: 'numeric_recv', typsend: 'numeric_send', typalign: 'i', typstorage: 'm', typcollation: 0, fmt: 'numeric'},
    2205: {oid: 2205, typname: 'regclass', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'regclassin', typoutput: 'regclassout', typreceive: 'regclassrecv', typsend: 'regclasssend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'regclass'},
    2206: {oid: 2206, typname: 'regtype', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 2211, typsubscript: '-', typinput: 'regtypein', typoutput: 'regtypeout', typreceive: 'regtyperecv', typsend: 'regtypesend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'regtype'},
    2211: {oid: 2211, typname: '_regtype', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 2206, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'regtype[]'},
    2249: {oid: 2249, typname: 'record', typlen: -1, typbyval: false, typtype: 'p', typcategory: 'P', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'record_in', typoutput: 'record_out', typreceive: 'record_recv', typsend: 'record_send', typalign: 'd', typstorage: 'x', typcollation: 0, fmt: 'record'},
    2278: {oid: 2278, typname: 'void', typlen: 4, typbyval: true, typtype: 'p', typcategory: 'P', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'void_in', typoutput: 'void_out', typreceive: 'void_recv', typsend: 'void_send', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'void'},
    2950: {oid: 2950, typname: 'uuid', typlen: 16, typbyval: false, typtype: 'b', typcategory: 'U', typispreferred: false, typdelim: ',', typelem: 0, typarray: 2951, typsubscript: '-', typinput: 'uuid_in', typoutput: 'uuid_out', typreceive: 'uuid_recv', typsend: 'uuid_send', typalign: 'c', typstorage: 'p', typcollation: 0, fmt: 'uuid'},
    2951: {oid: 2951, typname: '_uuid', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 2950, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'uuid[]'},
    3802: {oid: 3802, typname: 'jsonb', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'U', typispreferred: false, typdelim: ',', typelem: 0, typarray: 3807, typsubscript: '-', typinput: 'jsonb_in', typoutput: 'jsonb_out', typreceive: 'jsonb_recv', typsend: 'jsonb_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'jsonb'},
    3807: {oid: 3807, typname: '_jsonb', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'A', typispreferred: false, typdelim: ',', typelem: 3802, typarray: 0, typsubscript: 'array_subscript_handler', typinput: 'array_in', typoutput: 'array_out', typreceive: 'array_recv', typsend: 'array_send', typalign: 'i', typstorage: 'x', typcollation: 0, fmt: 'jsonb[]'},
    4089: {oid: 4089, typname: 'regnamespace', typlen: 4, typbyval: true, typtype: 'b', typcategory: 'N', typispreferred: false, typdelim: ',', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'regnamespacein', typoutput: 'regnamespaceout', typreceive: 'regnamespacerecv', typsend: 'regnamespacesend', typalign: 'i', typstorage: 'p', typcollation: 0, fmt: 'regnamespace'},
    -- PostGIS's type, at duckstream's own OID (encode::pg::types::GEOMETRY): the type of
    -- GEOMETRY columns with duckstream.geometry_output = ewkb.
    16400: {oid: 16400, typname: 'geometry', typlen: -1, typbyval: false, typtype: 'b', typcategory: 'U', typispreferred: false, typdelim: ':', typelem: 0, typarray: 0, typsubscript: '-', typinput: 'geometry_in', typoutput: 'geometry_out', typreceive: 'geometry_recv', typsend: 'geometry_send', typalign: 'd', typstorage: 'm', typcollation: 0, fmt: 'geometry'}
};

CREATE OR REPLACE MACRO ds_pg.types() AS TABLE
SELECT unnest(map_values(ds_pg.type_map()), recursive := true);

-- A type's OID by its name or format_type's name (regtype casts, to_regtype).
CREATE OR REPLACE MACRO ds_pg.type_names() AS MAP {
    'bool': 16, 'boolean': 16, 'bytea': 17, 'char': 18, '"char"': 18, 'name': 19,
    'int8': 20, 'bigint': 20, 'int2': 21, 'smallint': 21, 'int2vector': 22, 'int4': 23,
    'integer': 23, 'regproc': 24, 'text': 25, 'oid': 26, 'oidvector': 30, 'json': 114,
    '_json': 199, 'json[]': 199, 'float4': 700, 'real': 700, 'float8': 701, 'double precision': 701,
    'unknown': 705, 'money': 790, '_bool': 1000, 'boolean[]': 1000, '_bytea': 1001, 'bytea[]': 1001,
    '_char': 1002, '"char"[]': 1002, '_name': 1003, 'name[]': 1003, '_int2': 1005, 'smallint[]': 1005,
    '_int4': 1007, 'integer[]': 1007, '_text': 1009, 'text[]': 1009, '_bpchar': 1014, 'character[]': 1014,
    '_varchar': 1015, 'character varying[]': 1015, '_int8': 1016, 'bigint[]': 1016, '_float4': 1021, 'real[]': 1021,
    '_float8': 1022, 'double precision[]': 1022, '_oid': 1028, 'oid[]': 1028, 'bpchar': 1042, 'character': 1042,
    'varchar': 1043, 'character varying': 1043, 'date': 1082, 'time': 1083, 'time without time zone': 1083, 'timestamp': 1114,
    'timestamp without time zone': 1114, '_timestamp': 1115, 'timestamp without time zone[]': 1115, '_date': 1182, 'date[]': 1182, '_time': 1183,
    'time without time zone[]': 1183, 'timestamptz': 1184, 'timestamp with time zone': 1184, '_timestamptz': 1185, 'timestamp with time zone[]': 1185, 'interval': 1186,
    '_interval': 1187, 'interval[]': 1187, '_numeric': 1231, 'numeric[]': 1231, 'timetz': 1266, 'time with time zone': 1266,
    '_timetz': 1270, 'time with time zone[]': 1270, 'bit': 1560, 'varbit': 1562, 'bit varying': 1562, '_varbit': 1563,
    'bit varying[]': 1563, 'numeric': 1700, 'regclass': 2205, 'regtype': 2206, '_regtype': 2211, 'regtype[]': 2211,
    'record': 2249, 'void': 2278, 'uuid': 2950, '_uuid': 2951, 'uuid[]': 2951, 'jsonb': 3802,
    '_jsonb': 3807, 'jsonb[]': 3807, 'regnamespace': 4089, 'geometry': 16400
};

-- The settings a client may read (SHOW, current_setting, pg_settings): fixed values, no
-- DuckDB setting. The transport answers SET/SHOW itself (design §7.5) and may substitute a
-- session's own value for current_setting.
CREATE OR REPLACE MACRO ds_pg.guc_map() AS MAP {
    'application_name': {name: 'application_name', setting: '', unit: NULL, category: 'Reporting and Logging / What to Log', short_desc: 'Sets the application name to be reported in statistics and logs.', context: 'user', vartype: 'string'},
    'bytea_output': {name: 'bytea_output', setting: 'hex', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the output format for bytea.', context: 'user', vartype: 'enum'},
    'client_encoding': {name: 'client_encoding', setting: 'UTF8', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the clients character set encoding.', context: 'user', vartype: 'string'},
    'client_min_messages': {name: 'client_min_messages', setting: 'notice', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the message levels that are sent to the client.', context: 'user', vartype: 'enum'},
    'datestyle': {name: 'DateStyle', setting: 'ISO, MDY', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the display format for date and time values.', context: 'user', vartype: 'string'},
    'default_table_access_method': {name: 'default_table_access_method', setting: 'heap', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the default table access method for new tables.', context: 'user', vartype: 'string'},
    'default_transaction_isolation': {name: 'default_transaction_isolation', setting: 'read committed', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the transaction isolation level of each new transaction.', context: 'user', vartype: 'enum'},
    'default_transaction_read_only': {name: 'default_transaction_read_only', setting: 'on', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the default read-only status of new transactions.', context: 'user', vartype: 'bool'},
    'duckstream.geometry_output': {name: 'duckstream.geometry_output', setting: 'wkt', unit: NULL, category: 'Customized Options', short_desc: 'GEOMETRY columns as WKT text (wkt) or hex EWKB (ewkb).', context: 'user', vartype: 'string'},
    'extra_float_digits': {name: 'extra_float_digits', setting: '1', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the number of digits displayed for floating-point values.', context: 'user', vartype: 'integer'},
    'idle_in_transaction_session_timeout': {name: 'idle_in_transaction_session_timeout', setting: '0', unit: 'ms', category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the maximum allowed idle time between queries, when in a transaction.', context: 'user', vartype: 'integer'},
    'from_collapse_limit': {name: 'from_collapse_limit', setting: '8', unit: NULL, category: 'Query Tuning / Other Planner Options', short_desc: 'Sets the FROM-list size beyond which subqueries are not collapsed.', context: 'user', vartype: 'integer'},
    'integer_datetimes': {name: 'integer_datetimes', setting: 'on', unit: NULL, category: 'Preset Options', short_desc: 'Shows whether datetimes are integer based.', context: 'internal', vartype: 'bool'},
    'intervalstyle': {name: 'IntervalStyle', setting: 'postgres', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the display format for interval values.', context: 'user', vartype: 'enum'},
    'is_superuser': {name: 'is_superuser', setting: 'off', unit: NULL, category: 'Preset Options', short_desc: 'Shows whether the current user is a superuser.', context: 'internal', vartype: 'bool'},
    'jit': {name: 'jit', setting: 'off', unit: NULL, category: 'Query Tuning / Other Planner Options', short_desc: 'Allow JIT compilation.', context: 'user', vartype: 'bool'},
    'join_collapse_limit': {name: 'join_collapse_limit', setting: '8', unit: NULL, category: 'Query Tuning / Other Planner Options', short_desc: 'Sets the FROM-list size beyond which JOIN constructs are not flattened.', context: 'user', vartype: 'integer'},
    'lc_collate': {name: 'lc_collate', setting: 'C.UTF-8', unit: NULL, category: 'Preset Options', short_desc: 'Shows the collation order locale.', context: 'internal', vartype: 'string'},
    'lc_ctype': {name: 'lc_ctype', setting: 'C.UTF-8', unit: NULL, category: 'Preset Options', short_desc: 'Shows the character classification and case conversion locale.', context: 'internal', vartype: 'string'},
    'lc_messages': {name: 'lc_messages', setting: 'C.UTF-8', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the language in which messages are displayed.', context: 'superuser', vartype: 'string'},
    'lc_monetary': {name: 'lc_monetary', setting: 'C.UTF-8', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the locale for formatting monetary amounts.', context: 'user', vartype: 'string'},
    'lc_numeric': {name: 'lc_numeric', setting: 'C.UTF-8', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the locale for formatting numbers.', context: 'user', vartype: 'string'},
    'lc_time': {name: 'lc_time', setting: 'C.UTF-8', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the locale for formatting date and time values.', context: 'user', vartype: 'string'},
    'lock_timeout': {name: 'lock_timeout', setting: '0', unit: 'ms', category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the maximum allowed duration of any wait for a lock.', context: 'user', vartype: 'integer'},
    'max_identifier_length': {name: 'max_identifier_length', setting: '63', unit: NULL, category: 'Preset Options', short_desc: 'Shows the maximum identifier length.', context: 'internal', vartype: 'integer'},
    'max_index_keys': {name: 'max_index_keys', setting: '32', unit: NULL, category: 'Preset Options', short_desc: 'Shows the maximum number of index keys.', context: 'internal', vartype: 'integer'},
    'row_security': {name: 'row_security', setting: 'on', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Enable row security.', context: 'user', vartype: 'bool'},
    'search_path': {name: 'search_path', setting: '"$user", main', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the schema search order for names that are not schema-qualified.', context: 'user', vartype: 'string'},
    'server_encoding': {name: 'server_encoding', setting: 'UTF8', unit: NULL, category: 'Preset Options', short_desc: 'Shows the server (database) character set encoding.', context: 'internal', vartype: 'string'},
    'server_version': {name: 'server_version', setting: '15.0', unit: NULL, category: 'Preset Options', short_desc: 'Shows the server version.', context: 'internal', vartype: 'string'},
    'server_version_num': {name: 'server_version_num', setting: '150000', unit: NULL, category: 'Preset Options', short_desc: 'Shows the server version as an integer.', context: 'internal', vartype: 'integer'},
    'standard_conforming_strings': {name: 'standard_conforming_strings', setting: 'on', unit: NULL, category: 'Version and Platform Compatibility / Previous PostgreSQL Versions', short_desc: 'Causes ... strings to treat backslashes literally.', context: 'user', vartype: 'bool'},
    'statement_timeout': {name: 'statement_timeout', setting: '0', unit: 'ms', category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the maximum allowed duration of any statement.', context: 'user', vartype: 'integer'},
    'synchronous_commit': {name: 'synchronous_commit', setting: 'on', unit: NULL, category: 'Write-Ahead Log / Settings', short_desc: 'Sets the current transactions synchronization level.', context: 'user', vartype: 'enum'},
    'timezone': {name: 'TimeZone', setting: 'UTC', unit: NULL, category: 'Client Connection Defaults / Locale and Formatting', short_desc: 'Sets the time zone for displaying and interpreting time stamps.', context: 'user', vartype: 'string'},
    'transaction_isolation': {name: 'transaction_isolation', setting: 'read committed', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the current transactions isolation level.', context: 'user', vartype: 'enum'},
    'transaction_read_only': {name: 'transaction_read_only', setting: 'on', unit: NULL, category: 'Client Connection Defaults / Statement Behavior', short_desc: 'Sets the current transactions read-only status.', context: 'user', vartype: 'bool'},
    'work_mem': {name: 'work_mem', setting: '4MB', unit: 'kB', category: 'Resource Usage / Memory', short_desc: 'Sets the maximum memory to be used for query workspaces.', context: 'user', vartype: 'integer'}
};

CREATE OR REPLACE MACRO ds_pg.gucs() AS TABLE
SELECT unnest(map_values(ds_pg.guc_map()), recursive := true);

-- The tenant's relations in the scope: tables (r), views (v), and, unscoped only, sequences (S).
CREATE OR REPLACE MACRO ds_pg.rels(scope) AS TABLE
SELECT table_oid AS oid, table_name AS relname, schema_name AS nspname, schema_oid AS nspoid,
       'r' AS relkind, column_count AS relnatts, check_constraint_count AS relchecks,
       index_count > 0 OR has_primary_key AS relhasindex, estimated_size AS reltuples,
       "comment" AS description, NULL::VARCHAR AS definition
FROM duckdb_tables()
WHERE database_name = current_database() AND NOT internal AND NOT "temporary"
  AND ds_pg.in_scope(scope, schema_name, table_name)
UNION ALL
SELECT view_oid, view_name, schema_name, schema_oid, 'v', column_count, 0, false, 0,
       "comment",
       -- pg_get_viewdef gives the query alone
       regexp_replace(regexp_replace("sql", '^\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW\s+.*?\s+AS\s+', '', 's'),
                      ';\s*$', '')
FROM duckdb_views()
WHERE database_name = current_database() AND NOT internal AND NOT "temporary"
  AND ds_pg.in_scope(scope, schema_name, view_name)
UNION ALL
SELECT sequence_oid, sequence_name, schema_name, schema_oid, 'S', 3, 0, false, 1,
       "comment", NULL
FROM duckdb_sequences()
WHERE database_name = current_database() AND NOT "temporary" AND scope IS NULL;

-- The tenant's constraints on relations in the scope, with derived OIDs; PRIMARY KEY and UNIQUE
-- have an index (conindid), as in PostgreSQL. NOT NULL is pg_attribute.attnotnull, not a row.
CREATE OR REPLACE MACRO ds_pg.cons(scope) AS TABLE
SELECT 1000000000 + table_oid * 1000 + constraint_index AS oid,
       constraint_name AS conname, schema_oid AS connamespace,
       CASE constraint_type WHEN 'PRIMARY KEY' THEN 'p' WHEN 'UNIQUE' THEN 'u'
            WHEN 'FOREIGN KEY' THEN 'f' WHEN 'CHECK' THEN 'c' END AS contype,
       table_oid AS conrelid, table_name AS relname, schema_name AS nspname,
       CASE WHEN constraint_type IN ('PRIMARY KEY', 'UNIQUE')
            THEN 2000000000 + table_oid * 1000 + constraint_index ELSE 0 END AS conindid,
       list_transform(constraint_column_indexes, i -> (i + 1)::SMALLINT) AS conkey,
       constraint_column_names AS colnames, constraint_text, expression,
       referenced_table, referenced_column_names
FROM duckdb_constraints()
WHERE database_name = current_database()
  AND constraint_type IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY', 'CHECK')
  AND ds_pg.in_scope(scope, schema_name, table_name);

-- Indexes: those of PRIMARY KEY/UNIQUE constraints, and CREATE INDEX ones (duckdb_indexes()).
CREATE OR REPLACE MACRO ds_pg.idx(scope) AS TABLE
SELECT c.conindid AS oid, c.conname AS relname, c.connamespace AS nspoid, c.nspname,
       c.conrelid AS indrelid, c.relname AS tablename, c.contype = 'p' AS indisprimary,
       true AS indisunique, c.conkey AS indkey,
       'CREATE UNIQUE INDEX ' || c.conname || ' ON ' || c.nspname || '.' || c.relname
           || ' USING btree (' || array_to_string(c.colnames, ', ') || ')' AS indexdef,
       c.colnames AS indcols
FROM ds_pg.cons(scope) c
WHERE c.contype IN ('p', 'u')
UNION ALL
SELECT i.index_oid, i.index_name, i.schema_oid, i.schema_name, i.table_oid, i.table_name,
       i.is_primary, i.is_unique,
       -- a column list `[a, b]` gives attnums; an expression gives 0, as in PostgreSQL
       list_transform(string_split(trim(i.expressions, '[]'), ', '),
           e -> coalesce(list_position(tc.cols, e), 0)::SMALLINT),
       'CREATE ' || CASE WHEN i.is_unique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || i.index_name
           || ' ON ' || i.schema_name || '.' || i.table_name || ' USING btree ('
           || trim(i.expressions, '[]') || ')',
       string_split(trim(i.expressions, '[]'), ', ')
FROM duckdb_indexes() i
JOIN (SELECT table_oid, list(column_name ORDER BY column_index) AS cols FROM duckdb_columns()
      WHERE database_name = current_database() GROUP BY table_oid) tc ON tc.table_oid = i.table_oid
WHERE i.database_name = current_database() AND ds_pg.in_scope(scope, i.schema_name, i.table_name);

-- ---------------------------------------------------------------------------------------------
-- pg_catalog relations: every one takes the scope (ignored where nothing is per table)
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE MACRO ds_pg.pg_namespace(scope) AS TABLE
SELECT oid, schema_name AS nspname, 10::BIGINT AS nspowner, NULL::VARCHAR[] AS nspacl
FROM duckdb_schemas()
WHERE database_name = current_database()
  AND (scope IS NULL OR schema_name IN (SELECT nspname FROM ds_pg.rels(scope)))
UNION ALL
SELECT * FROM (VALUES (11::BIGINT, 'pg_catalog', 10::BIGINT, NULL::VARCHAR[]),
                      (13207, 'information_schema', 10, NULL));

CREATE OR REPLACE MACRO ds_pg.pg_class(scope) AS TABLE
SELECT r.oid, r.relname, r.nspoid AS relnamespace, 0::BIGINT AS reltype, 0::BIGINT AS reloftype,
       10::BIGINT AS relowner, CASE WHEN r.relkind = 'r' THEN 2 ELSE 0 END::BIGINT AS relam,
       r.oid AS relfilenode, 0::BIGINT AS reltablespace, 0::INTEGER AS relpages,
       r.reltuples::REAL AS reltuples, 0::INTEGER AS relallvisible, 0::BIGINT AS reltoastrelid,
       r.relhasindex, false AS relisshared, 'p' AS relpersistence, r.relkind,
       r.relnatts::SMALLINT AS relnatts, r.relchecks::SMALLINT AS relchecks,
       r.relkind = 'v' AS relhasrules, false AS relhastriggers, false AS relhassubclass,
       false AS relrowsecurity, false AS relforcerowsecurity, true AS relispopulated,
       CASE WHEN r.relkind IN ('r', 'S') THEN 'd' ELSE 'n' END AS relreplident,
       false AS relispartition, 0::BIGINT AS relrewrite, 0::BIGINT AS relfrozenxid,
       0::BIGINT AS relminmxid, NULL::VARCHAR[] AS relacl, NULL::VARCHAR[] AS reloptions,
       NULL::VARCHAR AS relpartbound
FROM ds_pg.rels(scope) r
UNION ALL
SELECT i.oid, i.relname, i.nspoid, 0, 0, 10, 403, i.oid, 0, 0, 0, 0, 0, false, false, 'p', 'i',
       len(i.indkey)::SMALLINT, 0, false, false, false, false, false, true, 'n', false, 0, 0, 0,
       NULL, NULL, NULL
FROM ds_pg.idx(scope) i;

CREATE OR REPLACE MACRO ds_pg.pg_attribute(scope) AS TABLE
SELECT c.table_oid AS attrelid, c.column_name AS attname,
       ds_pg.type_oid(c.data_type) AS atttypid, -1 AS attstattarget,
       t.typlen::SMALLINT AS attlen, c.column_index::SMALLINT AS attnum,
       CASE WHEN t.typcategory = 'A' THEN 1 ELSE 0 END AS attndims, -1 AS attcacheoff,
       ds_pg.type_mod(c.data_type, c.numeric_precision, c.numeric_scale)::INTEGER AS atttypmod,
       t.typbyval AS attbyval, t.typalign AS attalign, t.typstorage AS attstorage,
       '' AS attcompression, NOT c.is_nullable AS attnotnull, c.column_default IS NOT NULL AS atthasdef,
       false AS atthasmissing, '' AS attidentity, '' AS attgenerated, false AS attisdropped,
       true AS attislocal, 0 AS attinhcount, t.typcollation::BIGINT AS attcollation,
       NULL::VARCHAR[] AS attacl, NULL::VARCHAR[] AS attoptions, NULL::VARCHAR[] AS attfdwoptions,
       NULL::VARCHAR AS attmissingval
FROM duckdb_columns() c
JOIN ds_pg.types() t ON t.oid = ds_pg.type_oid(c.data_type)
WHERE c.database_name = current_database() AND NOT c.internal
  AND c.table_oid IN (SELECT oid FROM ds_pg.rels(scope))
UNION ALL
-- an index's own columns (psql's \d <index>): the indexed column's type, text for an expression
SELECT x.oid, x.col, coalesce(ds_pg.type_oid(c.data_type), 25), -1, -1, x.n::SMALLINT, 0, -1,
       coalesce(ds_pg.type_mod(c.data_type, c.numeric_precision, c.numeric_scale), -1)::INTEGER,
       false, 'i', 'p', '', NOT coalesce(c.is_nullable, true), false, false, '', '', false, true,
       0, 0, NULL, NULL, NULL, NULL
FROM (SELECT i.oid, i.indrelid, unnest(i.indcols) AS col, generate_subscripts(i.indcols, 1) AS n
      FROM ds_pg.idx(scope) i) x
LEFT JOIN duckdb_columns() c
       ON c.database_name = current_database() AND c.table_oid = x.indrelid AND c.column_name = x.col
ORDER BY 1, 6;

CREATE OR REPLACE MACRO ds_pg.pg_type(scope) AS TABLE
SELECT oid::BIGINT AS oid, typname, 11::BIGINT AS typnamespace, 10::BIGINT AS typowner,
       typlen::SMALLINT AS typlen, typbyval, typtype, typcategory, typispreferred,
       true AS typisdefined, typdelim, 0::BIGINT AS typrelid, typsubscript,
       typelem::BIGINT AS typelem, typarray::BIGINT AS typarray, typinput, typoutput, typreceive,
       typsend, '-' AS typmodin, '-' AS typmodout, '-' AS typanalyze, typalign, typstorage,
       false AS typnotnull, 0::BIGINT AS typbasetype, -1 AS typtypmod, 0 AS typndims,
       typcollation::BIGINT AS typcollation, NULL::VARCHAR AS typdefaultbin,
       NULL::VARCHAR AS typdefault, NULL::VARCHAR[] AS typacl
FROM ds_pg.types();

CREATE OR REPLACE MACRO ds_pg.pg_database(scope) AS TABLE
SELECT 16384::BIGINT AS oid, current_database() AS datname, 10::BIGINT AS datdba,
       6 AS encoding, 'c' AS datlocprovider, false AS datistemplate, true AS datallowconn,
       -1 AS datconnlimit, 0::BIGINT AS datfrozenxid, 1::BIGINT AS datminmxid,
       1663::BIGINT AS dattablespace, 'C.UTF-8' AS datcollate, 'C.UTF-8' AS datctype,
       NULL::VARCHAR AS daticulocale, NULL::VARCHAR AS datcollversion, NULL::VARCHAR[] AS datacl;

CREATE OR REPLACE MACRO ds_pg.pg_roles(scope) AS TABLE
SELECT ds_pg.role_name() AS rolname, false AS rolsuper, true AS rolinherit,
       false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin,
       false AS rolreplication, -1 AS rolconnlimit, '********' AS rolpassword,
       NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig,
       10::BIGINT AS oid;

CREATE OR REPLACE MACRO ds_pg.pg_user(scope) AS TABLE
SELECT ds_pg.role_name() AS usename, 10::BIGINT AS usesysid, false AS usecreatedb,
       false AS usesuper, false AS userepl, false AS usebypassrls, '********' AS passwd,
       NULL::TIMESTAMPTZ AS valuntil, NULL::VARCHAR[] AS useconfig;

CREATE OR REPLACE MACRO ds_pg.pg_authid(scope) AS TABLE
SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
       rolreplication, rolbypassrls, rolconnlimit, NULL::VARCHAR AS rolpassword, rolvaliduntil
FROM ds_pg.pg_roles(scope);

CREATE OR REPLACE MACRO ds_pg.pg_auth_members(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS roleid, 0::BIGINT AS member, 0::BIGINT AS grantor,
                      false AS admin_option) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_settings(scope) AS TABLE
SELECT name, setting, unit, category, short_desc, NULL::VARCHAR AS extra_desc, context, vartype,
       'default' AS source, NULL::VARCHAR AS min_val, NULL::VARCHAR AS max_val,
       NULL::VARCHAR[] AS enumvals, setting AS boot_val, setting AS reset_val,
       NULL::VARCHAR AS sourcefile, NULL::INTEGER AS sourceline, false AS pending_restart
FROM ds_pg.gucs();

-- No function is listed (design Q8): \df and autocompletion find none.
CREATE OR REPLACE MACRO ds_pg.pg_proc(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, '' AS proname, 0::BIGINT AS pronamespace,
    0::BIGINT AS proowner, 0::BIGINT AS prolang, 0::REAL AS procost, 0::REAL AS prorows,
    0::BIGINT AS provariadic, '-' AS prosupport, 'f' AS prokind, false AS prosecdef,
    false AS proleakproof, false AS proisstrict, false AS proretset, 'i' AS provolatile,
    's' AS proparallel, 0::SMALLINT AS pronargs, 0::SMALLINT AS pronargdefaults,
    0::BIGINT AS prorettype, []::BIGINT[] AS proargtypes, NULL::BIGINT[] AS proallargtypes,
    NULL::VARCHAR[] AS proargmodes, NULL::VARCHAR[] AS proargnames,
    NULL::VARCHAR AS proargdefaults, NULL::BIGINT[] AS protrftypes, '' AS prosrc,
    NULL::VARCHAR AS probin, NULL::VARCHAR AS prosqlbody, NULL::VARCHAR[] AS proconfig,
    NULL::VARCHAR[] AS proacl) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_extension(scope) AS TABLE
SELECT 13559::BIGINT AS oid, 'plpgsql' AS extname, 10::BIGINT AS extowner,
       11::BIGINT AS extnamespace, false AS extrelocatable, '1.0' AS extversion,
       NULL::BIGINT[] AS extconfig, NULL::VARCHAR[] AS extcondition;

CREATE OR REPLACE MACRO ds_pg.pg_am(scope) AS TABLE
SELECT * FROM (VALUES (2::BIGINT, 'heap', 'heap_tableam_handler', 't'),
                      (403, 'btree', 'bthandler', 'i')) AS a(oid, amname, amhandler, amtype);

CREATE OR REPLACE MACRO ds_pg.pg_index(scope) AS TABLE
SELECT i.oid AS indexrelid, i.indrelid, len(i.indkey)::SMALLINT AS indnatts,
       len(i.indkey)::SMALLINT AS indnkeyatts, i.indisunique, false AS indnullsnotdistinct,
       i.indisprimary, false AS indisexclusion, true AS indimmediate, false AS indisclustered,
       true AS indisvalid, false AS indcheckxmin, true AS indisready, true AS indislive,
       false AS indisreplident, i.indkey,
       list_transform(i.indkey, k -> 0::BIGINT) AS indcollation,
       list_transform(i.indkey, k -> 0::BIGINT) AS indclass,
       list_transform(i.indkey, k -> 0::SMALLINT) AS indoption,
       NULL::VARCHAR AS indexprs, NULL::VARCHAR AS indpred
FROM ds_pg.idx(scope) i;

CREATE OR REPLACE MACRO ds_pg.pg_constraint(scope) AS TABLE
SELECT c.oid, c.conname, c.connamespace, c.contype, false AS condeferrable, false AS condeferred,
       true AS convalidated, c.conrelid, 0::BIGINT AS contypid, c.conindid,
       0::BIGINT AS conparentid,
       CASE WHEN c.contype = 'f' THEN coalesce(
           (SELECT r.oid FROM ds_pg.rels(scope) r
            WHERE r.relname = c.referenced_table AND r.nspname = c.nspname AND r.relkind = 'r'), 0)
            ELSE 0 END AS confrelid,
       CASE WHEN c.contype = 'f' THEN 'a' ELSE ' ' END AS confupdtype,
       CASE WHEN c.contype = 'f' THEN 'a' ELSE ' ' END AS confdeltype,
       CASE WHEN c.contype = 'f' THEN 's' ELSE ' ' END AS confmatchtype,
       true AS conislocal, 0 AS coninhcount, false AS connoinherit, c.conkey,
       CASE WHEN c.contype = 'f' THEN list_transform(c.referenced_column_names,
           n -> list_position(rc.cols, n)::SMALLINT) END AS confkey,
       NULL::BIGINT[] AS conpfeqop, NULL::BIGINT[] AS conppeqop, NULL::BIGINT[] AS conffeqop,
       NULL::SMALLINT[] AS confdelsetcols, NULL::BIGINT[] AS conexclop,
       c.expression AS conbin
FROM ds_pg.cons(scope) c
LEFT JOIN (SELECT schema_name, table_name, list(column_name ORDER BY column_index) AS cols
           FROM duckdb_columns() WHERE database_name = current_database()
           GROUP BY schema_name, table_name) rc
       ON rc.schema_name = c.nspname AND rc.table_name = c.referenced_table;

CREATE OR REPLACE MACRO ds_pg.pg_attrdef(scope) AS TABLE
SELECT 3000000000 + c.table_oid * 1000 + c.column_index AS oid, c.table_oid AS adrelid,
       c.column_index::SMALLINT AS adnum, c.column_default AS adbin
FROM duckdb_columns() c
WHERE c.database_name = current_database() AND c.column_default IS NOT NULL
  AND c.table_oid IN (SELECT oid FROM ds_pg.rels(scope));

-- Comments (COMMENT ON TABLE/VIEW/COLUMN) of the scope's relations.
CREATE OR REPLACE MACRO ds_pg.pg_description(scope) AS TABLE
SELECT r.oid AS objoid, 1259::BIGINT AS classoid, 0 AS objsubid, r.description
FROM ds_pg.rels(scope) r WHERE r.description IS NOT NULL
UNION ALL
SELECT c.table_oid, 1259, c.column_index, c."comment"
FROM duckdb_columns() c
WHERE c.database_name = current_database() AND c."comment" IS NOT NULL
  AND c.table_oid IN (SELECT oid FROM ds_pg.rels(scope));

CREATE OR REPLACE MACRO ds_pg.pg_shdescription(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS objoid, 0::BIGINT AS classoid, '' AS description) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_sequence(scope) AS TABLE
SELECT sequence_oid AS seqrelid, 20::BIGINT AS seqtypid, start_value AS seqstart,
       increment_by AS seqincrement, max_value AS seqmax, min_value AS seqmin, 1::BIGINT AS seqcache,
       "cycle" AS seqcycle
FROM duckdb_sequences()
WHERE database_name = current_database() AND NOT "temporary" AND scope IS NULL;

CREATE OR REPLACE MACRO ds_pg.pg_collation(scope) AS TABLE
SELECT * FROM (VALUES (100::BIGINT, 'default', 11::BIGINT, 10::BIGINT, 'd', true, -1, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR),
                      (950, 'C', 11, 10, 'c', true, -1, 'C', 'C', NULL, NULL),
                      (951, 'POSIX', 11, 10, 'c', true, -1, 'POSIX', 'POSIX', NULL, NULL))
    AS c(oid, collname, collnamespace, collowner, collprovider, collisdeterministic, collencoding,
         collcollate, collctype, colliculocale, collversion);

CREATE OR REPLACE MACRO ds_pg.pg_tablespace(scope) AS TABLE
SELECT * FROM (VALUES (1663::BIGINT, 'pg_default', 10::BIGINT, NULL::VARCHAR[], NULL::VARCHAR[]),
                      (1664, 'pg_global', 10, NULL, NULL))
    AS t(oid, spcname, spcowner, spcacl, spcoptions);

CREATE OR REPLACE MACRO ds_pg.pg_language(scope) AS TABLE
SELECT * FROM (VALUES (12::BIGINT, 'internal', 10::BIGINT, false, false, 0::BIGINT, 0::BIGINT, 2246::BIGINT, NULL::VARCHAR[]),
                      (13, 'c', 10, false, false, 0, 0, 2247, NULL),
                      (14, 'sql', 10, false, true, 0, 0, 2248, NULL),
                      (13558, 'plpgsql', 10, true, true, 13555, 13556, 13557, NULL))
    AS l(oid, lanname, lanowner, lanispl, lanpltrusted, lanplcallfoid, laninline, lanvalidator, lanacl);

-- Views in PostgreSQL's pg_catalog.
CREATE OR REPLACE MACRO ds_pg.pg_tables(scope) AS TABLE
SELECT r.nspname AS schemaname, r.relname AS tablename, ds_pg.role_name() AS tableowner,
       NULL::VARCHAR AS tablespace, r.relhasindex AS hasindexes, false AS hasrules,
       false AS hastriggers, false AS rowsecurity
FROM ds_pg.rels(scope) r WHERE r.relkind = 'r';

CREATE OR REPLACE MACRO ds_pg.pg_views(scope) AS TABLE
SELECT r.nspname AS schemaname, r.relname AS viewname, ds_pg.role_name() AS viewowner,
       r.definition
FROM ds_pg.rels(scope) r WHERE r.relkind = 'v';

CREATE OR REPLACE MACRO ds_pg.pg_indexes(scope) AS TABLE
SELECT i.nspname AS schemaname, i.tablename, i.relname AS indexname, NULL::VARCHAR AS tablespace,
       i.indexdef
FROM ds_pg.idx(scope) i;

CREATE OR REPLACE MACRO ds_pg.pg_sequences(scope) AS TABLE
SELECT schema_name AS schemaname, sequence_name AS sequencename,
       ds_pg.role_name() AS sequenceowner, 'bigint' AS data_type, start_value, min_value,
       max_value, increment_by, "cycle", 1::BIGINT AS cache_size, last_value
FROM duckdb_sequences()
WHERE database_name = current_database() AND NOT "temporary" AND scope IS NULL;

CREATE OR REPLACE MACRO ds_pg.pg_stat_user_tables(scope) AS TABLE
SELECT r.oid AS relid, r.nspname AS schemaname, r.relname, 0::BIGINT AS seq_scan,
       0::BIGINT AS seq_tup_read, 0::BIGINT AS idx_scan, 0::BIGINT AS idx_tup_fetch,
       0::BIGINT AS n_tup_ins, 0::BIGINT AS n_tup_upd, 0::BIGINT AS n_tup_del,
       0::BIGINT AS n_tup_hot_upd, r.reltuples::BIGINT AS n_live_tup, 0::BIGINT AS n_dead_tup,
       NULL::TIMESTAMPTZ AS last_vacuum, NULL::TIMESTAMPTZ AS last_autovacuum,
       NULL::TIMESTAMPTZ AS last_analyze, NULL::TIMESTAMPTZ AS last_autoanalyze
FROM ds_pg.rels(scope) r WHERE r.relkind = 'r';

-- Other sessions are never shown.
CREATE OR REPLACE MACRO ds_pg.pg_stat_activity(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS datid, '' AS datname, 0 AS pid, NULL::INTEGER AS leader_pid,
    0::BIGINT AS usesysid, '' AS usename, '' AS application_name, NULL::VARCHAR AS client_addr,
    NULL::VARCHAR AS client_hostname, NULL::INTEGER AS client_port,
    NULL::TIMESTAMPTZ AS backend_start, NULL::TIMESTAMPTZ AS xact_start,
    NULL::TIMESTAMPTZ AS query_start, NULL::TIMESTAMPTZ AS state_change,
    NULL::VARCHAR AS wait_event_type, NULL::VARCHAR AS wait_event, NULL::VARCHAR AS state,
    NULL::BIGINT AS backend_xid, NULL::BIGINT AS backend_xmin, NULL::BIGINT AS query_id,
    '' AS query, '' AS backend_type) WHERE false;

-- Typed empty relations: PostgreSQL features DuckDB has none of.
CREATE OR REPLACE MACRO ds_pg.pg_inherits(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS inhrelid, 0::BIGINT AS inhparent, 0 AS inhseqno,
                      false AS inhdetachpending) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_partitioned_table(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS partrelid, '' AS partstrat, 0::SMALLINT AS partnatts,
    0::BIGINT AS partdefid, []::SMALLINT[] AS partattrs, []::BIGINT[] AS partclass,
    []::BIGINT[] AS partcollation, NULL::VARCHAR AS partexprs) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_policy(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, '' AS polname, 0::BIGINT AS polrelid, '' AS polcmd,
    true AS polpermissive, []::BIGINT[] AS polroles, NULL::VARCHAR AS polqual,
    NULL::VARCHAR AS polwithcheck) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_statistic_ext(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS stxrelid, '' AS stxname,
    0::BIGINT AS stxnamespace, 0::BIGINT AS stxowner, -1 AS stxstattarget,
    []::SMALLINT[] AS stxkeys, []::VARCHAR[] AS stxkind, NULL::VARCHAR AS stxexprs) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_publication(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, '' AS pubname, 0::BIGINT AS pubowner,
    false AS puballtables, false AS pubinsert, false AS pubupdate, false AS pubdelete,
    false AS pubtruncate, false AS pubviaroot) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_publication_rel(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS prpubid, 0::BIGINT AS prrelid,
    NULL::VARCHAR AS prqual, NULL::SMALLINT[] AS prattrs) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_publication_namespace(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS pnpubid, 0::BIGINT AS pnnspid) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_rewrite(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, '' AS rulename, 0::BIGINT AS ev_class, '' AS ev_type,
    '' AS ev_enabled, false AS is_instead, NULL::VARCHAR AS ev_qual, NULL::VARCHAR AS ev_action)
WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_trigger(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS tgrelid, 0::BIGINT AS tgparentid,
    '' AS tgname, 0::BIGINT AS tgfoid, 0::SMALLINT AS tgtype, '' AS tgenabled,
    false AS tgisinternal, 0::BIGINT AS tgconstrrelid, 0::BIGINT AS tgconstrindid,
    0::BIGINT AS tgconstraint, false AS tgdeferrable, false AS tginitdeferred,
    0::SMALLINT AS tgnargs, []::SMALLINT[] AS tgattr, NULL::BLOB AS tgargs,
    NULL::VARCHAR AS tgqual, NULL::VARCHAR AS tgoldtable, NULL::VARCHAR AS tgnewtable) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_event_trigger(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, '' AS evtname, '' AS evtevent, 0::BIGINT AS evtowner,
    0::BIGINT AS evtfoid, '' AS evtenabled, NULL::VARCHAR[] AS evttags) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_enum(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS enumtypid, 0::REAL AS enumsortorder,
    '' AS enumlabel) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_range(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS rngtypid, 0::BIGINT AS rngsubtype,
    0::BIGINT AS rngmultitypid, 0::BIGINT AS rngcollation, 0::BIGINT AS rngsubopc,
    '-' AS rngcanonical, '-' AS rngsubdiff) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_matviews(scope) AS TABLE
SELECT * FROM (SELECT '' AS schemaname, '' AS matviewname, '' AS matviewowner,
    NULL::VARCHAR AS tablespace, false AS hasindexes, false AS ispopulated, '' AS definition)
WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_foreign_table(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS ftrelid, 0::BIGINT AS ftserver, NULL::VARCHAR[] AS ftoptions)
WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_depend(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS classid, 0::BIGINT AS objid, 0 AS objsubid,
    0::BIGINT AS refclassid, 0::BIGINT AS refobjid, 0 AS refobjsubid, '' AS deptype) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_cast(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS castsource, 0::BIGINT AS casttarget,
    0::BIGINT AS castfunc, '' AS castcontext, '' AS castmethod) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_operator(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, '' AS oprname, 0::BIGINT AS oprnamespace,
    0::BIGINT AS oprowner, '' AS oprkind, false AS oprcanmerge, false AS oprcanhash,
    0::BIGINT AS oprleft, 0::BIGINT AS oprright, 0::BIGINT AS oprresult, 0::BIGINT AS oprcom,
    0::BIGINT AS oprnegate, '-' AS oprcode, '-' AS oprrest, '-' AS oprjoin) WHERE false;

CREATE OR REPLACE MACRO ds_pg.pg_opclass(scope) AS TABLE
SELECT * FROM (SELECT 0::BIGINT AS oid, 0::BIGINT AS opcmethod, '' AS opcname,
    0::BIGINT AS opcnamespace, 0::BIGINT AS opcowner, 0::BIGINT AS opcfamily,
    0::BIGINT AS opcintype, false AS opcdefault, 0::BIGINT AS opckeytype) WHERE false;

-- ---------------------------------------------------------------------------------------------
-- information_schema relations (tenant's schemas and relations only)
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE MACRO ds_pg.schemata(scope) AS TABLE
SELECT current_database() AS catalog_name, n.nspname AS schema_name,
       ds_pg.role_name() AS schema_owner, NULL::VARCHAR AS default_character_set_catalog,
       NULL::VARCHAR AS default_character_set_schema, NULL::VARCHAR AS default_character_set_name,
       NULL::VARCHAR AS sql_path
FROM ds_pg.pg_namespace(scope) n;

CREATE OR REPLACE MACRO ds_pg.tables(scope) AS TABLE
SELECT current_database() AS table_catalog, r.nspname AS table_schema, r.relname AS table_name,
       CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'BASE TABLE' END AS table_type,
       NULL::VARCHAR AS self_referencing_column_name, NULL::VARCHAR AS reference_generation,
       NULL::VARCHAR AS user_defined_type_catalog, NULL::VARCHAR AS user_defined_type_schema,
       NULL::VARCHAR AS user_defined_type_name, 'NO' AS is_insertable_into, 'NO' AS is_typed,
       NULL::VARCHAR AS commit_action
FROM ds_pg.rels(scope) r WHERE r.relkind IN ('r', 'v')
ORDER BY r.nspname, r.relname;

CREATE OR REPLACE MACRO ds_pg.views(scope) AS TABLE
SELECT current_database() AS table_catalog, r.nspname AS table_schema, r.relname AS table_name,
       r.definition AS view_definition, 'NONE' AS check_option, 'NO' AS is_updatable,
       'NO' AS is_insertable_into, 'NO' AS is_trigger_updatable, 'NO' AS is_trigger_deletable,
       'NO' AS is_trigger_insertable_into
FROM ds_pg.rels(scope) r WHERE r.relkind = 'v';

CREATE OR REPLACE MACRO ds_pg.columns(scope) AS TABLE
SELECT current_database() AS table_catalog, r.nspname AS table_schema, r.relname AS table_name,
       a.attname AS column_name, a.attnum::INTEGER AS ordinal_position,
       d.adbin AS column_default, CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable,
       CASE WHEN t.typcategory = 'A' THEN 'ARRAY' ELSE t.fmt END AS data_type,
       NULL::INTEGER AS character_maximum_length,
       CASE WHEN t.typcategory = 'S' THEN 1073741824 END AS character_octet_length,
       CASE WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN (a.atttypmod - 4) >> 16
            WHEN a.atttypid = 21 THEN 16 WHEN a.atttypid = 23 THEN 32 WHEN a.atttypid = 20 THEN 64
            WHEN a.atttypid = 700 THEN 24 WHEN a.atttypid = 701 THEN 53 END AS numeric_precision,
       CASE WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN 10
            WHEN a.atttypid IN (21, 23, 20, 700, 701) THEN 2 END AS numeric_precision_radix,
       CASE WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN (a.atttypmod - 4) & 65535
            WHEN a.atttypid IN (21, 23, 20) THEN 0 END AS numeric_scale,
       CASE WHEN a.atttypid IN (1082) THEN 0
            WHEN a.atttypid IN (1083, 1266, 1114, 1184, 1186) THEN 6 END AS datetime_precision,
       NULL::VARCHAR AS interval_type, NULL::INTEGER AS interval_precision,
       NULL::VARCHAR AS character_set_catalog, NULL::VARCHAR AS character_set_schema,
       NULL::VARCHAR AS character_set_name, NULL::VARCHAR AS collation_catalog,
       NULL::VARCHAR AS collation_schema, NULL::VARCHAR AS collation_name,
       NULL::VARCHAR AS domain_catalog, NULL::VARCHAR AS domain_schema,
       NULL::VARCHAR AS domain_name, current_database() AS udt_catalog, 'pg_catalog' AS udt_schema,
       t.typname AS udt_name, NULL::VARCHAR AS scope_catalog, NULL::VARCHAR AS scope_schema,
       NULL::VARCHAR AS scope_name, NULL::INTEGER AS maximum_cardinality,
       a.attnum::VARCHAR AS dtd_identifier, 'NO' AS is_self_referencing, 'NO' AS is_identity,
       NULL::VARCHAR AS identity_generation, NULL::VARCHAR AS identity_start,
       NULL::VARCHAR AS identity_increment, NULL::VARCHAR AS identity_maximum,
       NULL::VARCHAR AS identity_minimum, NULL::VARCHAR AS identity_cycle, 'NEVER' AS is_generated,
       NULL::VARCHAR AS generation_expression, 'NO' AS is_updatable
FROM ds_pg.pg_attribute(scope) a
JOIN ds_pg.rels(scope) r ON r.oid = a.attrelid
JOIN ds_pg.types() t ON t.oid = a.atttypid
LEFT JOIN ds_pg.pg_attrdef(scope) d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
ORDER BY r.nspname, r.relname, a.attnum;

CREATE OR REPLACE MACRO ds_pg.table_constraints(scope) AS TABLE
SELECT current_database() AS constraint_catalog, c.nspname AS constraint_schema,
       c.conname AS constraint_name, current_database() AS table_catalog,
       c.nspname AS table_schema, c.relname AS table_name,
       CASE c.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE'
            WHEN 'f' THEN 'FOREIGN KEY' ELSE 'CHECK' END AS constraint_type,
       'NO' AS is_deferrable, 'NO' AS initially_deferred, 'YES' AS enforced,
       NULL::VARCHAR AS nulls_distinct
FROM ds_pg.cons(scope) c;

CREATE OR REPLACE MACRO ds_pg.key_column_usage(scope) AS TABLE
SELECT current_database() AS constraint_catalog, c.nspname AS constraint_schema,
       c.conname AS constraint_name, current_database() AS table_catalog,
       c.nspname AS table_schema, c.relname AS table_name, u.column_name,
       u.ordinal_position::INTEGER AS ordinal_position,
       NULL::INTEGER AS position_in_unique_constraint
FROM ds_pg.cons(scope) c,
     (SELECT unnest(c.colnames) AS column_name, generate_subscripts(c.colnames, 1) AS ordinal_position) u
WHERE c.contype IN ('p', 'u', 'f');

-- ---------------------------------------------------------------------------------------------
-- Scalar functions
-- ---------------------------------------------------------------------------------------------

CREATE OR REPLACE MACRO ds_pg.version() AS
    'PostgreSQL 15.0 (duckstream, DuckDB ' || version() || ') on x86_64-pc-linux-gnu, 64-bit';

CREATE OR REPLACE MACRO ds_pg.current_setting(setting_name) AS
    coalesce(ds_pg.guc_map()[lower(setting_name)].setting,
             error('unrecognized configuration parameter "' || setting_name || '"')),
    (setting_name, missing_ok) AS
    coalesce(ds_pg.guc_map()[lower(setting_name)].setting,
             CASE WHEN missing_ok THEN NULL
                  ELSE error('unrecognized configuration parameter "' || setting_name || '"') END);

-- Changes nothing: answers the value, as PostgreSQL does (pgAdmin, asyncpg's jit probe).
CREATE OR REPLACE MACRO ds_pg.set_config(name, value, is_local) AS value::VARCHAR;

CREATE OR REPLACE MACRO ds_pg.current_schemas(include_implicit) AS
    CASE WHEN include_implicit THEN ['pg_catalog', 'main'] ELSE ['main'] END;

CREATE OR REPLACE MACRO ds_pg.session_user() AS ds_pg.role_name();

CREATE OR REPLACE MACRO ds_pg.pg_get_userbyid(oid) AS
    CASE WHEN oid IS NULL THEN NULL WHEN oid = 10 THEN ds_pg.role_name()
         ELSE 'unknown (OID=' || oid || ')' END;

CREATE OR REPLACE MACRO ds_pg.pg_encoding_to_char(enc) AS
    CASE enc WHEN 6 THEN 'UTF8' WHEN 0 THEN 'SQL_ASCII' ELSE '' END;

CREATE OR REPLACE MACRO ds_pg.pg_char_to_encoding(name) AS
    CASE upper(name) WHEN 'UTF8' THEN 6 WHEN 'SQL_ASCII' THEN 0 ELSE -1 END;

CREATE OR REPLACE MACRO ds_pg.pg_is_in_recovery() AS false;
CREATE OR REPLACE MACRO ds_pg.pg_backend_pid() AS 0;
CREATE OR REPLACE MACRO ds_pg.pg_table_is_visible(oid) AS true;
CREATE OR REPLACE MACRO ds_pg.pg_type_is_visible(oid) AS true;
CREATE OR REPLACE MACRO ds_pg.pg_function_is_visible(oid) AS true;
CREATE OR REPLACE MACRO ds_pg.pg_collation_is_visible(oid) AS true;
CREATE OR REPLACE MACRO ds_pg.pg_relation_is_publishable(rel) AS false;
CREATE OR REPLACE MACRO ds_pg.pg_get_statisticsobjdef_columns(oid) AS NULL::VARCHAR;
CREATE OR REPLACE MACRO ds_pg.pg_get_partkeydef(oid) AS NULL::VARCHAR;
CREATE OR REPLACE MACRO ds_pg.pg_get_function_result(oid) AS NULL::VARCHAR;
CREATE OR REPLACE MACRO ds_pg.pg_get_function_arguments(oid) AS NULL::VARCHAR;
CREATE OR REPLACE MACRO ds_pg.pg_get_function_identity_arguments(oid) AS NULL::VARCHAR;
CREATE OR REPLACE MACRO ds_pg.pg_get_serial_sequence(tbl, col) AS NULL::VARCHAR;
CREATE OR REPLACE MACRO ds_pg.pg_get_triggerdef(oid) AS NULL::VARCHAR, (oid, pretty) AS NULL::VARCHAR;
-- No partitions: a relation is its own only ancestor and root (psql's \d footers).
CREATE OR REPLACE MACRO ds_pg.pg_partition_ancestors(rel) AS TRY_CAST(rel AS BIGINT);
CREATE OR REPLACE MACRO ds_pg.pg_partition_root(rel) AS TRY_CAST(rel AS BIGINT);
-- Sizes are not shown (a data file's size is a server fact): NULL, which psql prints empty.
CREATE OR REPLACE MACRO ds_pg.pg_table_size(rel) AS NULL::BIGINT;
CREATE OR REPLACE MACRO ds_pg.pg_total_relation_size(rel) AS NULL::BIGINT;
CREATE OR REPLACE MACRO ds_pg.pg_relation_size(rel) AS NULL::BIGINT, (rel, fork) AS NULL::BIGINT;
CREATE OR REPLACE MACRO ds_pg.pg_indexes_size(rel) AS NULL::BIGINT;

-- pg_get_expr(expr, relid [, pretty]): the expression's text is stored as text already.
CREATE OR REPLACE MACRO ds_pg.pg_get_expr(expr, relid) AS expr::VARCHAR,
    (expr, relid, pretty) AS expr::VARCHAR;

-- PostgreSQL's format_type(type_oid, typmod).
CREATE OR REPLACE MACRO ds_pg.format_type(type_oid, typmod) AS CASE
    WHEN type_oid IS NULL THEN NULL
    ELSE coalesce(ds_pg.type_map()[type_oid::BIGINT].fmt, '???')
      || CASE WHEN type_oid = 1700 AND typmod >= 4
              THEN '(' || ((typmod - 4) >> 16) || ',' || ((typmod - 4) & 65535) || ')'
              WHEN type_oid = 1043 AND typmod >= 4 THEN '(' || (typmod - 4) || ')'
              ELSE '' END
    END;

-- PostgreSQL's quote_ident: quoted unless a lower-case plain name that is not a keyword
-- (PostgreSQL 15's non-unreserved keywords: pg_get_keywords() WHERE catcode <> 'U').
CREATE OR REPLACE MACRO ds_pg.quote_ident(s) AS CASE
    WHEN s IS NULL THEN NULL
    WHEN regexp_full_match(s, '[a-z_][a-z0-9_$]*') AND NOT list_contains([
        'all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric',
        'authorization', 'between', 'bigint', 'binary', 'bit', 'boolean', 'both', 'case', 'cast',
        'char', 'character', 'check', 'coalesce', 'collate', 'collation', 'column', 'concurrently',
        'constraint', 'create', 'cross', 'current_catalog', 'current_date', 'current_role',
        'current_schema', 'current_time', 'current_timestamp', 'current_user', 'dec', 'decimal',
        'default', 'deferrable', 'desc', 'distinct', 'do', 'else', 'end', 'except', 'exists',
        'extract', 'false', 'fetch', 'float', 'for', 'foreign', 'freeze', 'from', 'full', 'grant',
        'greatest', 'group', 'grouping', 'having', 'ilike', 'in', 'initially', 'inner', 'inout',
        'int', 'integer', 'intersect', 'interval', 'into', 'is', 'isnull', 'join', 'lateral',
        'leading', 'least', 'left', 'like', 'limit', 'localtime', 'localtimestamp', 'national',
        'natural', 'nchar', 'none', 'normalize', 'not', 'notnull', 'null', 'nullif', 'numeric',
        'offset', 'on', 'only', 'or', 'order', 'out', 'outer', 'overlaps', 'overlay', 'placing',
        'position', 'precision', 'primary', 'real', 'references', 'returning', 'right', 'row',
        'select', 'session_user', 'setof', 'similar', 'smallint', 'some', 'substring', 'symmetric',
        'table', 'tablesample', 'then', 'time', 'timestamp', 'to', 'trailing', 'treat', 'trim',
        'true', 'union', 'unique', 'user', 'using', 'values', 'varchar', 'variadic', 'verbose',
        'when', 'where', 'window', 'with', 'xmlattributes', 'xmlconcat', 'xmlelement', 'xmlexists',
        'xmlforest', 'xmlnamespaces', 'xmlparse', 'xmlpi', 'xmlroot', 'xmlserialize', 'xmltable'
    ], s) THEN s
    ELSE '"' || replace(s, '"', '""') || '"' END;

-- PostgreSQL's parse_ident: `a.B."C d"` -> [a, b, C d] (unquoted parts lower-cased).
CREATE OR REPLACE MACRO ds_pg.parse_ident(s) AS
    list_transform(regexp_extract_all(s, '("(?:[^"]|"")*"|[^."]+)'),
        p -> CASE WHEN starts_with(trim(p), '"') THEN replace(trim(p)[2:-2], '""', '"')
                  ELSE lower(trim(p)) END),
    (s, strict) AS
    list_transform(regexp_extract_all(s, '("(?:[^"]|"")*"|[^."]+)'),
        p -> CASE WHEN starts_with(trim(p), '"') THEN replace(trim(p)[2:-2], '""', '"')
                  ELSE lower(trim(p)) END);

-- One-dimensional arrays with PostgreSQL's default lower bound 1; NULL for an empty array or
-- another dimension, as in PostgreSQL.
CREATE OR REPLACE MACRO ds_pg.array_lower(arr, dim) AS
    CASE WHEN dim = 1 AND len(arr) > 0 THEN 1 END;
CREATE OR REPLACE MACRO ds_pg.array_upper(arr, dim) AS
    CASE WHEN dim = 1 AND len(arr) > 0 THEN len(arr) END;
CREATE OR REPLACE MACRO ds_pg.array_ndims(arr) AS CASE WHEN len(arr) > 0 THEN 1 END;

-- Scalar macros below that look rows up use subqueries whose aliases and columns all start with
-- ds_pg_: a macro's arguments are the caller's expressions (`c.oid`, a bare `oid`), and must
-- still bind to the caller's tables inside the subquery.

-- The scope's relations by OID and by (schema, name), for the lookups below.
CREATE OR REPLACE MACRO ds_pg.rel_names(scope) AS TABLE
SELECT c.oid AS ds_pg_oid, c.relname AS ds_pg_relname, n.nspname AS ds_pg_nspname
FROM ds_pg.pg_class(scope) c JOIN ds_pg.pg_namespace(scope) n ON n.oid = c.relnamespace;

-- The catalog relations clients name in casts (`'pg_catalog.pg_constraint'::regclass`), with
-- PostgreSQL's OIDs.
CREATE OR REPLACE MACRO ds_pg.catalog_oids() AS MAP {
    'pg_type': 1247, 'pg_attribute': 1249, 'pg_proc': 1255, 'pg_class': 1259,
    'pg_database': 1262, 'pg_attrdef': 2604, 'pg_constraint': 2606, 'pg_index': 2610,
    'pg_namespace': 2615, 'pg_description': 2609, 'pg_extension': 3079
};

-- A relation's OID from its name (`t`, `s.t`, quoted parts) or from an OID, in the scope;
-- NULL when there is none (PostgreSQL's to_regclass; a ::regclass cast becomes this too, so an
-- out-of-scope or missing name gives NULL instead of an error).
CREATE OR REPLACE MACRO ds_pg.regclass(rel, scope) AS CASE
    WHEN rel IS NULL THEN NULL
    WHEN TRY_CAST(rel AS BIGINT) IS NOT NULL THEN
        CASE WHEN TRY_CAST(rel AS BIGINT) = 0 THEN 0::BIGINT ELSE
        (SELECT ds_pg_r.ds_pg_oid FROM ds_pg.rel_names(scope) ds_pg_r
         WHERE ds_pg_r.ds_pg_oid = TRY_CAST(rel AS BIGINT)) END
    ELSE coalesce(
        (SELECT min(ds_pg_r.ds_pg_oid) FROM ds_pg.rel_names(scope) ds_pg_r
         WHERE lower(ds_pg_r.ds_pg_relname) = lower(ds_pg.parse_ident(rel::VARCHAR)[-1])
           AND CASE WHEN len(ds_pg.parse_ident(rel::VARCHAR)) >= 2
                    THEN lower(ds_pg_r.ds_pg_nspname) = lower(ds_pg.parse_ident(rel::VARCHAR)[-2])
                    ELSE ds_pg_r.ds_pg_nspname = 'main' END),
        CASE WHEN len(ds_pg.parse_ident(rel::VARCHAR)) = 1
                  OR ds_pg.parse_ident(rel::VARCHAR)[-2] = 'pg_catalog'
             THEN ds_pg.catalog_oids()[ds_pg.parse_ident(rel::VARCHAR)[-1]]::BIGINT END)
    END;

CREATE OR REPLACE MACRO ds_pg.to_regclass(rel, scope) AS ds_pg.regclass(rel, scope);

-- `x::regclass::text`: the relation's name, qualified when not in main (PostgreSQL qualifies
-- names not on the search path); an OID without a relation in the scope prints as the number.
CREATE OR REPLACE MACRO ds_pg.regclass_name(rel, scope) AS CASE
    WHEN rel IS NULL THEN NULL
    ELSE coalesce(
        (SELECT CASE WHEN ds_pg_r.ds_pg_nspname = 'main' THEN ds_pg.quote_ident(ds_pg_r.ds_pg_relname)
                     ELSE ds_pg.quote_ident(ds_pg_r.ds_pg_nspname) || '.'
                          || ds_pg.quote_ident(ds_pg_r.ds_pg_relname) END
         FROM ds_pg.rel_names(scope) ds_pg_r WHERE ds_pg_r.ds_pg_oid = ds_pg.regclass(rel, scope)),
        CASE WHEN TRY_CAST(rel AS BIGINT) IS NOT NULL THEN rel::VARCHAR END)
    END;

-- Types: `x::regtype` (an OID or a name), `x::regtype::text` (format_type's name).
CREATE OR REPLACE MACRO ds_pg.regtype(typ) AS CASE
    WHEN typ IS NULL THEN NULL
    WHEN TRY_CAST(typ AS BIGINT) IS NOT NULL THEN TRY_CAST(typ AS BIGINT)
    ELSE ds_pg.type_names()[lower(regexp_replace(typ::VARCHAR, '^pg_catalog\.', ''))]::BIGINT END;
CREATE OR REPLACE MACRO ds_pg.to_regtype(typ) AS ds_pg.regtype(typ);
CREATE OR REPLACE MACRO ds_pg.regtype_name(typ) AS CASE
    WHEN typ IS NULL THEN NULL
    WHEN TRY_CAST(typ AS BIGINT) = 0 THEN '-'
    ELSE coalesce(ds_pg.format_type(ds_pg.regtype(typ), NULL),
                  CASE WHEN TRY_CAST(typ AS BIGINT) IS NOT NULL THEN typ::VARCHAR END) END;

-- `x::regnamespace` / `x::regnamespace::text`.
CREATE OR REPLACE MACRO ds_pg.regnamespace(ns, scope) AS CASE
    WHEN TRY_CAST(ns AS BIGINT) IS NOT NULL THEN TRY_CAST(ns AS BIGINT)
    ELSE (SELECT min(ds_pg_n.oid) FROM ds_pg.pg_namespace(scope) ds_pg_n
          WHERE ds_pg_n.nspname = ns::VARCHAR) END;
CREATE OR REPLACE MACRO ds_pg.regnamespace_name(ns, scope) AS
    (SELECT min(ds_pg.quote_ident(ds_pg_n.nspname)) FROM ds_pg.pg_namespace(scope) ds_pg_n
     WHERE ds_pg_n.oid = ds_pg.regnamespace(ns, scope));

-- `x::regproc`, `x::regrole`: no functions are listed; role 10 is the only role.
CREATE OR REPLACE MACRO ds_pg.regproc_name(p) AS CASE WHEN TRY_CAST(p AS BIGINT) = 0 THEN '-'
    ELSE p::VARCHAR END;
CREATE OR REPLACE MACRO ds_pg.regrole_name(r) AS ds_pg.pg_get_userbyid(TRY_CAST(r AS BIGINT));

-- Privileges: reading (SELECT, REFERENCES) a relation of the scope; nothing is writable.
CREATE OR REPLACE MACRO ds_pg.can_read(rel, priv, scope) AS
    -- (OIDs below 16384 are the catalog relations of ds_pg.catalog_oids, never readable)
    coalesce(ds_pg.regclass(rel, scope) > 16383, false)
    AND regexp_matches(upper(priv), 'SELECT|REFERENCES');
CREATE OR REPLACE MACRO ds_pg.has_table_privilege(rel, priv, scope) AS
    ds_pg.can_read(rel, priv, scope),
    (usr, rel, priv, scope) AS ds_pg.can_read(rel, priv, scope);
CREATE OR REPLACE MACRO ds_pg.has_any_column_privilege(rel, priv, scope) AS
    ds_pg.can_read(rel, priv, scope),
    (usr, rel, priv, scope) AS ds_pg.can_read(rel, priv, scope);
CREATE OR REPLACE MACRO ds_pg.has_column_privilege(rel, col, priv, scope) AS
    ds_pg.can_read(rel, priv, scope),
    (usr, rel, col, priv, scope) AS ds_pg.can_read(rel, priv, scope);
CREATE OR REPLACE MACRO ds_pg.has_schema_privilege(sch, priv) AS
    regexp_matches(upper(priv), 'USAGE'),
    (usr, sch, priv) AS regexp_matches(upper(priv), 'USAGE');
CREATE OR REPLACE MACRO ds_pg.has_database_privilege(db, priv) AS
    regexp_matches(upper(priv), 'CONNECT'),
    (usr, db, priv) AS regexp_matches(upper(priv), 'CONNECT');

-- Definitions, only for objects of the scope (NULL else, as PostgreSQL for a missing OID).
CREATE OR REPLACE MACRO ds_pg.index_defs(scope) AS TABLE
SELECT oid AS ds_pg_oid, indexdef AS ds_pg_def, indcols AS ds_pg_cols FROM ds_pg.idx(scope);
CREATE OR REPLACE MACRO ds_pg.pg_get_indexdef(idx, scope) AS
    (SELECT min(ds_pg_i.ds_pg_def) FROM ds_pg.index_defs(scope) ds_pg_i WHERE ds_pg_i.ds_pg_oid = idx),
    (idx, col, pretty, scope) AS
    (SELECT min(CASE WHEN col = 0 THEN ds_pg_i.ds_pg_def ELSE ds_pg_i.ds_pg_cols[col] END)
     FROM ds_pg.index_defs(scope) ds_pg_i WHERE ds_pg_i.ds_pg_oid = idx);

CREATE OR REPLACE MACRO ds_pg.constraint_defs(scope) AS TABLE
SELECT oid AS ds_pg_oid,
       CASE contype
           WHEN 'p' THEN 'PRIMARY KEY (' || array_to_string(colnames, ', ') || ')'
           WHEN 'u' THEN 'UNIQUE (' || array_to_string(colnames, ', ') || ')'
           WHEN 'c' THEN 'CHECK ' || CASE WHEN starts_with(expression, '(') AND ends_with(expression, ')')
                                          THEN expression ELSE '(' || expression || ')' END
           ELSE constraint_text END AS ds_pg_def
FROM ds_pg.cons(scope);
CREATE OR REPLACE MACRO ds_pg.pg_get_constraintdef(con, scope) AS
    (SELECT min(ds_pg_c.ds_pg_def) FROM ds_pg.constraint_defs(scope) ds_pg_c WHERE ds_pg_c.ds_pg_oid = con),
    (con, pretty, scope) AS
    (SELECT min(ds_pg_c.ds_pg_def) FROM ds_pg.constraint_defs(scope) ds_pg_c WHERE ds_pg_c.ds_pg_oid = con);

CREATE OR REPLACE MACRO ds_pg.view_defs(scope) AS TABLE
SELECT oid AS ds_pg_oid, definition AS ds_pg_def FROM ds_pg.rels(scope) WHERE relkind = 'v';
CREATE OR REPLACE MACRO ds_pg.pg_get_viewdef(v, scope) AS
    (SELECT min(ds_pg_v.ds_pg_def) FROM ds_pg.view_defs(scope) ds_pg_v
     WHERE ds_pg_v.ds_pg_oid = ds_pg.regclass(v, scope)),
    (v, pretty, scope) AS
    (SELECT min(ds_pg_v.ds_pg_def) FROM ds_pg.view_defs(scope) ds_pg_v
     WHERE ds_pg_v.ds_pg_oid = ds_pg.regclass(v, scope));

CREATE OR REPLACE MACRO ds_pg.descriptions(scope) AS TABLE
SELECT objoid AS ds_pg_oid, objsubid AS ds_pg_sub, description AS ds_pg_text
FROM ds_pg.pg_description(scope);
CREATE OR REPLACE MACRO ds_pg.obj_description(obj, scope) AS
    (SELECT min(ds_pg_d.ds_pg_text) FROM ds_pg.descriptions(scope) ds_pg_d
     WHERE ds_pg_d.ds_pg_oid = obj AND ds_pg_d.ds_pg_sub = 0),
    (obj, catalog, scope) AS
    (SELECT min(ds_pg_d.ds_pg_text) FROM ds_pg.descriptions(scope) ds_pg_d
     WHERE ds_pg_d.ds_pg_oid = obj AND ds_pg_d.ds_pg_sub = 0 AND catalog = 'pg_class');
CREATE OR REPLACE MACRO ds_pg.col_description(rel, col, scope) AS
    (SELECT min(ds_pg_d.ds_pg_text) FROM ds_pg.descriptions(scope) ds_pg_d
     WHERE ds_pg_d.ds_pg_oid = rel AND ds_pg_d.ds_pg_sub = col);

CREATE OR REPLACE MACRO ds_pg.shobj_description(obj, catalog) AS NULL::VARCHAR;
