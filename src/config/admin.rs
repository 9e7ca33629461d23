//! The operator-facing settings the admin side reads:
//! `4lw.commands.whitelist` and the `metricsProvider.*` family, with
//! ZooKeeper 3.8's defaults and meanings (`FourLetterCommands.isEnabled`,
//! `QuorumPeerConfig` and `PrometheusMetricsProvider.configure`).

use std::collections::BTreeSet;
use std::net::SocketAddr;

use super::error::{PortKind, Problem};

/// Every four-letter word ZooKeeper 3.8 knows (`FourLetterCommands`'
/// `cmd2String`), which is what `*` enables. `telnet close` is the
/// 4-byte telnet IAC sequence `ff f4 ff fd`; zkfle never answers it.
pub const KNOWN_WORDS: &[&str] = &[
    "conf",
    "cons",
    "crst",
    "dirs",
    "dump",
    "envi",
    "gtmk",
    "ruok",
    "stmk",
    "srst",
    "srvr",
    "stat",
    "wchc",
    "wchp",
    "wchs",
    "mntr",
    "isro",
    "telnet close",
    "hash",
];

/// `4lw.commands.whitelist`: which four-letter words are answered.
///
/// As in ZooKeeper 3.5.3+: without the key only `srvr` is enabled (which
/// `zkServer.sh status` needs); the value is a comma-separated list
/// (entries trimmed, case-sensitive, empty ones skipped); `*` enables every
/// known word (entries after it are ignored, as Java stops there); `srvr`
/// is always enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FourLetterWords {
    enabled: BTreeSet<String>,
}

impl Default for FourLetterWords {
    /// ZooKeeper's default: `srvr` only.
    fn default() -> Self {
        FourLetterWords::parse(None)
    }
}

impl FourLetterWords {
    /// Reads the key's value (`None` = the key is absent).
    pub fn parse(value: Option<&str>) -> FourLetterWords {
        let mut enabled = BTreeSet::new();
        for word in value.map(|v| v.split(',')).into_iter().flatten() {
            let word = super::props::java_trim(word);
            if word == "*" {
                enabled.extend(KNOWN_WORDS.iter().map(|w| w.to_string()));
                break;
            }
            if !word.is_empty() {
                enabled.insert(word.to_string());
            }
        }
        // zkServer.sh depends on srvr, so ZooKeeper never disables it.
        enabled.insert("srvr".to_string());
        FourLetterWords { enabled }
    }

    /// Every word enabled.
    pub fn all() -> FourLetterWords {
        FourLetterWords::parse(Some("*"))
    }

    /// True if `word` may be answered.
    pub fn allows(&self, word: &str) -> bool {
        self.enabled.contains(word)
    }

    /// The enabled words, sorted.
    pub fn enabled(&self) -> impl Iterator<Item = &str> {
        self.enabled.iter().map(String::as_str)
    }
}

/// ZooKeeper's Prometheus provider class, the only one zkfle implements
/// with an endpoint.
pub const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
/// ZooKeeper's default provider (metrics in `mntr` only, no endpoint).
pub const DEFAULT_PROVIDER: &str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider";
/// `PrometheusMetricsProvider`'s default `httpPort`.
pub const DEFAULT_METRICS_PORT: u16 = 7000;
/// `PrometheusMetricsProvider`'s default `httpHost`.
pub const DEFAULT_METRICS_HOST: &str = "0.0.0.0";

/// Where `GET /metrics` is served (set only with the Prometheus provider).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    /// `metricsProvider.httpHost` (default `0.0.0.0`) and
    /// `metricsProvider.httpPort` (default 7000), resolved.
    pub addr: SocketAddr,
    /// The host as written (for logs).
    pub host_text: String,
}

/// Checks `metricsProvider.className`: `Ok(true)` for the Prometheus
/// provider, `Ok(false)` for ZooKeeper's default provider; any other class
/// is an error, as it is for ZooKeeper when the class cannot be loaded.
pub(super) fn metrics_provider(class: &str) -> Result<bool, Problem> {
    match class {
        PROMETHEUS_PROVIDER => Ok(true),
        DEFAULT_PROVIDER => Ok(false),
        other => Err(Problem::UnknownMetricsProvider {
            class: other.to_string(),
        }),
    }
}

/// `metricsProvider.httpPort`: Java's `Integer.parseInt`, then zkfle's port
/// range (1..65535; Java would also take 0, an ephemeral port).
pub(super) fn metrics_port(value: &str) -> Result<u16, Problem> {
    let v = super::values::parse_int(value)?;
    match u16::try_from(v) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(Problem::PortOutOfRange {
            kind: PortKind::Metrics,
            value: v,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitelist_follows_zookeeper() {
        let d = FourLetterWords::default();
        assert_eq!(d.enabled().collect::<Vec<_>>(), vec!["srvr"]);
        assert!(!d.allows("ruok") && !d.allows("mntr"));
        let w = FourLetterWords::parse(Some(" ruok, mntr ,,conf"));
        assert_eq!(
            w.enabled().collect::<Vec<_>>(),
            vec!["conf", "mntr", "ruok", "srvr"]
        );
        assert!(!FourLetterWords::parse(Some("RUOK")).allows("ruok"));
        let all = FourLetterWords::parse(Some("ruok,*,bogus"));
        for w in KNOWN_WORDS {
            assert!(all.allows(w), "{w}");
        }
        assert!(!all.allows("bogus"), "entries after * are ignored");
        assert_eq!(
            FourLetterWords::parse(Some(""))
                .enabled()
                .collect::<Vec<_>>(),
            vec!["srvr"]
        );
    }

    #[test]
    fn metrics_keys() {
        assert_eq!(metrics_provider(PROMETHEUS_PROVIDER), Ok(true));
        assert_eq!(metrics_provider(DEFAULT_PROVIDER), Ok(false));
        assert!(metrics_provider("com.example.Metrics").is_err());
        assert_eq!(metrics_port("7001"), Ok(7001));
        assert!(metrics_port("0").is_err());
        assert!(metrics_port("x").is_err());
    }
}
