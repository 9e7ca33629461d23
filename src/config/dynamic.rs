//! Stage 3 of reading `zoo.cfg`: `dynamicConfigFile`. When it is set, the
//! quorum lines live in that other file (ZooKeeper moves them there when
//! reconfig is enabled), so a server switched from Java to zkfle keeps
//! reading the same files.

use std::path::{Path, PathBuf};

use super::error::{ConfigError, Problem};
use super::keys::Keys;
use super::parse::entry_err;
use super::props::parse_properties;

/// Moves the dynamic file's quorum lines into `keys` and returns the file
/// the quorum lines come from (for error messages): `path` itself without
/// a `dynamicConfigFile`.
pub(super) fn load_quorum_lines(path: &Path, keys: &mut Keys) -> Result<PathBuf, ConfigError> {
    let Some((line, file)) = keys.dynamic_file.clone() else {
        return Ok(path.to_path_buf());
    };
    let inline = keys
        .servers
        .iter()
        .chain(&keys.groups)
        .chain(&keys.weights)
        .min_by_key(|e| e.line);
    if let Some(e) = inline {
        return Err(entry_err(
            path,
            e.line,
            &e.key,
            Problem::QuorumKeyOutsideDynamicFile { file: file.clone() },
        ));
    }
    let bytes = super::read_capped(&file).map_err(|e| {
        entry_err(
            path,
            line,
            "dynamicConfigFile",
            Problem::DynamicFileUnreadable {
                file: file.clone(),
                reason: e.to_string(),
            },
        )
    })?;
    let text = super::decode_text(bytes);
    let raw = parse_properties(&text)
        .map_err(|e| entry_err(&file, e.line, &e.key, Problem::MalformedUnicodeEscape))?;
    for e in raw {
        if e.key.starts_with("server.") {
            keys.servers.push(e);
        } else if e.key.starts_with("group") {
            keys.groups.push(e);
        } else if e.key.starts_with("weight") {
            keys.weights.push(e);
        } else if e.key == "version" {
            return Err(entry_err(
                &file,
                e.line,
                &e.key,
                Problem::VersionInDynamicFile,
            ));
        } else {
            return Err(entry_err(&file, e.line, &e.key, Problem::NotADynamicKey));
        }
    }
    // `zoo.cfg.dynamic.100000000` is version 0x100000000; a name without a
    // hex suffix is version 0.
    keys.s.config_version = file
        .to_string_lossy()
        .rsplit_once('.')
        .and_then(|(_, v)| i64::from_str_radix(v, 16).ok())
        .unwrap_or(0);
    Ok(file)
}
