//! Reading key and trust stores the way ZooKeeper 3.8 reads them.
//!
//! * **PEM** (`PEMFileLoader`/`PemReader`): a key store holds every
//!   `CERTIFICATE` block (the chain, this server's first) and one PKCS#8
//!   private key: `BEGIN PRIVATE KEY`, or `BEGIN ENCRYPTED PRIVATE KEY`
//!   when `.password` is set (ZooKeeper then decrypts it with the password
//!   and nothing else). A trust store holds certificates, all trusted; its
//!   password is ignored, as in ZooKeeper. PKCS#1 (`RSA PRIVATE KEY`) and
//!   SEC1 (`EC PRIVATE KEY`) keys are refused as ZooKeeper refuses them
//!   ("algid parse error"), with the `openssl pkcs8` command that converts
//!   them, so a store works the same for a Java and a zkfle peer.
//!   Encrypted keys: zkfle decrypts PBES2 (PBKDF2 + AES-CBC or 3DES, what
//!   OpenSSL writes by default); Java 17 cannot (it reads only the old
//!   PKCS#12 PBE schemes, which zkfle in turn does not decrypt in PEM). A
//!   PKCS12 store is the portable way to keep a key encrypted.
//! * **PKCS12**: the key store's first private key and its chain, the
//!   store password opening both (as Java's `KeyManagerFactory.init(ks,
//!   password)` does); a trust store's certificates, all trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use crate::config::{StoreSettings, StoreType};

/// Largest store file read; real stores are a few KiB.
const MAX_STORE_BYTES: u64 = 4 << 20;

