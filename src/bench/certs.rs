//! Throw-away quorum TLS stores for `zkfle bench election --tls`: one CA
//! and one peer certificate (ECDSA P-256, `IP:127.0.0.1` and `localhost`
//! SANs, valid for a year) shared by every peer, written as ZooKeeper's PEM
//! loader reads them: the key store holds the certificate and an
//! unencrypted PKCS#8 key, the trust store the CA. Java 3.8 reads the same
//! files, so both implementations are measured with identical material.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
};

/// Why the stores could not be made.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen could not make the key or certificate.
    #[error("cannot make a test certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A store file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn write(path: &Path, text: &str) -> Result<(), CertError> {
    std::fs::write(path, text).map_err(|source| CertError::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Writes `dir/ca.pem` and `dir/peer.pem`; returns the zoo.cfg lines that
/// turn quorum TLS on with them (`sslQuorum=true` and the four
/// `ssl.quorum.*` store lines), each ending in a newline.
pub fn write_stores(dir: &Path) -> Result<String, CertError> {
    let now = std::time::SystemTime::now();
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "zkfle-bench-ca");
    ca.distinguished_name = dn;
    ca.not_before = (now - std::time::Duration::from_secs(3600)).into();
    ca.not_after = (now + std::time::Duration::from_secs(365 * 86400)).into();
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca.clone(), ca_key);

    let key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "zkfle-bench-peer");
    leaf.distinguished_name = dn;
    leaf.not_before = ca.not_before;
    leaf.not_after = ca.not_after;
    let cert = leaf.signed_by(&key, &issuer)?;

    let trust = dir.join("ca.pem");
    let store = dir.join("peer.pem");
    write(&trust, &ca_cert.pem())?;
    write(&store, &format!("{}{}", cert.pem(), key.serialize_pem()))?;
    Ok(format!(
        "sslQuorum=true\nssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\nssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        store.display(),
        trust.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ZkConfig;

    #[test]
    fn stores_load_as_quorum_tls() {
        let dir = super::super::workdir::WorkDir::new("zkfle-certs-test-").expect("temp dir");
        let lines = write_stores(dir.path()).expect("stores written");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(
            &cfg,
            format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=2181\nserver.1=127.0.0.1:2888:3888\n{lines}",
                dir.path().display()
            ),
        )
        .expect("zoo.cfg written");
        let config = ZkConfig::load(&cfg, Some(1)).expect("zoo.cfg parses");
        let tls = crate::tls::QuorumTls::load(&config).expect("stores load");
        assert!(tls.is_some_and(|t| t.ssl_quorum()));
        let pem = std::fs::read_to_string(dir.path().join("peer.pem")).expect("key store");
        assert!(pem.contains("BEGIN CERTIFICATE") && pem.contains("BEGIN PRIVATE KEY"));
    }
}
