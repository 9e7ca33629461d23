//! `zoo.cfg` + `myid` as ZooKeeper 3.8 reads them: every syntax, every
//! error (file, line and key in the message), myid rules, hierarchical
//! quorums, the committed-config text against captured bytes, the `conf`
//! answer, the samples in `conf/`, and a never-panics property.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use zkfle::config::{
    ConfigError, LearnerType, MyIdProblem, PortKind, Problem, QuorumVerifier, Resolver, ZkConfig,
};
use zkfle::net::{FakeResolver, Host};

/// A resolver with a fixed table, so no test depends on DNS.
#[derive(Debug)]
struct Table;

impl Resolver for Table {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        let ip: IpAddr = match host {
            "localhost" => Ipv4Addr::LOCALHOST.into(),
            "zk1.example" => Ipv4Addr::new(10, 0, 0, 1).into(),
            "zk2.example" => Ipv4Addr::new(10, 0, 0, 2).into(),
            "zk3.example" => Ipv4Addr::new(10, 0, 0, 3).into(),
            "v6.example" => Ipv6Addr::LOCALHOST.into(),
            _ => return Err(std::io::ErrorKind::NotFound.into()),
        };
        Ok(vec![SocketAddr::new(ip, port)])
    }
}

/// Line 7 is `server.2`, as in the task's example message.
const BASE: [&str; 8] = [
    "tickTime=2000",
    "initLimit=10",
    "syncLimit=5",
    "dataDir=/tmp/zkfle-config-test-nonexistent",
    "clientPort=2181",
    "server.1=127.0.0.1:2888:3888",
    "server.2=127.0.0.1:2889:3889",
    "server.3=127.0.0.1:2890:3890",
];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn parse_as(text: &str, sid: i64) -> Result<ZkConfig, ConfigError> {
    ZkConfig::parse_with_resolver(text, Path::new("zoo.cfg"), Some(sid), Arc::new(Table))
}

fn parse(text: &str) -> Result<ZkConfig, ConfigError> {
    parse_as(text, 1)
}

/// BASE with line `n` (1-based) replaced; `None` removes it.
fn base_with(n: usize, line: Option<&str>) -> String {
    let mut v: Vec<String> = BASE.iter().map(|s| s.to_string()).collect();
    match line {
        Some(l) => v[n - 1] = l.to_string(),
        None => v[n - 1] = "# removed".to_string(),
    }
    v.join("\n")
}

/// BASE plus extra lines at the end (line 9 onwards).
fn base_plus(extra: &[&str]) -> String {
    let mut v: Vec<&str> = BASE.to_vec();
    v.extend_from_slice(extra);
    v.join("\n")
}

fn ok(text: &str) -> ZkConfig {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("config rejected: {e}\n--- text ---\n{text}"),
    }
}

fn err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(_) => panic!("config accepted but should not be:\n{text}"),
        Err(e) => e,
    }
}

/// Asserts the error is about `line`/`key` and reads exactly
/// `zoo.cfg:<line>: <key>: <tail>`.
fn assert_entry_err(e: &ConfigError, line: usize, key: &str, tail: &str) {
    assert_eq!(e.line(), Some(line), "line of {e}");
    assert_eq!(e.key(), Some(key), "key of {e}");
    assert_eq!(e.to_string(), format!("zoo.cfg:{line}: {key}: {tail}"));
}

// ---------------------------------------------------------------- syntax

#[test]
fn three_four_syntax_and_defaults() {
    let c = ok(&BASE.join("\n"));
    assert_eq!(c.my_sid, 1);
    assert_eq!(c.tick_time, Duration::from_millis(2000));
    assert_eq!((c.init_limit, c.sync_limit), (10, 5));
    assert_eq!(
        c.data_dir,
        PathBuf::from("/tmp/zkfle-config-test-nonexistent")
    );
    assert_eq!(c.client_addr, Some(sa("0.0.0.0:2181")));
    assert_eq!(c.cnx_timeout, Duration::from_millis(5000));
    assert_eq!(c.handshake_timeout, Duration::from_millis(10_000));
    assert_eq!(c.election_port_bind_retry, 3);
    assert!(!c.listen_on_all_ips && !c.multi_address_enabled);
    assert_eq!(c.min_notification_interval, Duration::from_millis(200));
    assert_eq!(c.max_notification_interval, Duration::from_millis(60_000));
    assert_eq!(c.verifier, QuorumVerifier::majority([1, 2, 3]));
    assert_eq!(c.servers.len(), 3);
    let s2 = c.server(2).unwrap();
    assert_eq!(s2.quorum_addrs, vec![sa("127.0.0.1:2889")]);
    assert_eq!(s2.election_addrs, vec![sa("127.0.0.1:3889")]);
    assert_eq!(s2.learner_type, LearnerType::Participant);
    assert_eq!(s2.client_addr, None);
    assert_eq!(s2.host_text, "127.0.0.1");
    assert_eq!(c.me().unwrap().sid, 1);
    assert_eq!(c.learner_type(), LearnerType::Participant);
    assert_eq!(c.config_version, 0);
    assert!(c.extra.is_empty());
}

#[test]
fn server_spec_new_matches_a_parsed_plain_line() {
    let c = ok(&BASE.join("\n"));
    let built = zkfle::config::ServerSpec::new(
        2,
        sa("127.0.0.1:2889"),
        sa("127.0.0.1:3889"),
        LearnerType::Participant,
    );
    assert_eq!(c.server(2), Some(&built));
}

#[test]
fn tick_time_defaults_to_3000_like_zookeeper() {
    let c = ok(&base_with(1, None));
    assert_eq!(c.tick_time, Duration::from_millis(3000));
    assert_eq!(c.handshake_timeout, Duration::from_millis(15_000));
}

#[test]
fn three_eight_syntax_with_client_addresses() {
    let c = ok(&base_plus(&[
        "server.4=127.0.0.1:2891:3891:participant;127.0.0.1:2184",
        "server.5=127.0.0.1:2892:3892:Observer;2185",
        "server.6=localhost:2893:3893:observer;localhost:2186",
    ]));
    let s4 = c.server(4).unwrap();
    assert_eq!(s4.client_addr, Some(sa("127.0.0.1:2184")));
    assert_eq!(s4.client_host.as_deref(), Some("127.0.0.1"));
    let s5 = c.server(5).unwrap();
    assert_eq!(s5.learner_type, LearnerType::Observer);
    assert_eq!(s5.client_addr, Some(sa("0.0.0.0:2185")));
    assert_eq!(s5.client_host.as_deref(), Some("0.0.0.0"));
    let s6 = c.server(6).unwrap();
    assert_eq!(s6.quorum_addrs, vec![sa("127.0.0.1:2893")]);
    assert_eq!(s6.host_text, "localhost");
    assert_eq!(s6.client_host.as_deref(), Some("localhost"));
    // Observers do not vote.
    assert_eq!(c.verifier, QuorumVerifier::majority([1, 2, 3, 4]));
}

#[test]
fn own_line_client_address_wins_over_client_port() {
    let text = base_with(6, Some("server.1=127.0.0.1:2888:3888;127.0.0.1:2181"));
    let c = ok(&text);
    assert_eq!(c.client_addr, Some(sa("127.0.0.1:2181")));
    // Without clientPort at all the line's address is used.
    let text = text.replace("clientPort=2181", "# none");
    assert_eq!(ok(&text).client_addr, Some(sa("127.0.0.1:2181")));
}

#[test]
fn client_port_address_is_resolved() {
    let c = ok(&base_plus(&["clientPortAddress=localhost"]));
    assert_eq!(c.client_addr, Some(sa("127.0.0.1:2181")));
    let c = ok(&base_with(5, Some("clientPort=0")));
    assert_eq!(c.client_addr, None, "clientPort 0 means unset");
}

