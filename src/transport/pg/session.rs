//! A connection's session: who logged in, and the run-time settings clients `SET` and `SHOW`
//! (PostgreSQL's GUCs). Settings live here only: none of them reaches DuckDB, so no client can
//! change the sandbox through them.
//!
//! Invariants:
//! - Only the settings of [`SETTINGS`] exist; any other name is PostgreSQL's 42704
//!   (`unrecognized configuration parameter`), whatever DuckDB would make of it.
//! - Read-only settings (the server's version, encoding) refuse `SET` with 55P02.
//! - `statement_timeout` is kept in milliseconds and printed as PostgreSQL prints it.

use std::collections::HashMap;
use std::time::Duration;

use crate::auth::Access;
use crate::wire::GeometryFormat;

/// Whether a setting may be changed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Session,
    ReadOnly,
}

/// The settings clients read and write: name (lowercase), default, mode.
const SETTINGS: &[(&str, &str, Mode)] = &[
    ("application_name", "", Mode::Session),
    ("bytea_output", "hex", Mode::Session),
    ("client_encoding", "UTF8", Mode::Session),
    ("client_min_messages", "notice", Mode::Session),
    ("datestyle", "ISO, MDY", Mode::Session),
    (
        "default_transaction_isolation",
        "read committed",
        Mode::Session,
    ),
    ("default_transaction_read_only", "on", Mode::Session),
    ("duckstream.geometry_output", "wkt", Mode::Session),
    ("extra_float_digits", "1", Mode::Session),
    // Planner settings dashboards send (Grafana's users, grafana#85388): accepted, unused.
    ("from_collapse_limit", "8", Mode::Session),
    ("idle_in_transaction_session_timeout", "0", Mode::Session),
    ("integer_datetimes", "on", Mode::ReadOnly),
    ("intervalstyle", "postgres", Mode::Session),
    ("is_superuser", "off", Mode::ReadOnly),
    ("jit", "off", Mode::Session),
    ("join_collapse_limit", "8", Mode::Session),
    ("lc_collate", "C", Mode::ReadOnly),
    ("lc_ctype", "C", Mode::ReadOnly),
    ("lc_messages", "C", Mode::Session),
    ("lc_monetary", "C", Mode::Session),
    ("lc_numeric", "C", Mode::Session),
    ("lc_time", "C", Mode::Session),
    ("lock_timeout", "0", Mode::Session),
    ("max_identifier_length", "63", Mode::ReadOnly),
    // As the catalogs show it (`ds_pg.guc_map`): DuckDB's schema is `main`.
    ("search_path", "\"$user\", main", Mode::Session),
    ("server_encoding", "UTF8", Mode::ReadOnly),
    ("server_version", SERVER_VERSION, Mode::ReadOnly),
    ("server_version_num", "150000", Mode::ReadOnly),
    ("standard_conforming_strings", "on", Mode::Session),
    ("statement_timeout", "0", Mode::Session),
    ("timezone", "UTC", Mode::Session),
    ("transaction_isolation", "read committed", Mode::Session),
    ("transaction_read_only", "on", Mode::ReadOnly),
];

/// The PostgreSQL version clients see: 15, so that psql 15 and Grafana pick the query shapes
/// they use with a PostgreSQL 15 server.
pub const SERVER_VERSION: &str = "15.0";

/// What `SELECT version()` answers: word for word what the catalogs' `ds_pg.version()` does
/// (`src/engine/pg_catalog.sql`), in PostgreSQL's shape (`PostgreSQL 15.0 (…) on <target>,
/// 64-bit`), which clients parse for the version.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (duckstream, DuckDB {}) on x86_64-pc-linux-gnu, 64-bit",
        crate::duck::library_version()
    )
}

/// A refused `SET` or `SHOW`: SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub sqlstate: &'static str,
    pub message: String,
}

/// One connection's login and settings.
pub struct Session {
    pub access: Access,
    /// Values that differ from the defaults.
    values: HashMap<&'static str, String>,
}

impl Session {
    pub fn new(access: Access) -> Self {
        Self {
            access,
            values: HashMap::new(),
        }
    }

    /// `SET name = value` (`None`: `DEFAULT`).
    pub fn set(&mut self, name: &str, value: Option<&str>) -> Result<(), Refused> {
        let (key, _, mode) = find(name)?;
        if mode == Mode::ReadOnly {
            return Err(Refused {
                sqlstate: "55P02",
                message: format!("parameter \"{key}\" cannot be changed"),
            });
        }
        let Some(value) = value else {
            self.values.remove(key);
            return Ok(());
        };
        let value = validate(key, value)?;
        self.values.insert(key, value);
        Ok(())
    }

    /// `RESET name`, or every setting.
    pub fn reset(&mut self, name: Option<&str>) -> Result<(), Refused> {
        match name {
            None => self.values.clear(),
            Some(n) => {
                let (key, _, _) = find(n)?;
                self.values.remove(key);
            }
        }
        Ok(())
    }

