//! Quorum TLS settings (issue 15): ZooKeeper's keys with ZooKeeper 3.8's
//! meaning (`X509Util`, `QuorumX509Util`, `SSLContextAndOptions`,
//! `QuorumPeerConfig`), checked here as text; the stores themselves are
//! read by `crate::tls` when the peer starts.
//!
//! | key | meaning (3.8) |
//! |---|---|
//! | `sslQuorum` | dial and accept with TLS on both quorum ports |
//! | `portUnification` | accept TLS and plaintext on one port |
//! | `sslQuorumReloadCertFiles` | pick up changed store files without a restart |
//! | `ssl.quorum.keyStore.location/password/passwordPath/type` | this server's certificate chain and key |
//! | `ssl.quorum.trustStore.location/password/passwordPath/type` | the CAs peers' certificates must chain to |
//! | `ssl.quorum.hostnameVerification` | default true: a peer's certificate must name its address |
//! | `ssl.quorum.protocol` | default `TLSv1.2`; the enabled protocols default to just this one |
//! | `ssl.quorum.enabledProtocols` | comma-separated list |
//! | `ssl.quorum.ciphersuites` | comma-separated list (IANA/Java names) |
//!
//! The `ssl.quorum.*` keys do nothing unless `sslQuorum` or
//! `portUnification` is true, in ZooKeeper too, so they are only checked
//! then. zkfle is stricter than ZooKeeper where a mistake would otherwise
//! show up as failed handshakes later: a missing store location, a JKS or
//! BCFKS store (Java formats), a protocol rustls does not speak, or a
//! revocation check zkfle cannot do (`ssl.quorum.crl`/`ocsp`) stop the peer
//! at startup with the key and its line.

use std::fmt;
use std::path::{Path, PathBuf};

use super::error::{ConfigError, Problem};
use super::parse::entry_err;
use super::values::parse_bool;

/// The file format of a key or trust store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// PEM text, read as ZooKeeper's `PemReader` reads it: certificates
    /// and (key store) one PKCS#8 private key.
    Pem,
    /// A PKCS#12 archive.
    Pkcs12,
}

impl fmt::Display for StoreType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreType::Pem => "PEM",
            StoreType::Pkcs12 => "PKCS12",
        })
    }
}

/// A store password, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

/// Where a setting came from: key and line, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    /// The key as written.
    pub key: String,
    /// Its 1-based line in the configuration file.
    pub line: usize,
}

/// One store (`ssl.quorum.keyStore.*` or `ssl.quorum.trustStore.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// The file.
    pub location: PathBuf,
    /// The `.location` key and line.
    pub location_key: KeyRef,
    /// `.password` (or the content of `.passwordPath`); empty when unset,
    /// as in ZooKeeper.
    pub password: Password,
    /// The key that gave the password, if any (`.passwordPath` wins over
    /// `.password`, as in ZooKeeper).
    pub password_key: Option<KeyRef>,
    /// The format, from `.type` or the file name's extension.
    pub store_type: StoreType,
}

/// A TLS protocol version zkfle speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2 (the only one Java ZooKeeper 3.8.0 enables by default).
    Tls12,
    /// TLS 1.3.
    Tls13,
}

/// The quorum TLS settings of a `zoo.cfg`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuorumTlsSettings {
    /// `sslQuorum`: dial with TLS, accept only TLS (unless
    /// `port_unification`).
    pub ssl_quorum: bool,
    /// `portUnification`: accept TLS and plaintext on the same port.
    pub port_unification: bool,
    /// `sslQuorumReloadCertFiles`.
    pub reload_cert_files: bool,
    /// This server's certificate chain and key (set when TLS is enabled).
    pub key_store: Option<StoreSettings>,
    /// The trusted CAs (set when TLS is enabled).
    pub trust_store: Option<StoreSettings>,
    /// `ssl.quorum.hostnameVerification` (default true).
    pub hostname_verification: bool,
    /// The enabled protocol versions, ascending.
    pub protocols: Vec<TlsVersion>,
    /// `ssl.quorum.ciphersuites` as written (names), if set, and its line.
    pub cipher_suites: Option<(KeyRef, Vec<String>)>,
    /// The configuration file the settings came from (for messages).
    pub config_path: PathBuf,
}

impl QuorumTlsSettings {
    /// True when either port needs TLS material: `sslQuorum` or
    /// `portUnification`.
    pub fn enabled(&self) -> bool {
        self.ssl_quorum || self.port_unification
    }
}