#[test]
fn multi_address_needs_multi_address_enabled_anywhere_in_the_file() {
    let line = "server.1=127.0.0.1:2888:3888|127.0.0.2:2888:3888";
    let e = err(&base_with(6, Some(line)));
    assert_entry_err(
        &e,
        6,
        "server.1",
        "several addresses given but multiAddress.enabled is not true",
    );
    // The switch may come after the server lines: properties are unordered.
    let c = ok(&format!(
        "{}\nmultiAddress.enabled=TRUE",
        base_with(6, Some(line))
    ));
    assert!(c.multi_address_enabled);
    let s1 = c.server(1).unwrap();
    assert_eq!(
        s1.quorum_addrs,
        vec![sa("127.0.0.1:2888"), sa("127.0.0.2:2888")]
    );
    assert_eq!(
        s1.election_addrs,
        vec![sa("127.0.0.1:3888"), sa("127.0.0.2:3888")]
    );
    assert_eq!(s1.hosts, vec!["127.0.0.1", "127.0.0.2"]);
}

#[test]
fn ipv6_in_brackets() {
    let c = ok(&base_plus(&[
        "server.4=[::1]:2891:3891",
        "server.5=[fe80::1]:2892:3892:observer;[::1]:2185",
        "server.6=v6.example:2893:3893",
    ]));
    assert_eq!(c.server(4).unwrap().quorum_addrs, vec![sa("[::1]:2891")]);
    assert_eq!(c.server(4).unwrap().host_text, "::1");
    assert_eq!(c.server(5).unwrap().client_addr, Some(sa("[::1]:2185")));
    assert_eq!(c.server(6).unwrap().quorum_addrs, vec![sa("[::1]:2893")]);
}

#[test]
fn host_names_are_kept_and_a_peer_name_need_not_resolve_yet() {
    let c = ok(&base_with(7, Some("server.2=zk2.example:2888:3888")));
    let s2 = c.server(2).unwrap();
    assert_eq!(s2.quorum_addrs, vec![sa("10.0.0.2:2888")]);
    assert_eq!(s2.endpoints[0].quorum.to_string(), "zk2.example:2888");
    assert_eq!(s2.endpoints[0].election.to_string(), "zk2.example:3888");
    // A peer's name that does not resolve (yet) is no error: it is looked
    // up at every connection. The snapshot simply lacks it.
    let c = ok(&base_with(
        7,
        Some("server.2=nowhere.invalid:2888:3888;nowhere.invalid:2182"),
    ));
    let s2 = c.server(2).unwrap();
    assert!(s2.quorum_addrs.is_empty() && s2.election_addrs.is_empty());
    assert_eq!(
        s2.endpoints[0].election.host(),
        &Host::Name("nowhere.invalid".into())
    );
    assert_eq!(s2.client_addr, None);
    assert!(c
        .config_text()
        .contains("server.2=nowhere.invalid:2888:3888:participant;nowhere.invalid:2182\n"));
    // So is this server's own election address (resolved, with
    // electionPortBindRetry's retries, when it is bound).
    let c = ok(&base_with(6, Some("server.1=nowhere.invalid:2888:3888")));
    assert!(c.me().unwrap().election_addrs.is_empty());
    // Addresses bound once, without retries, must resolve now.
    let e = err(&base_plus(&["clientPortAddress=nowhere.invalid"]));
    assert_entry_err(
        &e,
        9,
        "clientPortAddress",
        "cannot resolve host \"nowhere.invalid\"",
    );
    let e = err(&base_with(
        6,
        Some("server.1=127.0.0.1:2888:3888;nowhere.invalid:2181"),
    ));
    assert_entry_err(&e, 6, "server.1", "cannot resolve host \"nowhere.invalid\"");
}

#[test]
fn hosts_that_could_never_resolve_name_the_line() {
    for (line, host) in [
        ("server.2=zk 2:2888:3888", "zk 2"),
        ("server.2=zk..2:2888:3888", "zk..2"),
        ("server.2=zk/2:2888:3888", "zk/2"),
        ("server.2=127.0.0.1:2889:3889;bad host:2182", "bad host"),
    ] {
        let e = err(&base_with(7, Some(line)));
        assert_entry_err(
            &e,
            7,
            "server.2",
            &format!("{host:?} is not an IP address or a host name"),
        );
    }
    let e = err(&base_plus(&["clientPortAddress=a b"]));
    assert_entry_err(
        &e,
        9,
        "clientPortAddress",
        "\"a b\" is not an IP address or a host name",
    );
}

#[test]
fn two_servers_on_one_name_and_port_clash_in_any_case() {
    let text = base_with(6, Some("server.1=zk1.example:2888:3888"));
    let e = err(&text.replace(
        "server.2=127.0.0.1:2889:3889",
        "server.2=ZK1.example:2888:3889",
    ));
    assert_entry_err(
        &e,
        7,
        "server.2",
        "quorum address ZK1.example:2888 is already used by server.1",
    );
}

#[test]
fn the_resolver_a_config_was_read_with_is_the_one_it_dials_with() {
    let fake = FakeResolver::new();
    fake.set("zk2.example", Ipv4Addr::new(10, 0, 0, 22).into());
    let text = base_with(7, Some("server.2=zk2.example:2888:3888"));
    let c =
        ZkConfig::parse_with_resolver(&text, Path::new("zoo.cfg"), Some(1), Arc::new(fake.clone()))
            .unwrap();
    assert_eq!(
        c.server(2).unwrap().quorum_addrs,
        vec![sa("10.0.0.22:2888")]
    );
    // The name moves: the configuration's resolver sees the new address.
    fake.set("zk2.example", Ipv4Addr::new(10, 0, 0, 23).into());
    let e = &c.server(2).unwrap().endpoints[0].election;
    assert_eq!(e.resolve(&*c.resolver).unwrap(), sa("10.0.0.23:3888"));
}

#[test]
fn system_resolver_prefers_ipv4_for_localhost() {
    let text = BASE.join("\n").replace("127.0.0.1", "localhost");
    let c = ZkConfig::parse(&text, Path::new("zoo.cfg"), Some(1)).unwrap();
    assert_eq!(
        c.server(3).unwrap().quorum_addrs,
        vec![sa("127.0.0.1:2890")]
    );
    // RFC 2606 reserves .invalid: it never resolves, and is kept.
    let c = ZkConfig::parse(
        &base_with(8, Some("server.3=zkfle-no-such-host.invalid:2890:3890")),
        Path::new("zoo.cfg"),
        Some(1),
    )
    .unwrap();
    assert!(c.server(3).unwrap().quorum_addrs.is_empty());
}

#[test]
fn system_property_keys_from_zoo_cfg() {
    let c = ok(&base_plus(&[
        "cnxTimeout=1500",
        "quorumCnxnTimeoutMs=700",
        "electionPortBindRetry=0x10",
        "quorumListenOnAllIPs=true",
        "fastleader.minNotificationInterval=50",
        "fastleader.maxNotificationInterval=0x3e8",
        "standaloneEnabled=false",
        "reconfigEnabled=false",
        "electionAlg=3",
        "peerType=participant",
        "dataLogDir=/tmp/zkfle-config-test-log",
    ]));
    assert_eq!(c.cnx_timeout, Duration::from_millis(1500));
    assert_eq!(c.handshake_timeout, Duration::from_millis(700));
    assert_eq!(c.election_port_bind_retry, 16);
    assert!(c.listen_on_all_ips);
    assert_eq!(c.min_notification_interval, Duration::from_millis(50));
    assert_eq!(c.max_notification_interval, Duration::from_millis(1000));
    assert!(!c.standalone_enabled && !c.reconfig_enabled);
    assert_eq!(c.peer_type, Some(LearnerType::Participant));
    assert_eq!(
        c.data_log_dir,
        Some(PathBuf::from("/tmp/zkfle-config-test-log"))
    );
}

