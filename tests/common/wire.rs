//! Reader for the byte vectors in `shared/vectors/` (format in its
//! README.md): `.hex` files with `# key: value` metadata and `expect:` lines,
//! and the `*.sequence.tsv` replays.
//!
//! Include it from a test crate with
//! `#[path = "common/wire.rs"] mod wire;`.
#![allow(dead_code)]

use std::fmt;
use std::path::PathBuf;

/// The shared vectors folder. Panics with a message naming the path when it
/// is missing: every vector test depends on it, so a silent skip would hide
/// a broken checkout.
pub fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors"));
    assert!(
        dir.join("README.md").is_file(),
        "test vectors not found at {} (expected the shared/vectors folder beside the crate)",
        dir.display()
    );
    dir
}

/// An `expect:` value (or a field of a sequence file's `decoded` column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// A decimal or `0x` hex integer (hex read as the 64-bit two's
    /// complement pattern, so `0xffffffffffffffff` is −1).
    Int(i64),
    /// A JSON string, unescaped.
    Str(String),
    /// A bare word such as `v1` or `unknown`.
    Word(String),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Int(v) => write!(f, "{v}"),
            Expect::Str(s) => write!(f, "{s:?}"),
            Expect::Word(w) => write!(f, "{w}"),
        }
    }
}

/// What the README says a conforming receiver does with a vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receiver {
    /// `accept ...`: decode and use.
    Accept,
    /// `drop, keep the connection`.
    Drop,
    /// `close ...`.
    Close,
    /// Anything else (free text, e.g. on Zab vectors), kept verbatim.
    Other(String),
}

/// One `.hex` vector.
#[derive(Debug, Clone)]
pub struct Vector {
    /// File name without `.hex`.
    pub name: String,
    /// Every `# key: value` line except `expect:`, continuation lines joined.
    pub meta: Vec<(String, String)>,
    /// The `expect:` lines in file order.
    pub expects: Vec<(String, Expect)>,
    /// The vector's bytes.
    pub bytes: Vec<u8>,
}

impl Vector {
    /// First metadata value for `key`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `unit:` line.
    pub fn unit(&self) -> &str {
        self.meta("unit").unwrap_or("")
    }

    /// The `receiver:` line, classified.
    pub fn receiver(&self) -> Receiver {
        let r = self.meta("receiver").unwrap_or("");
        if r.starts_with("accept") {
            Receiver::Accept
        } else if r.starts_with("drop") {
            Receiver::Drop
        } else if r.starts_with("close") {
            Receiver::Close
        } else {
            Receiver::Other(r.to_string())
        }
    }

    /// The `length:` line.
    pub fn length(&self) -> usize {
        let text = self
            .meta("length")
            .unwrap_or_else(|| panic!("{}: no length: line", self.name));
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{}: bad length: {text}", self.name))
    }

    /// The expected value of `key`, if the vector states one.
    pub fn expect(&self, key: &str) -> Option<&Expect> {
        self.expects.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Decodes hex text, ignoring whitespace. Panics on odd length or bad
/// digits (a broken vector file).
pub fn hex_decode(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    assert!(
        digits.len() % 2 == 0,
        "odd number of hex digits in {text:?}"
    );
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).expect("ASCII hex");
            u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex byte {s:?}"))
        })
        .collect()
}

/// Encodes bytes as lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
}

/// Parses one `.hex` file's text.
pub fn parse_vector(name: &str, text: &str) -> Vector {
    let mut meta: Vec<(String, String)> = Vec::new();
    let mut expects = Vec::new();
    let mut hex = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('#') {
            if let Some(cont) = rest.strip_prefix("   ") {
                // Continuation of the previous metadata value.
                if let Some((_, v)) = meta.last_mut() {
                    v.push(' ');
                    v.push_str(cont.trim());
                }
                continue;
            }
            let rest = rest.trim_start();
            if let Some((k, v)) = rest.split_once(':') {
                if is_key(k) {
                    let v = v.trim();
                    if k == "expect" {
                        let (ek, ev) = v
                            .split_once('=')
                            .unwrap_or_else(|| panic!("{name}: expect line without '=': {v}"));
                        expects.push((ek.trim().to_string(), parse_expect_value(ev)));
                    } else {
                        meta.push((k.to_string(), v.to_string()));
                    }
                }
            }
        } else {
            hex.push_str(line);
        }
    }
    Vector {
        name: name.to_string(),
        meta,
        expects,
        bytes: hex_decode(&hex),
    }
}

/// Parses an `expect:` value: a JSON string, else the leading token as an
/// integer (decimal or `0x` hex), else a bare word. A parenthesised
/// explanation after the token is ignored.
pub fn parse_expect_value(text: &str) -> Expect {
    let text = text.trim();
    if text.starts_with('"') {
        let (s, _) = parse_json_string(text);
        return Expect::Str(s);
    }
    let token = text.split_whitespace().next().unwrap_or("");
    parse_token(token)
}

