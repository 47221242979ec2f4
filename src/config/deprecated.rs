//! Old names of settings that still work. A setting renamed so that each name means one thing
//! (`max_queries` was three settings, `max_connections` counts streams) keeps its old key in
//! the config file and in the tenants file, and its old flag and environment variable, as a
//! deprecated alias: accepted, hidden from `--help`, and listed as a [`Deprecation`] in the
//! configuration, which `main` logs as warnings (reading the configuration logs nothing, so
//! that a test or an embedder that reads one twice does not warn twice).
//!
//! Invariants:
//! - An old name only ever fills its new name, within one layer: the config file, a tenant's
//!   entry in the tenants file, or the environment and flags together. When a layer gives both,
//!   the new name wins and the deprecation says so; a higher layer wins as for any setting.
//! - The list [`note`] builds names each alias once, however often it is used (say by every
//!   tenant of the tenants file).
//! - Unknown keys stay refused: an old key is renamed before the typed parse, which still denies
//!   every key it does not know.

use clap::Args;

use super::Layers;

/// The config file's renamed keys: (section, old key, new key).
const FILE_KEYS: [(&str, &str, &str); 4] = [
    ("engine", "max_queries", "executor_threads"),
    ("limits", "max_queries", "pool_size"),
    ("limits", "max_connections", "max_streams"),
    ("websocket", "max_queries", "queries_per_socket"),
];

/// The renamed keys of a tenant's entry in the tenants file (those of `[limits]`): (old, new).
const TENANT_KEYS: [(&str, &str); 2] = [
    ("max_queries", "pool_size"),
    ("max_connections", "max_streams"),
];

/// An old name that was used, and the name to use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// Where and how the old name was written: `[engine] max_queries` (config file),
    /// `max_queries (tenants file)`, `--max-queries / DUCKSTREAM_MAX_QUERIES`.
    pub old: String,
    /// The same place under the new name.
    pub new: String,
    /// The new name was given too (in the same layer), so the old one was ignored.
    pub ignored: bool,
}