#[test]
fn handshake_timeout_falls_back_to_tick_times_sync_limit() {
    for v in ["0", "-1"] {
        let c = ok(&base_plus(&[&format!("quorumCnxnTimeoutMs={v}")]));
        assert_eq!(c.handshake_timeout, Duration::from_millis(2000 * 5));
    }
}

#[test]
fn election_port_bind_retry_zero_is_forever_negative_is_default() {
    assert_eq!(
        ok(&base_plus(&["electionPortBindRetry=0"])).election_port_bind_retry,
        0
    );
    assert_eq!(
        ok(&base_plus(&["electionPortBindRetry=-4"])).election_port_bind_retry,
        3
    );
    assert_eq!(
        ok(&base_plus(&["electionPortBindRetry=7"])).election_port_bind_retry,
        7
    );
}

#[test]
fn unknown_and_accepted_keys_are_kept_in_extra_with_their_lines() {
    let c = ok(&base_plus(&[
        "metricsProvider.exportJvmInfo=false",
        "admin.enableServer=false",
        "kvAddress.1=127.0.0.1:7001",
        "someUnknownKey = x y ",
        "autopurge.purgeInterval=0",
    ]));
    assert_eq!(
        c.extra,
        vec![
            (
                9,
                "metricsProvider.exportJvmInfo".to_string(),
                "false".to_string()
            ),
            (10, "admin.enableServer".to_string(), "false".to_string()),
            (11, "kvAddress.1".to_string(), "127.0.0.1:7001".to_string()),
            (12, "someUnknownKey".to_string(), "x y".to_string()),
            (13, "autopurge.purgeInterval".to_string(), "0".to_string()),
        ]
    );
    assert_eq!(c.extra_value("kvAddress.1"), Some("127.0.0.1:7001"));
    assert_eq!(c.extra_value("kvAddress.2"), None);
}

#[test]
fn repeated_plain_key_last_one_wins() {
    let c = ok(&base_plus(&["tickTime=1000"]));
    assert_eq!(c.tick_time, Duration::from_millis(1000));
}

#[test]
fn properties_lexing_in_context() {
    let text = [
        "# comment",
        "! another comment",
        "   tickTime   2000",
        "initLimit : 10",
        "syncLimit=5   ",
        "dataDir=/tmp/zkfle\\u002dconfig-test",
        "clientPort\t2181",
        "server.1=127.0.0.1:\\",
        "     2888:3888",
        "server.2 = 127.0.0.1:2889:3889:\\",
        "  participant",
        "server.3=127.0.0.1:2890:3890",
    ]
    .join("\r\n");
    let c = ok(&text);
    assert_eq!(c.tick_time, Duration::from_millis(2000));
    assert_eq!(c.init_limit, 10);
    assert_eq!(c.data_dir, PathBuf::from("/tmp/zkfle-config-test"));
    assert_eq!(
        c.server(1).unwrap().quorum_addrs,
        vec![sa("127.0.0.1:2888")]
    );
    assert_eq!(c.server(2).unwrap().learner_type, LearnerType::Participant);
}

#[test]
fn peer_type_contradicting_the_server_line_follows_the_line() {
    // ZooKeeper warns and goes with the servers list; so does zkfle.
    let c = ok(&base_plus(&["peerType=observer"]));
    assert_eq!(c.peer_type, Some(LearnerType::Observer));
    assert_eq!(c.learner_type(), LearnerType::Participant);
    let c = parse_as(
        &base_plus(&["server.4=127.0.0.1:2891:3891:observer", "peerType=observer"]),
        4,
    )
    .unwrap();
    assert_eq!(c.learner_type(), LearnerType::Observer);
}

#[test]
fn version_line_is_hex() {
    let c = ok(&base_plus(&["version=100000000"]));
    assert_eq!(c.config_version, 0x1_0000_0000);
    assert!(c.config_text().ends_with("\nversion=100000000"));
}

// ---------------------------------------------------------------- errors

#[test]
fn election_port_out_of_range_message_as_specified() {
    let e = err(&base_with(7, Some("server.2=127.0.0.1:2889:70000")));
    assert_eq!(
        e.to_string(),
        "zoo.cfg:7: server.2: election port 70000 out of range"
    );
    assert_eq!(
        e.problem(),
        Some(&Problem::PortOutOfRange {
            kind: PortKind::Election,
            value: 70000
        })
    );
}

#[test]
fn server_line_errors_name_line_and_key() {
    let f = |v: &str| {
        "\"".to_string() + v + "\" is not host:quorumPort:electionPort[:participant|:observer] (several joined by '|') optionally followed by ;[clientHost:]clientPort"
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "server.2=127.0.0.1:0:3889",
            "quorum port 0 out of range".into(),
        ),
        (
            "server.2=127.0.0.1:-1:3889",
            "quorum port -1 out of range".into(),
        ),
        (
            "server.2=127.0.0.1:x:3889",
            "quorum port \"x\" is not a number".into(),
        ),
        (
            "server.2=127.0.0.1: 2889:3889",
            "quorum port \" 2889\" is not a number".into(),
        ),
        (
            "server.2=127.0.0.1:2889:3889;99999",
            "client port 99999 out of range".into(),
        ),
        ("server.2=127.0.0.1:2889", f("127.0.0.1:2889")),
        (
            "server.2=127.0.0.1:2889:3889:participant:x",
            f("127.0.0.1:2889:3889:participant:x"),
        ),
        (
            "server.2=127.0.0.1:2889:3889;a;b",
            f("127.0.0.1:2889:3889;a;b"),
        ),
        ("server.2=", f("")),
        (
            "server.2=127.0.0.1:2889:2889",
            "quorum and election port are both 2889".into(),
        ),
        (
            "server.2=127.0.0.1:2889:3889:leader",
            "unrecognised peer type \"leader\": use participant or observer".into(),
        ),
        (
            "server.2=[::1:2889:3889",
            "\"[::1:2889:3889\" starts with '[' but has no matching ']:'".into(),
        ),
        (
            "server.2=127.0.0.1:2888:3889",
            "quorum address 127.0.0.1:2888 is already used by server.1".into(),
        ),
        (
            "server.2=127.0.0.1:2889:3888",
            "election address 127.0.0.1:3888 is already used by server.1".into(),
        ),
        (
            "server.2=127.0.0.1:2889:3889:observer|127.0.0.2:2889:3889:observer",
            "several addresses given but multiAddress.enabled is not true".into(),
        ),
    ];
    for (line, tail) in cases {
        let e = err(&base_with(7, Some(line)));
        assert_entry_err(&e, 7, "server.2", &tail);
    }
    let e = err(&format!(
        "{}\nmultiAddress.enabled=true",
        base_with(
            7,
            Some("server.2=a.invalid:1:2:observer|127.0.0.2:2889:3889:participant")
        )
    ));
    assert_entry_err(
        &e,
        7,
        "server.2",
        "multiple addresses of one server must have the same role",
    );
}

#[test]
fn server_ids_must_be_numeric_non_negative_and_unique() {
    let e = err(&base_with(7, Some("server.x=127.0.0.1:2889:3889")));
    assert_entry_err(&e, 7, "server.x", "\"x\" is not a numeric id");
    let e = err(&base_with(7, Some("server.-2=127.0.0.1:2889:3889")));
    assert_entry_err(&e, 7, "server.-2", "server id -2 is negative");
    let e = err(&base_with(7, Some("server.1=127.0.0.1:2889:3889")));
    assert_entry_err(
        &e,
        7,
        "server.1",
        "server 1 is already configured on line 6",
    );
    let e = err(&base_with(7, Some("server.01=127.0.0.1:2889:3889")));
    assert_entry_err(
        &e,
        7,
        "server.01",
        "server 1 is already configured on line 6",
    );
}

