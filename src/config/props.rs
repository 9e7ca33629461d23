//! The lexical layer of `zoo.cfg`: `java.util.Properties` text format.
//!
//! ZooKeeper loads `zoo.cfg` with `Properties.load`, so the same rules apply
//! here: `#`/`!` comment lines, logical lines continued by an odd number of
//! trailing backslashes (the next line's leading whitespace dropped), keys
//! ending at the first unescaped `=`, `:` or whitespace, and the escapes
//! `\t \n \r \f \uXXXX` (any other escaped character stands for itself).
//! ZooKeeper then trims keys and values with Java's `String.trim`, which
//! drops every character up to U+0020; [`java_trim`] does the same.

/// One `key=value` entry, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// 1-based line where the logical line starts.
    pub line: usize,
    /// The key, unescaped and trimmed.
    pub key: String,
    /// The value, unescaped and trimmed.
    pub value: String,
}

/// A lexical error: the line and the (raw) key it happened in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LexError {
    /// 1-based line where the logical line starts.
    pub line: usize,
    /// The key as far as it could be read.
    pub key: String,
}

/// Java's `String.trim`: strips every char `<= ' '` from both ends.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// Whitespace as `Properties` sees it between and around keys.
fn is_prop_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Splits into natural lines the way Java's reader does: `\n`, `\r` and
/// `\r\n` all end a line.
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += 1;
                if i < bytes.len() && bytes[i] == b'\n' {
                    i += 1;
                }
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Reads every entry of a properties text, in order (duplicates kept; the
/// caller decides what a repeated key means).
pub fn parse_properties(text: &str) -> Result<Vec<RawEntry>, LexError> {
    let lines = natural_lines(text);
    let mut entries = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start_line = i + 1;
        let first = lines[i].trim_start_matches(is_prop_ws);
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            i += 1;
            continue;
        }
        let mut logical = String::new();
        let mut cur = first;
        let mut fresh = false;
        loop {
            let trailing = cur.chars().rev().take_while(|&c| c == '\\').count();
            i += 1;
            if trailing % 2 == 1 {
                // An odd run of backslashes escapes the line end: drop the
                // last one and splice in the next line, minus its indent.
                logical.push_str(&cur[..cur.len() - 1]);
                match lines.get(i) {
                    // Nothing gathered yet: the JDK's reader is "still on a
                    // new logical line", so blank and comment lines are
                    // skipped as at any line start.
                    Some(_) if logical.is_empty() => {
                        fresh = true;
                        break;
                    }
                    Some(next) => cur = next.trim_start_matches(is_prop_ws),
                    // At end of input the JDK still yields the (possibly
                    // empty) line.
                    None => break,
                }
            } else {
                logical.push_str(cur);
                break;
            }
        }
        if !fresh {
            entries.push(split_entry(&logical, start_line)?);
        }
    }
    Ok(entries)
}

