//! Text ZooKeeper derives from its configuration: the committed-config
//! string carried by v2 notifications and NEWLEADER (PROTOCOL.md §3.2,
//! §6.3), and the `conf` four-letter word's answer.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{LearnerType, QuorumVerifier, ServerAddr, ServerSpec, ZkConfig};
use crate::net::HostPort;

/// The host text Java's `InetSocketAddress.getHostString` gives for a
/// host as written: names stay as written, IP literals come back in
/// `InetAddress.getHostAddress` form. For IPv6 that is eight uncompressed
/// lowercase groups (`::1` → `0:0:0:0:0:0:0:1`, checked against 3.8.0),
/// and an IPv4-mapped literal is an IPv4 address to Java.
fn java_host_string(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|g| format!("{g:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
        Err(_) => host.to_string(),
    }
}

/// ZooKeeper writes IPv6 hosts in brackets so `host:port` stays readable.
fn delimited(host: &str) -> String {
    let host = java_host_string(host);
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    }
}

/// One server's value, as `QuorumServer.toString` lays it out.
fn server_value(s: &ServerSpec) -> String {
    let mut pairs: Vec<(String, u16, u16)> = s
        .endpoints
        .iter()
        .map(|a| {
            (
                a.quorum.host().to_string(),
                a.quorum.port(),
                a.election.port(),
            )
        })
        .collect();
    // ZooKeeper sorts a multi-address line's addresses by host text (a
    // stable sort; equal hosts keep configuration order here).
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = pairs
        .iter()
        .map(|(h, q, e)| format!("{}:{q}:{e}", delimited(h)))
        .collect::<Vec<_>>()
        .join("|");
    out.push_str(match s.learner_type {
        LearnerType::Participant => ":participant",
        LearnerType::Observer => ":observer",
    });
    // Only a client address that came from the server line itself is
    // echoed; one from clientPort/clientPortAddress is not.
    if let Some(client) = &s.client {
        let _ = write!(
            out,
            ";{}:{}",
            delimited(&client.host().to_string()),
            client.port()
        );
    }
    out
}

/// See [`ZkConfig::config_text`].
pub(super) fn config_text(cfg: &ZkConfig) -> String {
    let mut servers: Vec<&ServerSpec> = cfg.servers.iter().collect();
    servers.sort_by_key(|s| s.sid);
    let mut out = String::new();
    for s in servers {
        let _ = writeln!(out, "server.{}={}", s.sid, server_value(s));
    }
    if let QuorumVerifier::Hierarchical { groups, weights } = &cfg.verifier {
        for (gid, members) in groups {
            let list = members
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(":");
            let _ = writeln!(out, "group.{gid}={list}");
        }
        for (sid, w) in weights {
            let _ = writeln!(out, "weight.{sid}={w}");
        }
    }
    // Java's Long.toHexString: two's complement for negatives.
    let _ = write!(out, "version={:x}", cfg.config_version as u64);
    out
}

/// `dir/version-2`, made absolute against the working directory like
/// Java's `File.getAbsolutePath` (no symlink resolution).
fn snap_dir(dir: &Path) -> PathBuf {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .join("version-2")
}

/// Total size of the files under `dir` (0 when it does not exist), as
/// ZooKeeper reports `dataDirSize`.
fn dir_size(dir: &Path) -> u64 {
    fn walk(p: &Path, depth: usize) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(p) else {
            return 0;
        };
        if !meta.is_dir() {
            return meta.len();
        }
        if depth > 8 {
            return 0;
        }
        std::fs::read_dir(p).map_or(0, |rd| {
            rd.flatten().map(|e| walk(&e.path(), depth + 1)).sum()
        })
    }
    walk(dir, 0)
}

/// See [`ZkConfig::to_conf_text`].
pub(super) fn conf_text(cfg: &ZkConfig) -> String {
    let tick_ms = cfg.tick_time.as_millis();
    let extra_num = |key: &str, default: i128| {
        cfg.extra_value(key)
            .and_then(|v| v.parse::<i128>().ok())
            .unwrap_or(default)
    };
    let data = snap_dir(&cfg.data_dir);
    let log = snap_dir(cfg.data_log_dir.as_deref().unwrap_or(&cfg.data_dir));
    let me = cfg.me();
    let ports = |f: fn(&ServerAddr) -> &HostPort| {
        me.map(|s| {
            s.endpoints
                .iter()
                .map(|a| f(a).port().to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .unwrap_or_default()
    };
    let mut out = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(out, "{k}={v}");
    };
    line(
        "clientPort",
        cfg.client_addr
            .map_or("-1".to_string(), |a| a.port().to_string()),
    );
    line("secureClientPort", "-1".into());
    line("dataDir", data.display().to_string());
    line("dataDirSize", dir_size(&data).to_string());
    line("dataLogDir", log.display().to_string());
    line("dataLogSize", dir_size(&log).to_string());
    line("tickTime", tick_ms.to_string());
    line(
        "maxClientCnxns",
        extra_num("maxClientCnxns", 60).to_string(),
    );
    line(
        "minSessionTimeout",
        extra_num("minSessionTimeout", tick_ms as i128 * 2).to_string(),
    );
    line(
        "maxSessionTimeout",
        extra_num("maxSessionTimeout", tick_ms as i128 * 20).to_string(),
    );
    line(
        "clientPortListenBacklog",
        extra_num("clientPortListenBacklog", -1).to_string(),
    );
    line("serverId", cfg.my_sid.to_string());
    line("initLimit", cfg.init_limit.to_string());
    line("syncLimit", cfg.sync_limit.to_string());
    line("electionAlg", "3".into());
    line("electionPort", ports(|a| &a.election));
    line("quorumPort", ports(|a| &a.quorum));
    // ZooKeeper prints the LearnerType ordinal: 0 participant, 1 observer.
    line(
        "peerType",
        match cfg.learner_type() {
            LearnerType::Participant => "0",
            LearnerType::Observer => "1",
        }
        .into(),
    );
    // "membership: " keeps ZooKeeper's trailing space.
    out.push_str("membership: \n");
    out.push_str(&config_text(cfg));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_strings_follow_java() {
        assert_eq!(delimited("::1"), "[0:0:0:0:0:0:0:1]");
        assert_eq!(delimited("fe80::a:1"), "[fe80:0:0:0:0:0:a:1]");
        assert_eq!(delimited("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(delimited("127.0.0.1"), "127.0.0.1");
        assert_eq!(delimited("zk1.example"), "zk1.example");
        assert_eq!(delimited("0.0.0.0"), "0.0.0.0");
    }
}
