//! `GET /metrics`: the Prometheus text format (version 0.0.4) of a
//! [`View`], with ZooKeeper 3.8's names and types where ZooKeeper has the
//! metric, so dashboards and alerts built for its
//! `PrometheusMetricsProvider` read zkfle peers too, plus zkfle's own
//! `zkfle_*` metrics.
//!
//! Gauges and zkfle's counters go through `prometheus-client` (its
//! Prometheus-text encoder and const metrics, collected per scrape from
//! the view). Two kinds of ZooKeeper family are written here by hand,
//! because the crate cannot express them and dashboards match them by
//! name:
//!
//! * `looking_count`: a counter *without* the `_total` suffix, as
//!   ZooKeeper's simpleclient 0.9 names counters (the crate always appends
//!   `_total`, as Prometheus asks of new counters);
//! * the summaries `election_time`, `unavailable_time`,
//!   `leader_unavailable_time` (milliseconds, ZooKeeper's unit): the median
//!   (`quantile="0.5"`, over the last 10 minutes as simpleclient's default
//!   window, `NaN` when empty), `_count` and `_sum`; the crate has no
//!   summary type.
//!
//! `promtool check metrics` accepts the output; its lint warns about
//! ZooKeeper's names (`looking_count` is a counter without `_total`), which
//! are kept on purpose.

use std::fmt::Write as _;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::peer::timings::{decided_by_name, Summary, DECIDED_BY};
use crate::wire::ServerState;

use super::View;

/// The `Content-Type` of the answer (Prometheus text 0.0.4, as
/// simpleclient's `TextFormat.CONTENT_TYPE_004`).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The scrape body for `view`.
pub fn render(view: &View) -> String {
    let mut out = String::new();
    hand_written(&mut out, view);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Gauges(view.clone())));
    // Writing into a String cannot fail; an encoder error would be a bug
    // in a collector, and the families written so far are still valid.
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry) {
        log::warn!("metrics: encoding failed: {e}");
    }
    out
}

/// The families the crate cannot write with ZooKeeper's names and types.
fn hand_written(out: &mut String, view: &View) {
    let t = &view.timings;
    // simpleclient 0.9 layout: `# HELP`, `# TYPE`, then samples whose label
    // lists end with a comma; values as Go prints doubles.
    let _ = write!(
        out,
        "# HELP looking_count Entries into LOOKING (ZooKeeper's looking_count counter).\n\
         # TYPE looking_count counter\n\
         looking_count {}\n",
        view.snap.election_count
    );
    summary(
        out,
        "election_time",
        "Election time in ms, from LOOKING to the decision, recorded when leading or following (ZooKeeper's election_time).",
        &t.election_time,
        view,
    );
    summary(
        out,
        "unavailable_time",
        "Time in ms from entering LOOKING until serving again (ZooKeeper's unavailable_time).",
        &t.unavailable_time,
        view,
    );
    summary(
        out,
        "leader_unavailable_time",
        "unavailable_time of the spells that ended with this peer leading (ZooKeeper's leader_unavailable_time).",
        &t.leader_unavailable_time,
        view,
    );
}

fn summary(out: &mut String, name: &str, help: &str, s: &Summary, view: &View) {
    let median = s
        .median(view.at)
        .map_or_else(|| "NaN".to_string(), |m| m.to_string());
    let _ = write!(
        out,
        "# HELP {name} {help}\n\
         # TYPE {name} summary\n\
         {name}{{quantile=\"0.5\",}} {median}\n\
         {name}_count {}\n\
         {name}_sum {}\n",
        s.count, s.sum
    );
}

