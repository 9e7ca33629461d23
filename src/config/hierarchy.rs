//! Stage 5 of reading `zoo.cfg`: the voting configuration. Plain majority
//! unless `group.N`/`weight.N` lines make it hierarchical, with
//! `QuorumHierarchical`'s rules plus zkfle's stricter checks (a group
//! member must be a known participant, no id twice).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::error::{ConfigError, Problem};
use super::parse::entry_err;
use super::props::RawEntry;
use super::server_line::java_split;
use super::servers::Servers;
use super::values::key_id;
use super::{LearnerType, QuorumVerifier};

/// The verifier for `servers` (errors in group/weight lines name
/// `quorum_src`; an all-zero-weight configuration names `path`).
pub(super) fn build_verifier(
    path: &Path,
    quorum_src: &Path,
    servers: &Servers,
    participants: &BTreeSet<i64>,
    groups_in: &[RawEntry],
    weights_in: &[RawEntry],
) -> Result<QuorumVerifier, ConfigError> {
    let server_lines = &servers.lines;
    let role_of = |sid: i64| {
        servers
            .specs
            .iter()
            .find(|s| s.sid == sid)
            .map(|s| s.learner_type)
    };
    if groups_in.is_empty() && weights_in.is_empty() {
        return Ok(QuorumVerifier::majority(participants.iter().copied()));
    }
    let mut groups: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    let mut group_lines: BTreeMap<i64, usize> = BTreeMap::new();
    let mut group_of: BTreeMap<i64, i64> = BTreeMap::new();
    for e in groups_in {
        let err = |p| entry_err(quorum_src, e.line, &e.key, p);
        if !e.key.starts_with("group.") {
            return Err(err(Problem::BadId {
                text: e.key.clone(),
            }));
        }
        let gid = key_id(&e.key).map_err(err)?;
        if let Some(first_line) = group_lines.insert(gid, e.line) {
            return Err(err(Problem::Duplicate {
                what: "group",
                id: gid,
                first_line,
            }));
        }
        let mut members = BTreeSet::new();
        for m in java_split(&e.value, ':') {
            let sid: i64 = m
                .parse()
                .map_err(|_| err(Problem::BadId { text: m.into() }))?;
            if let Some(&other_gid) = group_of.get(&sid) {
                return Err(err(Problem::InTwoGroups { sid, other_gid }));
            }
            match role_of(sid) {
                None => return Err(err(Problem::UnknownMember { sid })),
                Some(LearnerType::Observer) => return Err(err(Problem::ObserverMember { sid })),
                Some(LearnerType::Participant) => {}
            }
            group_of.insert(sid, gid);
            members.insert(sid);
        }
        groups.insert(gid, members);
    }
    let mut weights: BTreeMap<i64, u64> = BTreeMap::new();
    let mut weight_lines: BTreeMap<i64, usize> = BTreeMap::new();
    for e in weights_in {
        let err = |p| entry_err(quorum_src, e.line, &e.key, p);
        if !e.key.starts_with("weight.") {
            return Err(err(Problem::BadId {
                text: e.key.clone(),
            }));
        }
        let sid = key_id(&e.key).map_err(err)?;
        if let Some(first_line) = weight_lines.insert(sid, e.line) {
            return Err(err(Problem::Duplicate {
                what: "weight",
                id: sid,
                first_line,
            }));
        }
        let w: i64 = e.value.parse().map_err(|_| {
            err(Problem::NotAnInteger {
                value: e.value.clone(),
            })
        })?;
        let w = u64::try_from(w).map_err(|_| {
            err(Problem::OutOfRange {
                value: w,
                min: 0,
                max: i64::MAX,
            })
        })?;
        match role_of(sid) {
            None => return Err(err(Problem::UnknownMember { sid })),
            Some(LearnerType::Observer) => return Err(err(Problem::ObserverMember { sid })),
            Some(LearnerType::Participant) => {}
        }
        weights.insert(sid, w);
    }
    for &sid in participants {
        if !group_of.contains_key(&sid) {
            let line = server_lines.get(&sid).copied().unwrap_or(0);
            return Err(entry_err(
                quorum_src,
                line,
                &format!("server.{sid}"),
                Problem::NotInGroup { sid },
            ));
        }
        // Participants without a weight line weigh 1, as in ZooKeeper.
        weights.entry(sid).or_insert(1);
    }
    let live = groups
        .values()
        .any(|m| m.iter().any(|s| weights.get(s).copied().unwrap_or(0) > 0));
    if !participants.is_empty() && !live {
        return Err(ConfigError::File {
            path: path.to_path_buf(),
            problem: Problem::AllGroupsZeroWeight,
        });
    }
    Ok(QuorumVerifier::Hierarchical { groups, weights })
}