/// Why a TLS setting was refused (shown after `file:line: key: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsProblem {
    /// A store type zkfle cannot read.
    #[error("{found} stores are Java's own format, which zkfle cannot read; convert it to PKCS12 (keytool -importkeystore -srckeystore FILE -destkeystore FILE.p12 -deststoretype PKCS12) or PEM")]
    JavaStore {
        /// `JKS` or `BCFKS`.
        found: String,
    },
    /// Not a store type at all.
    #[error("{value:?} is not a store type: use PEM or PKCS12")]
    UnknownStoreType {
        /// As written.
        value: String,
    },
    /// No `.type` and an extension that says nothing.
    #[error("cannot tell the store type from the file name {}: set {type_key} to PEM or PKCS12", file.display())]
    TypeFromName {
        /// The location.
        file: PathBuf,
        /// The `.type` key to set.
        type_key: String,
    },
    /// A protocol rustls does not speak.
    #[error("{value:?}: zkfle speaks TLSv1.2 and TLSv1.3 only")]
    Protocol {
        /// As written.
        value: String,
    },
    /// A Java-only or unimplemented setting switched on.
    #[error("{what} is not implemented by zkfle; it refuses to start rather than run without it")]
    Unhonoured {
        /// What the setting asks for.
        what: &'static str,
    },
    /// `.passwordPath` names a file that cannot be read.
    #[error("cannot read password file {}: {reason}", file.display())]
    PasswordFile {
        /// The file.
        file: PathBuf,
        /// What the OS said.
        reason: String,
    },
}

/// `ssl.quorum.` keys zkfle reads; the others of the family are accepted
/// and logged as unused.
const PREFIX: &str = "ssl.quorum.";

/// Builds the settings from the three switches and the `ssl.quorum.*`
/// entries `(line, key, value)`. Only checks the `ssl.quorum.*` values when
/// TLS is enabled (they are inert otherwise, as in ZooKeeper).
pub(super) fn settings(
    path: &Path,
    switches: &TlsSwitches,
    entries: &[(usize, String, String)],
) -> Result<QuorumTlsSettings, ConfigError> {
    let mut s = QuorumTlsSettings {
        ssl_quorum: switches.ssl_quorum,
        port_unification: switches.port_unification,
        reload_cert_files: switches.reload_cert_files,
        hostname_verification: true,
        protocols: vec![TlsVersion::Tls12],
        config_path: path.to_path_buf(),
        ..Default::default()
    };
    if !s.enabled() {
        return Ok(s);
    }
    let get = |name: &str| -> Option<(usize, &str, &str)> {
        entries
            .iter()
            .rev()
            .find(|(_, k, _)| k.strip_prefix(PREFIX) == Some(name))
            .map(|(l, k, v)| (*l, k.as_str(), v.as_str()))
    };
    let err = |line: usize, key: &str, p: TlsProblem| entry_err(path, line, key, Problem::Tls(p));

    for (name, what) in [
        (
            "crl",
            "certificate revocation list checking (ssl.quorum.crl)",
        ),
        ("ocsp", "OCSP revocation checking (ssl.quorum.ocsp)"),
    ] {
        if let Some((line, key, value)) = get(name) {
            if parse_bool(value).map_err(|p| entry_err(path, line, key, p))? {
                return Err(err(line, key, TlsProblem::Unhonoured { what }));
            }
        }
    }
    if let Some((line, key, _)) = get("context.supplier.class") {
        return Err(err(
            line,
            key,
            TlsProblem::Unhonoured {
                what: "a Java SSLContext supplier class",
            },
        ));
    }
    if let Some((line, key, value)) = get("clientAuth") {
        if !value.trim().eq_ignore_ascii_case("need") && !value.trim().is_empty() {
            log::warn!(
                "{}:{line}: {key}={value}: zkfle always requires a certificate from a connecting peer (clientAuth=need)",
                path.display()
            );
        }
    }
    if let Some((line, key, value)) = get("hostnameVerification") {
        s.hostname_verification = parse_bool(value).map_err(|p| entry_err(path, line, key, p))?;
    }

    s.key_store = Some(store(path, "keyStore", &get)?);
    s.trust_store = Some(store(path, "trustStore", &get)?);

    // ZooKeeper 3.8: SSLContext.getInstance(protocol), enabled protocols
    // default to just that one ("TLSv1.2" unless set).
    let mut protocols = match get("protocol") {
        Some((line, key, value)) => {
            vec![protocol(value).map_err(|p| err(line, key, p))?]
        }
        None => vec![Some(TlsVersion::Tls12)],
    };
    if let Some((line, key, value)) = get("enabledProtocols") {
        protocols = Vec::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match protocol(name) {
                Ok(v) => protocols.push(v),
                Err(_) => log::warn!(
                    "{}:{line}: {key}: {name} is not a protocol zkfle speaks; ignored",
                    path.display()
                ),
            }
        }
        if protocols.is_empty() {
            return Err(err(
                line,
                key,
                TlsProblem::Protocol {
                    value: value.to_string(),
                },
            ));
        }
    }
    // `TLS` (None) means every version zkfle speaks.
    let mut versions: Vec<TlsVersion> = protocols
        .into_iter()
        .flat_map(|p| match p {
            Some(v) => vec![v],
            None => vec![TlsVersion::Tls12, TlsVersion::Tls13],
        })
        .collect();
    versions.sort();
    versions.dedup();
    s.protocols = versions;

    if let Some((line, key, value)) = get("ciphersuites") {
        let names: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect();
        s.cipher_suites = Some((
            KeyRef {
                key: key.to_string(),
                line,
            },
            names,
        ));
    }
    Ok(s)
}

