//! Which PostgreSQL type each result column is: its OID, `typlen` and how its values are
//! written (the table in `docs/PROTOCOL.md`, "PostgreSQL endpoint").
//!
//! Invariants:
//! - Only built-in OIDs (`pg_type.h`), so that no driver has to look a type up (asyncpg and
//!   JDBC would ask the catalog for any other).
//! - Every type has both a text and a binary form: no column refuses binary.
//! - DuckDB's unsigned and 128-bit integers widen to the next signed type, or to `numeric`;
//!   LIST and ARRAY of a type with a PostgreSQL array type are arrays, every other nested type
//!   (STRUCT, MAP, UNION, nested lists) is `json`.

use super::super::plan::Plan;
use crate::wire::GeometryFormat;

/// A result column's PostgreSQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgType {
    pub oid: u32,
    /// `pg_type.typlen`: the fixed width in bytes, or -1.
    pub len: i16,
}

impl PgType {
    const fn new(oid: u32, len: i16) -> Self {
        Self { oid, len }
    }
}

pub const BOOL: PgType = PgType::new(16, 1);
pub const BYTEA: PgType = PgType::new(17, -1);
pub const INT8: PgType = PgType::new(20, 8);
pub const INT2: PgType = PgType::new(21, 2);
pub const INT4: PgType = PgType::new(23, 4);
pub const TEXT: PgType = PgType::new(25, -1);
/// PostGIS's `geometry` has no fixed OID (the extension's install assigns one): this one is
/// duckstream's, listed as `geometry` in the catalogs' `pg_type`, where PostGIS-aware clients
/// look the type up by name. Only with `duckstream.geometry_output = ewkb`.
pub const GEOMETRY: PgType = PgType::new(16400, -1);
pub const JSON: PgType = PgType::new(114, -1);
pub const FLOAT4: PgType = PgType::new(700, 4);
pub const FLOAT8: PgType = PgType::new(701, 8);
pub const DATE: PgType = PgType::new(1082, 4);
pub const TIME: PgType = PgType::new(1083, 8);
pub const TIMESTAMP: PgType = PgType::new(1114, 8);
pub const TIMESTAMPTZ: PgType = PgType::new(1184, 8);
pub const INTERVAL: PgType = PgType::new(1186, 16);
pub const TIMETZ: PgType = PgType::new(1266, 12);
pub const VARBIT: PgType = PgType::new(1562, -1);
pub const NUMERIC: PgType = PgType::new(1700, -1);
pub const UUID: PgType = PgType::new(2950, 16);

/// How a column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One value of `ty`.
    Scalar,
    /// A one-dimensional array of `element`.
    Array { element: PgType },
    /// The value's JSON text (`json`).
    Json,
}

/// The type of a column with `plan` (`type_name` is DuckDB's name: `JSON` is a VARCHAR alias).
pub fn column_type(plan: &Plan, type_name: &str) -> (PgType, Shape) {
    match plan {
        Plan::List(element) | Plan::Array(element, _) => match array_of(element) {
            Some((array, element)) => (array, Shape::Array { element }),
            None => (JSON, Shape::Json),
        },
        Plan::Struct(_) | Plan::Map(_, _) | Plan::Union(_) => (JSON, Shape::Json),
        Plan::Varchar if type_name == "JSON" => (JSON, Shape::Scalar),
        scalar => (scalar_type(scalar), Shape::Scalar),
    }
}

/// The type of a value of a plan that is not nested.
pub fn scalar_type(plan: &Plan) -> PgType {
    match plan {
        Plan::Bool => BOOL,
        Plan::I8 | Plan::I16 | Plan::U8 => INT2,
        Plan::I32 | Plan::U16 => INT4,
        Plan::I64 | Plan::U32 => INT8,
        Plan::U64 | Plan::I128 | Plan::U128 | Plan::Decimal { .. } => NUMERIC,
        Plan::F32 => FLOAT4,
        Plan::F64 => FLOAT8,
        Plan::Blob => BYTEA,
        Plan::Bit => VARBIT,
        Plan::Date => DATE,
        Plan::Time(_) => TIME,
        Plan::TimeTz => TIMETZ,
        Plan::Timestamp { utc: false, .. } => TIMESTAMP,
        Plan::Timestamp { utc: true, .. } => TIMESTAMPTZ,
        Plan::Interval => INTERVAL,
        Plan::Uuid => UUID,
        Plan::Geometry(GeometryFormat::Wkb) => GEOMETRY,
        // VARCHAR, ENUM (its label), GEOMETRY (WKT or hex WKB), a NULL-typed column.
        _ => TEXT,
    }
}

/// The array type of `element`'s type and that type, when PostgreSQL has one and `element` is
/// not nested itself.
fn array_of(element: &Plan) -> Option<(PgType, PgType)> {
    if matches!(
        element,
        Plan::List(_) | Plan::Array(..) | Plan::Struct(_) | Plan::Map(..) | Plan::Union(_)
    ) {
        return None;
    }
    let ty = scalar_type(element);
    let array = match ty.oid {
        16 => 1000,
        17 => 1001,
        20 => 1016,
        21 => 1005,
        23 => 1007,
        25 => 1009,
        114 => 199,
        700 => 1021,
        701 => 1022,
        1082 => 1182,
        1083 => 1183,
        1114 => 1115,
        1184 => 1185,
        1186 => 1187,
        1266 => 1270,
        1562 => 1563,
        1700 => 1231,
        2950 => 2951,
        _ => return None,
    };
    Some((PgType::new(array, -1), ty))
}
