//! Certificates made at test time (rcgen): a CA, peers signed by it with
//! `IP:127.0.0.1` SANs (Java checks the client's certificate against the
//! connecting IP too), and the bad ones the refusal tests need (another
//! CA, expired, wrong name). Files are PEM as ZooKeeper reads them: a key
//! store holds the certificate and an unencrypted PKCS#8 key.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, SanType,
};

/// A certificate authority.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `name` with the given SANs, valid from 2020 to 2100
    /// unless `expired`.
    pub fn leaf(&self, name: &str, ips: &[IpAddr], dns: &[&str], expired: bool) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        } else {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2100, 1, 1);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
        }
    }

    /// A good peer certificate for 127.0.0.1 (and `localhost`).
    pub fn peer(&self, name: &str) -> Leaf {
        self.leaf(
            name,
            &[IpAddr::V4(Ipv4Addr::LOCALHOST)],
            &["localhost"],
            false,
        )
    }
}

/// A certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub key_der: Vec<u8>,
}

impl Leaf {
    /// Writes a PEM key store (certificate, then PKCS#8 key).
    pub fn write_pem(&self, path: &Path) -> PathBuf {
        std::fs::write(path, format!("{}{}", self.cert_pem, self.key_pem)).unwrap();
        path.to_path_buf()
    }

    /// Writes a PKCS12 key store with `password`.
    pub fn write_p12(&self, path: &Path, password: &str) -> PathBuf {
        let cert = p12_keystore::Certificate::from_der(&self.cert_der).unwrap();
        let key = p12_keystore::PrivateKey::from_der(&self.key_der).unwrap();
        let chain = p12_keystore::PrivateKeyChain::new(vec![1u8; 20], key, vec![cert]);
        let mut ks = p12_keystore::KeyStore::new();
        ks.add_entry("peer", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        std::fs::write(path, ks.writer(password).write().unwrap()).unwrap();
        path.to_path_buf()
    }
}

/// Writes a PEM trust store holding `cas`.
pub fn write_trust(path: &Path, cas: &[&Ca]) -> PathBuf {
    let text: String = cas.iter().map(|c| c.pem.clone()).collect();
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// The zoo.cfg lines for a PEM key store and trust store.
pub fn tls_lines(key_store: &Path, trust_store: &Path) -> String {
    format!(
        "ssl.quorum.keyStore.location={}\nssl.quorum.keyStore.type=PEM\nssl.quorum.trustStore.location={}\nssl.quorum.trustStore.type=PEM\n",
        key_store.display(),
        trust_store.display()
    )
}
