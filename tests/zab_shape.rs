//! The Zab core stays sans-IO and deterministic (DESIGN.md import rules):
//! nothing under `src/zab/` names a runtime, socket, thread, file, clock or
//! random source, and no file there grows past ~800 lines.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for e in entries {
        let path = e.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn zab_core_uses_no_io_clock_or_randomness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/zab");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() >= 5, "found the zab sources: {files:?}");
    let forbidden = [
        "tokio",
        "std::net",
        "std::thread",
        "std::fs",
        "crossbeam",
        "Instant",
        "SystemTime",
        "rand::",
        "HashMap",
        "HashSet",
        "crate::peer",
        "crate::cnx",
    ];
    for f in &files {
        let text = std::fs::read_to_string(f).expect("readable source");
        for word in forbidden {
            assert!(!text.contains(word), "{} mentions {word}", f.display());
        }
        let lines = text.lines().count();
        assert!(lines <= 800, "{} has {lines} lines", f.display());
    }
}