impl std::fmt::Display for Deprecation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` is deprecated: use `{}`", self.old, self.new)?;
        if self.ignored {
            write!(f, " (both are set: `{}` wins)", self.new)?;
        }
        Ok(())
    }
}

/// Adds `d` to `list` unless its alias is listed already (then an ignored use marks it
/// ignored).
pub fn note(list: &mut Vec<Deprecation>, d: Deprecation) {
    match list.iter_mut().find(|seen| seen.old == d.old) {
        Some(seen) => seen.ignored |= d.ignored,
        None => list.push(d),
    }
}

/// Renames the old keys of a parsed config file to their new ones; whether there were any.
pub(super) fn rename_file_keys(file: &mut toml::Table, list: &mut Vec<Deprecation>) -> bool {
    let mut any = false;
    for (section, old, new) in FILE_KEYS {
        let Some(toml::Value::Table(table)) = file.get_mut(section) else {
            continue;
        };
        if let Some(ignored) = rename(table, old, new) {
            let (old, new) = (format!("[{section}] {old}"), format!("[{section}] {new}"));
            note(list, Deprecation { old, new, ignored });
            any = true;
        }
    }
    any
}

/// Renames the old keys of one tenant's entry in the tenants file to their new ones.
pub(super) fn rename_tenant_keys(entry: &mut toml::Table, list: &mut Vec<Deprecation>) {
    for (old, new) in TENANT_KEYS {
        if let Some(ignored) = rename(entry, old, new) {
            let (old, new) = (
                format!("{old} (tenants file)"),
                format!("{new} (tenants file)"),
            );
            note(list, Deprecation { old, new, ignored });
        }
    }
}

/// Moves `old` to `new` unless `new` is set; `None`: `old` was absent, `Some(ignored)`: it was
/// there (and ignored because `new` is set too).
fn rename(table: &mut toml::Table, old: &str, new: &str) -> Option<bool> {
    let value = table.remove(old)?;
    if table.contains_key(new) {
        return Some(true);
    }
    table.insert(new.to_string(), value);
    Some(false)
}

/// The old flags, each with its old environment variable; hidden from `--help`.
#[derive(Debug, Default, Clone, Args)]
pub struct OldFlags {
    /// Deprecated: --executor-threads
    #[arg(
        id = "old_max_queries",
        long = "max-queries",
        value_name = "MAX_QUERIES",
        env = "DUCKSTREAM_MAX_QUERIES",
        hide = true
    )]
    pub max_queries: Option<usize>,
    /// Deprecated: --ws-queries-per-socket
    #[arg(
        id = "old_ws_max_queries",
        long = "ws-max-queries",
        value_name = "WS_MAX_QUERIES",
        env = "DUCKSTREAM_WS_MAX_QUERIES",
        hide = true
    )]
    pub ws_max_queries: Option<usize>,
    /// Deprecated: --max-streams-per-tenant
    #[arg(
        id = "old_max_connections_per_tenant",
        long = "max-connections-per-tenant",
        value_name = "MAX_CONNECTIONS_PER_TENANT",
        env = "DUCKSTREAM_MAX_CONNECTIONS_PER_TENANT",
        hide = true
    )]
    pub max_connections_per_tenant: Option<usize>,
}

impl OldFlags {
    /// Sets each new setting of `layers` (the environment and flags) that an old flag or
    /// variable gave, unless the new one is given too.
    pub(super) fn apply_to(self, layers: &mut Layers, list: &mut Vec<Deprecation>) {
        let Self {
            max_queries,
            ws_max_queries,
            max_connections_per_tenant,
        } = self;
        alias(
            list,
            max_queries,
            &mut layers.engine.executor_threads,
            "--max-queries / DUCKSTREAM_MAX_QUERIES",
            "--executor-threads / DUCKSTREAM_EXECUTOR_THREADS",
        );
        alias(
            list,
            ws_max_queries,
            &mut layers.websocket.queries_per_socket,
            "--ws-max-queries / DUCKSTREAM_WS_MAX_QUERIES",
            "--ws-queries-per-socket / DUCKSTREAM_WS_QUERIES_PER_SOCKET",
        );
        alias(
            list,
            max_connections_per_tenant,
            &mut layers.limits.max_streams,
            "--max-connections-per-tenant / DUCKSTREAM_MAX_CONNECTIONS_PER_TENANT",
            "--max-streams-per-tenant / DUCKSTREAM_MAX_STREAMS_PER_TENANT",
        );
    }
}

/// Lays an old flag's `value` onto its `new` setting unless that is set, and notes it.
fn alias(
    list: &mut Vec<Deprecation>,
    value: Option<usize>,
    new: &mut Option<usize>,
    old_name: &str,
    new_name: &str,
) {
    let Some(value) = value else { return };
    let ignored = new.is_some();
    if !ignored {
        *new = Some(value);
    }
    let (old, new) = (old_name.to_string(), new_name.to_string());
    note(list, Deprecation { old, new, ignored });
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use crate::config::{Cli, Config, TenantsFile};
    use crate::wire::TenantId;

    /// The configuration from these flags and, when given, this config file.
    fn config(args: &[&str], file: Option<&str>) -> Config {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let mut argv = vec!["duckstream".to_string()];
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
            argv.extend(["--config".to_string(), path.display().to_string()]);
        }
        argv.extend(args.iter().map(|a| a.to_string()));
        Config::from_cli(Cli::try_parse_from(argv).unwrap()).unwrap()
    }

    fn olds(c: &Config) -> Vec<(&str, bool)> {
        c.deprecated
            .iter()
            .map(|d| (d.old.as_str(), d.ignored))
            .collect()
    }

    #[test]
    fn old_flags_set_what_the_new_ones_set() {
        let new = config(
            &[
                "--executor-threads",
                "9",
                "--ws-queries-per-socket",
                "3",
                "--max-streams-per-tenant",
                "7",
            ],
            None,
        );
        let old = config(
            &[
                "--max-queries",
                "9",
                "--ws-max-queries",
                "3",
                "--max-connections-per-tenant",
                "7",
            ],
            None,
        );
        for c in [&new, &old] {
            assert_eq!(c.engine.executor_threads, 9);
            assert_eq!(c.websocket.queries_per_socket, 3);
            assert_eq!(c.limits.max_streams, Some(7));
        }
        assert_eq!(new.deprecated, vec![]);
        assert_eq!(
            olds(&old),
            vec![
                ("--max-queries / DUCKSTREAM_MAX_QUERIES", false),
                ("--ws-max-queries / DUCKSTREAM_WS_MAX_QUERIES", false),
                (
                    "--max-connections-per-tenant / DUCKSTREAM_MAX_CONNECTIONS_PER_TENANT",
                    false
                ),
            ]
        );
        let message = old.deprecated[0].to_string();
        assert!(message.contains("--max-queries") && message.contains("--executor-threads"));
    }

    #[test]
    fn old_variables_are_read_and_hidden_from_help() {
        let command = Cli::command();
        let env = |id: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == id).unwrap();
            assert!(arg.is_hide_set(), "{id} is hidden");
            arg.get_env().unwrap().to_str().unwrap().to_string()
        };
        assert_eq!(env("old_max_queries"), "DUCKSTREAM_MAX_QUERIES");
        assert_eq!(env("old_ws_max_queries"), "DUCKSTREAM_WS_MAX_QUERIES");
        assert_eq!(
            env("old_max_connections_per_tenant"),
            "DUCKSTREAM_MAX_CONNECTIONS_PER_TENANT"
        );
        let help = Cli::command().render_long_help().to_string();
        for old in [
            "--max-queries",
            "--ws-max-queries",
            "--max-connections-per-tenant",
            "MAX_QUERIES",
            // (`DUCKSTREAM_PG_MAX_CONNECTIONS` is the PostgreSQL endpoint's own.)
            "MAX_CONNECTIONS_PER_TENANT",
            "Deprecated",
        ] {
            assert!(!help.contains(old), "{old} in --help:\n{help}");
        }
        for new in [
            "--executor-threads",
            "DUCKSTREAM_EXECUTOR_THREADS",
            "--ws-queries-per-socket",
            "DUCKSTREAM_WS_QUERIES_PER_SOCKET",
            "--max-streams-per-tenant",
            "DUCKSTREAM_MAX_STREAMS_PER_TENANT",
            "--pool-size",
        ] {
            assert!(help.contains(new), "{new} not in --help");
        }
    }

    #[test]
    fn old_keys_of_the_config_file_set_what_the_new_ones_set() {
        let new = config(
            &[],
            Some(
                "[engine]\nexecutor_threads = 9\n[limits]\npool_size = 5\nmax_streams = 7\n\
                 [websocket]\nqueries_per_socket = 3\n",
            ),
        );
        let old = config(
            &[],
            Some(
                "[engine]\nmax_queries = 9\n[limits]\nmax_queries = 5\nmax_connections = 7\n\
                 [websocket]\nmax_queries = 3\n",
            ),
        );
        for c in [&new, &old] {
            assert_eq!(c.engine.executor_threads, 9);
            assert_eq!(c.limits.pool_size, Some(5));
            assert_eq!(c.limits.max_streams, Some(7));
            assert_eq!(c.websocket.queries_per_socket, 3);
        }
        assert_eq!(new.deprecated, vec![]);
        assert_eq!(
            olds(&old),
            vec![
                ("[engine] max_queries", false),
                ("[limits] max_queries", false),
                ("[limits] max_connections", false),
                ("[websocket] max_queries", false),
            ]
        );
        assert_eq!(old.deprecated[1].new, "[limits] pool_size");
    }

    #[test]
    fn the_new_name_wins_when_both_are_given() {
        let c = config(
            &["--max-queries", "9", "--executor-threads", "4"],
            Some("[limits]\nmax_connections = 7\nmax_streams = 2\n"),
        );
        assert_eq!(c.engine.executor_threads, 4);
        assert_eq!(c.limits.max_streams, Some(2));
        assert_eq!(
            olds(&c),
            vec![
                ("[limits] max_connections", true),
                ("--max-queries / DUCKSTREAM_MAX_QUERIES", true),
            ]
        );
        assert!(c.deprecated[0]
            .to_string()
            .contains("`[limits] max_streams` wins"));
        // Across layers the higher one wins, whatever its names: flags over the file.
        let c = config(
            &["--ws-max-queries", "5"],
            Some("[websocket]\nqueries_per_socket = 3\n"),
        );
        assert_eq!(c.websocket.queries_per_socket, 5);
        assert_eq!(
            olds(&c),
            vec![("--ws-max-queries / DUCKSTREAM_WS_MAX_QUERIES", false)]
        );
    }

    #[test]
    fn old_keys_of_the_tenants_file_are_read_and_named_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tenants.toml");
        std::fs::write(
            &path,
            "[tenants.acme]\nmax_queries = 2\nmax_connections = 4\n\
             [tenants.globex]\nmax_queries = 3\npool_size = 6\n[tenants.initech]\npool_size = 1\n",
        )
        .unwrap();
        let c = config(&["--tenants-file", path.to_str().unwrap()], None);
        let limits = c.tenant_limits();
        let tenant = |name| &limits[&TenantId::parse(name).unwrap()];
        assert_eq!(tenant("acme").pool_size(), 2);
        assert_eq!(tenant("acme").max_streams(), 4);
        assert_eq!(tenant("globex").pool_size(), 6, "the new key wins");
        assert_eq!(tenant("initech").pool_size(), 1);
        assert_eq!(
            olds(&c),
            vec![
                ("max_queries (tenants file)", true),
                ("max_connections (tenants file)", false),
            ]
        );
        let e = TenantsFile::from_toml("[tenants.a]\nmax_queries = 0\n").unwrap_err();
        assert!(e.to_string().contains("tenants.a.pool_size"), "{e}");
    }

    #[test]
    fn unknown_keys_stay_refused_beside_old_ones() {
        for (text, needle) in [
            ("[engine]\nmax_queries = 3\nchunk_row = 5\n", "chunk_row"),
            ("[server]\nmax_queries = 3\n", "max_queries"),
            (
                "[limits]\nmax_queries = 3\nexecutor_threads = 3\n",
                "executor_threads",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).unwrap();
            let cli = Cli::try_parse_from(["duckstream", "--config", path.to_str().unwrap()]);
            let e = Config::from_cli(cli.unwrap()).unwrap_err().to_string();
            assert!(
                e.contains("unknown field") && e.contains(needle),
                "{text}: {e}"
            );
        }
        let e = TenantsFile::from_toml("[tenants.a]\nmax_queries = 3\nmax_querys = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field") && e.contains("max_querys"),
            "{e}"
        );
    }
}
