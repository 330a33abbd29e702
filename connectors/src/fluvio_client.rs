//! What the Fluvio source and sink share: where the cluster is, how to wait between
//! reconnects, and the connection metrics.
//!
//! Both connectors run their own small tokio runtime on the thread the pipeline gives them
//! (the Fluvio client's own background tasks run on its executor threads), so no async code
//! reaches the engine's hot path.

use std::time::Duration;

use eddy_engine::metrics::{ConnectorDirection, MetricsFactory, FLUVIO_CONNECTED, FLUVIO_RECONNECTS_TOTAL};
use fluvio::config::ConfigFile;
use fluvio::FluvioClusterConfig;
use metrics::{Counter, Gauge};

pub use crate::error::ClusterError;

/// Environment variable naming the cluster when a config gives no `endpoint`.
pub const ENDPOINT_ENV: &str = "EDDY_FLUVIO_ENDPOINT";

/// How long one connection attempt may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster to connect to and where that choice came from (for logs and errors).
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The client configuration (endpoint, TLS).
    pub config: FluvioClusterConfig,
    /// `config`, `EDDY_FLUVIO_ENDPOINT` or `Fluvio profile ...`.
    pub origin: String,
}

/// Finds the cluster: the connector's own `endpoint`, else `EDDY_FLUVIO_ENDPOINT`, else the
/// current profile of the Fluvio CLI's config file (`~/.fluvio/config`, read, never created).
///
/// # Errors
/// When none of the three names a cluster.
pub fn resolve_cluster(endpoint: Option<&str>) -> Result<Cluster, ClusterError> {
    resolve_cluster_with(endpoint, std::env::var(ENDPOINT_ENV).ok().as_deref(), || {
        let file = ConfigFile::load(None).map_err(|e| e.to_string())?;
        let profile = file.config().current_profile_name().unwrap_or("(none)").to_string();
        let cluster = file.config().current_cluster().map_err(|e| e.to_string())?.clone();
        Ok::<_, String>((cluster, profile))
    })
}

/// [`resolve_cluster`] with the environment and the profile lookup passed in (for tests).
///
/// # Errors
/// When none of the three names a cluster.
pub fn resolve_cluster_with<E: std::fmt::Display>(
    endpoint: Option<&str>,
    env: Option<&str>,
    profile: impl FnOnce() -> Result<(FluvioClusterConfig, String), E>,
) -> Result<Cluster, ClusterError> {
    if let Some(e) = endpoint {
        return Ok(Cluster { config: FluvioClusterConfig::new(e), origin: "config".into() });
    }
    if let Some(e) = env.map(str::trim).filter(|e| !e.is_empty()) {
        return Ok(Cluster { config: FluvioClusterConfig::new(e), origin: ENDPOINT_ENV.into() });
    }
    match profile() {
        Ok((config, name)) => Ok(Cluster { config, origin: format!("Fluvio profile `{name}`") }),
        Err(why) => Err(ClusterError { env: ENDPOINT_ENV, profile: why.to_string() }),
    }
}

/// Checks an `endpoint` value: `HOST:PORT` with a port number.
pub fn endpoint_problem(endpoint: &str) -> Option<String> {
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        return Some(format!("`{endpoint}` must be HOST:PORT, e.g. \"127.0.0.1:9003\""));
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Some(format!("`{endpoint}` must be HOST:PORT with a port between 1 and 65535"));
    }
    None
}

/// Checks a topic name the way the cluster will: 1 to 63 lowercase letters, digits and `-`,
/// starting and ending with a letter or digit.
pub fn topic_problem(topic: &str) -> Option<String> {
    let ok_chars = topic.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    let ok_ends = !topic.starts_with('-') && !topic.ends_with('-');
    if topic.is_empty() || topic.len() > 63 || !ok_chars || !ok_ends {
        return Some(format!(
            "`{topic}` is not a Fluvio topic name: 1 to 63 lowercase letters, digits and `-`, not starting or ending with `-`"
        ));
    }
    None
}

/// Exponential backoff between reconnects: 100 ms, doubling, capped at `max`; reset after a
/// connection works. No jitter: one daemon per topic is the expected deployment, and fixed
/// delays keep the logs and tests predictable.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

