//! Identifiers that appear in MQTT topics: agent ids and province ids.
//!
//! They are ASCII slugs so that they are safe as topic levels, file names and line-protocol tags.
//! Vietnamese display names (with diacritics) belong to the site inventory, not to ids.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// An id was empty, too long, or contained a character outside `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: expected 1-{MAX_ID_LEN} characters from A-Z a-z 0-9 . _ -")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
}

/// Whether `value` is a slug: 1-[`MAX_ID_LEN`] bytes from `A-Z a-z 0-9 . _ -`. Every id of the
/// contract is one; the collector's inventory ids are checked with it too.
pub fn is_slug(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn check(kind: &'static str, value: &str) -> Result<(), InvalidId> {
    if is_slug(value) {
        Ok(())
    } else {
        Err(InvalidId {
            kind,
            value: value.chars().take(2 * MAX_ID_LEN).collect(),
        })
    }
}

macro_rules! slug_id {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A validated ", $kind, ": 1-64 characters from `A-Z a-z 0-9 . _ -`.")]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check($kind, &value)?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(AgentId, "agent id");
slug_id!(ProvinceId, "province id");
slug_id!(BootId, "boot id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_slugs_and_rejects_topic_metacharacters() {
        assert!(AgentId::new("thanh-hoa.cam-tu_giang-trung-01").is_ok());
        for bad in ["", "a/b", "a+b", "a#", "xã", "a b", &"x".repeat(65)] {
            assert!(AgentId::new(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn is_slug_at_the_edges() {
        assert!(is_slug("a") && is_slug(&"x".repeat(MAX_ID_LEN)) && is_slug("A-z_0.9"));
        assert!(!is_slug("") && !is_slug(&"x".repeat(MAX_ID_LEN + 1)) && !is_slug("thanh hóa"));
    }

    #[test]
    fn deserialising_validates() {
        let err = serde_json::from_str::<ProvinceId>("\"thanh/hoa\"").unwrap_err();
        assert!(err.to_string().contains("invalid province id"), "{err}");
    }
}