/// The three boolean switches, read by the key stage.
#[derive(Debug, Default)]
pub(super) struct TlsSwitches {
    pub ssl_quorum: bool,
    pub port_unification: bool,
    pub reload_cert_files: bool,
}

/// `TLSv1.2`, `TLSv1.3`, or `TLS` (None: both).
fn protocol(value: &str) -> Result<Option<TlsVersion>, TlsProblem> {
    match value.trim() {
        "TLSv1.2" => Ok(Some(TlsVersion::Tls12)),
        "TLSv1.3" => Ok(Some(TlsVersion::Tls13)),
        "TLS" => Ok(None),
        other => Err(TlsProblem::Protocol {
            value: other.to_string(),
        }),
    }
}

/// An entry as (line, key, value).
type Entry<'a> = (usize, &'a str, &'a str);

/// Reads `ssl.quorum.<which>.location|password|passwordPath|type`.
fn store<'a>(
    path: &Path,
    which: &str,
    get: &dyn Fn(&str) -> Option<Entry<'a>>,
) -> Result<StoreSettings, ConfigError> {
    let loc_key = format!("{PREFIX}{which}.location");
    let type_key = format!("{PREFIX}{which}.type");
    let Some((loc_line, _, location)) =
        get(&format!("{which}.location")).filter(|(_, _, v)| !v.trim().is_empty())
    else {
        return Err(ConfigError::File {
            path: path.to_path_buf(),
            problem: Problem::TlsStoreMissing { key: loc_key },
        });
    };
    let location = PathBuf::from(location.trim());
    let store_type = match get(&format!("{which}.type")).filter(|(_, _, v)| !v.trim().is_empty()) {
        Some((line, key, value)) => {
            store_type(value).map_err(|p| entry_err(path, line, key, Problem::Tls(p)))?
        }
        None => {
            // KeyStoreFileType.fromFilename: the extension decides.
            let ext = location.extension().and_then(|e| e.to_str()).unwrap_or("");
            match ext {
                "pem" => StoreType::Pem,
                "p12" => StoreType::Pkcs12,
                "jks" | "bcfks" => {
                    return Err(entry_err(
                        path,
                        loc_line,
                        &loc_key,
                        Problem::Tls(TlsProblem::JavaStore {
                            found: ext.to_ascii_uppercase(),
                        }),
                    ))
                }
                _ => {
                    return Err(entry_err(
                        path,
                        loc_line,
                        &loc_key,
                        Problem::Tls(TlsProblem::TypeFromName {
                            file: location,
                            type_key,
                        }),
                    ))
                }
            }
        }
    };
    let mut password = Password::default();
    let mut password_key = None;
    if let Some((line, key, value)) = get(&format!("{which}.password")) {
        password = Password(value.to_string());
        password_key = Some(KeyRef {
            key: key.to_string(),
            line,
        });
    }
    if let Some((line, key, value)) = get(&format!("{which}.passwordPath")) {
        // X509Util.getPasswordFromConfigPropertyOrFile: the file wins.
        let file = PathBuf::from(value.trim());
        let text = std::fs::read_to_string(&file).map_err(|e| {
            entry_err(
                path,
                line,
                key,
                Problem::Tls(TlsProblem::PasswordFile {
                    file: file.clone(),
                    reason: e.to_string(),
                }),
            )
        })?;
        password = Password(text.trim_end_matches(['\r', '\n']).to_string());
        password_key = Some(KeyRef {
            key: key.to_string(),
            line,
        });
    }
    Ok(StoreSettings {
        location,
        location_key: KeyRef {
            key: loc_key,
            line: loc_line,
        },
        password,
        password_key,
        store_type,
    })
}