/// What is wrong with a store (shown after `file:line: key: `).
#[derive(Debug, thiserror::Error)]
pub enum StoreProblem {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", file.display())]
    Unreadable {
        /// The store file.
        file: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Not PEM text / not a PKCS12 archive, or a block that does not decode.
    #[error("{} is not a readable {kind} store: {reason}", file.display())]
    Malformed {
        /// The store file.
        file: PathBuf,
        /// PEM or PKCS12.
        kind: StoreType,
        /// Details.
        reason: String,
    },
    /// A key store without a certificate.
    #[error("{} holds no certificate", file.display())]
    NoCertificate {
        /// The store file.
        file: PathBuf,
    },
    /// A key store without a private key.
    #[error("{} holds no private key (a PEM key store needs a BEGIN PRIVATE KEY block, PKCS#8)", file.display())]
    NoPrivateKey {
        /// The store file.
        file: PathBuf,
    },
    /// A PKCS#1 or SEC1 key, which ZooKeeper's PEM reader refuses.
    #[error("{} holds a {label} key; ZooKeeper (and so zkfle) reads PKCS#8 keys only: convert it with openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8", file.display())]
    NotPkcs8 {
        /// The store file.
        file: PathBuf,
        /// The PEM label.
        label: &'static str,
    },
    /// An encrypted key and no password.
    #[error("the key in {} is encrypted; set {password_key}", file.display())]
    EncryptedWithoutPassword {
        /// The store file.
        file: PathBuf,
        /// The key to set.
        password_key: String,
    },
    /// A password for an unencrypted PEM key (ZooKeeper then expects an
    /// encrypted one and fails).
    #[error("a password is set but the key in {} is not encrypted (ZooKeeper reads a PEM key as encrypted whenever a password is set): remove the password or encrypt the key", file.display())]
    PasswordForPlainKey {
        /// The store file.
        file: PathBuf,
    },
    /// The password does not open the store or key.
    #[error("wrong password for {}", file.display())]
    WrongPassword {
        /// The store file.
        file: PathBuf,
    },
    /// An encryption scheme zkfle cannot decrypt.
    #[error("the key in {} is encrypted with a scheme zkfle cannot decrypt ({reason}); use PBES2 (openssl pkcs8 -topk8 -v2 aes-256-cbc) or a PKCS12 store", file.display())]
    UnsupportedEncryption {
        /// The store file.
        file: PathBuf,
        /// Details.
        reason: String,
    },
    /// A key rustls cannot sign with, or a certificate it cannot parse.
    #[error("{}: {reason}", file.display())]
    Unusable {
        /// The store file.
        file: PathBuf,
        /// Details.
        reason: String,
    },
    /// The private key does not belong to the first certificate.
    #[error("the private key in {} does not match its certificate (the first certificate must be this server's, signed for this key)", file.display())]
    KeyMismatch {
        /// The store file.
        file: PathBuf,
    },
    /// A trust store without any certificate.
    #[error("{} holds no trusted certificate", file.display())]
    NoTrustAnchor {
        /// The store file.
        file: PathBuf,
    },
    /// `ssl.quorum.ciphersuites` names nothing zkfle can use with the
    /// enabled protocols.
    #[error("none of {names:?} is a cipher suite zkfle offers with the enabled protocols (it has {available})")]
    NoCipherSuite {
        /// As configured.
        names: Vec<String>,
        /// What would work.
        available: String,
    },
}

impl StoreProblem {
    /// True if the problem is about the password (so the error names the
    /// password key rather than the location).
    pub(crate) fn is_password(&self) -> bool {
        matches!(
            self,
            StoreProblem::WrongPassword { .. }
                | StoreProblem::PasswordForPlainKey { .. }
                | StoreProblem::UnsupportedEncryption { .. }
        )
    }
}

fn read(file: &Path) -> Result<Vec<u8>, StoreProblem> {
    use std::io::Read as _;
    let unreadable = |source| StoreProblem::Unreadable {
        file: file.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .map_err(unreadable)?
        .take(MAX_STORE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_STORE_BYTES {
        return Err(StoreProblem::Malformed {
            file: file.to_path_buf(),
            kind: StoreType::Pem,
            reason: format!("larger than {MAX_STORE_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

/// Loads this server's certificate chain and key, checking that they
/// belong together.
pub(crate) fn load_key_store(
    s: &StoreSettings,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, StoreProblem> {
    let file = &s.location;
    let bytes = read(file)?;
    let (chain, key) = match s.store_type {
        StoreType::Pem => pem_key_store(file, &bytes, &s.password.0, s)?,
        StoreType::Pkcs12 => pkcs12_key_store(file, &bytes, &s.password.0)?,
    };
    let signing =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| StoreProblem::Unusable {
                file: file.clone(),
                reason: format!("unusable private key: {e}"),
            })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(StoreProblem::KeyMismatch { file: file.clone() })
        }
        Err(e) => Err(StoreProblem::Unusable {
            file: file.clone(),
            reason: format!("cannot check the key against the certificate: {e}"),
        }),
    }
}

/// Loads the trusted certificates.
pub(crate) fn load_trust_store(s: &StoreSettings) -> Result<RootCertStore, StoreProblem> {
    let file = &s.location;
    let bytes = read(file)?;
    let certs = match s.store_type {
        StoreType::Pem => pem_certificates(file, &bytes)?,
        StoreType::Pkcs12 => {
            let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&bytes, &s.password.0)
                .map_err(|e| pkcs12_error(file, e))?;
            archive
                .certs
                .iter()
                .map(|c| CertificateDer::from(c.cert.as_der().to_vec()))
                .collect()
        }
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| StoreProblem::Malformed {
            file: file.clone(),
            kind: s.store_type,
            reason: format!("a certificate cannot be a trust anchor: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(StoreProblem::NoTrustAnchor { file: file.clone() });
    }
    Ok(roots)
}

fn malformed_pem(file: &Path, reason: impl ToString) -> StoreProblem {
    StoreProblem::Malformed {
        file: file.to_path_buf(),
        kind: StoreType::Pem,
        reason: reason.to_string(),
    }
}

/// Every `CERTIFICATE` block, in file order.
fn pem_certificates(
    file: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, StoreProblem> {
    let mut certs = Vec::new();
    for section in pem_sections(file, bytes)? {
        if let (SectionKind::Certificate, der) = section {
            certs.push(CertificateDer::from(der));
        }
    }
    Ok(certs)
}

fn pem_sections(file: &Path, bytes: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, StoreProblem> {
    <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed_pem(file, format!("{e:?}")))
}

/// The text of the first `BEGIN ENCRYPTED PRIVATE KEY` block, if any (the
/// PEM reader above skips labels it does not know).
fn encrypted_key_block(text: &str) -> Option<&str> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let start = text.find(BEGIN)?;
    let end = text[start..].find(END)? + start + END.len();
    Some(&text[start..end])
}

type ChainAndKey = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn pem_key_store(
    file: &Path,
    bytes: &[u8],
    password: &str,
    s: &StoreSettings,
) -> Result<ChainAndKey, StoreProblem> {
    let sections = pem_sections(file, bytes)?;
    let chain: Vec<CertificateDer<'static>> = sections
        .iter()
        .filter(|(k, _)| *k == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    let text = String::from_utf8_lossy(bytes);
    let encrypted = encrypted_key_block(&text);
    let plain = sections.iter().find_map(|(k, der)| match k {
        SectionKind::PrivateKey => Some(Ok(der.clone())),
        SectionKind::RsaPrivateKey => Some(Err("PKCS#1 (BEGIN RSA PRIVATE KEY)")),
        SectionKind::EcPrivateKey => Some(Err("SEC1 (BEGIN EC PRIVATE KEY)")),
        _ => None,
    });
    let key_der = match (plain, encrypted, password.is_empty()) {
        (Some(Err(label)), _, _) => {
            return Err(StoreProblem::NotPkcs8 {
                file: file.to_path_buf(),
                label,
            })
        }
        (Some(Ok(_)), _, false) => {
            return Err(StoreProblem::PasswordForPlainKey {
                file: file.to_path_buf(),
            })
        }
        (Some(Ok(der)), _, true) => der,
        (None, Some(_), true) => {
            return Err(StoreProblem::EncryptedWithoutPassword {
                file: file.to_path_buf(),
                password_key: s.location_key.key.replace(".location", ".password"),
            })
        }
        (None, Some(block), false) => decrypt_pkcs8(file, block, password)?,
        (None, None, _) => {
            return Err(StoreProblem::NoPrivateKey {
                file: file.to_path_buf(),
            })
        }
    };
    if chain.is_empty() {
        return Err(StoreProblem::NoCertificate {
            file: file.to_path_buf(),
        });
    }
    Ok((
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
    ))
}

fn decrypt_pkcs8(file: &Path, block: &str, password: &str) -> Result<Vec<u8>, StoreProblem> {
    use pkcs8::der::Document;
    use pkcs8::EncryptedPrivateKeyInfoRef;
    let (_, doc) = Document::from_pem(block).map_err(|e| malformed_pem(file, e))?;
    let info =
        EncryptedPrivateKeyInfoRef::try_from(doc.as_bytes()).map_err(|e| malformed_pem(file, e))?;
    if info.encryption_algorithm.pbes2().is_none() {
        return Err(StoreProblem::UnsupportedEncryption {
            file: file.to_path_buf(),
            reason: format!("{}", info.encryption_algorithm.oid()),
        });
    }
    match info.decrypt(password) {
        Ok(secret) => Ok(secret.as_bytes().to_vec()),
        // A wrong password shows as bad padding or a plaintext that does
        // not decode; an unsupported cipher or PRF as a scheme error.
        Err(pkcs8::Error::EncryptedPrivateKey(
            pkcs8::pkcs5::Error::AlgorithmParametersInvalid { .. },
        ))
        | Err(pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm {
            ..
        })) => Err(StoreProblem::UnsupportedEncryption {
            file: file.to_path_buf(),
            reason: "cipher or key derivation not supported".into(),
        }),
        Err(_) => Err(StoreProblem::WrongPassword {
            file: file.to_path_buf(),
        }),
    }
}

fn pkcs12_error(file: &Path, e: p12_keystore::error::Error) -> StoreProblem {
    use p12_keystore::error::Error as E;
    match e {
        E::MacError(_) => StoreProblem::WrongPassword {
            file: file.to_path_buf(),
        },
        E::UnsupportedEncryptionScheme | E::UnsupportedMacAlgorithm => {
            StoreProblem::UnsupportedEncryption {
                file: file.to_path_buf(),
                reason: e.to_string(),
            }
        }
        other => StoreProblem::Malformed {
            file: file.to_path_buf(),
            kind: StoreType::Pkcs12,
            reason: other.to_string(),
        },
    }
}

fn pkcs12_key_store(
    file: &Path,
    bytes: &[u8],
    password: &str,
) -> Result<ChainAndKey, StoreProblem> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| pkcs12_error(file, e))?;
    let Some((_, chain)) = store.private_key_chain() else {
        return Err(StoreProblem::NoPrivateKey {
            file: file.to_path_buf(),
        });
    };
    let certs: Vec<CertificateDer<'static>> = chain
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    if certs.is_empty() {
        return Err(StoreProblem::NoCertificate {
            file: file.to_path_buf(),
        });
    }
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
    Ok((certs, key))
}
