//! Replays `../shared/vectors/coldstart-3node-failover.sequence.tsv` (vectors
//! README, "Suggested tests" 5): the frames three Java ZooKeeper 3.8 servers
//! exchanged are decoded with `zkfle::wire` and fed, per connection and in
//! file order, to three `election::Fle` machines. Checks who leads after the
//! cold start and after the failover, and that every frame a Java server
//! sent is one our machine for that sid also emitted by then.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use zkfle::config::QuorumVerifier;
use zkfle::election::{Decision, Fle, FleConfig, LinkState, Output, Vote};
use zkfle::wire::frame::split_frame;
use zkfle::wire::{Notification, ServerState};

#[derive(Debug, Clone)]
enum Kind {
    Handshake,
    Frame(Notification),
    Fin,
    Refused,
    Syn,
}

#[derive(Debug, Clone)]
struct Row {
    t: Duration,
    conn: u32,
    from: Option<i64>,
    to: Option<i64>,
    kind: Kind,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex digit"))
        .collect()
}

fn sid(col: &str) -> Option<i64> {
    col.parse().ok()
}

fn load() -> Vec<Row> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/vectors/coldstart-3node-failover.sequence.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut rows = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(cols.len() >= 6, "short row: {line}");
        let t_us = (cols[0].parse::<f64>().expect("t_ms") * 1000.0).round() as u64;
        let kind = match cols[4] {
            "syn" => Kind::Syn,
            "handshake" => Kind::Handshake,
            "fin" => Kind::Fin,
            "refused" => Kind::Refused,
            "frame" => {
                let bytes = hex(cols[5]);
                let (body, used) = split_frame(&bytes).expect("whole frame");
                assert_eq!(used, bytes.len());
                let (n, config) = Notification::decode(body).expect("frame decodes");
                assert!(config.is_some(), "3.8 sends 44+N bodies");
                Kind::Frame(n)
            }
            other => panic!("unknown kind {other}"),
        };
        rows.push(Row {
            t: Duration::from_micros(t_us),
            conn: cols[1].parse().expect("conn"),
            from: sid(cols[2]),
            to: sid(cols[3]),
            kind,
        });
    }
    rows
}

/// The fields a notification's meaning rests on (the version differs:
/// Java sends v2, zkfle's 40-byte layout reads as 0).
fn key(n: &Notification) -> (ServerState, i64, i64, i64, i64) {
    (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch)
}

struct Replay {
    fles: BTreeMap<i64, Fle>,
    timers: BTreeMap<i64, Duration>,
    /// Everything each machine emitted: (time, to, notification).
    emitted: BTreeMap<i64, Vec<(Duration, i64, Notification)>>,
    decisions: BTreeMap<i64, Vec<(Duration, Decision)>>,
    dead: Vec<i64>,
}

impl Replay {
    fn apply(&mut self, sid: i64, now: Duration, out: Output) {
        for s in out.sends {
            self.emitted
                .entry(sid)
                .or_default()
                .push((now, s.to, s.notification));
        }
        match out.timer {
            Some(t) => {
                self.timers.insert(sid, t);
            }
            None => {
                self.timers.remove(&sid);
            }
        }
        if let Some(d) = out.decision {
            self.decisions.entry(sid).or_default().push((now, d));
        }
    }

    /// Fires every timer due before `until`, in time order.
    fn run_timers(&mut self, until: Duration) {
        loop {
            let next = self
                .timers
                .iter()
                .filter(|(s, _)| !self.dead.contains(s))
                .min_by_key(|(s, t)| (**t, **s))
                .map(|(s, t)| (*s, *t));
            match next {
                Some((s, t)) if t < until => {
                    let fle = self.fles.get_mut(&s).expect("sid");
                    let out = fle.on_timer(t);
                    self.apply(s, t, out);
                }
                _ => return,
            }
        }
    }

    fn last_decision(&self, sid: i64) -> Option<Decision> {
        self.decisions
            .get(&sid)
            .and_then(|v| v.last())
            .map(|(_, d)| *d)
    }
}