/// Splits one logical line into key and value and unescapes both.
fn split_entry(logical: &str, line: usize) -> Result<RawEntry, LexError> {
    let chars: Vec<char> = logical.chars().collect();
    let len = chars.len();
    let mut key_len = 0;
    let mut value_start = len;
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < len {
        let c = chars[key_len];
        if !preceding_backslash {
            if c == '=' || c == ':' {
                value_start = key_len + 1;
                has_sep = true;
                break;
            }
            if is_prop_ws(c) {
                value_start = key_len + 1;
                break;
            }
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < len {
        let c = chars[value_start];
        if !is_prop_ws(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    let raw_key: String = chars[..key_len].iter().collect();
    let key = unescape(&chars[..key_len]).ok_or_else(|| LexError {
        line,
        key: java_trim(&raw_key).to_string(),
    })?;
    let value = unescape(&chars[value_start.min(len)..]).ok_or_else(|| LexError {
        line,
        key: java_trim(&key).to_string(),
    })?;
    Ok(RawEntry {
        line,
        key: java_trim(&key).to_string(),
        value: java_trim(&value).to_string(),
    })
}

/// Resolves backslash escapes; `None` for a malformed `\uXXXX`.
fn unescape(chars: &[char]) -> Option<String> {
    let mut out = String::with_capacity(chars.len());
    let mut units: Vec<u16> = Vec::new();
    let mut i = 0;
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        if !units.is_empty() {
            // Java strings are UTF-16: `\uD83D\uDE00` is one character.
            // A lone surrogate has no Rust `char`; it becomes U+FFFD.
            out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{FFFD}')));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        let Some(&e) = chars.get(i) else {
            // A lone trailing backslash cannot come from a logical line
            // (the reader removes it); drop it if it does.
            break;
        };
        i += 1;
        if e == 'u' {
            let hex = chars.get(i..i + 4)?;
            let mut v: u32 = 0;
            for h in hex {
                v = v * 16 + h.to_digit(16)?;
            }
            i += 4;
            // v < 0x10000 by construction.
            units.push(v as u16);
            continue;
        }
        flush(&mut units, &mut out);
        out.push(match e {
            't' => '\t',
            'n' => '\n',
            'r' => '\r',
            'f' => '\x0c',
            other => other,
        });
    }
    flush(&mut units, &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(usize, String, String)> {
        parse_properties(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.line, e.key, e.value))
            .collect()
    }

    fn one(line: usize, k: &str, v: &str) -> (usize, String, String) {
        (line, k.to_string(), v.to_string())
    }

    #[test]
    fn separators_and_comments() {
        let got = kv("# c\n! c\n  \na=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf\n g=:7\n");
        assert_eq!(
            got,
            vec![
                one(4, "a", "1"),
                one(5, "b", "2"),
                one(6, "c", "3"),
                one(7, "d", "4"),
                one(8, "e", "5"),
                one(9, "f", ""),
                one(10, "g", ":7"),
            ]
        );
    }

    #[test]
    fn continuation_needs_odd_backslashes() {
        let got = kv("a=x\\\n    y\nb=p\\\\\nc=q\\\\\\\n  r\n");
        assert_eq!(
            got,
            vec![one(1, "a", "xy"), one(3, "b", "p\\"), one(4, "c", "q\\r")]
        );
    }

    #[test]
    fn continuation_line_starting_with_hash_is_not_a_comment() {
        assert_eq!(kv("a=1,\\\n  #2\n"), vec![one(1, "a", "1,#2")]);
    }

    #[test]
    fn empty_continuation_starts_a_fresh_line() {
        // JDK 9+ Properties: a line that is only a backslash continues into
        // nothing, so a following comment or blank line is still skipped.
        assert_eq!(kv("\\\n#x\na=1\n"), vec![one(3, "a", "1")]);
        assert_eq!(kv("  \\\n\n b=2"), vec![one(3, "b", "2")]);
        assert_eq!(kv("\\\n!x=1\n"), vec![]);
    }

    #[test]
    fn comment_lines_do_not_continue() {
        assert_eq!(kv("# x \\\na=1\n"), vec![one(2, "a", "1")]);
    }

    #[test]
    fn trailing_backslash_at_eof_is_dropped() {
        assert_eq!(kv("a=1\\"), vec![one(1, "a", "1")]);
    }

    #[test]
    fn line_endings_cr_crlf_lf() {
        assert_eq!(
            kv("a=1\r\nb=2\rc=3\n"),
            vec![one(1, "a", "1"), one(2, "b", "2"), one(3, "c", "3")]
        );
    }

    #[test]
    fn escapes() {
        let got = kv("k\\ e\\=y=v\\t\\n\\r\\f\\\\\\q\\u0041\\u00e9\n");
        assert_eq!(got, vec![one(1, "k e=y", "v\t\n\r\x0c\\qAé")]);
        // Surrogate pairs join; a lone surrogate is replaced.
        assert_eq!(kv("a=\\uD83D\\uDE00"), vec![one(1, "a", "😀")]);
        assert_eq!(kv("a=\\uD83Dx"), vec![one(1, "a", "\u{FFFD}x")]);
    }

    #[test]
    fn malformed_unicode_escape_is_an_error_naming_line_and_key() {
        let err = parse_properties("a=1\nserver.1=\\u12G4\n").unwrap_err();
        assert_eq!(
            err,
            LexError {
                line: 2,
                key: "server.1".into()
            }
        );
        assert!(parse_properties("x\\u12=1").is_err());
    }

    #[test]
    fn values_are_java_trimmed() {
        // \u0001 and other controls are <= ' ' and so trimmed, as Java does.
        assert_eq!(kv("a=  v \\u0001"), vec![one(1, "a", "v")]);
    }
}
