//! The import rules of DESIGN.md, checked on the source text: protocol
//! decisions stay sans-IO, and the connection layer knows nothing of the
//! protocols above it (it reports link facts; `election::Driver` decides
//! what they mean).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Lines of `dir`'s Rust files (comments skipped) that contain any of
/// `needles`.
fn offending(dir: &str, needles: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut hits = Vec::new();
    for f in rust_files(&root) {
        let text = std::fs::read_to_string(&f).expect("read source");
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|n| code.contains(n)) {
                hits.push(format!("{}:{}: {}", f.display(), i + 1, line.trim()));
            }
        }
    }
    hits
}

#[test]
fn election_and_zab_are_sans_io() {
    let io = [
        "tokio",
        "std::net",
        "std::thread",
        "std::fs",
        "crossbeam",
        "Instant::now",
    ];
    for dir in ["src/election", "src/zab"] {
        let hits = offending(dir, &io);
        assert!(hits.is_empty(), "I/O in {dir}:\n{}", hits.join("\n"));
    }
    assert!(
        !rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src/election")).is_empty(),
        "the check must see the election sources"
    );
}

#[test]
fn cnx_imports_no_protocol_layer() {
    let above = ["crate::election", "crate::zab", "crate::peer", "crate::sim"];
    let hits = offending("src/cnx", &above);
    assert!(hits.is_empty(), "cnx imports:\n{}", hits.join("\n"));
}
