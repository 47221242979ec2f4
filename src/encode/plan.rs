//! Column plans: what a DuckDB logical type becomes in JSON, decided once per query.
//!
//! A [`Plan`] is built from a column's logical type before the first row is read, so that the
//! per-value loop only dispatches on a small enum and never asks DuckDB about types. Building
//! a plan also yields the type's display name for the metadata line ([`type_name`]).
//!
//! Invariant: every type `Plan::build` accepts has exactly one JSON form (`docs/PROTOCOL.md`);
//! types without one are refused with [`UnsupportedType`] before the query runs.

use duckdb::ffi;

use super::json;
use crate::engine::duck::LogicalType;

/// A type the encoder has no JSON form for (yet).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the result type {0} has no JSON form yet; CAST it (to VARCHAR, for instance)")]
pub struct UnsupportedType(pub String);

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

fn rendered_key(name: &str, prefix: &[u8]) -> Box<[u8]> {
    let mut v = prefix.to_vec();
    json::write_key(&mut v, name);
    v.into_boxed_slice()
}

fn width_of(t: ffi::DUCKDB_TYPE) -> Width {
    match t {
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT | ffi::DUCKDB_TYPE_DUCKDB_TYPE_TINYINT => Width::W8,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT | ffi::DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT => {
            Width::W16
        }
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER | ffi::DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => Width::W32,
        ffi::DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => Width::W64,
        _ => Width::W128,
    }
}

impl Plan {
    /// The plan for a column of type `t`, and its display name.
    pub fn build(t: &LogicalType) -> Result<(Plan, String), UnsupportedType> {
        let plan = Self::from_type(t)?;
        Ok((plan, type_name(t)))
    }