/// `KeyStoreFileType.fromPropertyValue`, minus the Java formats.
fn store_type(value: &str) -> Result<StoreType, TlsProblem> {
    match value.trim().to_ascii_uppercase().as_str() {
        "PEM" => Ok(StoreType::Pem),
        "PKCS12" => Ok(StoreType::Pkcs12),
        found @ ("JKS" | "BCFKS") => Err(TlsProblem::JavaStore {
            found: found.to_string(),
        }),
        _ => Err(TlsProblem::UnknownStoreType {
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[&str]) -> Vec<(usize, String, String)> {
        list.iter()
            .enumerate()
            .map(|(i, kv)| {
                let (k, v) = kv.split_once('=').unwrap();
                (i + 1, k.to_string(), v.to_string())
            })
            .collect()
    }

    fn on() -> TlsSwitches {
        TlsSwitches {
            ssl_quorum: true,
            ..Default::default()
        }
    }

    const STORES: [&str; 2] = [
        "ssl.quorum.keyStore.location=/k.pem",
        "ssl.quorum.trustStore.location=/t.p12",
    ];

    #[test]
    fn defaults_follow_zookeeper_3_8() {
        let s = settings(Path::new("z.cfg"), &on(), &entries(&STORES)).unwrap();
        assert!(s.hostname_verification);
        assert_eq!(s.protocols, vec![TlsVersion::Tls12]);
        assert_eq!(s.key_store.unwrap().store_type, StoreType::Pem);
        assert_eq!(s.trust_store.unwrap().store_type, StoreType::Pkcs12);
    }

    #[test]
    fn inert_while_tls_is_off() {
        let s = settings(
            Path::new("z.cfg"),
            &TlsSwitches::default(),
            &entries(&["ssl.quorum.keyStore.type=JKS"]),
        )
        .unwrap();
        assert!(!s.enabled());
        assert!(s.key_store.is_none());
    }

    #[test]
    fn protocols() {
        let mut e = STORES.to_vec();
        e.push("ssl.quorum.protocol=TLSv1.3");
        let s = settings(Path::new("z.cfg"), &on(), &entries(&e)).unwrap();
        assert_eq!(s.protocols, vec![TlsVersion::Tls13]);
        e.push("ssl.quorum.enabledProtocols=TLSv1.3, TLSv1.1,TLSv1.2");
        let s = settings(Path::new("z.cfg"), &on(), &entries(&e)).unwrap();
        assert_eq!(s.protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
        let mut bad = STORES.to_vec();
        bad.push("ssl.quorum.protocol=TLSv1.1");
        let e = settings(Path::new("z.cfg"), &on(), &entries(&bad)).unwrap_err();
        assert_eq!(e.key(), Some("ssl.quorum.protocol"));
        assert_eq!(e.line(), Some(3));
    }

    #[test]
    fn java_stores_and_missing_locations_are_refused_with_their_key() {
        let e = settings(
            Path::new("z.cfg"),
            &on(),
            &entries(&[STORES[0], STORES[1], "ssl.quorum.trustStore.type=jks"]),
        )
        .unwrap_err();
        assert_eq!(
            (e.key(), e.line()),
            (Some("ssl.quorum.trustStore.type"), Some(3))
        );
        assert!(e.to_string().contains("JKS stores are Java's own format"));
        let e = settings(
            Path::new("z.cfg"),
            &on(),
            &entries(&["ssl.quorum.keyStore.location=/k.jks", STORES[1]]),
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("ssl.quorum.keyStore.location"));
        let e = settings(Path::new("z.cfg"), &on(), &entries(&[STORES[0]])).unwrap_err();
        assert!(
            e.to_string()
                .contains("ssl.quorum.trustStore.location is not set"),
            "{e}"
        );
        let e = settings(
            Path::new("z.cfg"),
            &on(),
            &entries(&[STORES[0], STORES[1], "ssl.quorum.ocsp=true"]),
        )
        .unwrap_err();
        assert_eq!(e.key(), Some("ssl.quorum.ocsp"));
    }

    #[test]
    fn password_is_never_shown() {
        let s = settings(
            Path::new("z.cfg"),
            &on(),
            &entries(&[STORES[0], STORES[1], "ssl.quorum.keyStore.password=hunter2"]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.key_store.unwrap().password.0, "hunter2");
    }
}