/// First delay of a [`Backoff`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);

impl Backoff {
    /// A backoff capped at `max` (at least [`MIN_BACKOFF`]).
    pub fn new(max: Duration) -> Self {
        Backoff { next: MIN_BACKOFF, max: max.max(MIN_BACKOFF) }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next.min(self.max);
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// Back to the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = MIN_BACKOFF;
    }
}

/// Connection state of one connector: `eddy_fluvio_connected` (1 connected, 0 not) and
/// `eddy_fluvio_reconnects_total`, labelled `connector` (config name) and `direction`
/// (`source`, `sink`).
pub struct ConnectionMetrics {
    connected: Gauge,
    reconnects: Counter,
}

impl ConnectionMetrics {
    /// Registers the series of connector `name`.
    pub fn new(f: &MetricsFactory, name: &str, direction: ConnectorDirection) -> Self {
        let l = [("connector", name), ("direction", direction.as_str())];
        ConnectionMetrics {
            connected: f.gauge(&FLUVIO_CONNECTED, &l),
            reconnects: f.counter(&FLUVIO_RECONNECTS_TOTAL, &l),
        }
    }

    /// The connection works.
    pub fn up(&self) {
        self.connected.set(1.0);
    }

    /// The connection was lost (or never made) and another attempt follows.
    pub fn down(&self) {
        self.connected.set(0.0);
        self.reconnects.increment(1);
    }
}

/// Default `max_in_flight` of Fluvio sources and sinks: records read ahead, or sent and not yet
/// acknowledged.
pub(crate) fn default_max_in_flight() -> usize {
    16384
}

/// Default `max_backoff` of Fluvio sources and sinks.
pub(crate) fn default_max_backoff() -> eddy_engine::units::ConfigDuration {
    eddy_engine::units::ConfigDuration(std::time::Duration::from_secs(30))
}

/// Largest accepted `max_in_flight`.
pub const MAX_IN_FLIGHT_LIMIT: usize = 1 << 22;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(1000));
        let delays: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), MIN_BACKOFF);
        // A cap below the first delay is raised to it.
        let mut tiny = Backoff::new(Duration::from_millis(1));
        assert_eq!(tiny.next_delay(), MIN_BACKOFF);
    }

    #[test]
    fn cluster_comes_from_config_then_env_then_profile() {
        let no_profile = || Err::<(FluvioClusterConfig, String), _>("no ~/.fluvio/config".to_string());
        let c = resolve_cluster_with(Some("a:1"), Some("b:2"), no_profile).unwrap();
        assert_eq!((c.config.endpoint.as_str(), c.origin.as_str()), ("a:1", "config"));
        let c = resolve_cluster_with(None, Some("b:2"), no_profile).unwrap();
        assert_eq!((c.config.endpoint.as_str(), c.origin.as_str()), ("b:2", ENDPOINT_ENV));
        let c = resolve_cluster_with(None, Some("  "), || {
            Ok::<_, String>((FluvioClusterConfig::new("c:3"), "local".into()))
        })
        .unwrap();
        assert_eq!((c.config.endpoint.as_str(), c.origin.as_str()), ("c:3", "Fluvio profile `local`"));
        let e = resolve_cluster_with(None, None, no_profile).unwrap_err().to_string();
        assert!(e.contains("EDDY_FLUVIO_ENDPOINT") && e.contains("no ~/.fluvio/config"), "{e}");
    }

    #[test]
    fn endpoints_and_topic_names_are_checked() {
        assert_eq!(endpoint_problem("127.0.0.1:9003"), None);
        assert_eq!(endpoint_problem("localhost:9003"), None);
        assert!(endpoint_problem("localhost").unwrap().contains("HOST:PORT"));
        assert!(endpoint_problem("localhost:0").is_some());
        assert!(endpoint_problem(":9003").is_some());
        assert!(endpoint_problem("h:99999").is_some());
        assert_eq!(topic_problem("events-1"), None);
        for bad in ["", "Events", "ev_ents", "-a", "a-", &"x".repeat(64)] {
            assert!(topic_problem(bad).is_some(), "{bad}");
        }
    }
}
