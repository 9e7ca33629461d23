//! Quorum TLS stores at startup (issue 15 item 1): PEM as ZooKeeper reads
//! it and PKCS12 load; a JKS store, a missing file, a wrong password, a
//! PKCS#1 key or a key that does not match its certificate stop the peer
//! with a message naming the key and its line (and `zkfle run` exits 2).

#[path = "common/certs.rs"]
mod certs;

use std::path::Path;
use std::process::Command;

use zkfle::config::ZkConfig;
use zkfle::tls::QuorumTls;

fn cfg_text(dir: &Path, tls: &str) -> String {
    format!(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=19901\nserver.1=127.0.0.1:19911:19921\nserver.2=127.0.0.1:19912:19922\nsslQuorum=true\n{tls}",
        dir.display()
    )
}

/// Loads the stores of a config made of `tls` lines; the line numbers of
/// `tls` start at 9.
fn load(dir: &Path, tls: &str) -> Result<QuorumTls, String> {
    let path = dir.join("zoo.cfg");
    let text = cfg_text(dir, tls);
    std::fs::write(&path, &text).unwrap();
    let cfg = ZkConfig::parse(&text, &path, Some(1)).map_err(|e| e.to_string())?;
    match QuorumTls::load(&cfg) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err("TLS not enabled".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn pem_and_pkcs12_stores_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::Ca::new("ca");
    let peer = ca.peer("peer");
    let ks = peer.write_pem(&d.join("ks.pem"));
    let ts = certs::write_trust(&d.join("ts.pem"), &[&ca]);
    let t = load(d, &certs::tls_lines(&ks, &ts)).unwrap();
    assert!(t.ssl_quorum() && !t.port_unification());

    // PKCS12 key store with a password; the type from the extension.
    let p12 = peer.write_p12(&d.join("ks.p12"), "s3cret");
    load(
        d,
        &format!(
            "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=s3cret\nssl.quorum.trustStore.location={}\n",
            p12.display(),
            ts.display()
        ),
    )
    .unwrap();
    // The password from a file (passwordPath wins over password).
    std::fs::write(d.join("pw"), "s3cret\n").unwrap();
    load(
        d,
        &format!(
            "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=wrong\nssl.quorum.keyStore.passwordPath={}\nssl.quorum.trustStore.location={}\n",
            p12.display(),
            d.join("pw").display(),
            ts.display()
        ),
    )
    .unwrap();
}

#[test]
fn bad_stores_name_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::Ca::new("ca");
    let peer = ca.peer("peer");
    let other = ca.peer("other");
    let ks = peer.write_pem(&d.join("ks.pem"));
    let ts = certs::write_trust(&d.join("ts.pem"), &[&ca]);
    let zoo = d.join("zoo.cfg");
    let z = zoo.display();

    // Missing file.
    let e = load(d, &certs::tls_lines(&d.join("missing.pem"), &ts)).unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{z}:9: ssl.quorum.keyStore.location: cannot read {}",
            d.join("missing.pem").display()
        )),
        "{e}"
    );

    // A JKS store (by type, and by extension).
    let e = load(
        d,
        &format!(
            "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=JKS\nssl.quorum.trustStore.location={}\n",
            ks.display(),
            ts.display()
        ),
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{z}:10: ssl.quorum.keyStore.type: JKS stores are Java's own format"
        )),
        "{e}"
    );
    let e = load(
        d,
        &format!(
            "ssl.quorum.keyStore.location={}\nssl.quorum.trustStore.location=/etc/zk/trust.jks\n",
            ks.display()
        ),
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!("{z}:10: ssl.quorum.trustStore.location: JKS")),
        "{e}"
    );

    // Wrong PKCS12 password: names the password key and its line.
    let p12 = peer.write_p12(&d.join("ks.p12"), "right");
    let e = load(
        d,
        &format!(
            "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.password=wrong\nssl.quorum.trustStore.location={}\n",
            p12.display(),
            ts.display()
        ),
    )
    .unwrap_err();
    assert_eq!(
        e,
        format!(
            "{z}:10: ssl.quorum.keyStore.password: wrong password for {}",
            p12.display()
        )
    );

    // A key that is not the certificate's.
    let mismatched = d.join("mismatch.pem");
    std::fs::write(&mismatched, format!("{}{}", peer.cert_pem, other.key_pem)).unwrap();
    let e = load(d, &certs::tls_lines(&mismatched, &ts)).unwrap_err();
    assert!(
        e.starts_with(&format!("{z}:9: ssl.quorum.keyStore.location: the private key in {} does not match its certificate", mismatched.display())),
        "{e}"
    );

    // A password for a PEM key that is not encrypted (ZooKeeper fails too).
    let e = load(
        d,
        &format!(
            "{}ssl.quorum.keyStore.password=x\n",
            certs::tls_lines(&ks, &ts)
        ),
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{z}:13: ssl.quorum.keyStore.password: a password is set but the key"
        )),
        "{e}"
    );

    // A store without a key, a trust store without certificates.
    let certonly = d.join("certonly.pem");
    std::fs::write(&certonly, &peer.cert_pem).unwrap();
    let e = load(d, &certs::tls_lines(&certonly, &ts)).unwrap_err();
    assert!(e.contains("holds no private key"), "{e}");
    let empty = d.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let e = load(d, &certs::tls_lines(&ks, &empty)).unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{z}:11: ssl.quorum.trustStore.location: {} holds no trusted certificate",
            empty.display()
        )),
        "{e}"
    );

    // No trust store at all.
    let e = load(
        d,
        &format!("ssl.quorum.keyStore.location={}\n", ks.display()),
    )
    .unwrap_err();
    assert!(
        e.contains("ssl.quorum.trustStore.location is not set"),
        "{e}"
    );

    // Cipher suites zkfle does not have.
    let e = load(
        d,
        &format!(
            "{}ssl.quorum.ciphersuites=TLS_RSA_WITH_AES_128_CBC_SHA\n",
            certs::tls_lines(&ks, &ts)
        ),
    )
    .unwrap_err();
    assert!(
        e.starts_with(&format!("{z}:13: ssl.quorum.ciphersuites: none of")),
        "{e}"
    );
}

