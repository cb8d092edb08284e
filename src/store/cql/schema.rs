//! The CQL schema: the numbered files of `cql/`, embedded in the binary and
//! applied in order by `hubbub migrate` (or at start-up with
//! `--scylla-migrate`). Every statement is `CREATE ... IF NOT EXISTS`, so
//! applying them again changes nothing.

#[cfg(test)]
use std::collections::BTreeMap;

/// The schema files, in the order they are applied.
pub const FILES: &[(&str, &str)] = &[
    ("001_accounts.cql", include_str!("../../../cql/001_accounts.cql")),
    ("002_messages.cql", include_str!("../../../cql/002_messages.cql")),
    ("003_follows.cql", include_str!("../../../cql/003_follows.cql")),
    ("004_posts.cql", include_str!("../../../cql/004_posts.cql")),
    ("005_counts.cql", include_str!("../../../cql/005_counts.cql")),
    ("006_groups.cql", include_str!("../../../cql/006_groups.cql")),
    ("007_read_state.cql", include_str!("../../../cql/007_read_state.cql")),
    ("008_lifecycle.cql", include_str!("../../../cql/008_lifecycle.cql")),
    ("009_reactions.cql", include_str!("../../../cql/009_reactions.cql")),
    ("010_push.cql", include_str!("../../../cql/010_push.cql")),
    ("011_safety.cql", include_str!("../../../cql/011_safety.cql")),
    ("012_push_load.cql", include_str!("../../../cql/012_push_load.cql")),
    ("013_push_intake_cursor.cql", include_str!("../../../cql/013_push_intake_cursor.cql")),
];

/// The keyspace statement: NetworkTopologyStrategy with the same factor
/// in every datacenter (the `replication_factor` shorthand, accepted by
/// ScyllaDB and Cassandra 4+; ScyllaDB 2026.2+ rejects SimpleStrategy).
/// `keyspace` must already be validated by [`valid_keyspace`].
pub fn create_keyspace(keyspace: &str, replication_factor: u16) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
         {{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
    )
}

/// True for a name CQL accepts unquoted as a keyspace: 1-48 letters,
/// digits and underscores, starting with a letter.
pub fn valid_keyspace(name: &str) -> bool {
    (1..=48).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The statements of one schema file: `--` comments dropped, split on `;`.
pub fn statements(file: &str) -> Vec<String> {
    let without_comments: String =
        file.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    without_comments
        .split(';')
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Every table of the schema with its columns and their CQL types, read
/// from the embedded files (for the statement checks and tests).
#[cfg(test)]
pub fn tables() -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (_, file) in FILES {
        for st in statements(file) {
            let Some(rest) = st.strip_prefix("CREATE TABLE IF NOT EXISTS ") else { continue };
            let Some((name, body)) = rest.split_once(" (") else { continue };
            let body = body.split(") WITH").next().unwrap_or(body);
            let mut columns = BTreeMap::new();
            for def in body.split(',') {
                let mut words = def.split_whitespace();
                let (Some(col), Some(ty)) = (words.next(), words.next()) else { continue };
                let ident = |w: &str| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if col != "PRIMARY" && ident(col) && ty.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    columns.insert(col.to_string(), ty.trim_end_matches(')').to_string());
                }
            }
            out.insert(name.trim().to_string(), columns);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_numbered_in_order_and_match_cql_dir() {
        // Numbers strictly increase (a number may be missing: branches
        // reserve theirs, e.g. 006_groups beside another branch's 005).
        let mut last = 0;
        for (name, _) in FILES {
            let n: u32 = name.get(..3).and_then(|d| d.parse().ok()).unwrap_or_else(|| panic!("{name}"));
            assert!(name[3..].starts_with('_') && n > last, "{name}");
            assert!(name.ends_with(".cql"));
            last = n;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cql");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".cql"))
            .collect();
        on_disk.sort();
        assert_eq!(on_disk, FILES.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(), "every file is embedded");
    }

    #[test]
    fn every_statement_is_idempotent_and_portable() {
        for (name, file) in FILES {
            for st in statements(file) {
                assert!(st.starts_with("CREATE TABLE IF NOT EXISTS "), "{name}: {st}");
                // Features Cassandra 4 lacks or ScyllaDB treats differently.
                for banned in ["MATERIALIZED VIEW", "INDEX", "frozen", "timeuuid"] {
                    assert!(!st.contains(banned), "{name} uses {banned}: {st}");
                }
            }
        }
    }

    /// Counters only in `*_counts` tables whose columns outside the
    /// primary key are all counters (CQL's rule), so no plain write ever
    /// lands in a counter table.
    #[test]
    fn counters_live_in_counter_tables_only() {
        let mut counter_tables = Vec::new();
        for (table, cols) in tables() {
            let counters = cols.values().filter(|t| *t == "counter").count();
            if counters == 0 {
                continue;
            }
            assert!(table.ends_with("_counts"), "{table} has counters");
            let keys = cols.len() - counters;
            assert_eq!(keys, 1, "{table}: one bigint key, every other column a counter: {cols:?}");
            counter_tables.push(table);
        }
        assert_eq!(counter_tables, ["follow_counts", "post_counts"]);
    }

    #[test]
    fn tables_are_parsed_with_their_columns() {
        let t = tables();
        assert_eq!(t["messages"]["bucket"], "int");
        assert_eq!(t["messages"]["message_id"], "bigint");
        assert_eq!(t["sessions"]["refresh_hash"], "blob");
        assert_eq!(t["user_search"].len(), 3);
        assert!(t.contains_key("followers_by_time"));
    }

    #[test]
    fn keyspace_names_are_checked_before_they_reach_cql() {
        assert!(valid_keyspace("hubbub_test_1"));
        assert!(!valid_keyspace(""));
        assert!(!valid_keyspace("1abc"));
        assert!(!valid_keyspace("a; DROP KEYSPACE x"));
        assert!(!valid_keyspace(&"a".repeat(49)));
        assert_eq!(
            create_keyspace("k", 3),
            "CREATE KEYSPACE IF NOT EXISTS k WITH replication = {'class': 'NetworkTopologyStrategy', 'replication_factor': 3}"
        );
    }
}
