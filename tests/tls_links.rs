//! Quorum TLS on links (issue 15 items 2, 3): the blocking read/write
//! halves, the certificate refusals (another CA, expired, a name that is
//! not the peer's, plaintext on a TLS-only port), certificate reload, and
//! election links between QCMs with TLS and port unification.

#[path = "common/certs.rs"]
mod certs;
#[path = "common/cnx.rs"]
mod cnx;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use cnx::{addr, ensemble_config, note, wait_for, PortPool};
use zkfle::cnx::Qcm;
use zkfle::config::ZkConfig;
use zkfle::tls::{self, PeerStream, QuorumTls};

static PORTS: PortPool = PortPool::new(22600, 22700);
const LONG: Duration = Duration::from_secs(10);

/// A TLS context from zoo.cfg lines (sslQuorum on unless `extra` says
/// otherwise).
fn ctx(dir: &Path, name: &str, key_store: &Path, trust: &Path, extra: &str) -> QuorumTls {
    let path = dir.join(format!("{name}.cfg"));
    let text = format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=19901\nserver.1=127.0.0.1:19911:19921\nserver.2=127.0.0.1:19912:19922\n{}{extra}",
        dir.display(),
        certs::tls_lines(key_store, trust)
    );
    let text = if extra.contains("sslQuorum=") || extra.contains("portUnification=") {
        text
    } else {
        format!("{text}sslQuorum=true\n")
    };
    let cfg = ZkConfig::parse(&text, &path, Some(1)).unwrap();
    QuorumTls::load(&cfg).unwrap().unwrap()
}

struct Pki {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    ca: certs::Ca,
    trust: std::path::PathBuf,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = certs::Ca::new("zk-ca");
        let trust = certs::write_trust(&dir.path().join("trust.pem"), &[&ca]);
        Pki {
            dir: dir.path().to_path_buf(),
            _dir: dir,
            ca,
            trust,
        }
    }

    fn good(&self, name: &str, extra: &str) -> QuorumTls {
        let ks = self
            .ca
            .peer(name)
            .write_pem(&self.dir.join(format!("{name}.pem")));
        ctx(&self.dir, name, &ks, &self.trust, extra)
    }

    fn with_leaf(&self, name: &str, leaf: &certs::Leaf, extra: &str) -> QuorumTls {
        let ks = leaf.write_pem(&self.dir.join(format!("{name}.pem")));
        ctx(&self.dir, name, &ks, &self.trust, extra)
    }
}

/// Runs a handshake between `server` and `client` over loopback; returns
/// both ends' results.
fn handshake(
    server: &QuorumTls,
    client: &QuorumTls,
) -> (std::io::Result<PeerStream>, std::io::Result<PeerStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = l.local_addr().unwrap();
    let server = server.clone();
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        tls::accept_blocking(&server, s, Duration::from_secs(5))
    });
    let c = TcpStream::connect(at).unwrap();
    let cr = tls::connect_blocking(client, c, &[], Duration::from_secs(5));
    let sr = t.join().unwrap();
    (sr, cr)
}

fn refused(r: &(std::io::Result<PeerStream>, std::io::Result<PeerStream>)) -> bool {
    // TLS 1.2: a refusal by either side fails both handshakes, or leaves
    // the accepted side failed and the client's first read failing.
    r.0.is_err()
}

#[test]
fn halves_carry_batches_both_ways_and_close_with_close_notify() {
    let pki = Pki::new();
    let a = pki.good("a", "");
    let b = pki.good("b", "");
    let (s, c) = handshake(&a, &b);
    let (s, c) = (s.unwrap(), c.unwrap());
    assert!(s.is_tls() && c.is_tls());
    let (mut sr, mut sw, s_close) = s.split().unwrap();
    let (mut cr, mut cw, _c_close) = c.split().unwrap();
    // Both directions at once, in batches larger than a TLS record.
    let batch: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let b2 = batch.clone();
    let writer = std::thread::spawn(move || {
        for _ in 0..20 {
            cw.write_all(&b2).unwrap();
        }
        cw
    });
    let b3 = batch.clone();
    let writer2 = std::thread::spawn(move || {
        for _ in 0..20 {
            sw.write_all(&b3).unwrap();
        }
    });
    let read_all = |r: &mut dyn Read, n: usize| {
        let mut got = vec![0u8; n];
        r.read_exact(&mut got).unwrap();
        got
    };
    let from_client = read_all(&mut sr, batch.len() * 20);
    let from_server = read_all(&mut cr, batch.len() * 20);
    writer.join().unwrap();
    writer2.join().unwrap();
    for chunk in from_client
        .chunks(batch.len())
        .chain(from_server.chunks(batch.len()))
    {
        assert_eq!(chunk, &batch[..]);
    }
    // close_notify: the other side reads a clean end of stream.
    s_close.close();
    let mut buf = [0u8; 16];
    assert_eq!(cr.read(&mut buf).unwrap(), 0);
}