#[test]
fn scalar_errors_name_line_and_key() {
    let cases: Vec<(usize, &str, &str, &str)> = vec![
        (1, "tickTime=abc", "tickTime", "\"abc\" is not an integer"),
        (1, "tickTime=0", "tickTime", "0 must be greater than 0"),
        (2, "initLimit=-1", "initLimit", "-1 must be greater than 0"),
        (
            3,
            "syncLimit=99999999999",
            "syncLimit",
            "99999999999 is out of range (-2147483648..=2147483647)",
        ),
        (4, "dataDir=", "dataDir", "empty value"),
        (
            5,
            "clientPort=70000",
            "clientPort",
            "client port 70000 out of range",
        ),
        (
            5,
            "clientPort=21 81",
            "clientPort",
            "\"21 81\" is not an integer",
        ),
    ];
    for (n, line, key, tail) in cases {
        let e = err(&base_with(n, Some(line)));
        assert_entry_err(&e, n, key, tail);
    }
    let extra: Vec<(&str, &str, &str)> = vec![
        (
            "standaloneEnabled=yes",
            "standaloneEnabled",
            "\"yes\" is not a boolean: choose true or false",
        ),
        (
            "quorumListenOnAllIPs=1",
            "quorumListenOnAllIPs",
            "\"1\" is not a boolean: choose true or false",
        ),
        (
            "zkfle.fastDecide=off",
            "zkfle.fastDecide",
            "\"off\" is not a boolean: choose true or false",
        ),
        (
            "electionAlg=1",
            "electionAlg",
            "only electionAlg 3 (fast leader election) exists, not 1",
        ),
        (
            "peerType=leader",
            "peerType",
            "unrecognised peer type \"leader\": use participant or observer",
        ),
        ("cnxTimeout=0", "cnxTimeout", "0 must be greater than 0"),
        (
            "electionPortBindRetry=three",
            "electionPortBindRetry",
            "\"three\" is not an integer",
        ),
        (
            "fastleader.minNotificationInterval=-5",
            "fastleader.minNotificationInterval",
            "-5 must be greater than 0",
        ),
        ("version=xyz", "version", "\"xyz\" is not an integer"),
        ("bad\\u12=1", "bad\\u12", "malformed \\uXXXX escape"),
        ("x=\\uZZZZ", "x", "malformed \\uXXXX escape"),
    ];
    for (line, key, tail) in extra {
        let e = err(&base_plus(&[line]));
        assert_entry_err(&e, 9, key, tail);
    }
}

#[test]
fn client_port_address_without_client_port() {
    let text = base_with(5, Some("clientPortAddress=127.0.0.1"));
    let e = err(&text);
    assert_entry_err(
        &e,
        5,
        "clientPortAddress",
        "clientPortAddress is set but clientPort is not",
    );
}

#[test]
fn client_address_must_agree_with_client_port() {
    let e = err(&base_with(
        6,
        Some("server.1=127.0.0.1:2888:3888;127.0.0.1:2191"),
    ));
    assert_entry_err(
        &e,
        6,
        "server.1",
        "client address 127.0.0.1:2191 differs from clientPort/clientPortAddress 0.0.0.0:2181",
    );
    let e = err(&base_plus(&[
        "clientPortAddress=127.0.0.2",
        "server.1=127.0.0.1:2888:3888;127.0.0.1:2181",
    ]));
    // server.1 is repeated here: that error comes first, on line 10.
    assert_eq!(e.line(), Some(10));
    let text = base_with(6, Some("server.1=127.0.0.1:2888:3888;127.0.0.1:2181"))
        + "\nclientPortAddress=127.0.0.2";
    let e = err(&text);
    assert_entry_err(
        &e,
        6,
        "server.1",
        "client address 127.0.0.1:2181 differs from clientPort/clientPortAddress 127.0.0.2:2181",
    );
}

#[test]
fn whole_file_errors_name_the_file() {
    let cases: Vec<(String, &str)> = vec![
        (base_with(4, None), "zoo.cfg: dataDir is not set"),
        (base_with(2, None), "zoo.cfg: initLimit is not set"),
        (base_with(3, None), "zoo.cfg: syncLimit is not set"),
        (
            BASE[..5].join("\n"),
            "zoo.cfg: no server.N lines: zkfle only runs as a member of an ensemble",
        ),
        (
            BASE[..5].join("\n") + "\nserver.1=127.0.0.1:2888:3888:observer",
            "zoo.cfg: observers without participants is an invalid configuration",
        ),
        (
            BASE[..6].join("\n") + "\nserver.2=127.0.0.1:2889:3889:observer",
            "zoo.cfg: observers without a quorum (one participant, standaloneEnabled=true) is an invalid configuration",
        ),
    ];
    for (text, msg) in cases {
        assert_eq!(err(&text).to_string(), msg);
    }
    // A single participant is a (one-voter) ensemble; with observers only
    // when standaloneEnabled=false, as in ZooKeeper.
    ok(&BASE[..6].join("\n"));
    ok(&(BASE[..6].join("\n")
        + "\nserver.2=127.0.0.1:2889:3889:observer\nstandaloneEnabled=false"));
}

#[test]
fn my_id_must_be_listed() {
    let e = parse_as(&BASE.join("\n"), 9).unwrap_err();
    assert_eq!(
        e.to_string(),
        "zoo.cfg: my id 9 (from --myid) is not among the server.N lines (configured: 1, 2, 3)"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn endless_files_are_refused_not_read_forever() {
    let e = ZkConfig::load(Path::new("/dev/zero"), Some(1)).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/dev/zero: cannot read: larger than"),
        "{e}"
    );
}

#[test]
fn errors_never_come_without_the_file_name() {
    let e = ZkConfig::load(Path::new("/nonexistent/zkfle/zoo.cfg"), Some(1)).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/zkfle/zoo.cfg: cannot read: "),
        "{e}"
    );
}

// ---------------------------------------------------------------- dynamic file

/// A zoo.cfg as ZooKeeper rewrites it with reconfig enabled: scalars in
/// zoo.cfg, quorum lines in `zoo.cfg.dynamic.<hex version>`.
fn dynamic_setup(dynamic: &str) -> (tempfile::TempDir, PathBuf, String) {
    let d = tempfile::tempdir().unwrap();
    let dyn_path = d.path().join("zoo.cfg.dynamic.100000000");
    std::fs::write(&dyn_path, dynamic).unwrap();
    let text = format!(
        "{}\ndynamicConfigFile={}",
        BASE[..5].join("\n"),
        dyn_path.display()
    );
    (d, dyn_path, text)
}

#[test]
fn dynamic_config_file_holds_the_quorum_lines() {
    let (_d, _p, text) = dynamic_setup(
        "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
         server.2=127.0.0.1:2889:3889:participant\nserver.3=127.0.0.1:2890:3890:participant\n",
    );
    let c = ok(&text);
    assert_eq!(c.verifier, QuorumVerifier::majority([1, 2, 3]));
    assert_eq!(c.config_version, 0x1_0000_0000);
    assert_eq!(c.client_addr, Some(sa("0.0.0.0:2181")));
    assert_eq!(
        c.config_text(),
        "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
         server.2=127.0.0.1:2889:3889:participant\n\
         server.3=127.0.0.1:2890:3890:participant\n\
         version=100000000"
    );
}

