//! The probed targets: a [`Target`] as configured on the agent, and the keyed description of a
//! boot's targets ([`DescribedTarget`]) that compact batches name them by.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// A probed host, as configured on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    /// Display name from the agent's config (may carry Vietnamese diacritics).
    pub name: String,
    pub address: IpAddr,
    pub role: LinkRole,
}

/// Most targets one boot describes (`targets_described`, a compact batch's header).
pub const MAX_DESCRIBED_TARGETS: usize = 256;

/// A target of this boot with the key that names it in compact batches (`"target": 2`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DescribedTarget {
    /// 1, 2, 3 … in the agent's config order; unique within a boot.
    pub key: u16,
    #[serde(flatten)]
    pub target: Target,
}

impl DescribedTarget {
    /// `targets` keyed 1, 2, 3 … in their order, as an agent describes its config's targets.
    /// Only the first [`MAX_DESCRIBED_TARGETS`] are kept (more would not be valid).
    pub fn numbered(targets: &[Target]) -> Vec<DescribedTarget> {
        (1..=MAX_DESCRIBED_TARGETS as u16)
            .zip(targets)
            .map(|(key, target)| DescribedTarget {
                key,
                target: target.clone(),
            })
            .collect()
    }

    /// The target named `key` in `targets`.
    pub fn find(targets: &[DescribedTarget], key: u16) -> Option<&Target> {
        targets.iter().find(|d| d.key == key).map(|d| &d.target)
    }

    /// The key of `target` in `targets` (the first, should two describe the same target).
    pub fn key_of(targets: &[DescribedTarget], target: &Target) -> Option<u16> {
        targets.iter().find(|d| &d.target == target).map(|d| d.key)
    }
}

/// What a target stands for on the path from a village to the internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkRole {
    /// The site's own gateway (router, access point).
    Gateway,
    /// The commune's network (commune centre, public service centre).
    Commune,
    /// The provincial network or data centre.
    Province,
    /// A host on the public internet.
    Internet,
    Other,
}