#[test]
fn certificates_from_another_ca_expired_or_not_naming_the_peer_are_refused() {
    let pki = Pki::new();
    let good = pki.good("good", "");
    let localhost = [IpAddr::V4(Ipv4Addr::LOCALHOST)];

    // Signed by a CA the trust store does not hold: refused both ways.
    let rogue_ca = certs::Ca::new("rogue");
    let rogue = pki.with_leaf("rogue", &rogue_ca.peer("rogue"), "");
    assert!(refused(&handshake(&good, &rogue)), "rogue client accepted");
    let (s, c) = handshake(&rogue, &good);
    assert!(c.is_err(), "client accepted a rogue server");
    assert!(s.is_err());

    // Expired.
    let expired = pki.with_leaf(
        "expired",
        &pki.ca.leaf("expired", &localhost, &[], true),
        "",
    );
    assert!(
        refused(&handshake(&good, &expired)),
        "expired client accepted"
    );
    let (_, c) = handshake(&expired, &good);
    assert!(c.is_err(), "client accepted an expired server");

    // Valid, but for another address: refused as a client (Java checks the
    // client's certificate against the connecting IP) and as a server.
    let other_ip = [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))];
    let elsewhere = pki
        .ca
        .leaf("elsewhere", &other_ip, &["elsewhere.example"], false);
    let wrong = pki.with_leaf("wrong", &elsewhere, "");
    assert!(
        refused(&handshake(&good, &wrong)),
        "misnamed client accepted"
    );
    let (_, c) = handshake(&wrong, &good);
    let e = c.expect_err("client accepted a misnamed server");
    assert!(e.to_string().contains("127.0.0.1"), "{e}");

    // With hostname verification off, the same certificate is fine both
    // ways (the chain still counts).
    let lax_good = pki.good("lax", "ssl.quorum.hostnameVerification=false\n");
    let lax_wrong = pki.with_leaf(
        "laxwrong",
        &elsewhere,
        "ssl.quorum.hostnameVerification=false\n",
    );
    let (s, c) = handshake(&lax_good, &lax_wrong);
    assert!(s.is_ok() && c.is_ok());
    let (s, c) = handshake(&lax_wrong, &lax_good);
    assert!(s.is_ok() && c.is_ok());
}

