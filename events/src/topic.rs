//! The MQTT topic scheme: `netmon/v1/{province}/{agent}/{kind}`.
//!
//! | kind     | direction           | QoS | retained | payload |
//! |----------|---------------------|-----|----------|---------|
//! | `events` | agent → collector   | 1   | no       | a JSON array of envelopes ([`crate::payload`]) |
//! | `status` | agent (and its last will) → anyone | 1 | yes | `{"status":"online",…}` / `{"status":"offline"}` |
//! | `ack`    | collector → agent   | 1   | yes      | acknowledgement watermark (delivery, later) |
//! | `alive`  | agent → collector   | 0   | no       | the agent's `mqtt.alive_every` in milliseconds, ASCII (`2000`) |
//!
//! Province and agent are levels so that a broker ACL can bind an agent's credentials to its own
//! topics (`pattern write netmon/v1/+/%u/#`) and a collector can take one province by subscribing
//! to `netmon/v1/{province}/+/events`.

use std::fmt;

use crate::ids::{AgentId, InvalidId, ProvinceId};

/// First two levels of every netmon topic.
pub const PREFIX: &str = "netmon/v1";

/// The last level of a topic: what the message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    Events,
    Status,
    Ack,
    /// Liveness messages of an agent with `mqtt.alive_every` (ADR 16): not events, not stored.
    Alive,
}

impl TopicKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TopicKind::Events => "events",
            TopicKind::Status => "status",
            TopicKind::Ack => "ack",
            TopicKind::Alive => "alive",
        }
    }
}

/// A parsed netmon topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    pub province: ProvinceId,
    pub agent: AgentId,
    pub kind: TopicKind,
}

/// A topic that is not a netmon topic, or carries invalid ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} is not of the form {PREFIX}/<province>/<agent>/<events|status|ack|alive>")]
    Shape(String),
    #[error("topic {topic:?}: {source}")]
    Id { topic: String, source: InvalidId },
}

impl Topic {
    pub fn new(province: ProvinceId, agent: AgentId, kind: TopicKind) -> Self {
        Self {
            province,
            agent,
            kind,
        }
    }

    pub fn parse(topic: &str) -> Result<Self, TopicError> {
        let shape = || TopicError::Shape(topic.chars().take(200).collect());
        let rest = topic
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(shape)?;
        let mut levels = rest.split('/');
        let (Some(province), Some(agent), Some(kind), None) =
            (levels.next(), levels.next(), levels.next(), levels.next())
        else {
            return Err(shape());
        };
        let kind = match kind {
            "events" => TopicKind::Events,
            "status" => TopicKind::Status,
            "ack" => TopicKind::Ack,
            "alive" => TopicKind::Alive,
            _ => return Err(shape()),
        };
        let id_err = |source| TopicError::Id {
            topic: topic.to_owned(),
            source,
        };
        Ok(Self {
            province: ProvinceId::new(province).map_err(id_err)?,
            agent: AgentId::new(agent).map_err(id_err)?,
            kind,
        })
    }

    /// The subscription filter for one kind of topic, for one province or all (`None`).
    pub fn filter(province: Option<&ProvinceId>, kind: TopicKind) -> String {
        let province = province.map_or("+", ProvinceId::as_str);
        format!("{PREFIX}/{province}/+/{}", kind.as_str())
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PREFIX}/{}/{}/{}",
            self.province,
            self.agent,
            self.kind.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse_round_trip() {
        let topic = Topic::new(
            "thanh-hoa".parse().unwrap(),
            "cam-tu-giang-trung".parse().unwrap(),
            TopicKind::Events,
        );
        let text = topic.to_string();
        assert_eq!(text, "netmon/v1/thanh-hoa/cam-tu-giang-trung/events");
        assert_eq!(Topic::parse(&text).unwrap(), topic);
    }

    #[test]
    fn rejects_foreign_and_malformed_topics() {
        for bad in [
            "netmon/v1/thanh-hoa/agent",
            "netmon/v1/thanh-hoa/agent/events/extra",
            "netmon/v2/thanh-hoa/agent/events",
            "netmon/v1/thanh-hoa/agent/telemetry",
            "netmon/v1//agent/events",
            "other/thing",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn filters() {
        assert_eq!(
            Topic::filter(None, TopicKind::Events),
            "netmon/v1/+/+/events"
        );
        let hue: ProvinceId = "hue".parse().unwrap();
        assert_eq!(
            Topic::filter(Some(&hue), TopicKind::Status),
            "netmon/v1/hue/+/status"
        );
    }
}