#[test]
fn dynamic_config_file_errors_name_the_right_file() {
    let (_d, p, text) =
        dynamic_setup("server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:70000\n");
    let e = err(&text);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:2: server.2: election port 70000 out of range",
            p.display()
        )
    );
    assert_eq!(e.path(), p.as_path());
    let (_d, p, text) = dynamic_setup("server.1=127.0.0.1:2888:3888\nversion=100000000\n");
    assert_eq!(
        err(&text).to_string(),
        format!("{}:2: version: a dynamic config file must not contain version; the version is the file name's suffix", p.display())
    );
    let (_d, p, text) = dynamic_setup("server.1=127.0.0.1:2888:3888\ntickTime=2000\n");
    assert_eq!(
        err(&text).to_string(),
        format!("{}:2: tickTime: not allowed in a dynamic config file (only server.N, group.N and weight.N lines)", p.display())
    );
    let (_d, p, text) = dynamic_setup("server.1=127.0.0.1:2888:3888\n");
    let e = err(&format!("{text}\nserver.2=127.0.0.1:2889:3889"));
    assert_entry_err(
        &e,
        7,
        "server.2",
        &format!(
            "must be in the dynamic config file {} when dynamicConfigFile is set",
            p.display()
        ),
    );
    let e = err(&(BASE[..5].join("\n") + "\ndynamicConfigFile=/nonexistent/zkfle/zoo.cfg.dynamic"));
    assert_eq!(e.line(), Some(6));
    assert!(
        e.to_string().starts_with(
            "zoo.cfg:6: dynamicConfigFile: cannot read /nonexistent/zkfle/zoo.cfg.dynamic: "
        ),
        "{e}"
    );
}

// ---------------------------------------------------------------- warnings

/// Collects log records so warnings can be asserted.
struct Capture;

static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

impl log::Log for Capture {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            LOGGED.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

#[test]
fn unknown_keys_are_warned_once_with_file_line_and_key() {
    static CAPTURE: Capture = Capture;
    let _ = log::set_logger(&CAPTURE);
    log::set_max_level(log::LevelFilter::Warn);
    let text = base_plus(&[
        "zkfleTestUnknownKey=1",
        "admin.enableServer=false",
        "oraclePath=/var/zk/oracle",
    ]);
    ZkConfig::parse_with_resolver(&text, Path::new("warn-test.cfg"), Some(1), Arc::new(Table))
        .unwrap();
    let logged = LOGGED.lock().unwrap().clone();
    let mine: Vec<&String> = logged
        .iter()
        .filter(|l| l.starts_with("warn-test.cfg"))
        .collect();
    let unknown: Vec<&&String> = mine
        .iter()
        .filter(|l| l.contains("zkfleTestUnknownKey"))
        .collect();
    assert_eq!(unknown.len(), 1, "{mine:?}");
    assert_eq!(
        unknown[0].as_str(),
        "warn-test.cfg:9: unknown key zkfleTestUnknownKey: ignored"
    );
    assert!(
        !mine.iter().any(|l| l.contains("admin.enableServer")),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|l| l.starts_with("warn-test.cfg:11: oraclePath: zkfle does not implement")),
        "{mine:?}"
    );
}

// ---------------------------------------------------------------- myid

fn with_myid(contents: Option<&[u8]>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    if let Some(c) = contents {
        std::fs::write(dir.path().join("myid"), c).unwrap();
    }
    let text = base_with(4, Some(&format!("dataDir={}", dir.path().display())));
    (dir, text)
}

fn parse_myid(text: &str) -> Result<ZkConfig, ConfigError> {
    ZkConfig::parse_with_resolver(text, Path::new("zoo.cfg"), None, Arc::new(Table))
}

#[test]
fn myid_first_line_is_the_id() {
    for (contents, sid) in [
        (&b"2\n"[..], 2),
        (b"3", 3),
        (b"  1 \r\nignored\n", 1),
        (b"+2\n", 2),
    ] {
        let (_d, text) = with_myid(Some(contents));
        assert_eq!(parse_myid(&text).unwrap().my_sid, sid, "{contents:?}");
    }
}

#[test]
fn myid_errors_name_config_line_and_myid_file() {
    for (contents, want) in [
        (Some(&b"abc\n"[..]), "first line \"abc\" is not a server id"),
        (Some(b""), "first line \"\" is not a server id"),
        (Some(b"\n2\n"), "first line \"\" is not a server id"),
        (Some(b"-3\n"), "server id -3 is negative"),
        (Some(b"1 2\n"), "first line \"1 2\" is not a server id"),
        (
            None,
            "is missing (write this server's id into it, or pass --myid)",
        ),
    ] {
        let (d, text) = with_myid(contents);
        let e = parse_myid(&text).unwrap_err();
        let myid = d.path().join("myid");
        assert_eq!(
            e.to_string(),
            format!("zoo.cfg:4: dataDir: myid file {}: {want}", myid.display())
        );
        assert_eq!(e.line(), Some(4));
        if contents.is_none() {
            assert!(matches!(
                e,
                ConfigError::MyId {
                    problem: MyIdProblem::Missing,
                    ..
                }
            ));
        }
    }
}

#[test]
fn myid_not_listed_names_the_file_it_came_from() {
    let (d, text) = with_myid(Some(b"7\n"));
    let e = parse_myid(&text).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "zoo.cfg: my id 7 (from {}) is not among the server.N lines (configured: 1, 2, 3)",
            d.path().join("myid").display()
        )
    );
}

#[test]
fn explicit_sid_skips_the_myid_file() {
    let (_d, text) = with_myid(Some(b"garbage"));
    let c = ZkConfig::parse_with_resolver(&text, Path::new("zoo.cfg"), Some(3), Arc::new(Table))
        .unwrap();
    assert_eq!(c.my_sid, 3);
}

#[test]
fn load_reads_file_and_myid() {
    let (d, text) = with_myid(Some(b"2\n"));
    let path = d.path().join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    let c = ZkConfig::load(&path, None).unwrap();
    assert_eq!(c.my_sid, 2);
    assert_eq!(c.path, path);
    // Java's Properties.load(InputStream) reads ISO-8859-1: one char per
    // byte, so UTF-8 "é" is two chars there and here, and any byte is fine.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"\n# caf\xe9\nnote=\xe9\nutf8=caf\xc3\xa9\n");
    std::fs::write(&path, bytes).unwrap();
    let c = ZkConfig::load(&path, None).unwrap();
    assert_eq!(c.extra_value("note"), Some("\u{e9}"));
    assert_eq!(c.extra_value("utf8"), Some("caf\u{c3}\u{a9}"));
}

// ---------------------------------------------------------------- hierarchical

/// ZooKeeper's FLEZeroWeightTest layout: 9 servers in 3 groups, sids 3..=8
/// weigh 0.
fn zero_weight_config() -> String {
    let mut v = vec![
        "tickTime=2000".to_string(),
        "initLimit=10".into(),
        "syncLimit=5".into(),
        "dataDir=/tmp/zkfle-config-test-nonexistent".into(),
    ];
    for sid in 1..=9 {
        v.push(format!(
            "server.{sid}=127.0.0.1:{}:{}",
            2880 + sid,
            3880 + sid
        ));
    }
    v.push("group.1=1:2:3".into());
    v.push("group.2=4:5:6".into());
    v.push("group.3=7:8:9".into());
    for sid in 3..=8 {
        v.push(format!("weight.{sid}=0"));
    }
    v.join("\n")
}