/// OpenSSL-made keys: PKCS#1 refused as ZooKeeper refuses it; an encrypted
/// PKCS#8 key (OpenSSL 3's default PBES2) opens with its password.
#[test]
fn openssl_keys() {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "CI needs the openssl CLI");
        eprintln!("skipped: no openssl CLI");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::Ca::new("ca");
    let peer = ca.peer("peer");
    let ts = certs::write_trust(&d.join("ts.pem"), &[&ca]);
    std::fs::write(d.join("key.pem"), &peer.key_pem).unwrap();
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(d)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    openssl(&[
        "pkcs8",
        "-topk8",
        "-in",
        "key.pem",
        "-out",
        "enc.pem",
        "-passout",
        "pass:s3cret",
    ]);
    let enc = d.join("enc-store.pem");
    std::fs::write(
        &enc,
        format!(
            "{}{}",
            peer.cert_pem,
            std::fs::read_to_string(d.join("enc.pem")).unwrap()
        ),
    )
    .unwrap();
    load(
        d,
        &format!(
            "{}ssl.quorum.keyStore.password=s3cret\n",
            certs::tls_lines(&enc, &ts)
        ),
    )
    .unwrap();
    let e = load(
        d,
        &format!(
            "{}ssl.quorum.keyStore.password=nope\n",
            certs::tls_lines(&enc, &ts)
        ),
    )
    .unwrap_err();
    assert!(
        e.contains("ssl.quorum.keyStore.password: wrong password"),
        "{e}"
    );
    let e = load(d, &certs::tls_lines(&enc, &ts)).unwrap_err();
    assert!(
        e.contains("is encrypted; set ssl.quorum.keyStore.password"),
        "{e}"
    );

    // SEC1 ("EC PRIVATE KEY"): what `openssl ec` writes; ZooKeeper refuses it.
    openssl(&["ec", "-in", "key.pem", "-out", "sec1.pem"]);
    let sec1 = d.join("sec1-store.pem");
    std::fs::write(
        &sec1,
        format!(
            "{}{}",
            peer.cert_pem,
            std::fs::read_to_string(d.join("sec1.pem")).unwrap()
        ),
    )
    .unwrap();
    let e = load(d, &certs::tls_lines(&sec1, &ts)).unwrap_err();
    assert!(e.contains("reads PKCS#8 keys only"), "{e}");
}

/// `zkfle run` with a bad store: exit 2 and the message names the key.
#[test]
fn zkfle_run_exits_2_on_a_bad_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = certs::Ca::new("ca");
    let ts = certs::write_trust(&d.join("ts.pem"), &[&ca]);
    let path = d.join("zoo.cfg");
    std::fs::write(
        &path,
        cfg_text(d, &certs::tls_lines(&d.join("nope.pem"), &ts)),
    )
    .unwrap();
    std::fs::write(d.join("myid"), "1\n").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_zkfle"))
        .args(["run", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "zkfle: {}:9: ssl.quorum.keyStore.location: cannot read",
            path.display()
        )),
        "{err}"
    );
}
