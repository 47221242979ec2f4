//! Column plans: what a DuckDB logical type becomes in JSON, decided once per query.
//!
//! A [`Plan`] is built from a column's logical type before the first row is read, so that the
//! per-value loop only dispatches on a small enum and never asks DuckDB about types. Building
//! a plan also yields the type's display name for the metadata line ([`type_name`]).
//!
//! Invariant: every type `Plan::build` accepts has exactly one JSON form (`docs/PROTOCOL.md`);
//! types without one are refused with [`UnsupportedType`] before the query runs.

use crate::duck::type_id::{self, TypeId};
use crate::duck::LogicalType;
use crate::wire::{json, GeometryFormat};

/// A type the encoder has no JSON form for (yet).
#[derive(Debug, Clone, thiserror::Error)]
/// (Also the Arrow format's, when DuckDB makes no Arrow schema for a result.)
#[error("{0}")]
pub struct UnsupportedType(pub String);

impl UnsupportedType {
    /// A column type without a JSON form.
    pub fn json(type_name: String) -> Self {
        Self(format!(
            "the result type {type_name} has no JSON form yet; CAST it (to VARCHAR, for instance)"
        ))
    }
}

/// Precision of a timestamp or time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticks {
    pub per_sec: i64,
    pub digits: u32,
}

pub const SECONDS: Ticks = Ticks {
    per_sec: 1,
    digits: 0,
};
pub const MILLIS: Ticks = Ticks {
    per_sec: 1_000,
    digits: 3,
};
pub const MICROS: Ticks = Ticks {
    per_sec: 1_000_000,
    digits: 6,
};
pub const NANOS: Ticks = Ticks {
    per_sec: 1_000_000_000,
    digits: 9,
};

/// The physical width of a DECIMAL or ENUM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    W8,
    W16,
    W32,
    W64,
    W128,
}

#[derive(Debug)]
pub enum Plan {
    Null,
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    I128,
    U128,
    F32,
    F64,
    Decimal {
        width: Width,
        scale: u8,
    },
    Varchar,
    Blob,
    Bit,
    Date,
    Time(Ticks),
    TimeTz,
    Timestamp {
        ticks: Ticks,
        utc: bool,
    },
    Interval,
    Uuid,
    /// WKB, written as the request's `geometry` option says.
    Geometry(GeometryFormat),
    /// Dictionary entries, already rendered as JSON strings.
    Enum {
        width: Width,
        values: Vec<Box<[u8]>>,
    },
    List(Box<Plan>),
    Array(Box<Plan>, usize),
    /// Fields with their rendered `"name":` keys.
    Struct(Vec<(Box<[u8]>, Plan)>),
    Map(Box<Plan>, Box<Plan>),
    /// Members with their rendered `{"name":` prefixes.
    Union(Vec<(Box<[u8]>, Plan)>),
}

impl Plan {
    /// Whether values of this plan (or of a nested one) are GEOMETRY.
    pub fn holds_geometry(&self) -> bool {
        match self {
            Plan::Geometry(_) => true,
            Plan::List(p) | Plan::Array(p, _) => p.holds_geometry(),
            Plan::Map(k, v) => k.holds_geometry() || v.holds_geometry(),
            Plan::Struct(fields) | Plan::Union(fields) => {
                fields.iter().any(|(_, p)| p.holds_geometry())
            }
            _ => false,
        }
    }
}

fn rendered_key(name: &str, prefix: &[u8]) -> Box<[u8]> {
    let mut v = prefix.to_vec();
    json::write_key(&mut v, name);
    v.into_boxed_slice()
}

fn width_of(t: TypeId) -> Width {
    match t {
        type_id::UTINYINT | type_id::TINYINT => Width::W8,
        type_id::USMALLINT | type_id::SMALLINT => Width::W16,
        type_id::UINTEGER | type_id::INTEGER => Width::W32,
        type_id::BIGINT => Width::W64,
        _ => Width::W128,
    }
}

impl Plan {
    /// The plan for a column of type `t`, and its display name; GEOMETRY values are written
    /// in `geometry`'s form.
    pub fn build(
        t: &LogicalType,
        geometry: GeometryFormat,
    ) -> Result<(Plan, String), UnsupportedType> {
        let plan = Self::from_type(t, geometry)?;
        Ok((plan, type_name(t)))
    }

