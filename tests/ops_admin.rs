//! The operator's view of running peers (issue 16 items 1-3): Prometheus
//! `GET /metrics` scraped from a three-peer ensemble started through
//! `PeerBuilder` (which starts the admin side, not the peer) and checked
//! with `promtool`; ZooKeeper's `mntr` keys on leader and followers; and
//! `4lw.commands.whitelist`, byte for byte as Java ZooKeeper 3.8.0 answers.
//!
//! Ports 17000..=17499: ensemble client 17001-3, quorum 17101-3, election
//! 17201-3, metrics 17301-3; whitelist peer 17011/17111/17211; Java 17401
//! (+100, +200: 17501, 17601 are its quorum/election ports).

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use peer::{mntr, poll, write_ensemble, Ports};
use zkfle::{PeerBuilder, PeerHandle};

const PROM: &str =
    "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

fn metrics_port(sid: i64) -> u16 {
    17300 + sid as u16
}

/// One HTTP/1.1 GET; returns (status line, headers, body).
fn http_get(port: u16, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}

/// Sample lines (`name{labels} value`) of a scrape, by series.
fn samples(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `promtool check metrics` on `body`: `Ok(lint lines)` when it parses
/// (exit 0, or 3 = lint problems only), `Err` on a parse error. `None`
/// when promtool is not installed (a failure under CI).
fn promtool(body: &str) -> Option<Result<Vec<String>, String>> {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("promtool is required under CI (apt-get install -y prometheus): {e}");
            }
            eprintln!("SKIPPED promtool check: promtool not installed ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(match out.status.code() {
        Some(0) | Some(3) => Ok(text.lines().map(str::to_string).collect()),
        _ => Err(text),
    })
}

/// The lint warnings expected on ZooKeeper's own names, kept on purpose
/// so ZooKeeper dashboards keep working: simpleclient 0.9 names the
/// counter `looking_count`, without `_total`.
const EXPECTED_LINT: [&str; 2] = [
    "looking_count counter metrics should have \"_total\" suffix",
    "looking_count non-histogram and non-summary metrics should not have \"_count\" suffix",
];

fn start_ensemble(dir: &Path, ports: Ports) -> Vec<PeerHandle> {
    let cfgs = write_ensemble(dir, 3, ports, "tickTime=200\n");
    cfgs.iter()
        .enumerate()
        .map(|(i, cfg)| {
            let sid = i as i64 + 1;
            let mut text = std::fs::read_to_string(cfg).unwrap();
            text.push_str(&format!(
                "{PROM}\nmetricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={}\n",
                metrics_port(sid)
            ));
            std::fs::write(cfg, text).unwrap();
            PeerBuilder::from_config_file(cfg)
                .start()
                .unwrap_or_else(|e| panic!("sid {sid}: {e}"))
        })
        .collect()
}

