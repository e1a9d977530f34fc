//! The environment overrides of the configuration file, laid over its TOML tree before the raw
//! structs are read from it. They work as the `config` crate's `Environment` source (prefix
//! `NETMON`, separator `__`, `try_parsing`) made them work before the agent read its TOML
//! itself:
//!
//! - only the agent's names count ([`is_agent_override`]): `NETMON_AGENT_ID`, `NETMON_PROVINCE`
//!   and `NETMON_<SECTION>__<KEY>` for the sections of [`ENV_SECTIONS`];
//! - a name is lowercased, loses `NETMON_`, and each `__` goes one level down:
//!   `NETMON_MQTT__URL` is `mqtt.url`; a name whose levels are not words of ASCII letters,
//!   digits, `_` and `-` is one key of the top level (and refused there as unknown);
//! - a value is a boolean (`true`, `FALSE`), else an integer, else a float, else a string; the
//!   reader converts it to what the key wants as it does the file's values (`value.rs`:
//!   `NETMON_MQTT__USERNAME=1234` is the text `1234`);
//! - an override replaces the file's value; a level on the way that is not a table becomes one.
//!
//! The overrides are laid in the order of their names, so that two names for one key
//! (`NETMON_MQTT__URL`, `NETMON_mqtt__url`) always give the same result.

use std::collections::BTreeMap;

use toml::{Table, Value};

/// Top-level keys and sections an environment override may name. Other `NETMON_*` variables
/// (the collector's, a test runner's) are not the agent's and are left alone.
const ENV_KEYS: &[&str] = &["AGENT_ID", "PROVINCE"];
const ENV_SECTIONS: &[&str] = &["MQTT", "PROBE", "HEARTBEAT", "JOURNAL", "SNMP"];

const PREFIX: &str = "NETMON_";

/// Lays the agent's variables among `vars` over `tree`.
pub(super) fn apply(tree: &mut Table, vars: impl IntoIterator<Item = (String, String)>) {
    let ours: BTreeMap<String, String> = vars
        .into_iter()
        .filter(|(name, _)| is_agent_override(name))
        .collect();
    for (name, text) in ours {
        let path = name[PREFIX.len()..].to_lowercase().replace("__", ".");
        let is_word = |w: &str| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        let levels: Vec<&str> = if path.split('.').all(is_word) {
            path.split('.').collect()
        } else {
            vec![&path]
        };
        set(tree, &levels, scalar(text));
    }
}

fn is_agent_override(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    match rest.split_once("__") {
        Some((section, _)) => ENV_SECTIONS.contains(&section.to_ascii_uppercase().as_str()),
        None => ENV_KEYS.contains(&rest.to_ascii_uppercase().as_str()),
    }
}

/// The value of an override: a boolean, an integer or a float when it reads as one.
fn scalar(text: String) -> Value {
    if let Ok(b) = text.to_lowercase().parse::<bool>() {
        Value::Boolean(b)
    } else if let Ok(n) = text.parse::<i64>() {
        Value::Integer(n)
    } else if let Ok(x) = text.parse::<f64>() {
        Value::Float(x)
    } else {
        Value::String(text)
    }
}

/// Sets `levels` (`["mqtt", "url"]`) of `table` to `value`, making each level above it a table.
fn set(table: &mut Table, levels: &[&str], value: Value) {
    match levels {
        [] => {}
        [key] => {
            table.insert((*key).to_owned(), value);
        }
        [first, rest @ ..] => {
            let level = table
                .entry(*first)
                .or_insert_with(|| Value::Table(Table::new()));
            if !level.is_table() {
                *level = Value::Table(Table::new());
            }
            if let Value::Table(inner) = level {
                set(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(file: &str, vars: &[(&str, &str)]) -> Table {
        let mut tree: Table = toml::from_str(file).unwrap();
        apply(
            &mut tree,
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        tree
    }

    #[test]
    fn names_are_lowercased_levels_and_values_typed() {
        let tree = applied(
            "[probe]\ncount = 3\n",
            &[
                ("NETMON_PROBE__COUNT", "5"),
                ("NETMON_Journal__Fsync_Interval", "2s"),
                ("NETMON_SNMP__ENABLED", "TRUE"),
                ("NETMON_SNMP__RATIO", "0.5"),
                ("NETMON_AGENT_ID", "007"),
            ],
        );
        let expected: Table = toml::from_str(
            "agent_id = 7\n[probe]\ncount = 5\n[journal]\nfsync_interval = \"2s\"\n\
             [snmp]\nenabled = true\nratio = 0.5\n",
        )
        .unwrap();
        assert_eq!(tree, expected);
    }

    #[test]
    fn only_the_agents_names_count() {
        let vars = [
            ("NETMON_BIN_DIR", "/opt"),
            ("NETMON_STORE__PATH", "/var"),
            ("netmon_probe__count", "5"),
            ("OTHER_PROBE__COUNT", "5"),
        ];
        assert_eq!(applied("", &vars), Table::new());
    }

    #[test]
    fn odd_names_and_levels() {
        let tree = applied(
            "mqtt = \"x\"\n",
            &[
                ("NETMON_MQTT__URL", "mqtt://h"),
                ("NETMON_PROBE__", "1"),
                ("NETMON_PROBE__A__B", "c"),
            ],
        );
        let expected: Table =
            toml::from_str("\"probe.\" = 1\n[mqtt]\nurl = \"mqtt://h\"\n[probe.a]\nb = \"c\"\n")
                .unwrap();
        assert_eq!(tree, expected);
    }
}
