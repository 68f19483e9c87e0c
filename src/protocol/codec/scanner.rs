//! [`Scanner`]: finds where a JSON object ends, one byte at a time, and can
//! stop at the end of the bytes it has and go on later from the same byte.
//!
//! The codec only needs to know *where* an object ends before it hands the
//! bytes to serde_json, and that is a question of bracket depth and of
//! being inside a string or not:
//!
//! ```text
//!   {"msg":"a } in a string","n":[1,{"x":"\"}"}]}
//!   1      s..............s    2 3  s...s  2 1 0   ← depth, s = in a string
//! ```
//!
//! The scanner remembers that state (depth, the kind of every open
//! bracket, in-string and escape flags, and how many bytes it has looked
//! at), so a message that arrives in many pieces is scanned once in total,
//! not once per piece. It also refuses early what can never be JSON: a
//! closing bracket of the wrong kind, a control character in a string, a
//! byte that no JSON token outside a string contains, nesting deeper than
//! serde_json accepts. Everything else (the grammar, the UTF-8, the
//! numbers) serde_json checks once the object is complete.

/// How deep serde_json lets values nest (its recursion limit of 128 is
/// reached by the 128th open bracket); deeper is refused as soon as it is
/// seen. The codec's tests check that the two agree.
const MAX_DEPTH: u32 = 127;

/// The state of a scan through one object. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanner {
    /// Bytes of the object (from its `{`) already scanned.
    scanned: usize,
    /// Open brackets, the object's own `{` included.
    depth: u32,
    /// Bit `i` set: the bracket open at depth `i + 1` is `[`. 128 bits
    /// cover [`MAX_DEPTH`].
    arrays: u128,
    /// Inside a string.
    in_string: bool,
    /// Inside a string, right after a backslash.
    escaped: bool,
}

/// What [`Scanner::scan`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// The object ends after this many bytes.
    Complete(usize),
    /// The object goes on past the bytes given.
    Incomplete,
    /// These bytes can never be JSON; the byte at this offset proves it.
    Invalid(usize),
}

impl Scanner {
    /// Bytes of the object scanned so far.
    pub fn scanned(&self) -> usize {
        self.scanned
    }

    /// Goes on scanning `object` (the bytes from the object's `{`, of
    /// which the first [`scanned`](Scanner::scanned) were seen before)
    /// until its end, the end of `object`, or a byte that cannot be JSON.
    pub fn scan(&mut self, object: &[u8]) -> Scan {
        let from = self.scanned;
        for (i, &b) in object.iter().enumerate().skip(from) {
            self.scanned = i + 1;
            let ok = if self.in_string {
                self.string_byte(b)
            } else {
                match self.structural_byte(b) {
                    Some(true) if self.depth == 0 => return Scan::Complete(i + 1),
                    Some(_) => true,
                    None => false,
                }
            };
            if !ok {
                return Scan::Invalid(i);
            }
        }
        Scan::Incomplete
    }

    /// A byte inside a string; `false` when a string cannot hold it raw.
    fn string_byte(&mut self, b: u8) -> bool {
        if self.escaped {
            // serde_json checks which escapes are valid; any byte ends one.
            self.escaped = false;
        } else if b == b'\\' {
            self.escaped = true;
        } else if b == b'"' {
            self.in_string = false;
        } else if b < 0x20 {
            return false;
        }
        true
    }

    /// A byte outside strings: `Some(true)` when it closes a bracket,
    /// `Some(false)` for any other byte JSON allows here, `None` for a
    /// byte that cannot be JSON at this point.
    fn structural_byte(&mut self, b: u8) -> Option<bool> {
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => {
                if self.depth >= MAX_DEPTH {
                    return None;
                }
                let bit = 1u128 << self.depth;
                if b == b'[' {
                    self.arrays |= bit;
                } else {
                    self.arrays &= !bit;
                }
                self.depth += 1;
            }
            b'}' | b']' => {
                let top = self.depth.checked_sub(1)?;
                let is_array = self.arrays & (1u128 << top) != 0;
                if is_array != (b == b']') {
                    return None;
                }
                self.depth = top;
                return Some(true);
            }
            // Separators, whitespace, numbers and the letters of
            // `true`, `false` and `null`.
            b':' | b',' | b' ' | b'\t' | b'\n' | b'\r' => {}
            b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E' => {}
            b't' | b'r' | b'u' | b'f' | b'a' | b'l' | b's' | b'n' => {}
            _ => return None,
        }
        Some(false)
    }
}

/// `object` (the bytes of one complete object) with every number too
/// large for a double (`1e309`, `-2e400`) replaced by `0`, or `None` when
/// there is none. Run only after serde_json refused the object, to tell a
/// number out of range from bytes that are not JSON.
pub fn without_huge_numbers(object: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(object.len());
    let mut found = false;
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while let Some(&b) = object.get(i) {
        if in_string {
            in_string = escaped || b != b'"';
            escaped = !escaped && b == b'\\';
        } else if b == b'-' || b.is_ascii_digit() {
            let len = object[i..]
                .iter()
                .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .count();
            let token = &object[i..i + len];
            let huge = std::str::from_utf8(token)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(f64::is_infinite);
            if huge {
                found = true;
                out.push(b'0');
            } else {
                out.extend_from_slice(token);
            }
            i += len;
            continue;
        } else {
            in_string = b == b'"';
        }
        out.push(b);
        i += 1;
    }
    found.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::{without_huge_numbers, Scan, Scanner};

    #[test]
    fn huge_numbers_are_found_outside_strings_only() {
        let text = br#"{"a":1e309,"b":[-2E+400,1.5e308],"c":"1e309","d":"\"1e999"}"#;
        let fixed = without_huge_numbers(text).unwrap();
        assert_eq!(
            fixed,
            br#"{"a":0,"b":[0,1.5e308],"c":"1e309","d":"\"1e999"}"#.to_vec()
        );
        assert_eq!(without_huge_numbers(br#"{"a":1e308,"b":1e-400}"#), None);
    }

    fn scan(bytes: &[u8]) -> Scan {
        Scanner::default().scan(bytes)
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let text = br#"{"msg":"a } in a string","n":[1,{"x":"\"}"}]} tail"#;
        assert_eq!(scan(text), Scan::Complete(text.len() - 5));
        assert_eq!(scan(br#"{"a":"\\"}"#), Scan::Complete(10));
    }

    #[test]
    fn resumes_where_it_stopped() {
        let text = br#"{"a":[{"b":"x\"y"}],"c":"}"}"#;
        for cut in 1..text.len() {
            let mut s = Scanner::default();
            assert_eq!(s.scan(&text[..cut]), Scan::Incomplete, "cut {cut}");
            assert_eq!(s.scanned(), cut);
            assert_eq!(s.scan(text), Scan::Complete(text.len()), "cut {cut}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_json() {
        assert_eq!(scan(b"{]"), Scan::Invalid(1));
        assert_eq!(scan(b"{\"a\":[}"), Scan::Invalid(6));
        assert_eq!(scan(b"{\"a\x01\"}"), Scan::Invalid(3));
        assert_eq!(scan(b"{\"a\":x}"), Scan::Invalid(5));
        assert_eq!(scan("{\"a\":é}".as_bytes()), Scan::Invalid(5));
        // Raw bytes above 0x7f are fine inside strings.
        assert_eq!(scan("{\"é\":1}".as_bytes()), Scan::Complete(8));
    }
}
