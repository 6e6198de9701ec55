//! Time formatting shared by manifests, versions and JSON output: RFC 3339 UTC with
//! milliseconds, and the compact sortable form used in version names.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as RFC 3339 UTC with millisecond precision, e.g. `2026-11-27T08:05:12.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// Parses an RFC 3339 timestamp as written by [`rfc3339`].
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// Formats `t` in the compact, lexically sortable form `20261127T080512123Z`.
pub fn compact(t: SystemTime) -> String {
    // RFC 3339 with milliseconds always has the fixed shape YYYY-MM-DDTHH:MM:SS.mmmZ.
    rfc3339(t)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// The current time truncated to whole milliseconds, so it survives a round trip through
/// [`rfc3339`] unchanged.
pub fn now_millis() -> SystemTime {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    UNIX_EPOCH + Duration::from_millis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// Serde helpers for `Option<SystemTime>` as RFC 3339 strings.
pub mod serde_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the time as an RFC 3339 string, or null.
    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 string, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => super::parse_rfc3339(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {s:?}"))),
        }
    }
}

/// Serde helpers for `SystemTime` as an RFC 3339 string.
pub mod serde_time {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the time as an RFC 3339 string.
    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// Reads an RFC 3339 string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_rfc3339(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_sorts_like_time() {
        let a = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let b = a + Duration::from_millis(1);
        assert_eq!(compact(a), "20231114T221320123Z");
        assert!(compact(a) < compact(b));
        assert_eq!(parse_rfc3339(&rfc3339(a)), Some(a));
    }
}