    /// `SHOW name`.
    pub fn show(&self, name: &str) -> Result<String, Refused> {
        let (key, default, _) = find(name)?;
        Ok(self.get(key, default))
    }

    /// Every setting and its value (`SHOW ALL`).
    pub fn all(&self) -> Vec<(&'static str, String)> {
        SETTINGS
            .iter()
            .map(|(k, d, _)| (*k, self.get(k, d)))
            .collect()
    }

    fn get(&self, key: &str, default: &str) -> String {
        self.values
            .get(key)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// How the session's GEOMETRY columns are written: WKT text, or PostGIS's EWKB
    /// (`duckstream.geometry_output`).
    pub fn geometry(&self) -> GeometryFormat {
        match self
            .values
            .get("duckstream.geometry_output")
            .map(String::as_str)
        {
            Some("ewkb") => GeometryFormat::Wkb,
            _ => GeometryFormat::Wkt,
        }
    }

    /// The session's `statement_timeout`, when one is set.
    pub fn statement_timeout(&self) -> Option<Duration> {
        let ms = self
            .values
            .get("statement_timeout")
            .and_then(|v| parse_millis(v))?;
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

fn find(name: &str) -> Result<(&'static str, &'static str, Mode), Refused> {
    let lower = name.to_ascii_lowercase();
    SETTINGS
        .iter()
        .find(|(k, _, _)| *k == lower)
        .copied()
        .ok_or_else(|| Refused {
            sqlstate: "42704",
            message: format!("unrecognized configuration parameter \"{name}\""),
        })
}

/// The value kept for `key`, or why it is refused.
fn validate(key: &str, value: &str) -> Result<String, Refused> {
    let invalid = |hint: &str| Refused {
        sqlstate: "22023",
        message: format!("invalid value for parameter \"{key}\": \"{value}\"{hint}"),
    };
    match key {
        // asyncpg sends `'utf-8'`, quotes and all.
        "client_encoding" => match value
            .trim_matches('\'')
            .to_ascii_uppercase()
            .replace(['-', '_'], "")
            .as_str()
        {
            "UTF8" | "UNICODE" => Ok("UTF8".into()),
            // No conversion: the bytes as they are (libpq's choice in a C locale).
            "SQLASCII" => Ok("SQL_ASCII".into()),
            _ => Err(invalid(" (only UTF8 is served)")),
        },
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            parse_millis(value)
                .map(format_millis)
                .ok_or_else(|| invalid(""))
        }
        "extra_float_digits" => match value.trim().parse::<i32>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid(" (between -15 and 3)")),
        },
        "duckstream.geometry_output" => match value.to_ascii_lowercase().as_str() {
            "wkt" => Ok("wkt".into()),
            "ewkb" => Ok("ewkb".into()),
            _ => Err(invalid(" (wkt or ewkb)")),
        },
        _ => Ok(value.to_string()),
    }
}

/// A duration setting in milliseconds: a number (ms) or a number with a unit (`ms`, `s`,
/// `min`, `h`, `d`).
fn parse_millis(value: &str) -> Option<u64> {
    let v = value.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let n: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "min" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => return None,
    };
    let ms = n * factor;
    (ms.is_finite() && ms >= 0.0 && ms < i32::MAX as f64).then_some(ms.round() as u64)
}

/// Milliseconds as PostgreSQL prints a duration setting: the largest unit that divides it.
fn format_millis(ms: u64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("min", 60_000),
        ("s", 1_000),
    ] {
        if ms > 0 && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    if ms == 0 {
        "0".into()
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TenantId;

    fn session() -> Session {
        Session::new(Access::open(&TenantId::parse("acme").unwrap()))
    }

    #[test]
    fn settings_are_the_sessions_own() {
        let mut s = session();
        assert_eq!(s.show("DateStyle").unwrap(), "ISO, MDY");
        s.set("application_name", Some("psql")).unwrap();
        assert_eq!(s.show("application_name").unwrap(), "psql");
        s.set("statement_timeout", Some("5000")).unwrap();
        assert_eq!(s.show("statement_timeout").unwrap(), "5s");
        assert_eq!(s.statement_timeout(), Some(Duration::from_secs(5)));
        s.reset(None).unwrap();
        assert_eq!(s.statement_timeout(), None);
        let unknown = s.set("enable_external_access", Some("true")).unwrap_err();
        assert_eq!(unknown.sqlstate, "42704");
        let fixed = s.set("server_version", Some("16")).unwrap_err();
        assert_eq!(fixed.sqlstate, "55P02");
        assert!(s.set("client_encoding", Some("LATIN1")).is_err());
        assert_eq!(format_millis(90_000), "90s");
        assert_eq!(format_millis(120_000), "2min");
    }
}
