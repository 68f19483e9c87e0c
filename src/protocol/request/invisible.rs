//! Characters a name must not contain because they change how the text
//! *around* them looks without being seen themselves.
//!
//! A name is shown to other users (in chats, friend and member lists), so a
//! name that renders like another one is a way to impersonate it. The worst
//! offenders are Unicode's format characters (general category Cf): the
//! bidirectional overrides and isolates reorder what follows
//! (`"alice\u{202E}txt.exe"` shows as `alicexte.txt`), and the zero-width
//! ones make `"al\u{200B}ice"` look exactly like `"alice"`. Line and
//! paragraph separators (U+2028, U+2029) break a name over lines. Control
//! characters (Cc) are refused separately, with their own message.
//!
//! The table is the Cf list of Unicode 15.1 (with U+2065, unassigned inside
//! the range of invisible operators and isolates, included so the range
//! stays whole); std has no general-category lookup, and the list is short
//! and changes rarely.

/// Inclusive ranges of the refused characters, in code point order.
const REFUSED: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),   // soft hyphen
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{061C}', '\u{061C}'),   // Arabic letter mark (bidi)
    ('\u{06DD}', '\u{06DD}'),   // Arabic end of ayah
    ('\u{070F}', '\u{070F}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre marks above
    ('\u{08E2}', '\u{08E2}'),   // Arabic disputed end of ayah
    ('\u{180E}', '\u{180E}'),   // Mongolian vowel separator
    ('\u{200B}', '\u{200F}'),   // zero width space/non-joiner/joiner, LRM, RLM
    ('\u{2028}', '\u{2029}'),   // line and paragraph separators (Zl, Zp)
    ('\u{202A}', '\u{202E}'),   // bidi embeddings, pop, overrides
    ('\u{2060}', '\u{206F}'),   // word joiner, invisible operators, isolates, deprecated
    ('\u{FEFF}', '\u{FEFF}'),   // zero width no-break space (BOM)
    ('\u{FFF9}', '\u{FFFB}'),   // interlinear annotation
    ('\u{110BD}', '\u{110BD}'), // Kaithi number sign
    ('\u{110CD}', '\u{110CD}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343F}'), // Egyptian hieroglyph format controls
    ('\u{1BCA0}', '\u{1BCA3}'), // shorthand format controls
    ('\u{1D173}', '\u{1D17A}'), // musical symbol format controls
    ('\u{E0001}', '\u{E0001}'), // language tag
    ('\u{E0020}', '\u{E007F}'), // tag characters
];

/// The first character of `s` that a name must not contain, if any.
pub fn first_refused(s: &str) -> Option<char> {
    s.chars().find(|&c| is_refused(c))
}

/// `true` for a format (Cf) character or a line/paragraph separator.
pub fn is_refused(c: char) -> bool {
    // The table is sorted and disjoint: find the last range starting at or
    // before `c` and check that it reaches `c`.
    let after = REFUSED.partition_point(|&(lo, _)| lo <= c);
    match after.checked_sub(1).and_then(|i| REFUSED.get(i)) {
        Some(&(_, hi)) => c <= hi,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{first_refused, is_refused, REFUSED};

    #[test]
    fn the_table_is_sorted_and_disjoint() {
        for pair in REFUSED.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
    }

    #[test]
    fn range_edges() {
        for &(lo, hi) in REFUSED {
            assert!(is_refused(lo) && is_refused(hi), "{lo:?}..{hi:?}");
        }
        for c in [
            '\u{0}',
            'a',
            '\u{00AC}',
            '\u{00AE}',
            '\u{200A}',
            '\u{2010}',
            '\u{2027}',
            '\u{202F}',
            '\u{2070}',
            '\u{FEFE}',
            '\u{FF00}',
            '\u{E0000}',
            '\u{E0080}',
            '\u{10FFFF}',
        ] {
            assert!(!is_refused(c), "{c:?}");
        }
        assert_eq!(first_refused("a\u{200D}b\u{202E}"), Some('\u{200D}'));
        assert_eq!(first_refused("Grüße 世界 😀"), None);
    }
}