#[test]
fn metrics_are_scraped_with_zookeepers_names_and_pass_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 17000 };
    let peers = start_ensemble(dir.path(), ports);
    let (leader, _) = peer::await_agreement(ports, &[1, 2, 3], Duration::from_secs(30));

    // The leader reports both followers synced once it sent them UPTODATE.
    let body = poll(
        Duration::from_secs(10),
        "the leader's scrape to show 2 synced followers",
        || {
            let (_, _, body) = http_get(metrics_port(leader), "/metrics");
            match samples(&body).get("synced_followers").map(String::as_str) {
                Some("2") => Ok(body),
                other => Err(format!("synced_followers {other:?}")),
            }
        },
    );
    let (status, headers, _) = http_get(metrics_port(leader), "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    println!("--- scrape of the leader, sid {leader} ---\n{body}--- end ---");

    // ZooKeeper's families, names and types.
    for (family, kind) in [
        ("looking_count", "counter"),
        ("election_time", "summary"),
        ("unavailable_time", "summary"),
        ("leader_unavailable_time", "summary"),
        ("quorum_size", "gauge"),
        ("uptime", "gauge"),
        ("learners", "gauge"),
        ("synced_followers", "gauge"),
        ("synced_non_voting_followers", "gauge"),
        ("synced_observers", "gauge"),
        ("pending_syncs", "gauge"),
        ("leader_uptime", "gauge"),
    ] {
        assert!(
            body.contains(&format!("\n# TYPE {family} {kind}\n"))
                || body.starts_with(&format!("# TYPE {family} {kind}\n")),
            "no {kind} {family} in\n{body}"
        );
    }
    let s = samples(&body);
    assert_eq!(s["looking_count"], "1");
    assert_eq!(s["quorum_size"], "3");
    assert_eq!(s["learners"], "2");
    assert_eq!(s["synced_observers"], "0");
    assert_eq!(s["election_time_count"], "1");
    assert_eq!(s["unavailable_time_count"], "1");
    assert_eq!(s["leader_unavailable_time_count"], "1");
    assert!(s["election_time{quantile=\"0.5\",}"].parse::<u64>().is_ok());
    // zkfle's own.
    assert_eq!(s["zkfle_connected_peers"], "2");
    assert_eq!(s["zkfle_serving"], "1");
    assert_eq!(s["zkfle_server_state{state=\"leader\"}"], "1");
    assert_eq!(s["zkfle_leader_sid"], leader.to_string());
    for sid in [1, 2, 3].into_iter().filter(|&x| x != leader) {
        assert_eq!(s[&format!("zkfle_election_link_up{{sid=\"{sid}\"}}")], "1");
    }
    let decisions: u64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("zkfle_election_decisions_total{"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(decisions, 1, "one decision, counted under its rule");
    assert!(
        s["zkfle_notifications_received_total"]
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // A follower: election metrics, no leader gauges.
    let follower = [1, 2, 3].into_iter().find(|&x| x != leader).unwrap();
    let (_, _, fbody) = http_get(metrics_port(follower), "/metrics");
    let f = samples(&fbody);
    assert_eq!(f["election_time_count"], "1");
    assert_eq!(f["leader_unavailable_time_count"], "0");
    assert_eq!(f["zkfle_server_state{state=\"follower\"}"], "1");
    assert!(!f.contains_key("learners"), "{fbody}");

    // Other paths and methods.
    let (status, _, _) = http_get(metrics_port(leader), "/");
    assert_eq!(status, "HTTP/1.1 404 Not Found");

    for (who, text) in [("leader", &body), ("follower", &fbody)] {
        if let Some(r) = promtool(text) {
            let lint = r.unwrap_or_else(|e| panic!("promtool rejects the {who}'s scrape: {e}"));
            for l in &lint {
                assert!(
                    EXPECTED_LINT.contains(&l.as_str()),
                    "unexpected promtool lint on the {who}'s scrape: {l}"
                );
            }
            println!(
                "promtool on the {who}'s scrape: {} lint line(s): {lint:?}",
                lint.len()
            );
        }
    }

    // mntr carries ZooKeeper's keys beside zkfle's.
    let m = mntr(ports.client_addr(leader)).unwrap();
    for (k, v) in [
        ("zk_server_state", "leader"),
        ("zk_quorum_size", "3"),
        ("zk_looking_count", "1"),
        ("zk_learners", "2"),
        ("zk_synced_followers", "2"),
        ("zk_synced_non_voting_followers", "0"),
        ("zk_synced_observers", "0"),
        ("zk_pending_syncs", "0"),
        ("zk_cnt_election_time", "1"),
    ] {
        assert_eq!(m.get(k).map(String::as_str), Some(v), "{k} in {m:?}");
    }
    for k in ["zk_uptime", "zk_leader_uptime", "zk_avg_election_time"] {
        assert!(m.contains_key(k), "{k} in {m:?}");
    }
    let fm = mntr(ports.client_addr(follower)).unwrap();
    assert_eq!(fm["zk_server_state"], "follower");
    assert!(
        !fm.contains_key("zk_learners"),
        "leader-only key on a follower"
    );

    for p in &peers {
        p.shutdown();
    }
    assert!(
        TcpStream::connect(("127.0.0.1", metrics_port(leader))).is_err(),
        "the metrics port closes with the peer"
    );
}

/// What Java ZooKeeper 3.8.0 (Debian's 3.8.0-11+deb12u2) answered with
/// `4lw.commands.whitelist=ruok, mntr ,conf`, captured byte for byte
/// (`None` = it closed the connection without a byte).
const JAVA_38_ANSWERS: [(&[u8; 4], Option<&[u8]>); 8] = [
    (
        b"stat",
        Some(b"stat is not executed because it is not in the whitelist.\n"),
    ),
    (
        b"envi",
        Some(b"envi is not executed because it is not in the whitelist.\n"),
    ),
    (
        b"cons",
        Some(b"cons is not executed because it is not in the whitelist.\n"),
    ),
    (
        b"wchs",
        Some(b"wchs is not executed because it is not in the whitelist.\n"),
    ),
    (
        b"isro",
        Some(b"isro is not executed because it is not in the whitelist.\n"),
    ),
    (
        b"hash",
        Some(b"hash is not executed because it is not in the whitelist.\n"),
    ),
    (b"ruok", Some(b"imok")),
    (b"xyzw", None),
];

fn raw_ask(addr: SocketAddr, word: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(word).unwrap();
    let mut out = Vec::new();
    // A reset after the answer still leaves the answer read.
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn whitelist_answers_byte_for_byte_as_java_3_8() {
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports { base: 17010 };
    let cfgs = write_ensemble(
        dir.path(),
        1,
        ports,
        "4lw.commands.whitelist=ruok, mntr ,conf\n",
    );
    let peer = PeerBuilder::from_config_file(&cfgs[0]).start().unwrap();
    let addr = ports.client_addr(1);
    peer::await_up(ports, 1, Duration::from_secs(10));
    for (word, want) in JAVA_38_ANSWERS {
        assert_eq!(
            raw_ask(addr, word),
            want.unwrap_or(b"").to_vec(),
            "zkfle's answer to {}",
            String::from_utf8_lossy(word)
        );
    }
    // srvr is never off (zkServer.sh status needs it).
    peer.wait_for(|s| s.role.is_leader(), Duration::from_secs(10))
        .expect("a one-voter ensemble elects itself");
    assert!(String::from_utf8(raw_ask(addr, b"srvr"))
        .unwrap()
        .contains("Mode: leader"));
    // The telnet close sequence is a known word too.
    assert_eq!(
        raw_ask(addr, &[0xff, 0xf4, 0xff, 0xfd]),
        b"telnet close is not executed because it is not in the whitelist.\n"
    );

    // The same words against a live Java 3.8 server, when there is one.
    if java::java_available() {
        let zk = java::JavaEnsemble::new(17400, 1)
            .with_env("ZK_EXTRA_CFG", "4lw.commands.whitelist=ruok, mntr ,conf");
        zk.cmd(&["start", "1"], &[]);
        let java_addr = SocketAddr::from(([127, 0, 0, 1], 17401));
        poll(
            Duration::from_secs(60),
            "Java's client port",
            || match TcpStream::connect(java_addr) {
                Ok(_) if raw_ask(java_addr, b"ruok") == b"imok" => Ok(()),
                _ => Err("not yet".to_string()),
            },
        );
        for (word, _) in JAVA_38_ANSWERS {
            assert_eq!(
                raw_ask(addr, word),
                raw_ask(java_addr, word),
                "zkfle and Java answer {} differently",
                String::from_utf8_lossy(word)
            );
        }
        zk.cmd(&["stop"], &[]);
    }
    peer.shutdown();
}