    fn from_type(t: &LogicalType, geometry: GeometryFormat) -> Result<Plan, UnsupportedType> {
        let child = |c: &LogicalType| Self::from_type(c, geometry);
        use type_id::*;
        Ok(match t.id() {
            SQLNULL => Plan::Null,
            BOOLEAN => Plan::Bool,
            TINYINT => Plan::I8,
            SMALLINT => Plan::I16,
            INTEGER => Plan::I32,
            BIGINT => Plan::I64,
            UTINYINT => Plan::U8,
            USMALLINT => Plan::U16,
            UINTEGER => Plan::U32,
            UBIGINT => Plan::U64,
            HUGEINT => Plan::I128,
            UHUGEINT => Plan::U128,
            FLOAT => Plan::F32,
            DOUBLE => Plan::F64,
            DECIMAL => Plan::Decimal {
                width: width_of(t.decimal_internal()),
                scale: t.decimal_scale(),
            },
            VARCHAR => Plan::Varchar,
            BLOB => Plan::Blob,
            BIT => Plan::Bit,
            DATE => Plan::Date,
            TIME => Plan::Time(MICROS),
            TIME_NS => Plan::Time(NANOS),
            TIME_TZ => Plan::TimeTz,
            TIMESTAMP => Plan::Timestamp {
                ticks: MICROS,
                utc: false,
            },
            TIMESTAMP_S => Plan::Timestamp {
                ticks: SECONDS,
                utc: false,
            },
            TIMESTAMP_MS => Plan::Timestamp {
                ticks: MILLIS,
                utc: false,
            },
            TIMESTAMP_NS => Plan::Timestamp {
                ticks: NANOS,
                utc: false,
            },
            TIMESTAMP_TZ => Plan::Timestamp {
                ticks: MICROS,
                utc: true,
            },
            INTERVAL => Plan::Interval,
            UUID => Plan::Uuid,
            GEOMETRY => Plan::Geometry(geometry),
            ENUM => Plan::Enum {
                width: width_of(t.enum_internal()),
                values: t
                    .enum_values()
                    .iter()
                    .map(|v| {
                        let mut out = Vec::new();
                        json::write_str(&mut out, v.as_bytes());
                        out.into_boxed_slice()
                    })
                    .collect(),
            },
            LIST => Plan::List(Box::new(child(&t.list_child())?)),
            ARRAY => Plan::Array(Box::new(child(&t.array_child())?), t.array_size()),
            STRUCT => Plan::Struct(
                t.struct_children()
                    .iter()
                    .map(|(name, child)| {
                        Ok((rendered_key(name, b""), Self::from_type(child, geometry)?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            MAP => Plan::Map(
                Box::new(child(&t.map_key())?),
                Box::new(child(&t.map_value())?),
            ),
            UNION => Plan::Union(
                t.union_members()
                    .iter()
                    .map(|(name, child)| {
                        Ok((rendered_key(name, b"{"), Self::from_type(child, geometry)?))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(UnsupportedType::json(type_name(t))),
        })
    }
}

/// `GEOMETRY`, or `GEOMETRY('EPSG:4326')` with its CRS, as `typeof()` prints it.
fn geometry_type_name(t: &LogicalType) -> String {
    match t.geometry_crs() {
        Some(crs) => format!("GEOMETRY('{}')", crs.replace('\'', "''")),
        None => "GEOMETRY".to_string(),
    }
}

/// Quotes an identifier in a type name when DuckDB would.
fn ident(name: &str) -> String {
    let plain = name
        .bytes()
        .enumerate()
        .all(|(i, b)| b == b'_' || b.is_ascii_lowercase() || (i > 0 && b.is_ascii_digit()));
    if plain && !name.is_empty() {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// DuckDB's name for a type, as `typeof()` prints it (`DECIMAL(18,3)`, `INTEGER[]`, ...).
pub fn type_name(t: &LogicalType) -> String {
    use type_id::*;
    if let Some(alias) = t.alias() {
        return alias;
    }
    let simple = match t.id() {
        SQLNULL => "\"NULL\"",
        BOOLEAN => "BOOLEAN",
        TINYINT => "TINYINT",
        SMALLINT => "SMALLINT",
        INTEGER => "INTEGER",
        BIGINT => "BIGINT",
        UTINYINT => "UTINYINT",
        USMALLINT => "USMALLINT",
        UINTEGER => "UINTEGER",
        UBIGINT => "UBIGINT",
        HUGEINT => "HUGEINT",
        UHUGEINT => "UHUGEINT",
        FLOAT => "FLOAT",
        DOUBLE => "DOUBLE",
        VARCHAR => "VARCHAR",
        BLOB => "BLOB",
        BIT => "BIT",
        BIGNUM => "BIGNUM",
        DATE => "DATE",
        TIME => "TIME",
        TIME_NS => "TIME_NS",
        TIME_TZ => "TIME WITH TIME ZONE",
        TIMESTAMP => "TIMESTAMP",
        TIMESTAMP_S => "TIMESTAMP_S",
        TIMESTAMP_MS => "TIMESTAMP_MS",
        TIMESTAMP_NS => "TIMESTAMP_NS",
        TIMESTAMP_TZ => "TIMESTAMP WITH TIME ZONE",
        INTERVAL => "INTERVAL",
        UUID => "UUID",
        GEOMETRY => return geometry_type_name(t),
        VARIANT => "VARIANT",
        _ => "",
    };
    if !simple.is_empty() {
        return simple.to_string();
    }
    match t.id() {
        DECIMAL => {
            format!("DECIMAL({},{})", t.decimal_width(), t.decimal_scale())
        }
        ENUM => {
            let values: Vec<String> = t
                .enum_values()
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect();
            format!("ENUM({})", values.join(", "))
        }
        LIST => format!("{}[]", type_name(&t.list_child())),
        ARRAY => {
            format!("{}[{}]", type_name(&t.array_child()), t.array_size())
        }
        MAP => format!(
            "MAP({}, {})",
            type_name(&t.map_key()),
            type_name(&t.map_value())
        ),
        STRUCT | UNION => {
            let (kw, members) = if t.id() == STRUCT {
                ("STRUCT", t.struct_children())
            } else {
                ("UNION", t.union_members())
            };
            let fields: Vec<String> = members
                .iter()
                .map(|(n, c)| format!("{} {}", ident(n), type_name(c)))
                .collect();
            format!("{kw}({})", fields.join(", "))
        }
        other => format!("UNKNOWN({other})"),
    }
}