#[test]
fn java_3_8_suite_is_negotiated_by_default_and_tls_1_3_on_request() {
    let pki = Pki::new();
    let (s, _) = handshake(&pki.good("a", ""), &pki.good("b", ""));
    let PeerStream::Tls(t) = s.unwrap() else {
        panic!("not TLS")
    };
    // ECDSA test certificates: the ECDSA twin of Java's ECDHE_RSA suite.
    assert_eq!(
        t.session(),
        "TLSv1_2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    );
    let v13 = "ssl.quorum.protocol=TLSv1.3\n";
    let (s, _) = handshake(&pki.good("c", v13), &pki.good("d", v13));
    let PeerStream::Tls(t) = s.unwrap() else {
        panic!("not TLS")
    };
    assert!(t.session().starts_with("TLSv1_3"), "{}", t.session());
    // A 1.2-only peer and a 1.3-only peer have nothing in common.
    let r = handshake(&pki.good("e", ""), &pki.good("f", v13));
    assert!(r.0.is_err() && r.1.is_err());
}

#[test]
fn reloaded_trust_store_admits_a_new_ca_without_restart() {
    let pki = Pki::new();
    let server = pki.good("server", "sslQuorumReloadCertFiles=true\nsslQuorum=true\n");
    let new_ca = certs::Ca::new("new-ca");
    let newcomer = {
        let dir = pki.dir.join("newcomer");
        std::fs::create_dir_all(&dir).unwrap();
        let trust = certs::write_trust(&dir.join("trust.pem"), &[&pki.ca, &new_ca]);
        let ks = new_ca.peer("newcomer").write_pem(&dir.join("ks.pem"));
        ctx(&dir, "newcomer", &ks, &trust, "")
    };
    assert!(refused(&handshake(&server, &newcomer)));
    // The operator adds the new CA to the server's trust store.
    std::fs::write(&pki.trust, format!("{}{}", pki.ca.pem, new_ca.pem)).unwrap();
    wait_for("trust store reloaded", LONG, || server.reloads() > 0);
    let (s, c) = handshake(&server, &newcomer);
    assert!(s.is_ok() && c.is_ok(), "{:?} {:?}", s.err(), c.err());
    // A broken rewrite is not adopted: the loaded stores stay.
    std::fs::write(&pki.trust, "not a certificate").unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(server.reloads(), 1);
    let (s, c) = handshake(&server, &newcomer);
    assert!(s.is_ok() && c.is_ok());
}

fn tls_qcm(sid: i64, ports: &[u16], tls: &QuorumTls) -> Qcm {
    let mut cfg = ensemble_config(sid, ports);
    cfg.tls = Some(tls.clone());
    Qcm::start(cfg).expect("start")
}

fn full_mesh(qcms: &[Qcm]) -> bool {
    qcms.iter()
        .all(|q| q.connected_peers().len() == qcms.len() - 1)
}

#[test]
fn election_links_run_over_tls_and_refuse_plaintext_and_strangers_to_the_ca() {
    let pki = Pki::new();
    let ports = PORTS.take(3);
    let qcms: Vec<Qcm> = (1..=3)
        .map(|sid| tls_qcm(sid, &ports, &pki.good(&format!("p{sid}"), "")))
        .collect();
    // A client that stalls inside its TLS handshake (half a record header)
    // holds up nobody: the mesh forms while it hangs.
    let mut stalled = TcpStream::connect(addr(ports[0])).unwrap();
    stalled.write_all(&[0x16, 0x03]).unwrap();
    let t0 = Instant::now();
    for q in &qcms {
        q.connect_all();
    }
    wait_for("TLS mesh", LONG, || full_mesh(&qcms));
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "mesh waited for the stalled client"
    );
    // Notifications flow, in order.
    for round in 1..=50 {
        qcms[2].send(1, &note(3, round));
    }
    let rx = qcms[0].receiver();
    let mut last = 0;
    while last < 50 {
        let r = rx.recv_timeout(LONG).expect("notification");
        if r.sid == 3 {
            assert_eq!(r.notification.election_epoch, last + 1);
            last += 1;
        }
    }
    assert_eq!(qcms[0].stats().tls_refused, 0);

    // Plaintext on the TLS-only port: closed at once, counted.
    let before = qcms[0].stats().tls_refused;
    let mut plain = cnx::raw_peer(addr(ports[0]), &cnx::v1_handshake(4, 22699));
    assert!(cnx::closed_within(&mut plain, Duration::from_secs(1)));
    wait_for("refusal counted", LONG, || {
        qcms[0].stats().tls_refused > before
    });

    // A peer whose certificate comes from another CA never links, and the
    // ensemble keeps its links.
    let rogue_ca = certs::Ca::new("rogue");
    let rogue_ports = [ports[0], ports[1], ports[2], PORTS.take(1)[0]];
    let rogue_tls = pki.with_leaf("rogue4", &rogue_ca.peer("rogue4"), "");
    let rogue = tls_qcm(4, &rogue_ports, &rogue_tls);
    rogue.connect_all();
    let before = qcms[0].stats().tls_refused;
    wait_for("rogue refused", LONG, || {
        qcms[0].stats().tls_refused > before
    });
    assert!(rogue.connected_peers().is_empty());
    assert!(qcms[0].connected_strangers().is_empty());
    assert!(full_mesh(&qcms));
    drop(stalled);
}

#[test]
fn port_unification_accepts_both_and_rolls_to_tls_only() {
    let pki = Pki::new();
    let ports = PORTS.take(2);
    // Step 1: sid 1 with portUnification (dials plaintext, accepts both);
    // sid 2 plain.
    let unified = pki.good("u1", "portUnification=true\n");
    let q1 = tls_qcm(1, &ports, &unified);
    let q2 = Qcm::start(ensemble_config(2, &ports)).unwrap();
    q2.connect_all();
    wait_for("plaintext link into a unified port", LONG, || {
        q1.is_connected(2)
    });
    drop(q2);
    wait_for("link gone", LONG, || !q1.is_connected(2));
    // Step 2: sid 2 with sslQuorum + portUnification: dials TLS.
    let q2 = tls_qcm(
        2,
        &ports,
        &pki.good("u2", "sslQuorum=true\nportUnification=true\n"),
    );
    q2.connect_all();
    wait_for("TLS link into a unified port", LONG, || q1.is_connected(2));
    assert_eq!(q1.stats().tls_refused, 0);
    drop(q2);
    // Step 2 for sid 1 too (a restart).
    drop(q1);
    let q1 = tls_qcm(
        1,
        &ports,
        &pki.good("u1b", "sslQuorum=true\nportUnification=true\n"),
    );
    // Step 3: sid 2 with sslQuorum only; a plaintext peer is now refused.
    let q2 = tls_qcm(2, &ports, &pki.good("u3", "sslQuorum=true\n"));
    let mut plain = cnx::raw_peer(addr(ports[1]), &cnx::v1_handshake(3, 22698));
    assert!(cnx::closed_within(&mut plain, Duration::from_secs(1)));
    q2.connect_all();
    q1.connect_all();
    wait_for("link after the roll", LONG, || {
        q1.is_connected(2) && q2.is_connected(1)
    });
    assert_eq!(q2.stats().tls_refused, 1);
}
