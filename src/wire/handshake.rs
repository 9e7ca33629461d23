//! The initial message a dialling peer writes on an election connection
//! (PROTOCOL.md §2): 3.4's bare sid, 3.5+'s V1, and 3.8's multi-address V2.

use super::{Reader, WireError};

/// First long of a V1 handshake (`0xFFFF0000` sign-extended).
pub const PROTOCOL_V1: i64 = -65536;
/// First long of a V2 (multi-address) handshake.
pub const PROTOCOL_V2: i64 = -65535;
/// ZooKeeper 3.8's bound on the advertised address string.
pub const MAX_ADDR_LEN: usize = 2048;

/// Which generation of handshake a peer sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFormat {
    /// ZooKeeper 3.4: an 8-byte non-negative sid and nothing else.
    V0,
    /// ZooKeeper 3.5+ default: version, sid, one `host:port`.
    V1,
    /// ZooKeeper 3.8 with `multiAddress.enabled`: `host:port|host:port…`.
    V2,
}

/// One advertised election address. Hosts stay text: zkfle never dials an
/// advertised address (PROTOCOL.md §8 R4), it only logs it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PeerAddress {
    /// Host name or IP literal, as sent (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl PeerAddress {
    /// Parses `host:port` or `[v6]:port` with a port in 1..=65535.
    /// 3.8 does not check the port range and loses its listener on 70000
    /// (PROTOCOL.md §8 R3); here it is just a bad address.
    pub fn parse(text: &str) -> Result<PeerAddress, WireError> {
        let bad = |reason| WireError::BadAddress {
            text: text.to_string(),
            reason,
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, p) = rest
                .split_once("]:")
                .ok_or_else(|| bad("unterminated [ipv6]"))?;
            (h, p)
        } else {
            text.rsplit_once(':').ok_or_else(|| bad("no port"))?
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        if !host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b".-_:%".contains(&c))
        {
            return Err(bad("invalid character in host"));
        }
        if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) || port.len() > 5 {
            return Err(bad("port is not a number"));
        }
        let port: u32 = port.parse().map_err(|_| bad("port is not a number"))?;
        if port == 0 || port > 65535 {
            return Err(bad("port outside 1..65535"));
        }
        Ok(PeerAddress {
            host: host.to_string(),
            port: port as u16,
        })
    }

    /// Wildcard hosts name no reachable peer; ZooKeeper drops them from
    /// handshakes.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.as_str(), "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
    }
}

/// A decoded election-port handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Which of ZooKeeper's handshake layouts (V1 single address, V2 list).
    pub format: HandshakeFormat,
    /// The sid the initiator claims.
    pub sid: i64,
    /// Advertised election addresses, wildcards removed; empty for V0.
    pub addresses: Vec<PeerAddress>,
}

impl Handshake {
    /// Decodes a handshake from the start of `buf`, returning it and the
    /// number of bytes it occupied. `Incomplete` asks for more bytes; every
    /// other error means the connection must be closed.
    ///
    /// Unlike 3.8, the address need not arrive in one segment, and the
    /// length is checked before any address byte is awaited, so a peer that
    /// announces 2 GiB is rejected at once.
    pub fn decode(buf: &[u8]) -> Result<(Handshake, usize), WireError> {
        let mut r = Reader::new(buf);
        let first = r.i64()?;
        if first >= 0 {
            return Ok((
                Handshake {
                    format: HandshakeFormat::V0,
                    sid: first,
                    addresses: Vec::new(),
                },
                8,
            ));
        }
        let format = match first {
            PROTOCOL_V1 => HandshakeFormat::V1,
            PROTOCOL_V2 => HandshakeFormat::V2,
            other => return Err(WireError::BadProtocolVersion(other)),
        };
        let sid = r.i64()?;
        let n = r.i32()?;
        if n < 1 || n as usize > MAX_ADDR_LEN {
            return Err(WireError::BadAddressLength(n));
        }
        let raw = r.take(n as usize)?;
        let text = std::str::from_utf8(raw).map_err(|_| WireError::BadAddress {
            text: String::from_utf8_lossy(raw).into_owned(),
            reason: "not UTF-8",
        })?;
        // 3.8 splits V1 addresses on '|' as well.
        let mut addresses = Vec::new();
        for piece in text.split('|') {
            let addr = PeerAddress::parse(piece)?;
            if !addr.is_wildcard() {
                addresses.push(addr);
            }
        }
        Ok((
            Handshake {
                format,
                sid,
                addresses,
            },
            r.position(),
        ))
    }

    /// Appends the encoded handshake to `out`, to be written in one call.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self.format {
            HandshakeFormat::V0 => out.extend_from_slice(&self.sid.to_be_bytes()),
            HandshakeFormat::V1 | HandshakeFormat::V2 => {
                let version = if self.format == HandshakeFormat::V1 {
                    PROTOCOL_V1
                } else {
                    PROTOCOL_V2
                };
                let text = self
                    .addresses
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join("|");
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&self.sid.to_be_bytes());
                out.extend_from_slice(&(text.len() as i32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
}
