//! Certificate checks, as ZooKeeper's `ZKTrustManager` makes them on the
//! quorum ports: the chain must lead to the trust store (and be within its
//! validity dates), both ways (mutual authentication, `clientAuth=need`);
//! and with `ssl.quorum.hostnameVerification` (default true) the peer's
//! certificate must name the peer's address, for the server *and* for the
//! client (`QuorumX509Util.shouldVerifyClientHostname` is true): Java
//! checks the connecting IP first, then a host name.
//!
//! Java's host name is `InetAddress.getHostName()`: for a dialled socket
//! the configured name, for an accepted one a reverse DNS lookup. zkfle
//! does no reverse lookups: an accepted peer's certificate is checked
//! against its IP, then against the names of configured servers that
//! resolved to that IP (what a consistent reverse zone would return). Java
//! falls back to the subject CN for names when a certificate has no DNS
//! SAN; webpki, and so zkfle, reads SANs only.
//!
//! Each connection gets verifiers bound to its own peer (address and
//! names), which is how the client's certificate can be checked against
//! the connecting IP inside the handshake: a mismatch is a failed handshake
//! with a `bad_certificate` alert, as with Java.

use std::net::IpAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// Who a connection's peer should be.
#[derive(Debug, Clone)]
pub(crate) struct ExpectedPeer {
    /// The address dialled, or the connecting address.
    pub ip: IpAddr,
    /// Host names that also identify it (configured names).
    pub names: Vec<String>,
    /// `ssl.quorum.hostnameVerification`.
    pub check_names: bool,
}

impl ExpectedPeer {
    /// True if `end_entity` names this peer: its IP, or one of its names.
    fn matches(&self, end_entity: &CertificateDer<'_>) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        if cert
            .verify_is_valid_for_subject_name(&ServerName::IpAddress(self.ip.into()))
            .is_ok()
        {
            return true;
        }
        self.names.iter().any(|n| {
            ServerName::try_from(n.as_str())
                .is_ok_and(|name| cert.verify_is_valid_for_subject_name(&name).is_ok())
        })
    }

    fn mismatch(&self) -> Error {
        Error::InvalidCertificate(CertificateError::Other(rustls::OtherError(Arc::new(
            NameMismatch {
                ip: self.ip,
                names: self.names.clone(),
            },
        ))))
    }
}

/// The peer's certificate names neither its address nor its host names.
#[derive(Debug)]
struct NameMismatch {
    ip: IpAddr,
    names: Vec<String>,
}

impl std::fmt::Display for NameMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "certificate is not valid for the peer's address {}",
            self.ip
        )?;
        if !self.names.is_empty() {
            write!(f, " or its names {}", self.names.join(", "))?;
        }
        f.write_str(" (ssl.quorum.hostnameVerification)")
    }
}

impl std::error::Error for NameMismatch {}

/// The dialling side's check of the server it reached.
#[derive(Debug)]
pub(crate) struct PeerServerVerifier {
    pub inner: Arc<WebPkiServerVerifier>,
    pub expected: ExpectedPeer,
}

impl ServerCertVerifier for PeerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ip = ServerName::IpAddress(self.expected.ip.into());
        // The chain is checked before the name, so a name error means the
        // chain is good.
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, &ip, ocsp_response, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => {
                if !self.expected.check_names || self.expected.matches(end_entity) {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(self.expected.mismatch())
                }
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The accepting side's check of the client: a certificate is required.
#[derive(Debug)]
pub(crate) struct PeerClientVerifier {
    pub inner: Arc<dyn ClientCertVerifier>,
    pub expected: ExpectedPeer,
}

impl ClientCertVerifier for PeerClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.expected.check_names && !self.expected.matches(end_entity) {
            return Err(self.expected.mismatch());
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