/// Everything else, through the crate, from one view.
#[derive(Debug)]
struct Gauges(View);

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Collector for Gauges {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        let v = &self.0;
        let snap = &v.snap;
        let t = &v.timings;
        // ZooKeeper's gauges (QuorumZooKeeperServer, ZooKeeperServer,
        // LeaderZooKeeperServer), present when ZooKeeper registers them.
        gauge(
            &mut enc,
            "quorum_size",
            "Voting members in the configuration (ZooKeeper's quorum_size).",
            count(snap.quorum_size),
        )?;
        if snap.serving {
            if let Some(ms) = t.uptime_ms {
                gauge(
                    &mut enc,
                    "uptime",
                    "Milliseconds since the current role began (ZooKeeper's uptime).",
                    i64::try_from(ms).unwrap_or(i64::MAX),
                )?;
            }
        }
        if let (ServerState::Leading, true, Some(l)) = (snap.state, snap.serving, snap.learners) {
            for (name, help, n) in [
                (
                    "learners",
                    "Learner connections of this leader.",
                    l.learners,
                ),
                (
                    "synced_followers",
                    "Followers this leader has synchronized.",
                    l.synced_followers,
                ),
                (
                    "synced_non_voting_followers",
                    "Synchronized followers that are not voting members.",
                    l.synced_non_voting_followers,
                ),
                (
                    "synced_observers",
                    "Observers this leader has synchronized.",
                    l.synced_observers,
                ),
                (
                    "pending_syncs",
                    "Client sync requests pending (always 0: zkfle serves no client API).",
                    0,
                ),
            ] {
                gauge(&mut enc, name, help, count(n))?;
            }
            gauge(
                &mut enc,
                "leader_uptime",
                "Milliseconds since this leader started serving (ZooKeeper's leader_uptime).",
                i64::try_from(t.leader_uptime_ms.unwrap_or(0)).unwrap_or(i64::MAX),
            )?;
        }

        // zkfle's own.
        gauge(
            &mut enc,
            "zkfle_serving",
            "1 once this peer serves its role (Zab synchronized), else 0.",
            i64::from(snap.serving),
        )?;
        {
            let g = ConstGauge::new(1i64);
            let mut m = enc.encode_descriptor(
                "zkfle_server_state",
                "1 for the state mntr's zk_server_state names.",
                None,
                g.metric_type(),
            )?;
            let labels = [("state", snap.server_state_text())];
            g.encode(m.encode_family(&labels)?)?;
        }
        gauge(
            &mut enc,
            "zkfle_leader_sid",
            "The sid this peer follows or is; -1 while looking.",
            if snap.state == ServerState::Looking {
                -1
            } else {
                snap.leader_sid
            },
        )?;
        gauge(
            &mut enc,
            "zkfle_current_epoch",
            "currentEpoch as persisted.",
            snap.current_epoch,
        )?;
        gauge(
            &mut enc,
            "zkfle_accepted_epoch",
            "acceptedEpoch as persisted.",
            snap.accepted_epoch,
        )?;
        if let Some(ms) = snap.last_election_ms {
            let g = ConstGauge::new(ms as f64 / 1000.0);
            let m = enc.encode_descriptor(
                "zkfle_last_election_seconds",
                "The last election's span, from LOOKING to the decision.",
                None,
                g.metric_type(),
            )?;
            g.encode(m)?;
        }
        {
            let c = ConstCounter::new(0u64);
            let mut m = enc.encode_descriptor(
                "zkfle_election_decisions",
                "Elections ended, by the rule that ended them (all_voters_agree and rest_down are zkfle's faster decisions; finalize_wait is ZooKeeper's).",
                None,
                c.metric_type(),
            )?;
            for d in DECIDED_BY {
                let labels = [("rule", decided_by_name(d))];
                ConstCounter::new(t.decisions.get(d)).encode(m.encode_family(&labels)?)?;
            }
        }
        gauge(
            &mut enc,
            "zkfle_connected_peers",
            "Configured peers with a live election connection to this one.",
            count(v.net.connected_peers),
        )?;
        if !v.links.is_empty() {
            let g = ConstGauge::new(0i64);
            let mut m = enc.encode_descriptor(
                "zkfle_election_link_up",
                "1 while the election connection to the configured peer sid is up, else 0.",
                None,
                g.metric_type(),
            )?;
            for (sid, up) in &v.links {
                let sid = sid.to_string();
                let labels = [("sid", sid.as_str())];
                ConstGauge::new(i64::from(*up)).encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut enc,
            "zkfle_notifications_sent",
            "Election notification frames written (re-sends included).",
            v.net.notifications_sent,
        )?;
        counter(
            &mut enc,
            "zkfle_notifications_received",
            "Election notifications received and decoded.",
            v.net.notifications_received,
        )?;
        counter(
            &mut enc,
            "zkfle_bad_frames",
            "Election frames with a bad length or an undecodable body.",
            v.net.bad_frames,
        )?;
        if let Some(q) = &v.qcm {
            for (name, help, n) in [
                (
                    "zkfle_bad_handshakes",
                    "Inbound election handshakes that were malformed or late.",
                    q.bad_handshakes,
                ),
                (
                    "zkfle_dial_failures",
                    "Election connection attempts that failed or timed out.",
                    q.dial_failures,
                ),
                (
                    "zkfle_links_established",
                    "Election connections handed to workers.",
                    q.links_established,
                ),
                (
                    "zkfle_links_closed",
                    "Election connections closed.",
                    q.links_closed,
                ),
                (
                    "zkfle_send_queue_dropped",
                    "Notifications evicted from a full send queue.",
                    q.dropped_send_queue,
                ),
                (
                    "zkfle_recv_queue_dropped",
                    "Notifications evicted from the full receive queue.",
                    q.dropped_recv_queue,
                ),
                (
                    "zkfle_connections_refused",
                    "Election connections refused (own sid, unknown low sid, too many strangers, impostors).",
                    q.own_sid_rejected
                        + q.unknown_low_sid_rejected
                        + q.strangers_rejected
                        + q.impostors_rejected,
                ),
                (
                    "zkfle_tls_refused",
                    "Election connections refused by quorum TLS (plaintext on a TLS-only port, failed TLS handshakes either way).",
                    q.tls_refused,
                ),
            ] {
                counter(&mut enc, name, help, n)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::status::{NetStats, PeerStatus, Phase};
    use std::time::Instant;

    fn view(st: &PeerStatus) -> View {
        View {
            snap: st.snapshot(),
            timings: st.timings(),
            net: NetStats {
                connected_peers: 1,
                notifications_sent: 4,
                notifications_received: 5,
                bad_frames: 0,
            },
            qcm: None,
            links: vec![(2, true), (3, false)],
            at: Instant::now(),
        }
    }

    #[test]
    fn zookeeper_families_keep_their_names_and_types() {
        let st = PeerStatus::new(1, 3, 0, 0);
        st.update(|s| s.election_count += 1);
        let text = render(&view(&st));
        assert!(
            text.contains("# TYPE looking_count counter\nlooking_count 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE election_time summary\nelection_time{quantile=\"0.5\",} NaN\nelection_time_count 0\nelection_time_sum 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE quorum_size gauge\nquorum_size 3\n"),
            "{text}"
        );
        assert!(
            text.contains("zkfle_election_link_up{sid=\"2\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("zkfle_election_link_up{sid=\"3\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("zkfle_notifications_sent_total 4\n"),
            "{text}"
        );
        assert!(
            text.contains("zkfle_server_state{state=\"looking\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("\nuptime "), "no uptime while looking");
        st.update(|s| {
            s.state = ServerState::Following;
            s.leader_sid = 2;
            s.last_election_ms = Some(40);
            s.decided_by = Some(crate::election::DecidedBy::RestDown);
        });
        st.update(|s| {
            s.phase = Phase::Broadcast;
            s.serving = true;
        });
        let text = render(&view(&st));
        assert!(
            text.contains("election_time{quantile=\"0.5\",} 40\n"),
            "{text}"
        );
        assert!(
            text.contains("election_time_count 1\nelection_time_sum 40\n"),
            "{text}"
        );
        assert!(
            text.contains("zkfle_election_decisions_total{rule=\"rest_down\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("\nuptime "), "{text}");
        assert!(
            !text.contains("\nlearners "),
            "followers have no leader gauges"
        );
    }
}
