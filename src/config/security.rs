//! Security settings zkfle cannot honour (issue 16 item 4): never a silent
//! downgrade. ZooKeeper reads each of these as a boolean; `false` is
//! accepted (it asks for nothing zkfle lacks), `true` stops the peer at
//! startup with the key and its line, so a server that was meant to
//! authenticate or encrypt its quorum traffic never runs in plaintext by
//! mistake.
//!
//! The other keys of this family (`quorum.auth.kerberos.*`,
//! `quorum.auth.*.saslLoginContext`) only configure SASL and do nothing in
//! ZooKeeper either while the switches below are off, so they are accepted.
//! Quorum TLS (`sslQuorum`, `portUnification`, `ssl.quorum.*`) is
//! implemented: see `config::tls` and `crate::tls`.

use super::error::Problem;
use super::values::parse_bool;

/// The quorum security switches and what zkfle lacks to honour each.
const SWITCHES: &[(&str, Unhonoured)] = &[
    ("quorum.auth.enableSasl", Unhonoured::QuorumSasl),
    ("quorum.auth.learnerRequireSasl", Unhonoured::QuorumSasl),
    ("quorum.auth.serverRequireSasl", Unhonoured::QuorumSasl),
];

/// A security feature zkfle does not implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhonoured {
    /// SASL (Kerberos/DIGEST-MD5) authentication between quorum peers.
    QuorumSasl,
}

impl std::fmt::Display for Unhonoured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unhonoured::QuorumSasl => "SASL authentication between quorum peers",
        })
    }
}

/// True if `key` is one of the switches [`check`] handles.
pub(super) fn is_switch(key: &str) -> bool {
    SWITCHES.iter().any(|(k, _)| *k == key)
}

/// Checks a switch's value: `Ok` for `false`, [`Problem::Unhonoured`] for
/// `true`, [`Problem::NotABoolean`] otherwise (ZooKeeper's
/// `QuorumPeerConfig.parseBoolean` rejects other spellings too).
pub(super) fn check(key: &str, value: &str) -> Result<(), Problem> {
    let Some((_, feature)) = SWITCHES.iter().find(|(k, _)| *k == key) else {
        return Ok(());
    };
    if parse_bool(value)? {
        return Err(Problem::Unhonoured { feature: *feature });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn true_is_refused_false_accepted_anything_else_rejected() {
        for (key, feature) in SWITCHES {
            assert_eq!(
                check(key, "TRUE"),
                Err(Problem::Unhonoured { feature: *feature })
            );
            assert_eq!(check(key, "false"), Ok(()));
            assert!(matches!(
                check(key, "yes"),
                Err(Problem::NotABoolean { .. })
            ));
        }
        assert!(!is_switch("ssl.quorum.keyStore.location"));
        assert_eq!(check("ssl.quorum.keyStore.location", "x"), Ok(()));
    }
}
