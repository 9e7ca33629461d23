//! `mntr`: tab-separated `key<TAB>value` lines. zkfle's own keys come
//! first (DESIGN.md's contract: `zk_server_state`, `zk_peer_state`,
//! `zk_leader_sid`, ...), then the keys of ZooKeeper 3.8's `mntr` that apply
//! to a peer without a data tree, with ZooKeeper's names and formats
//! (`MonitorCommand` + `DefaultMetricsProvider`; summaries as
//! `zk_avg_/min_/max_/cnt_/sum_<name>`, the average printed as a Java
//! double). Unlike Java, which answers `mntr` with its not-serving line
//! while LOOKING, zkfle answers it in every state, with
//! `zk_server_state looking`.
//!
//! ZooKeeper's keys added (checked against 3.8.0's source and a 3.8.0
//! leader's and follower's `mntr`):
//! * always: `zk_looking_count`, the `election_time`, `unavailable_time`
//!   and `leader_unavailable_time` summaries, `zk_quorum_size` (voting
//!   members, as `QuorumPeer.getQuorumSize`);
//! * while serving: `zk_uptime` (ms since the role began);
//! * on a serving leader: `zk_learners`, `zk_synced_followers`,
//!   `zk_synced_non_voting_followers`, `zk_synced_observers`,
//!   `zk_pending_syncs` (always 0: zkfle serves no client `sync`),
//!   `zk_leader_uptime`.

use std::sync::atomic::Ordering;

use crate::peer::timings::Summary;
use crate::wire::ServerState;

use super::fourlw::AdminCounters;
use super::{java_double, View, VERSION_TEXT};

/// The `mntr` answer for `view`.
pub fn mntr(view: &View, c: &AdminCounters) -> String {
    let snap = &view.snap;
    let net = &view.net;
    let t = &view.timings;
    let leader = if snap.state == ServerState::Looking {
        -1
    } else {
        snap.leader_sid
    };
    let last_ms = snap.last_election_ms.map(|m| m as i64).unwrap_or(-1);
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row("zk_version", VERSION_TEXT.to_string());
    row("zk_server_state", snap.server_state_text().to_string());
    row("zk_peer_state", snap.peer_state_text());
    row("zk_leader_sid", leader.to_string());
    row("zk_current_epoch", snap.current_epoch.to_string());
    row("zk_accepted_epoch", snap.accepted_epoch.to_string());
    row("zk_election_count", snap.election_count.to_string());
    row("zk_last_election_ms", last_ms.to_string());
    row("zk_quorum_size", snap.quorum_size.to_string());
    row("zk_connected_peers", net.connected_peers.to_string());
    row("zk_notifications_sent", net.notifications_sent.to_string());
    row(
        "zk_notifications_received",
        net.notifications_received.to_string(),
    );
    row("zk_bad_frames", net.bad_frames.to_string());
    if let Some(q) = &view.qcm {
        // Quorum TLS refusals on the election port (zkfle's own key).
        row("zk_tls_refused", q.tls_refused.to_string());
    }
    row("zk_last_zxid", format!("{:#x}", snap.last_zxid));
    row("zk_election_epoch", snap.election_epoch.to_string());
    row(
        "zk_packets_received",
        c.received.load(Ordering::Relaxed).to_string(),
    );
    row(
        "zk_packets_sent",
        c.sent.load(Ordering::Relaxed).to_string(),
    );
    row(
        "zk_num_alive_connections",
        c.connections.load(Ordering::Relaxed).to_string(),
    );
    // ZooKeeper's own keys from here on.
    if snap.serving {
        if let Some(ms) = t.uptime_ms {
            row("zk_uptime", ms.to_string());
        }
    }
    if let (ServerState::Leading, true, Some(l)) = (snap.state, snap.serving, snap.learners) {
        row("zk_learners", l.learners.to_string());
        row("zk_synced_followers", l.synced_followers.to_string());
        row(
            "zk_synced_non_voting_followers",
            l.synced_non_voting_followers.to_string(),
        );
        row("zk_synced_observers", l.synced_observers.to_string());
        row("zk_pending_syncs", "0".to_string());
        row(
            "zk_leader_uptime",
            t.leader_uptime_ms.unwrap_or(0).to_string(),
        );
    }
    row("zk_looking_count", snap.election_count.to_string());
    for (name, s) in [
        ("unavailable_time", &t.unavailable_time),
        ("leader_unavailable_time", &t.leader_unavailable_time),
        ("election_time", &t.election_time),
    ] {
        summary_rows(&mut row, name, s);
    }
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&k);
        out.push('\t');
        out.push_str(&v);
        out.push('\n');
    }
    out
}