#[test]
fn hierarchical_config_builds_the_verifier() {
    let c = ok(&zero_weight_config());
    let QuorumVerifier::Hierarchical { groups, weights } = &c.verifier else {
        panic!("expected a hierarchical verifier, got {:?}", c.verifier);
    };
    assert_eq!(groups.len(), 3);
    assert_eq!(
        groups[&2].iter().copied().collect::<Vec<_>>(),
        vec![4, 5, 6]
    );
    assert_eq!(weights.len(), 9, "unweighted participants weigh 1");
    assert_eq!(weights[&1], 1);
    assert_eq!(weights[&5], 0);
    // Zero-weight voters vote but never make a quorum.
    assert!(c.verifier.is_voter(5));
    assert_eq!(c.verifier.weight(5), 0);
    assert!(!c.verifier.contains_quorum([3, 4, 5, 6, 7, 8]));
    assert!(!c.verifier.contains_quorum([1, 2]));
    assert!(c.verifier.contains_quorum([1, 2, 9]));
    // Group 1 weighs 2 (sids 1 and 2): one of them is not a majority.
    assert!(!c.verifier.contains_quorum([1, 3, 9]));
    // Group 2 weighs 0 and does not count: 2 of the 2 live groups suffice.
    assert!(c.verifier.contains_quorum([1, 2, 9, 4]));
    assert_eq!(c.verifier.quorum_size(), 3);
}

#[test]
fn hierarchical_majority_of_groups() {
    let text = [
        &BASE[..5],
        &[
            "server.1=127.0.0.1:2881:3881",
            "server.2=127.0.0.1:2882:3882",
            "server.3=127.0.0.1:2883:3883",
            "server.4=127.0.0.1:2884:3884",
            "server.5=127.0.0.1:2885:3885",
            "server.6=127.0.0.1:2886:3886",
            "server.7=127.0.0.1:2887:3887:observer",
            "group.1=1:2",
            "group.2=3:4",
            "group.3=5:6",
            "weight.1=3",
        ],
    ]
    .concat()
    .join("\n");
    let c = ok(&text);
    let v = &c.verifier;
    assert!(!v.is_voter(7), "observers are not voters");
    // Group 1 weighs 4: sid 1 alone (3) is a majority of it, sid 2 is not.
    assert!(v.contains_quorum([1, 3, 4]));
    assert!(!v.contains_quorum([2, 3, 4]));
    assert!(
        !v.contains_quorum([3, 4, 5]),
        "two groups need full majorities"
    );
    assert!(v.contains_quorum([3, 4, 5, 6]));
    assert!(!v.contains_quorum([1, 2, 3, 5]));
    assert_eq!(v.quorum_size(), 3);
    assert!(c.config_text().contains(
        "server.7=127.0.0.1:2887:3887:observer\ngroup.1=1:2\ngroup.2=3:4\ngroup.3=5:6\nweight.1=3\nweight.2=1\n"
    ));
}

#[test]
fn hierarchical_errors() {
    let head = [
        &BASE[..5],
        &[
            "server.1=127.0.0.1:2881:3881",
            "server.2=127.0.0.1:2882:3882",
            "server.3=127.0.0.1:2883:3883",
            "server.4=127.0.0.1:2884:3884:observer",
        ],
    ]
    .concat()
    .join("\n");
    // Lines 10.. follow.
    let cases: Vec<(Vec<&str>, usize, &str, &str)> = vec![
        (vec!["group.1=1:2"], 8, "server.3", "participant 3 is in no group.N line (hierarchical quorums need every participant in a group)"),
        (vec!["group.1=1:2", "group.2=2:3"], 11, "group.2", "server 2 is also in group 1"),
        (vec!["group.1=1:2:3:9"], 10, "group.1", "server 9 has no server.9 line"),
        (vec!["group.1=1:2:3:4"], 10, "group.1", "server 4 is an observer; only participants have groups and weights"),
        (vec!["group.1=1:2:3", "weight.2=-1"], 11, "weight.2", "-1 is out of range (0..=9223372036854775807)"),
        (vec!["group.1=1:2:3", "weight.2=heavy"], 11, "weight.2", "\"heavy\" is not an integer"),
        (vec!["group.1=1:2:3", "weight.9=1"], 11, "weight.9", "server 9 has no server.9 line"),
        (vec!["group.1=1:2:3", "weight.4=1"], 11, "weight.4", "server 4 is an observer; only participants have groups and weights"),
        (vec!["group.1=1:2:3", "group.1=1"], 11, "group.1", "group 1 is already configured on line 10"),
        (vec!["group.1=1:2:3", "weight.1=1", "weight.1=2"], 12, "weight.1", "weight 1 is already configured on line 11"),
        (vec!["group.1=1: 2:3"], 10, "group.1", "\" 2\" is not a numeric id"),
        (vec!["group.1="], 10, "group.1", "\"\" is not a numeric id"),
        (vec!["groupies=1:2:3"], 10, "groupies", "\"groupies\" is not a numeric id"),
        (vec!["group.1=1:2:3", "weightx=3"], 11, "weightx", "\"weightx\" is not a numeric id"),
    ];
    for (lines, n, key, tail) in cases {
        let text = format!("{head}\n{}", lines.join("\n"));
        let e = err(&text);
        assert_entry_err(&e, n, key, tail);
    }
    // A weight line alone makes the config hierarchical, so every
    // participant then needs a group (ZooKeeper's rule).
    let e = err(&format!("{head}\nweight.1=2"));
    assert_entry_err(&e, 6, "server.1", "participant 1 is in no group.N line (hierarchical quorums need every participant in a group)");
    let e = err(&format!(
        "{head}\ngroup.1=1:2:3\nweight.1=0\nweight.2=0\nweight.3=0"
    ));
    assert_eq!(
        e.to_string(),
        "zoo.cfg: every group has total weight 0: no quorum is possible"
    );
}

// ---------------------------------------------------------------- config text

/// Reads the `config="..."` expectation of a vector file, if present.
fn vector_config(name: &str) -> Option<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        root.join("../shared/vectors").join(name),
        root.join("vectors").join(name),
        root.join("tests/vectors").join(name),
    ];
    let text = candidates
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())?;
    let (meta, bytes) = read_vector(&text);
    let want = meta
        .iter()
        .find(|(k, v)| k == "expect" && (v.starts_with("config=") || v.starts_with("data=")))
        .map(|(_, v)| v.clone())?;
    Some(match name {
        // Frame: 4-byte length + 44-byte v2 header, then the config text.
        n if n.starts_with("notification") => {
            let body = String::from_utf8(bytes[48..].to_vec()).unwrap();
            assert!(want.contains("\\n"), "{want}");
            body
        }
        // QuorumPacket: type 4 + zxid 8 + length 4, data, authinfo count 4.
        _ => String::from_utf8(bytes[16..bytes.len() - 4].to_vec()).unwrap(),
    })
}

fn read_vector(text: &str) -> (Vec<(String, String)>, Vec<u8>) {
    let (mut meta, mut hex) = (Vec::new(), String::new());
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            if let Some((k, v)) = rest.split_once(": ") {
                meta.push((k.to_string(), v.to_string()));
            }
        } else if !line.starts_with('#') {
            hex.extend(line.chars().filter(|c| !c.is_whitespace()));
        }
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    (meta, bytes)
}

/// The 132 bytes Debian's ZooKeeper 3.8.0 sent in its v2 notifications
/// (vectors/notification-v2-looking.hex).
const CAPTURED_CONFIG: &str = "server.1=127.0.0.1:2881:3881:participant\nserver.2=127.0.0.1:2882:3882:participant\nserver.3=127.0.0.1:2883:3883:participant\nversion=0";

#[test]
fn config_text_matches_captured_notification_bytes() {
    // The capture's ensemble, written the way zk-ensemble.sh writes it
    // (3.4 syntax, static clientPort), with the lines out of order.
    let text = "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/tmp/x\nclientPort=2183\nclientPortAddress=127.0.0.1\n\
                server.3=127.0.0.1:2883:3883\nserver.1=127.0.0.1:2881:3881\nserver.2=127.0.0.1:2882:3882\n";
    let c = parse_as(text, 3).unwrap();
    assert_eq!(c.config_text(), CAPTURED_CONFIG);
    assert_eq!(c.config_text().len(), 132);
    match vector_config("notification-v2-looking.hex") {
        Some(v) => assert_eq!(c.config_text().as_bytes(), v.as_bytes()),
        None => eprintln!("note: vectors/ not found; compared with the embedded copy only"),
    }
}

