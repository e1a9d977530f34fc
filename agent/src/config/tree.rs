//! Reads the raw structs out of the TOML tree (the file with the environment overrides laid
//! over it): a serde deserializer that names the key of every error and converts scalars as the
//! `config` crate's did when it read the agent's configuration:
//!
//! - a string wanted: numbers and booleans give their text (`1.0` gives `1`), a date its TOML
//!   text;
//! - an integer or a float wanted: a string is parsed, `true`, `on`, `yes` are 1 and `false`,
//!   `off`, `no` 0; a boolean is 1 or 0; a float is rounded to an integer;
//! - a boolean wanted: a number is true when it is not 0, a string is one of `1`, `true`, `on`,
//!   `yes`, `0`, `false`, `off`, `no`.
//!
//! What does not convert is `expected an integer, got string "three"`; every other problem
//! (an unknown field, a table where a list should be) is serde's text. Errors name the key as
//! the validators do: `probe.count`, `targets[1].port`, `cellular[0].thresholds.lte_sinr`.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use toml::{Table, Value};

/// A problem with one key of the tree.
#[derive(Debug)]
pub(super) struct KeyProblem {
    /// The key (`probe.count`), or `None` for the tree as a whole.
    pub(super) key: Option<String>,
    pub(super) problem: String,
}

impl KeyProblem {
    /// Names `key`, unless a key further down is named already.
    fn at(mut self, key: &str) -> KeyProblem {
        if self.key.is_none() {
            self.key = Some(key.to_owned());
        }
        self
    }
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

impl std::error::Error for KeyProblem {}

impl de::Error for KeyProblem {
    fn custom<T: fmt::Display>(msg: T) -> KeyProblem {
        KeyProblem {
            key: None,
            problem: msg.to_string(),
        }
    }
}

/// Reads a `T` from `tree`.
pub(super) fn read<T: DeserializeOwned>(tree: Table) -> Result<T, KeyProblem> {
    T::deserialize(Node {
        value: Value::Table(tree),
        key: String::new(),
    })
}

/// A value of the tree and its key (empty for the whole tree).
struct Node {
    value: Value,
    key: String,
}

impl Node {
    fn mismatch(&self, expected: &str) -> KeyProblem {
        let got = match &self.value {
            Value::String(s) => format!("string {s:?}"),
            Value::Datetime(d) => format!("string \"{d}\""),
            Value::Integer(n) => format!("64-bit integer `{n}`"),
            Value::Float(x) => format!("floating point `{x}`"),
            Value::Boolean(b) => format!("boolean `{b}`"),
            Value::Array(_) => "sequence".to_owned(),
            Value::Table(_) => "map".to_owned(),
        };
        de::Error::custom(format_args!("expected {expected}, got {got}"))
    }

