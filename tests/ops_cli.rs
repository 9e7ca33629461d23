//! The operator's command line (issue 16 items 4 and 7): `zkfle status`
//! prints what ZooKeeper 3.8's `zkServer.sh status` prints (compared line
//! for line with Debian's script when Java is installed), `zkfle 4lw`
//! sends one word, and a security setting zkfle cannot honour stops
//! `zkfle run` with exit 2 naming the file, line and key.
//!
//! Ports 17700..=17999: the peer's client 17701, quorum 17801, election
//! 17901; a port nobody listens on: 17799.

#[path = "common/java.rs"]
mod java;
#[path = "common/peer.rs"]
mod peer;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use peer::{poll, zkfle_bin, Proc};

const CLIENT: u16 = 17701;
const DEAD: u16 = 17799;

/// A one-voter ensemble (it elects itself) with ZooKeeper's default
/// whitelist: `srvr` only, which is all `status` needs.
fn write_cfg(dir: &Path, extra: &str) -> std::path::PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("myid"), "1\n").unwrap();
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=200\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={CLIENT}\nclientPortAddress=127.0.0.1\nserver.1=127.0.0.1:17801:17901\n{extra}",
            data.display()
        ),
    )
    .unwrap();
    cfg
}

fn zkfle(args: &[&str]) -> Output {
    Command::new(zkfle_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn status_and_4lw_against_a_running_peer() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_cfg(dir.path(), "");
    let cfg_s = cfg.to_str().unwrap();
    let mut p = Proc::run_cfg(&cfg);
    let addr = format!("127.0.0.1:{CLIENT}");
    poll(Duration::from_secs(20), "the peer to lead", || {
        let o = zkfle(&["status", &addr]);
        if o.status.code() == Some(0) {
            Ok(())
        } else {
            Err(stdout(&o))
        }
    });

    let o = zkfle(&["status", cfg_s]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!("Client port found: {CLIENT}. Client address: 127.0.0.1. Client SSL: false.\nMode: leader\n")
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        format!("Using config: {cfg_s}\n")
    );
    let o = zkfle(&["status", &addr]);
    assert_eq!(
        (o.status.code(), stdout(&o)),
        (Some(0), "Mode: leader\n".into())
    );

    // Debian's zkServer.sh prints the same lines (its JMX note aside).
    if java::java_available() {
        let o = Command::new("/usr/share/zookeeper/bin/zkServer.sh")
            .args(["status", cfg_s])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        assert_eq!(stdout(&o), stdout(&zkfle(&["status", cfg_s])));
        println!("zkServer.sh status agrees:\n{}", stdout(&o));
    }

    // `4lw`: srvr is on by default, the rest are refused as ZooKeeper does.
    let o = zkfle(&["4lw", &addr, "srvr"]);
    assert!(stdout(&o).ends_with("Mode: leader\n"), "{}", stdout(&o));
    let o = zkfle(&["4lw", &addr, "ruok"]);
    assert_eq!(
        stdout(&o),
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(o.status.code(), Some(0));

    let st = p.terminate(Duration::from_secs(10)).expect("exit status");
    assert!(st.success(), "SIGTERM is a clean shutdown: {st:?}");

    // Nobody there: zkServer.sh's words and exit 1.
    let dead = format!("127.0.0.1:{DEAD}");
    let o = zkfle(&["status", &dead]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        "Error contacting service. It is probably not running.\n"
    );
    let o = zkfle(&["status", cfg_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).ends_with("Error contacting service. It is probably not running.\n"));
    let o = zkfle(&["4lw", &dead, "ruok"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&dead));
}

#[test]
fn security_settings_zkfle_cannot_honour_exit_2_naming_line_and_key() {
    for (setting, feature) in [
        (
            "quorum.auth.enableSasl=true",
            "SASL authentication between quorum peers",
        ),
        (
            "quorum.auth.serverRequireSasl=true",
            "SASL authentication between quorum peers",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_cfg(dir.path(), &format!("{setting}\n"));
        let key = setting.split('=').next().unwrap();
        let o = zkfle(&["run", cfg.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{setting}: {err}");
        assert_eq!(
            err,
            format!(
                "zkfle: {}:8: {key}: true asks for {feature}, which zkfle does not implement; it refuses to start rather than run without it (set it to false to run without {feature})\n",
                cfg.display()
            )
        );
    }
}