#[test]
fn config_text_matches_captured_newleader_bytes() {
    let text = "tickTime=1000\ninitLimit=5\nsyncLimit=3\ndataDir=/tmp/x\n\
                server.1=127.0.0.1:47201:47301\nserver.2=127.0.0.1:47202:47302\nserver.3=127.0.0.1:47203:47303\n";
    let c = parse_as(text, 2).unwrap();
    let want = "server.1=127.0.0.1:47201:47301:participant\nserver.2=127.0.0.1:47202:47302:participant\nserver.3=127.0.0.1:47203:47303:participant\nversion=0";
    assert_eq!(c.config_text(), want);
    if let Some(v) = vector_config("zab-newleader-config.hex") {
        assert_eq!(c.config_text(), v);
    }
}

#[test]
fn config_text_client_observer_multi_address_ipv6() {
    let text = [
        &BASE[..5],
        &[
            "multiAddress.enabled=true",
            "server.10=zk3.example:2890:3890|zk1.example:2888:3888:observer;zk1.example:2181",
            "server.2=[::1]:2889:3889;2182",
            "server.1=localhost:2888:3888:PARTICIPANT",
            "server.3=127.0.0.1:2890:3890",
        ],
    ]
    .concat()
    .join("\n");
    let c = ok(&text);
    assert_eq!(
        c.config_text(),
        "server.1=localhost:2888:3888:participant\n\
         server.2=[0:0:0:0:0:0:0:1]:2889:3889:participant;0.0.0.0:2182\n\
         server.3=127.0.0.1:2890:3890:participant\n\
         server.10=zk1.example:2888:3888|zk3.example:2890:3890:observer;zk1.example:2181\n\
         version=0"
    );
}

#[test]
fn conf_four_letter_word_layout() {
    let c = ok(&BASE.join("\n"));
    let want = "clientPort=2181\n\
                secureClientPort=-1\n\
                dataDir=/tmp/zkfle-config-test-nonexistent/version-2\n\
                dataDirSize=0\n\
                dataLogDir=/tmp/zkfle-config-test-nonexistent/version-2\n\
                dataLogSize=0\n\
                tickTime=2000\n\
                maxClientCnxns=60\n\
                minSessionTimeout=4000\n\
                maxSessionTimeout=40000\n\
                clientPortListenBacklog=-1\n\
                serverId=1\n\
                initLimit=10\n\
                syncLimit=5\n\
                electionAlg=3\n\
                electionPort=3888\n\
                quorumPort=2888\n\
                peerType=0\n\
                membership: \n\
                server.1=127.0.0.1:2888:3888:participant\n\
                server.2=127.0.0.1:2889:3889:participant\n\
                server.3=127.0.0.1:2890:3890:participant\n\
                version=0";
    assert_eq!(c.to_conf_text(), want);
    let obs = parse_as(
        &base_plus(&["server.4=127.0.0.1:2891:3891:observer", "maxClientCnxns=10"]),
        4,
    )
    .unwrap();
    let t = obs.to_conf_text();
    assert!(t.contains("\nserverId=4\n"), "{t}");
    assert!(t.contains("\nmaxClientCnxns=10\n"), "{t}");
    assert!(
        t.contains("\nelectionPort=3891\nquorumPort=2891\npeerType=1\n"),
        "{t}"
    );
}

#[test]
fn conf_reports_data_dir_size() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("version-2")).unwrap();
    std::fs::write(d.path().join("version-2/currentEpoch"), b"12").unwrap();
    std::fs::write(d.path().join("version-2/acceptedEpoch"), b"123").unwrap();
    let c = ok(&base_with(
        4,
        Some(&format!("dataDir={}", d.path().display())),
    ));
    assert!(c.to_conf_text().contains("\ndataDirSize=5\n"));
}

// ---------------------------------------------------------------- samples

#[test]
fn conf_samples_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    for sid in 1..=3i64 {
        let path = root.join(format!("zoo{sid}.cfg"));
        let c = ZkConfig::load(&path, Some(sid)).unwrap();
        assert_eq!(c.my_sid, sid);
        assert_eq!(c.tick_time, Duration::from_millis(2000));
        assert_eq!((c.init_limit, c.sync_limit), (10, 5));
        assert_eq!(c.data_dir, PathBuf::from(format!("/tmp/zkfle/{sid}")));
        assert_eq!(
            c.client_addr,
            Some(SocketAddr::from(([0, 0, 0, 0], 2180 + sid as u16)))
        );
        assert_eq!(c.verifier, QuorumVerifier::majority([1, 2, 3]));
        assert!(c.extra.is_empty(), "{:?}", c.extra);
        for (i, s) in c.servers.iter().enumerate() {
            let i = i as u16;
            assert_eq!(s.quorum_addrs, vec![sa(&format!("127.0.0.1:{}", 2888 + i))]);
            assert_eq!(
                s.election_addrs,
                vec![sa(&format!("127.0.0.1:{}", 3888 + i))]
            );
        }
        assert!(c
            .config_text()
            .starts_with("server.1=127.0.0.1:2888:3888:participant\n"));
    }
}

#[test]
fn conf_readme_example_error_is_what_zkfle_prints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("conf/README.md")).unwrap();
    let text = std::fs::read_to_string(root.join("conf/zoo1.cfg")).unwrap();
    let broken = text.replace(
        "server.2=127.0.0.1:2889:3889",
        "server.2=127.0.0.1:2889:70000",
    );
    assert_ne!(broken, text);
    let e = ZkConfig::parse(&broken, Path::new("conf/zoo1.cfg"), Some(1)).unwrap_err();
    assert!(
        readme.contains(&format!("`{e}`")),
        "conf/README.md should quote `{e}`"
    );
}

// ---------------------------------------------------------------- never panic

fn valid_config() -> String {
    [
        &BASE[..],
        &[
            "multiAddress.enabled=true",
            "server.4=[::1]:2891:3891:observer;127.0.0.1:2184",
            "server.5=zk1.example:2892:3892|localhost:2893:3893",
            "group.1=1:2",
            "group.2=3:5",
            "weight.1=2",
            "cnxTimeout=3000",
            "kvAddress.1=127.0.0.1:7001",
            "x=\\u0041\\",
            "  continued",
        ],
    ]
    .concat()
    .join("\n")
}

#[test]
fn the_mutation_base_is_itself_valid() {
    let c = ok(&valid_config());
    assert!(matches!(c.verifier, QuorumVerifier::Hierarchical { .. }));
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting = prop::sample::select(vec![
        '=', ':', ';', '|', '[', ']', '\\', '\n', '\r', ' ', '#', '!', '.', '-', '0', '9', 'u',
        'x', '\u{0}', 'é', '\u{FFFF}',
    ]);
    let any_char = prop_oneof![interesting, any::<char>()];
    prop_oneof![
        (any::<usize>(), any_char.clone()).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), any_char).prop_map(|(i, c)| Mutation::Replace(i, c)),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    match *m {
        Mutation::Insert(i, c) => {
            let i = i % (chars.len() + 1);
            chars.insert(i, c);
        }
        Mutation::Delete(i) => {
            if !chars.is_empty() {
                let i = i % chars.len();
                chars.remove(i);
            }
        }
        Mutation::Replace(i, c) => {
            if !chars.is_empty() {
                let i = i % chars.len();
                chars[i] = c;
            }
        }
        Mutation::DuplicateLine(i) => {
            let i = i % lines.len();
            let l = lines[i].clone();
            lines.insert(i, l);
            return lines.join("\n");
        }
        Mutation::SwapLines(a, b) => {
            let (a, b) = (a % lines.len(), b % lines.len());
            lines.swap(a, b);
            return lines.join("\n");
        }
        Mutation::Truncate(i) => chars.truncate(i % (chars.len() + 1)),
    }
    chars.into_iter().collect()
}