    /// An integer or a float from a string or a boolean (the callers read numbers).
    fn number<N: FromStr + From<u8>>(&self, expected: &str) -> Result<N, KeyProblem> {
        let from_text = |text: &str| match text.to_lowercase().as_str() {
            "true" | "on" | "yes" => Some(N::from(1)),
            "false" | "off" | "no" => Some(N::from(0)),
            _ => text.parse().ok(),
        };
        let n = match &self.value {
            Value::String(s) => from_text(s),
            Value::Datetime(d) => from_text(&d.to_string()),
            Value::Boolean(b) => Some(N::from(u8::from(*b))),
            Value::Integer(_) | Value::Float(_) | Value::Array(_) | Value::Table(_) => None,
        };
        n.ok_or_else(|| self.mismatch(expected))
    }
}

/// Every integer type reads as an i64; the visitor checks its own range.
macro_rules! integers_as_i64 {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
            self.deserialize_i64(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = KeyProblem;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        match self.value {
            Value::String(s) => visitor.visit_string(s),
            Value::Datetime(d) => visitor.visit_string(d.to_string()),
            Value::Integer(n) => visitor.visit_i64(n),
            Value::Float(x) => visitor.visit_f64(x),
            Value::Boolean(b) => visitor.visit_bool(b),
            Value::Array(items) => visitor.visit_seq(Items {
                items: items.into_iter().enumerate(),
                key: &self.key,
            }),
            Value::Table(table) => visitor.visit_map(Entries {
                entries: table.into_iter(),
                key: &self.key,
                value: None,
            }),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        let b = match &self.value {
            Value::Boolean(b) => Some(*b),
            Value::Integer(n) => Some(*n != 0),
            Value::Float(x) => Some(*x != 0.0),
            Value::String(s) => match s.to_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => Some(true),
                "0" | "false" | "off" | "no" => Some(false),
                _ => None,
            },
            Value::Datetime(_) | Value::Array(_) | Value::Table(_) => None,
        };
        visitor.visit_bool(b.ok_or_else(|| self.mismatch("a boolean"))?)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        let n = match self.value {
            Value::Integer(n) => n,
            Value::Float(x) => x.round() as i64,
            _ => self.number("an integer")?,
        };
        visitor.visit_i64(n)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        let x = match self.value {
            Value::Float(x) => x,
            Value::Integer(n) => n as f64,
            _ => self.number("a floating point")?,
        };
        visitor.visit_f64(x)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        let text = match self.value {
            Value::String(s) => s,
            Value::Datetime(d) => d.to_string(),
            Value::Integer(n) => n.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Boolean(b) => b.to_string(),
            Value::Array(_) | Value::Table(_) => return Err(self.mismatch("a string")),
        };
        visitor.visit_string(text)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, KeyProblem> {
        // TOML has no null: a key that is there is `Some`.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, KeyProblem> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, KeyProblem> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        char bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }

    integers_as_i64! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_u8 deserialize_u16
        deserialize_u32 deserialize_u64
    }
}

/// Reads `seed` from `value`, naming `key` in an error that names no key further down.
fn read_seed<'de, T: DeserializeSeed<'de>>(
    seed: T,
    value: Value,
    key: String,
) -> Result<T::Value, KeyProblem> {
    seed.deserialize(Node {
        value,
        key: key.clone(),
    })
    .map_err(|e| e.at(&key))
}

/// The elements of an array, keyed `key[i]`.
struct Items<'k> {
    items: std::iter::Enumerate<std::vec::IntoIter<Value>>,
    key: &'k str,
}

impl<'de> de::SeqAccess<'de> for Items<'_> {
    type Error = KeyProblem;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, KeyProblem> {
        let Some((i, value)) = self.items.next() else {
            return Ok(None);
        };
        read_seed(seed, value, format!("{}[{i}]", self.key)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The entries of a table, keyed `key.name` (`name` at the top).
struct Entries<'k> {
    entries: toml::map::IntoIter<String, Value>,
    key: &'k str,
    /// The value of the entry whose name was read last, and its key.
    value: Option<(String, Value)>,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = KeyProblem;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, KeyProblem> {
        let Some((name, value)) = self.entries.next() else {
            return Ok(None);
        };
        let key = if self.key.is_empty() {
            name.clone()
        } else {
            format!("{}.{name}", self.key)
        };
        // An unknown field is the error of its own key (`probe.colour`).
        let field = seed
            .deserialize(name.into_deserializer())
            .map_err(|e: KeyProblem| e.at(&key))?;
        self.value = Some((key, value));
        Ok(Some(field))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, KeyProblem> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value asked for before its key"));
        };
        read_seed(seed, value, key)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Section {
        text: Option<String>,
        count: Option<i64>,
        ratio: Option<f64>,
        on: Option<bool>,
        levels: Option<Vec<f64>>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        section: Option<Section>,
        #[serde(default)]
        list: Vec<Section>,
    }

    fn read_text(text: &str) -> Result<Top, (Option<String>, String)> {
        let tree: Table = toml::from_str(text).unwrap();
        read(tree).map_err(|e| (e.key, e.problem))
    }

    #[test]
    fn scalars_convert_as_the_config_crate_did() {
        let top = read_text(
            "[section]\ntext = 1.0\ncount = \"yes\"\nratio = 2\non = \"Off\"\nlevels = [1, 2.5]\n",
        )
        .unwrap();
        assert_eq!(
            top.section,
            Some(Section {
                text: Some("1".into()),
                count: Some(1),
                ratio: Some(2.0),
                on: Some(false),
                levels: Some(vec![1.0, 2.5]),
            })
        );
        let top = read_text("[section]\ntext = 1979-05-27\ncount = 2.5\non = 2\n").unwrap();
        let section = top.section.unwrap();
        assert_eq!(
            (section.text.as_deref(), section.count, section.on),
            (Some("1979-05-27"), Some(3), Some(true))
        );
    }

    #[test]
    fn errors_name_their_key() {
        let cases: &[(&str, Option<&str>, &str)] = &[
            (
                "[section]\ncount = \"three\"",
                Some("section.count"),
                "expected an integer, got string \"three\"",
            ),
            (
                "[section]\ntext = [1]",
                Some("section.text"),
                "expected a string, got sequence",
            ),
            (
                "[[list]]\n[[list]]\non = \"maybe\"",
                Some("list[1].on"),
                "expected a boolean, got string \"maybe\"",
            ),
            (
                "[[list]]\nlevels = \"high\"",
                Some("list[0].levels"),
                "invalid type: string \"high\", expected a sequence",
            ),
            (
                "[[list]]\nlevels = [1, \"x\"]",
                Some("list[0].levels[1]"),
                "expected a floating point, got string \"x\"",
            ),
            (
                "[section]\ncolour = 3",
                Some("section.colour"),
                "unknown field `colour`, expected one of",
            ),
            ("colour = 3", Some("colour"), "unknown field `colour`"),
            ("section = 3", Some("section"), "invalid type: integer `3`"),
        ];
        for (text, key, problem) in cases {
            let (got_key, got) = read_text(text).unwrap_err();
            assert_eq!(got_key.as_deref(), *key, "{text}");
            assert!(got.starts_with(problem), "{text}: {got}");
        }
    }
}