fn replay(fast: bool) -> Replay {
    let rows = load();
    let q = QuorumVerifier::majority([1, 2, 3]);
    let mut r = Replay {
        fles: (1..=3)
            .map(|s| {
                let mut c = FleConfig::new(s, q.clone());
                c.fast_decide = fast;
                (s, Fle::new(c))
            })
            .collect(),
        timers: BTreeMap::new(),
        emitted: BTreeMap::new(),
        decisions: BTreeMap::new(),
        dead: Vec::new(),
    };
    // Fresh data: zxid 0, epoch 0; every server starts at once.
    for s in 1..=3 {
        let out = r
            .fles
            .get_mut(&s)
            .expect("sid")
            .start_election(Duration::ZERO, 0, 0);
        r.apply(s, Duration::ZERO, out);
    }
    // Which two sids each connection joins (from its handshake).
    let mut ends: BTreeMap<u32, (i64, i64)> = BTreeMap::new();
    let mut established = false;
    let mut round2: Vec<i64> = Vec::new();
    let mut last_frame: BTreeMap<(i64, i64), (Duration, Notification)> = BTreeMap::new();
    for row in rows {
        r.run_timers(row.t);
        let now = row.t;
        if !established && (1..=3).all(|s| r.last_decision(s).is_some()) {
            // Zab established epoch 1 with leader 3 (both epoch files say 1).
            for f in r.fles.values_mut() {
                f.set_established_epoch(1);
            }
            established = true;
        }
        match row.kind {
            Kind::Syn => {}
            Kind::Handshake => {
                let (a, b) = (row.from.expect("from"), row.to.expect("to"));
                ends.insert(row.conn, (a, b));
            }
            Kind::Fin => {
                // Sid 3 was SIGKILLed: its peers lose the link and their
                // redials are refused. Until a refusal is seen the link is
                // merely being re-established.
                if row.from == Some(3) {
                    r.dead.push(3);
                    if let Some(&(a, b)) = ends.get(&row.conn) {
                        let peer = if a == 3 { b } else { a };
                        let fle = r.fles.get_mut(&peer).expect("sid");
                        let out = fle.on_link(now, 3, LinkState::Connecting);
                        r.apply(peer, now, out);
                    }
                }
            }
            Kind::Refused => {
                // Only a server in an election dials sid 3.
                for s in [1, 2] {
                    let fle = r.fles.get_mut(&s).expect("sid");
                    if fle.is_electing() {
                        let out = fle.on_link(now, 3, LinkState::Down);
                        r.apply(s, now, out);
                    }
                }
            }
            Kind::Frame(n) => {
                let (from, to) = (row.from.expect("from"), row.to.expect("to"));
                // The failover: each survivor's role ends (Zab noticed the
                // leader's death) right before it sends its first round-2
                // vote; it now has currentEpoch 1.
                if n.state == ServerState::Looking
                    && n.election_epoch == 2
                    && !round2.contains(&from)
                {
                    round2.push(from);
                    let fle = r.fles.get_mut(&from).expect("sid");
                    fle.leave_role();
                    let out = fle.start_election(now, 0, 1);
                    r.apply(from, now, out);
                }
                // Every frame Java sent is something our machine for that
                // sid emitted to that peer by then.
                let ours: Vec<_> = r.emitted[&from]
                    .iter()
                    .filter(|(t, dst, _)| *t <= now && *dst == to)
                    .map(|(_, _, m)| key(m))
                    .collect();
                assert!(
                    ours.contains(&key(&n)),
                    "fast={fast}: at {now:?} Java sid {from} sent {n:?} to {to}; \
                     ours had emitted {ours:?}"
                );
                last_frame.insert((from, to), (now, n));
                if !r.dead.contains(&to) {
                    let fle = r.fles.get_mut(&to).expect("sid");
                    let out = fle.on_notification(now, from, &n);
                    r.apply(to, now, out);
                }
            }
        }
    }
    // Let pending finalize waits expire.
    r.run_timers(Duration::from_secs(10));
    // The newest frame on each direction is also our newest emission then.
    for ((from, to), (t, n)) in &last_frame {
        let newest = r.emitted[from]
            .iter()
            .filter(|(te, dst, _)| te <= t && dst == to)
            .map(|(_, _, m)| key(m))
            .next_back();
        assert_eq!(newest, Some(key(n)), "fast={fast}: newest {from}->{to}");
    }
    r
}

#[test]
fn replay_coldstart_and_failover() {
    for fast in [false, true] {
        let r = replay(fast);
        // Cold start: everyone settled on sid 3 in round 1.
        for s in 1..=3 {
            let (t, d) = r.decisions[&s][0];
            assert_eq!(d.vote, Vote::new(3, 0, 0), "fast={fast} sid {s}");
            assert_eq!(d.election_epoch, 1);
            let want = if s == 3 {
                ServerState::Leading
            } else {
                ServerState::Following
            };
            assert_eq!(d.state, want, "fast={fast} sid {s}");
            if fast {
                assert!(
                    t < Duration::from_millis(50),
                    "fast={fast} sid {s} at {t:?}"
                );
            } else {
                assert!(
                    t >= Duration::from_millis(200),
                    "fast={fast} sid {s} at {t:?}"
                );
            }
        }
        // Failover: sid 2 leads round 2 with peerEpoch 1, sid 1 follows.
        for s in 1..=2 {
            let d = r.last_decision(s).expect("decided after failover");
            assert_eq!(d.vote, Vote::new(2, 0, 1), "fast={fast} sid {s}");
            assert_eq!(d.election_epoch, 2, "fast={fast} sid {s}");
        }
        assert_eq!(r.fles[&2].state(), ServerState::Leading);
        assert_eq!(r.fles[&1].state(), ServerState::Following);
        let (t1, _) = *r.decisions[&1].last().expect("sid 1");
        if fast {
            // Sid 3 refused sid 1's dial before sid 2's vote arrived: no
            // finalize wait (Java took ~200 ms more).
            assert_eq!(t1, Duration::from_micros(3_520_100));
        } else {
            assert_eq!(t1, Duration::from_micros(3_720_100));
        }
    }
}