    fn from_type(t: &LogicalType) -> Result<Plan, UnsupportedType> {
        use ffi::*;
        Ok(match t.id() {
            DUCKDB_TYPE_DUCKDB_TYPE_SQLNULL => Plan::Null,
            DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN => Plan::Bool,
            DUCKDB_TYPE_DUCKDB_TYPE_TINYINT => Plan::I8,
            DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT => Plan::I16,
            DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => Plan::I32,
            DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => Plan::I64,
            DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => Plan::U8,
            DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => Plan::U16,
            DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER => Plan::U32,
            DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT => Plan::U64,
            DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT => Plan::I128,
            DUCKDB_TYPE_DUCKDB_TYPE_UHUGEINT => Plan::U128,
            DUCKDB_TYPE_DUCKDB_TYPE_FLOAT => Plan::F32,
            DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE => Plan::F64,
            DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL => Plan::Decimal {
                width: width_of(t.decimal_internal()),
                scale: t.decimal_scale(),
            },
            DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR => Plan::Varchar,
            DUCKDB_TYPE_DUCKDB_TYPE_BLOB => Plan::Blob,
            DUCKDB_TYPE_DUCKDB_TYPE_BIT => Plan::Bit,
            DUCKDB_TYPE_DUCKDB_TYPE_DATE => Plan::Date,
            DUCKDB_TYPE_DUCKDB_TYPE_TIME => Plan::Time(MICROS),
            DUCKDB_TYPE_DUCKDB_TYPE_TIME_NS => Plan::Time(NANOS),
            DUCKDB_TYPE_DUCKDB_TYPE_TIME_TZ => Plan::TimeTz,
            DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP => Plan::Timestamp {
                ticks: MICROS,
                utc: false,
            },
            DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_S => Plan::Timestamp {
                ticks: SECONDS,
                utc: false,
            },
            DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_MS => Plan::Timestamp {
                ticks: MILLIS,
                utc: false,
            },
            DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_NS => Plan::Timestamp {
                ticks: NANOS,
                utc: false,
            },
            DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ => Plan::Timestamp {
                ticks: MICROS,
                utc: true,
            },
            DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL => Plan::Interval,
            DUCKDB_TYPE_DUCKDB_TYPE_UUID => Plan::Uuid,
            DUCKDB_TYPE_DUCKDB_TYPE_ENUM => Plan::Enum {
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
            DUCKDB_TYPE_DUCKDB_TYPE_LIST => Plan::List(Box::new(Self::from_type(&t.list_child())?)),
            DUCKDB_TYPE_DUCKDB_TYPE_ARRAY => {
                Plan::Array(Box::new(Self::from_type(&t.array_child())?), t.array_size())
            }
            DUCKDB_TYPE_DUCKDB_TYPE_STRUCT => Plan::Struct(
                t.struct_children()
                    .iter()
                    .map(|(name, child)| Ok((rendered_key(name, b""), Self::from_type(child)?)))
                    .collect::<Result<_, _>>()?,
            ),
            DUCKDB_TYPE_DUCKDB_TYPE_MAP => Plan::Map(
                Box::new(Self::from_type(&t.map_key())?),
                Box::new(Self::from_type(&t.map_value())?),
            ),
            DUCKDB_TYPE_DUCKDB_TYPE_UNION => Plan::Union(
                t.union_members()
                    .iter()
                    .map(|(name, child)| Ok((rendered_key(name, b"{"), Self::from_type(child)?)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(UnsupportedType(type_name(t))),
        })
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
    use ffi::*;
    if let Some(alias) = t.alias() {
        return alias;
    }
    let simple = match t.id() {
        DUCKDB_TYPE_DUCKDB_TYPE_SQLNULL => "\"NULL\"",
        DUCKDB_TYPE_DUCKDB_TYPE_BOOLEAN => "BOOLEAN",
        DUCKDB_TYPE_DUCKDB_TYPE_TINYINT => "TINYINT",
        DUCKDB_TYPE_DUCKDB_TYPE_SMALLINT => "SMALLINT",
        DUCKDB_TYPE_DUCKDB_TYPE_INTEGER => "INTEGER",
        DUCKDB_TYPE_DUCKDB_TYPE_BIGINT => "BIGINT",
        DUCKDB_TYPE_DUCKDB_TYPE_UTINYINT => "UTINYINT",
        DUCKDB_TYPE_DUCKDB_TYPE_USMALLINT => "USMALLINT",
        DUCKDB_TYPE_DUCKDB_TYPE_UINTEGER => "UINTEGER",
        DUCKDB_TYPE_DUCKDB_TYPE_UBIGINT => "UBIGINT",
        DUCKDB_TYPE_DUCKDB_TYPE_HUGEINT => "HUGEINT",
        DUCKDB_TYPE_DUCKDB_TYPE_UHUGEINT => "UHUGEINT",
        DUCKDB_TYPE_DUCKDB_TYPE_FLOAT => "FLOAT",
        DUCKDB_TYPE_DUCKDB_TYPE_DOUBLE => "DOUBLE",
        DUCKDB_TYPE_DUCKDB_TYPE_VARCHAR => "VARCHAR",
        DUCKDB_TYPE_DUCKDB_TYPE_BLOB => "BLOB",
        DUCKDB_TYPE_DUCKDB_TYPE_BIT => "BIT",
        DUCKDB_TYPE_DUCKDB_TYPE_BIGNUM => "BIGNUM",
        DUCKDB_TYPE_DUCKDB_TYPE_DATE => "DATE",
        DUCKDB_TYPE_DUCKDB_TYPE_TIME => "TIME",
        DUCKDB_TYPE_DUCKDB_TYPE_TIME_NS => "TIME_NS",
        DUCKDB_TYPE_DUCKDB_TYPE_TIME_TZ => "TIME WITH TIME ZONE",
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP => "TIMESTAMP",
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_S => "TIMESTAMP_S",
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_MS => "TIMESTAMP_MS",
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_NS => "TIMESTAMP_NS",
        DUCKDB_TYPE_DUCKDB_TYPE_TIMESTAMP_TZ => "TIMESTAMP WITH TIME ZONE",
        DUCKDB_TYPE_DUCKDB_TYPE_INTERVAL => "INTERVAL",
        DUCKDB_TYPE_DUCKDB_TYPE_UUID => "UUID",
        DUCKDB_TYPE_DUCKDB_TYPE_GEOMETRY => "GEOMETRY",
        DUCKDB_TYPE_DUCKDB_TYPE_VARIANT => "VARIANT",
        _ => "",
    };
    if !simple.is_empty() {
        return simple.to_string();
    }
    match t.id() {
        DUCKDB_TYPE_DUCKDB_TYPE_DECIMAL => {
            format!("DECIMAL({},{})", t.decimal_width(), t.decimal_scale())
        }
        DUCKDB_TYPE_DUCKDB_TYPE_ENUM => {
            let values: Vec<String> = t
                .enum_values()
                .iter()
                .map(|v| format!("'{}'", v.replace('\'', "''")))
                .collect();
            format!("ENUM({})", values.join(", "))
        }
        DUCKDB_TYPE_DUCKDB_TYPE_LIST => format!("{}[]", type_name(&t.list_child())),
        DUCKDB_TYPE_DUCKDB_TYPE_ARRAY => {
            format!("{}[{}]", type_name(&t.array_child()), t.array_size())
        }
        DUCKDB_TYPE_DUCKDB_TYPE_MAP => format!(
            "MAP({}, {})",
            type_name(&t.map_key()),
            type_name(&t.map_value())
        ),
        DUCKDB_TYPE_DUCKDB_TYPE_STRUCT | DUCKDB_TYPE_DUCKDB_TYPE_UNION => {
            let (kw, members) = if t.id() == DUCKDB_TYPE_DUCKDB_TYPE_STRUCT {
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
