//! Types of the SNMP events: a polled device and one of its interfaces.

use serde::{Deserialize, Serialize};

/// A device polled over SNMP, as configured on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Device {
    /// Address as configured (`192.0.2.1` or `192.0.2.1:161`).
    pub address: String,
    /// `sysName` as the device reports it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One interface of a device (IF-MIB).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Interface {
    /// `ifIndex`.
    pub index: u32,
    /// `ifName` (or `ifDescr` when the device has no ifXTable).
    pub name: String,
    /// `ifAlias`, the operator's description, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// `ifOperStatus` (RFC 2863).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperStatus {
    Up,
    Down,
    Testing,
    Unknown,
    Dormant,
    NotPresent,
    LowerLayerDown,
}

impl OperStatus {
    /// From the MIB's integer; anything outside 1..=7 is `Unknown`.
    pub fn from_mib(value: i64) -> Self {
        match value {
            1 => OperStatus::Up,
            2 => OperStatus::Down,
            3 => OperStatus::Testing,
            5 => OperStatus::Dormant,
            6 => OperStatus::NotPresent,
            7 => OperStatus::LowerLayerDown,
            _ => OperStatus::Unknown,
        }
    }
}
