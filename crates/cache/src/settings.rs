//! `[cache]` as the config gives it, validated: which tiers exist and how they are shared.

use std::time::Duration;

/// `[cache]`: the tiers cached routes draw on.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// The memory tier, when configured.
    pub memory: Option<MemoryTierSettings>,
    /// The disk tier, when configured.
    pub disk: Option<super::disk::DiskSettings>,
    /// The Redis tier, when configured.
    pub redis: Option<super::redis::RedisSettings>,
    /// The object-store tier, when configured.
    pub object: Option<super::object::ObjectSettings>,
    /// How long a request waits for another's fill of the same key.
    pub lock_timeout: Duration,
    /// Response headers whose values tag entries for purges.
    pub tag_headers: Vec<http::HeaderName>,
}

impl CacheSettings {
    /// The tiers configured, top first.
    pub fn tiers(&self) -> Vec<super::tier::TierName> {
        use super::tier::TierName;
        let mut tiers = Vec::new();
        if self.memory.is_some() {
            tiers.push(TierName::Memory);
        }
        if self.disk.is_some() {
            tiers.push(TierName::Disk);
        }
        if self.redis.is_some() {
            tiers.push(TierName::Redis);
        }
        if self.object.is_some() {
            tiers.push(TierName::Object);
        }
        tiers
    }
}

/// `[cache.memory]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryTierSettings {
    /// Bytes the tier may hold.
    pub size: usize,
    /// Largest single entry.
    pub max_entry: usize,
}
