//! Human-friendly units in configs: durations like `"30s"` and sizes like `"64MiB"`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as `"250ms"`, `"30s"`, `"5m"`, `"1h 30m"` (humantime syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigDuration(pub std::time::Duration);

impl ConfigDuration {
    /// The duration in whole milliseconds (event time is in milliseconds).
    pub fn as_millis_i64(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }

    /// A duration of `ms` milliseconds.
    pub fn from_millis(ms: u64) -> Self {
        ConfigDuration(std::time::Duration::from_millis(ms))
    }
}

/// A value that is not a duration or size; the message says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

impl FromStr for ConfigDuration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        humantime::parse_duration(s.trim()).map(ConfigDuration).map_err(|e| {
            UnitError(format!("invalid duration \"{s}\": {e}; write a number and a unit, e.g. \"500ms\", \"30s\", \"5m\", \"2h\""))
        })
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = StringOrNumber::deserialize(d)?;
        match s {
            StringOrNumber::Text(t) => t.parse().map_err(serde::de::Error::custom),
            StringOrNumber::Number(n) => Err(serde::de::Error::custom(format!(
                "invalid duration {n}: a duration needs a unit, e.g. \"{n}s\" or \"{n}ms\""
            ))),
        }
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A size in bytes written as `"64MiB"`, `"1 GB"` or a plain integer number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ConfigSize(pub u64);

impl FromStr for ConfigSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        bytesize::ByteSize::from_str(s.trim()).map(|b| ConfigSize(b.as_u64())).map_err(|e| {
            UnitError(format!("invalid size \"{s}\": {e}; write e.g. \"512KiB\", \"64MiB\", \"2GiB\""))
        })
    }
}

impl fmt::Display for ConfigSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize::b(self.0).display().iec())
    }
}

impl<'de> Deserialize<'de> for ConfigSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrNumber::deserialize(d)? {
            StringOrNumber::Text(t) => t.parse().map_err(serde::de::Error::custom),
            StringOrNumber::Number(n) if n >= 0 => Ok(ConfigSize(n as u64)),
            StringOrNumber::Number(n) => {
                Err(serde::de::Error::custom(format!("invalid size {n}: must be >= 0")))
            }
        }
    }
}

impl Serialize for ConfigSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Text(String),
    Number(i64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_sizes() {
        assert_eq!("30s".parse::<ConfigDuration>().unwrap().as_millis_i64(), 30_000);
        assert_eq!("1h 30m".parse::<ConfigDuration>().unwrap().as_millis_i64(), 5_400_000);
        assert_eq!("64MiB".parse::<ConfigSize>().unwrap().0, 64 << 20);
        assert!("thirty".parse::<ConfigDuration>().unwrap_err().to_string().contains("e.g."));
        assert!("lots".parse::<ConfigSize>().is_err());
    }
}