fn check_no_panic(text: &str) {
    for sid in [1, 4] {
        match parse_as(text, sid) {
            Ok(c) => {
                // Whatever parsed must also render.
                let _ = c.config_text();
                let _ = c.to_conf_text();
                assert!(c.me().is_some());
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(msg.starts_with("zoo.cfg"), "error without file name: {msg}");
            }
        }
    }
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=<n> for a deeper run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        check_no_panic(&text);
    }

    #[test]
    fn parse_never_panics_on_config_like_text(
        text in "([a-zA-Z0-9.:;|=\\[\\]\\\\ #!\\n-]{0,40}\\n){0,12}"
    ) {
        check_no_panic(&(BASE.join("\n") + "\n" + &text));
    }

    #[test]
    fn parse_never_panics_on_mutated_valid_config(
        muts in prop::collection::vec(mutation(), 1..6)
    ) {
        let mut text = valid_config();
        for m in &muts {
            text = apply(&text, m);
        }
        check_no_panic(&text);
    }
}

// ---------------------------------------------------- operations (issue 16)

#[test]
fn security_switches_zkfle_cannot_honour_refuse_to_start_with_line_and_key() {
    let sasl = "SASL authentication between quorum peers";
    for (line, feature) in [
        ("quorum.auth.enableSasl=true", sasl),
        ("quorum.auth.learnerRequireSasl=True", sasl),
        ("quorum.auth.serverRequireSasl=TRUE", sasl),
    ] {
        let key = line.split('=').next().unwrap();
        let e = err(&base_plus(&["admin.enableServer=false", line]));
        assert_entry_err(
            &e,
            10,
            key,
            &format!("true asks for {feature}, which zkfle does not implement; it refuses to start rather than run without it (set it to false to run without {feature})"),
        );
        // false asks for nothing zkfle lacks.
        ok(&base_plus(&[&format!("{key}=false")]));
    }
    // Quorum TLS is implemented (issue 15): switched on, it needs its
    // stores, and says which key is missing.
    for line in ["sslQuorum=true", "portUnification=true"] {
        let e = err(&base_plus(&[line]));
        assert!(
            e.to_string()
                .contains("ssl.quorum.keyStore.location is not set"),
            "{e}"
        );
    }
    // Not a boolean: rejected, as ZooKeeper's parseBoolean does.
    let e = err(&base_plus(&["sslQuorum=yes"]));
    assert_entry_err(
        &e,
        9,
        "sslQuorum",
        "\"yes\" is not a boolean: choose true or false",
    );
    // Settings that only configure SASL/TLS are inert while it is off.
    ok(&base_plus(&[
        "quorum.auth.kerberos.servicePrincipal=zkquorum/_HOST",
        "quorum.auth.learner.saslLoginContext=QuorumLearner",
        "ssl.quorum.keyStore.location=/etc/zk/keystore.jks",
        "sslQuorumReloadCertFiles=true",
    ]));
}

#[test]
fn four_letter_word_whitelist_defaults_to_srvr_only() {
    let c = ok(&base_plus(&[]));
    assert!(c.four_letter_words.allows("srvr"));
    assert!(!c.four_letter_words.allows("ruok"));
    assert!(!c.four_letter_words.allows("mntr"));
    let c = ok(&base_plus(&["4lw.commands.whitelist=ruok, mntr"]));
    assert_eq!(
        c.four_letter_words.enabled().collect::<Vec<_>>(),
        vec!["mntr", "ruok", "srvr"]
    );
    assert!(ok(&base_plus(&["4lw.commands.whitelist=*"]))
        .four_letter_words
        .allows("conf"));
    assert!(
        c.extra.is_empty(),
        "a used key is not in extra: {:?}",
        c.extra
    );
}

#[test]
fn prometheus_provider_defaults_and_errors() {
    let prom = "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";
    assert_eq!(ok(&base_plus(&[])).metrics, None);
    assert_eq!(
        ok(&base_plus(&[
            "metricsProvider.className=org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
            "metricsProvider.httpPort=7001",
        ]))
        .metrics,
        None,
        "the default provider serves no endpoint"
    );
    let m = ok(&base_plus(&[prom])).metrics.unwrap();
    assert_eq!(m.addr, sa("0.0.0.0:7000"), "ZooKeeper's defaults");
    let m = ok(&base_plus(&[
        prom,
        "metricsProvider.httpHost=localhost",
        "metricsProvider.httpPort=7011",
    ]))
    .metrics
    .unwrap();
    assert_eq!(m.addr, sa("127.0.0.1:7011"));
    assert_eq!(m.host_text, "localhost");
    assert_entry_err(
        &err(&base_plus(&[prom, "metricsProvider.httpPort=70000"])),
        10,
        "metricsProvider.httpPort",
        "metrics port 70000 out of range",
    );
    assert_entry_err(
        &err(&base_plus(&[
            prom,
            "metricsProvider.httpHost=nowhere.invalid",
        ])),
        10,
        "metricsProvider.httpHost",
        "cannot resolve host \"nowhere.invalid\"",
    );
    let e = err(&base_plus(&[
        "metricsProvider.className=com.example.Metrics",
    ]));
    assert_eq!(e.line(), Some(9));
    assert!(
        e.to_string()
            .contains("\"com.example.Metrics\" is not a metrics provider zkfle has"),
        "{e}"
    );
}

/// zkfle's own `zkfle.fastDecide` (default on; off = ZooKeeper's
/// finalizeWait behaviour exactly), case-insensitive like every boolean.
#[test]
fn zkfle_fast_decide_defaults_on_and_can_be_turned_off() {
    assert!(ok(&BASE.join("\n")).fast_decide);
    assert!(!ok(&base_plus(&["zkfle.fastDecide=false"])).fast_decide);
    assert!(!ok(&base_plus(&["zkfle.fastDecide=FALSE"])).fast_decide);
    assert!(ok(&base_plus(&["zkfle.fastDecide=true"])).fast_decide);
    let c = ok(&base_plus(&["zkfle.fastDecide=false"]));
    assert!(
        c.extra.iter().all(|(_, k, _)| k != "zkfle.fastDecide"),
        "a key zkfle uses is not an unused extra"
    );
}

/// The embedding API passes zkfle's keys through: `PeerBuilder::setting`
/// lines are parsed like zoo.cfg lines.
#[test]
fn peer_builder_setting_turns_fast_decide_off() {
    let builder = zkfle::PeerBuilder::new(1)
        .server(1, sa("127.0.0.1:30201"), sa("127.0.0.1:30202"))
        .server(2, sa("127.0.0.1:30203"), sa("127.0.0.1:30204"))
        .data_dir("/tmp/zkfle-config-test-nonexistent");
    assert!(builder.clone().config().expect("config").fast_decide);
    let off = builder.setting("zkfle.fastDecide", "false");
    assert!(!off.config().expect("config").fast_decide);
}

#[test]
fn zkfle_preferred_leader_names_a_voter() {
    assert_eq!(ok(&BASE.join("\n")).preferred_leader, None);
    assert_eq!(
        ok(&base_plus(&["zkfle.preferredLeader=2"])).preferred_leader,
        Some(2)
    );
    let e = err(&base_plus(&["zkfle.preferredLeader=7"]));
    assert_entry_err(
        &e,
        BASE.len() + 1,
        "zkfle.preferredLeader",
        "server 7 is not a voting server; zkfle.preferredLeader must name one",
    );
    let e = err(&base_plus(&["zkfle.preferredLeader=two"]));
    assert_eq!(e.key(), Some("zkfle.preferredLeader"));
}
