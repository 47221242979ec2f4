//! A token's table scope: the only tables its queries may read, as plain, normalised names.
//! Parsed here, at the edge; checked against DuckDB's parse tree and plan by the engine
//! (`crate::engine::tables`).

/// The tables a token allows, normalised (DuckDB identifiers are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSet {
    /// `(schema, table)`; a name given without a schema is in `main`.
    entries: Vec<(String, String)>,
}

impl TableSet {
    /// Parses `table` or `schema.table` names (no quoting: names are plain identifiers).
    pub fn parse(names: &[String]) -> Result<Self, String> {
        if names.len() > 256 {
            return Err("at most 256 tables".into());
        }
        let ident = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
        };
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let (schema, table) = match name.split_once('.') {
                Some((s, t)) => (s, t),
                None => ("main", name.as_str()),
            };
            if !ident(schema) || !ident(table) {
                return Err(format!(
                    "'{name}' is not a table name (table or schema.table, letters, digits, _)"
                ));
            }
            entries.push((schema.to_lowercase(), table.to_lowercase()));
        }
        Ok(Self { entries })
    }

    /// The names as a token carries them.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(s, t)| {
                if s == "main" {
                    t.clone()
                } else {
                    format!("{s}.{t}")
                }
            })
            .collect()
    }

    /// The tables as the PostgreSQL catalog's scope (`src/engine/pg_catalog.sql`): each
    /// `schema.table`, lower case, in the token's order.
    pub fn qualified(&self) -> impl Iterator<Item = String> + '_ {
        self.entries.iter().map(|(s, t)| format!("{s}.{t}"))
    }

    /// [`Self::qualified`] as the SQL literal the catalog rewrite passes to the catalog's
    /// macros: `['main.parcels', 'geo.zones']::VARCHAR[]`. Names are plain identifiers
    /// ([`Self::parse`]): nothing in them needs escaping.
    pub fn scope_literal(&self) -> String {
        let names: Vec<String> = self.qualified().map(|q| format!("'{q}'")).collect();
        format!("[{}]::VARCHAR[]", names.join(", "))
    }

    /// Whether `cat.schema.table` is allowed in the tenant's database (`catalog`); an empty
    /// catalog is the tenant's, an empty schema is `main`, as DuckDB resolves them.
    pub fn allows(&self, cat: &str, schema: &str, table: &str, catalog: &str) -> bool {
        let schema = if schema.is_empty() { "main" } else { schema };
        (cat.is_empty() || cat.eq_ignore_ascii_case(catalog))
            && self
                .entries
                .iter()
                .any(|(s, t)| s.eq_ignore_ascii_case(schema) && t.eq_ignore_ascii_case(table))
    }
}
