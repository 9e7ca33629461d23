//! The syntax of one `server.N` value (3.4 and 3.8 forms, `|`
//! multi-address, IPv6 brackets, `;[host:]port` client part), split the way
//! ZooKeeper's `QuorumServer` splits it, before any name is resolved.

use super::error::{PortKind, Problem};
use super::props::java_trim;
use super::LearnerType;

/// What [`parse_server_value`] makes of a `server.N` value before
/// resolution.
#[derive(Debug)]
pub(super) struct ServerText {
    /// (host as written, quorum port, election port) per `|` address.
    pub addrs: Vec<(String, u16, u16)>,
    /// Role, if any address gave one.
    pub learner_type: Option<LearnerType>,
    /// (host, port) after `;` (host `0.0.0.0` when only a port is given).
    pub client: Option<(String, u16)>,
}

/// Java's `String.split` with a one-character pattern: the whole string
/// when the separator does not occur, else the pieces minus trailing
/// empty ones.
pub(super) fn java_split(s: &str, sep: char) -> Vec<&str> {
    if !s.contains(sep) {
        return vec![s];
    }
    let mut v: Vec<&str> = s.split(sep).collect();
    while v.last() == Some(&"") {
        v.pop();
    }
    v
}

/// ZooKeeper's host/port splitter: `[v6]:a:b` keeps the bracketed host
/// whole, anything else splits on `:`.
pub(super) fn host_and_ports(s: &str) -> Result<Vec<&str>, Problem> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err(Problem::UnclosedBracket { value: s.into() });
        };
        let host = &rest[..close];
        let after = &rest[close + 1..];
        if after.is_empty() {
            return Ok(vec![host]);
        }
        let Some(ports) = after.strip_prefix(':') else {
            return Err(Problem::UnclosedBracket { value: s.into() });
        };
        if ports.is_empty() {
            return Err(Problem::ServerFormat { value: s.into() });
        }
        let mut v = vec![host];
        v.extend(java_split(ports, ':'));
        Ok(v)
    } else {
        Ok(java_split(s, ':'))
    }
}

/// A port field: an integer (Java `parseInt` syntax) in 1..65535.
pub(super) fn parse_port(text: &str, kind: PortKind) -> Result<u16, Problem> {
    let value: i64 = text.parse().map_err(|_| Problem::PortNotANumber {
        kind,
        value: text.into(),
    })?;
    match u16::try_from(value) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(Problem::PortOutOfRange { kind, value }),
    }
}

/// `participant` / `observer`, trimmed and case-insensitive as ZooKeeper
/// reads them.
pub(super) fn parse_learner_type(text: &str) -> Result<LearnerType, Problem> {
    match java_trim(text).to_ascii_lowercase().as_str() {
        "participant" => Ok(LearnerType::Participant),
        "observer" => Ok(LearnerType::Observer),
        _ => Err(Problem::UnknownPeerType { value: text.into() }),
    }
}

/// Splits a `server.N` value into its parts (3.4 and 3.8 syntax,
/// multi-address, IPv6 brackets).
pub(super) fn parse_server_value(
    value: &str,
    multi_address_enabled: bool,
) -> Result<ServerText, Problem> {
    let format = || Problem::ServerFormat {
        value: value.into(),
    };
    let halves = java_split(value, ';');
    if halves.is_empty() || halves.len() > 2 {
        return Err(format());
    }
    let client = match halves.get(1) {
        None => None,
        Some(text) => {
            let parts = host_and_ports(text)?;
            let (host, port) = match parts.as_slice() {
                // A bare port listens on every interface, as in ZooKeeper.
                [port] => ("0.0.0.0", *port),
                [host, port] => (*host, *port),
                _ => return Err(format()),
            };
            if host.is_empty() {
                return Err(format());
            }
            Some((host.to_string(), parse_port(port, PortKind::Client)?))
        }
    };
    let mut addrs = Vec::new();
    let mut learner_type = None;
    let pieces = java_split(halves[0], '|');
    if pieces.len() > 1 && !multi_address_enabled {
        return Err(Problem::MultiAddressDisabled);
    }
    for addr in pieces {
        let parts = host_and_ports(addr)?;
        if parts.len() < 3 || parts.len() > 4 || parts[0].is_empty() {
            return Err(format());
        }
        let quorum = parse_port(parts[1], PortKind::Quorum)?;
        let election = parse_port(parts[2], PortKind::Election)?;
        if quorum == election {
            return Err(Problem::SamePorts { port: quorum });
        }
        if let Some(t) = parts.get(3) {
            let t = parse_learner_type(t)?;
            if learner_type.is_some_and(|prev| prev != t) {
                return Err(Problem::MixedPeerTypes);
            }
            learner_type = Some(t);
        }
        addrs.push((parts[0].to_string(), quorum, election));
    }
    if addrs.is_empty() {
        return Err(format());
    }
    Ok(ServerText {
        addrs,
        learner_type,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_split_drops_trailing_empties_only() {
        assert_eq!(java_split("a:b:c", ':'), vec!["a", "b", "c"]);
        assert_eq!(java_split("a:b::", ':'), vec!["a", "b"]);
        assert_eq!(java_split(":a", ':'), vec!["", "a"]);
        assert_eq!(java_split("", ':'), vec![""]);
        assert!(java_split(":::", ':').is_empty());
    }

    #[test]
    fn host_and_ports_handles_ipv6_brackets() {
        assert_eq!(
            host_and_ports("[::1]:2888:3888").unwrap(),
            vec!["::1", "2888", "3888"]
        );
        assert_eq!(
            host_and_ports("[fe80::1]:1:2:observer").unwrap(),
            vec!["fe80::1", "1", "2", "observer"]
        );
        assert!(matches!(
            host_and_ports("[::1:2888"),
            Err(Problem::UnclosedBracket { .. })
        ));
        assert!(matches!(
            host_and_ports("[::1]x2888"),
            Err(Problem::UnclosedBracket { .. })
        ));
        assert!(matches!(
            host_and_ports("[::1]:"),
            Err(Problem::ServerFormat { .. })
        ));
    }

    #[test]
    fn server_value_shapes() {
        let st = parse_server_value("h:1:2", false).unwrap();
        assert_eq!(st.addrs, vec![("h".to_string(), 1, 2)]);
        assert_eq!(st.learner_type, None);
        assert!(st.client.is_none());
        let st = parse_server_value("h:1:2:OBSERVER;2181", false).unwrap();
        assert_eq!(st.learner_type, Some(LearnerType::Observer));
        assert_eq!(st.client, Some(("0.0.0.0".to_string(), 2181)));
        let st = parse_server_value("a:1:2|b:3:4;[::1]:2181", true).unwrap();
        assert_eq!(st.addrs.len(), 2);
        assert_eq!(st.client, Some(("::1".to_string(), 2181)));
        // A trailing ';' (empty client part) is dropped, as Java's split does.
        assert!(parse_server_value("h:1:2;", false)
            .unwrap()
            .client
            .is_none());
        for bad in [
            "",
            "h:1",
            "h:1:2:3:4",
            "h:1:2;a;b",
            ";2181",
            "h:1:2;a:b:c",
            ":1:2",
        ] {
            assert!(parse_server_value(bad, true).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_server_value("h:1:2:participant|h2:3:4:observer", true).unwrap_err(),
            Problem::MixedPeerTypes
        );
        assert_eq!(
            parse_server_value("a:1:2|b:3:4", false).unwrap_err(),
            Problem::MultiAddressDisabled
        );
        assert_eq!(
            parse_server_value("h:5:5", false).unwrap_err(),
            Problem::SamePorts { port: 5 }
        );
    }
}