fn parse_token(token: &str) -> Expect {
    let (neg, body) = match token.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, token),
    };
    let value = if let Some(hex) = body.strip_prefix("0x") {
        u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
    } else {
        body.parse::<u64>().ok().map(|v| v as i64)
    };
    match value {
        Some(v) if neg => Expect::Int(v.wrapping_neg()),
        Some(v) => Expect::Int(v),
        None => Expect::Word(token.to_string()),
    }
}

/// Parses a JSON string literal at the start of `text`; returns the value
/// and the number of bytes of `text` it spanned. Panics on a malformed
/// literal (a broken vector file).
pub fn parse_json_string(text: &str) -> (String, usize) {
    let mut chars = text.char_indices();
    assert_eq!(
        chars.next().map(|(_, c)| c),
        Some('"'),
        "not a JSON string: {text}"
    );
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, i + 1),
            '\\' => {
                let (_, e) = chars.next().expect("escape at end of string");
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    '/' => out.push('/'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'u' => {
                        let hex: String = (0..4)
                            .map(|_| chars.next().expect("short \\u escape").1)
                            .collect();
                        let cp = u32::from_str_radix(&hex, 16).expect("bad \\u escape");
                        out.push(char::from_u32(cp).expect("\\u escape is a surrogate"));
                    }
                    other => panic!("unknown JSON escape \\{other} in {text}"),
                }
            }
            c => out.push(c),
        }
    }
    panic!("unterminated JSON string: {text}")
}

/// Loads one vector by file name (without `.hex`).
pub fn load_vector(name: &str) -> Vector {
    let path = vectors_dir().join(format!("{name}.hex"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_vector(name, &text)
}

/// Loads one vector if its file exists.
pub fn try_load_vector(name: &str) -> Option<Vector> {
    let path = vectors_dir().join(format!("{name}.hex"));
    path.is_file().then(|| load_vector(name))
}

/// Every `.hex` vector whose file name starts with `prefix`, sorted by name.
pub fn load_vectors(prefix: &str) -> Vec<Vector> {
    let dir = vectors_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".hex")?;
            stem.starts_with(prefix).then(|| stem.to_string())
        })
        .collect();
    names.sort();
    names.iter().map(|n| load_vector(n)).collect()
}

/// One non-comment line of a `*.sequence.tsv` file.
#[derive(Debug, Clone)]
pub struct SequenceRow {
    /// 1-based line number in the file, for messages.
    pub line: usize,
    /// Milliseconds since the capture started.
    pub t_ms: f64,
    /// Connection number within the capture.
    pub conn: u32,
    /// Sending sid, if known.
    pub from_sid: Option<i64>,
    /// Receiving sid, if known.
    pub to_sid: Option<i64>,
    /// `syn`, `handshake`, `frame`, `fin` or `refused`.
    pub kind: String,
    /// The exact bytes (empty for syn/fin/refused).
    pub bytes: Vec<u8>,
    /// The `decoded` column as fields (free text for syn/fin rows).
    pub decoded: Vec<(String, Expect)>,
    /// The `decoded` column verbatim.
    pub decoded_text: String,
}

fn sid_column(s: &str) -> Option<i64> {
    if s == "-" {
        None
    } else {
        Some(s.parse().unwrap_or_else(|_| panic!("bad sid column {s:?}")))
    }
}

/// Loads `<name>.sequence.tsv`.
pub fn load_sequence(name: &str) -> Vec<SequenceRow> {
    let path = vectors_dir().join(format!("{name}.sequence.tsv"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(
            cols.len(),
            7,
            "{}:{}: expected 7 columns",
            path.display(),
            i + 1
        );
        let kind = cols[4].to_string();
        let decoded = if kind == "handshake" || kind == "frame" {
            parse_decoded(cols[6])
        } else {
            Vec::new()
        };
        rows.push(SequenceRow {
            line: i + 1,
            t_ms: cols[0].parse().expect("t_ms column"),
            conn: cols[1].parse().expect("conn column"),
            from_sid: sid_column(cols[2]),
            to_sid: sid_column(cols[3]),
            kind,
            bytes: hex_decode(cols[5]),
            decoded,
            decoded_text: cols[6].to_string(),
        });
    }
    rows
}

/// Parses a `decoded` column: space-separated `key=value` pairs where a
/// value is a JSON string or a token, optionally followed by a
/// parenthesised explanation.
pub fn parse_decoded(text: &str) -> Vec<(String, Expect)> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if rest.starts_with('(') {
            let end = rest
                .find(')')
                .unwrap_or_else(|| panic!("unclosed '(' in {text:?}"));
            rest = rest[end + 1..].trim_start();
            continue;
        }
        let (key, after) = rest
            .split_once('=')
            .unwrap_or_else(|| panic!("field without '=' in {text:?}"));
        let key = key.trim().to_string();
        if after.starts_with('"') {
            let (s, used) = parse_json_string(after);
            out.push((key, Expect::Str(s)));
            rest = after[used..].trim_start();
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            out.push((key, parse_token(&after[..end])));
            rest = after[end..].trim_start();
        }
    }
    out
}

/// Path of a file in the vectors folder.
pub fn vector_path(file: &str) -> PathBuf {
    vectors_dir().join(file)
}