/// `AvgMinMaxCounter.values()`: avg (a Java double), min, max, cnt, sum.
fn summary_rows(row: &mut impl FnMut(&str, String), name: &str, s: &Summary) {
    row(&format!("zk_avg_{name}"), java_double(s.avg()));
    row(&format!("zk_min_{name}"), s.min.to_string());
    row(&format!("zk_max_{name}"), s.max.to_string());
    row(&format!("zk_cnt_{name}"), s.count.to_string());
    row(&format!("zk_sum_{name}"), s.sum.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::status::{NetStats, PeerStatus, Phase};
    use crate::peer::zab::LearnerCounts;
    use std::collections::BTreeMap;
    use std::time::Instant;

    fn parse(t: &str) -> BTreeMap<String, String> {
        t.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn view_of(st: &PeerStatus, net: NetStats) -> View {
        View {
            snap: st.snapshot(),
            timings: st.timings(),
            net,
            qcm: None,
            links: vec![],
            at: Instant::now(),
        }
    }

    #[test]
    fn looking_peer_answers_with_zkfle_and_zookeeper_keys() {
        let st = PeerStatus::new(2, 3, 0, 0);
        st.update(|s| s.election_count += 1);
        let m = parse(&mntr(
            &view_of(&st, NetStats::default()),
            &AdminCounters::default(),
        ));
        assert_eq!(m["zk_server_state"], "looking");
        assert_eq!(m["zk_peer_state"], "looking");
        assert_eq!(m["zk_leader_sid"], "-1");
        assert_eq!(m["zk_quorum_size"], "3", "voting members, as ZooKeeper");
        assert_eq!(m["zk_looking_count"], "1");
        assert_eq!(m["zk_avg_election_time"], "0.0");
        assert_eq!(m["zk_cnt_election_time"], "0");
        for k in [
            "zk_version",
            "zk_current_epoch",
            "zk_accepted_epoch",
            "zk_election_count",
            "zk_last_election_ms",
            "zk_connected_peers",
            "zk_notifications_sent",
            "zk_notifications_received",
            "zk_bad_frames",
            "zk_min_election_time",
            "zk_max_election_time",
            "zk_sum_election_time",
            "zk_cnt_unavailable_time",
            "zk_cnt_leader_unavailable_time",
        ] {
            assert!(m.contains_key(k), "mntr lacks {k}");
        }
        for k in ["zk_uptime", "zk_learners", "zk_leader_uptime"] {
            assert!(!m.contains_key(k), "{k} while looking");
        }
    }

    #[test]
    fn serving_leader_has_the_leader_keys_and_election_time() {
        let st = PeerStatus::new(3, 3, 1, 1);
        st.update(|s| s.election_count += 1);
        st.update(|s| {
            s.state = ServerState::Leading;
            s.phase = Phase::Discovery;
            s.leader_sid = 3;
            s.last_election_ms = Some(214);
            s.decided_by = Some(crate::election::DecidedBy::AllVotersAgree);
        });
        st.update(|s| {
            s.phase = Phase::Broadcast;
            s.serving = true;
            s.learners = Some(LearnerCounts {
                learners: 2,
                synced_followers: 2,
                synced_non_voting_followers: 0,
                synced_observers: 0,
            });
        });
        let net = NetStats {
            connected_peers: 2,
            notifications_sent: 5,
            notifications_received: 6,
            bad_frames: 1,
        };
        let m = parse(&mntr(&view_of(&st, net), &AdminCounters::default()));
        assert_eq!(m["zk_server_state"], "leader");
        assert_eq!(m["zk_peer_state"], "leading - broadcast");
        assert_eq!(m["zk_learners"], "2");
        assert_eq!(m["zk_synced_followers"], "2");
        assert_eq!(m["zk_synced_non_voting_followers"], "0");
        assert_eq!(m["zk_synced_observers"], "0");
        assert_eq!(m["zk_pending_syncs"], "0");
        assert!(m.contains_key("zk_leader_uptime") && m.contains_key("zk_uptime"));
        assert_eq!(m["zk_avg_election_time"], "214.0");
        assert_eq!(m["zk_min_election_time"], "214");
        assert_eq!(m["zk_cnt_election_time"], "1");
        assert_eq!(m["zk_cnt_unavailable_time"], "1");
        assert_eq!(m["zk_cnt_leader_unavailable_time"], "1");
        assert_eq!(m["zk_connected_peers"], "2");
        assert_eq!(m["zk_bad_frames"], "1");
    }
}
