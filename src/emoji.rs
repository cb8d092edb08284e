//! The reaction emoji rule: [`check`] accepts exactly one emoji (one
//! extended grapheme cluster made of emoji), in at most [`MAX_BYTES`]
//! bytes of UTF-8. The grammar, a subset of Unicode UTS #51's
//! `emoji_sequence`:
//!
//! ```text
//! reaction := flag | keycap | element (ZWJ element)*
//! flag     := RI RI                    regional indicators U+1F1E6..U+1F1FF
//! keycap   := [0-9#*] FE0F? U+20E3
//! element  := pictograph FE0F? modifier? | U+1F3F4 tag+ U+E007F
//! modifier := U+1F3FB..U+1F3FF          skin tones
//! tag      := U+E0020..U+E007E          (subdivision flags)
//! ```
//!
//! `pictograph` is a code point of the emoji blocks ([`is_pictograph`]).
//! So text, digits without a keycap, whitespace, control characters, an
//! empty string and two emoji side by side (`👍👍`, no ZWJ between) are all
//! refused. Any code point sequence the grammar accepts is a single
//! extended grapheme cluster (ZWJ between pictographs, modifiers, FE0F,
//! keycap and tags all extend; two RIs pair), so a client renders one
//! symbol. The rule does not check that the sequence is in Unicode's list
//! of recommended sequences (new ones appear every year).

/// Largest reaction in UTF-8 bytes (a family ZWJ sequence of four people
/// is 25 bytes; a subdivision flag 28).
pub const MAX_BYTES: usize = 32;

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';
const BLACK_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn is_modifier(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007E}').contains(&c)
}

/// Code points of the emoji blocks and the older symbols that have emoji
/// presentation (Unicode's Extended_Pictographic, approximated by blocks).
pub fn is_pictograph(c: char) -> bool {
    const RANGES: &[(u32, u32)] = &[
        (0x00A9, 0x00A9),
        (0x00AE, 0x00AE),
        (0x203C, 0x203C),
        (0x2049, 0x2049),
        (0x2122, 0x2122),
        (0x2139, 0x2139),
        (0x2194, 0x2199),
        (0x21A9, 0x21AA),
        (0x231A, 0x231B),
        (0x2328, 0x2328),
        (0x23CF, 0x23CF),
        (0x23E9, 0x23F3),
        (0x23F8, 0x23FA),
        (0x24C2, 0x24C2),
        (0x25AA, 0x25AB),
        (0x25B6, 0x25B6),
        (0x25C0, 0x25C0),
        (0x25FB, 0x25FE),
        (0x2600, 0x27BF),
        (0x2934, 0x2935),
        (0x2B05, 0x2B07),
        (0x2B1B, 0x2B1C),
        (0x2B50, 0x2B50),
        (0x2B55, 0x2B55),
        (0x3030, 0x3030),
        (0x303D, 0x303D),
        (0x3297, 0x3297),
        (0x3299, 0x3299),
        (0x1F000, 0x1F1E5),
        (0x1F200, 0x1F3FA),
        (0x1F400, 0x1FAFF),
    ];
    let c = c as u32;
    RANGES.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c))
}

/// One `element` at the front of `rest`; the rest after it, or `None`.
fn element(rest: &[char]) -> Option<&[char]> {
    let (&first, mut rest) = rest.split_first()?;
    if first == BLACK_FLAG && rest.first().is_some_and(|c| is_tag(*c)) {
        let tags = rest.iter().take_while(|c| is_tag(**c)).count();
        return rest[tags..].strip_prefix(&[CANCEL_TAG]);
    }
    if !is_pictograph(first) {
        return None;
    }
    if let Some(r) = rest.strip_prefix(&[VS16]) {
        rest = r;
    }
    if rest.first().is_some_and(|c| is_modifier(*c)) {
        rest = &rest[1..];
    }
    Some(rest)
}

/// True when `s` is one reaction emoji by the grammar above.
pub fn is_reaction(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_BYTES {
        return false;
    }
    let cs: Vec<char> = s.chars().collect();
    match cs.as_slice() {
        [a, b] if is_regional_indicator(*a) && is_regional_indicator(*b) => return true,
        [k, KEYCAP] | [k, VS16, KEYCAP] if k.is_ascii_digit() || *k == '#' || *k == '*' => return true,
        _ => {}
    }
    let mut rest = cs.as_slice();
    loop {
        let Some(r) = element(rest) else { return false };
        match r.split_first() {
            None => return true,
            Some((&ZWJ, after)) => rest = after,
            Some(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_emoji_sequences_pass() {
        for ok in [
            "\u{1F44D}",                                                    // thumbs up
            "\u{2764}\u{FE0F}",                                             // red heart
            "\u{2764}",                                                     // bare heart
            "\u{1F44D}\u{1F3FD}",                                           // skin tone
            "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}", // family
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",                           // rainbow flag
            "\u{1F1EB}\u{1F1F7}",                                           // flag FR
            "1\u{FE0F}\u{20E3}",                                            // keycap
            "#\u{20E3}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}", // England
            "\u{1F9D1}\u{1F3FB}\u{200D}\u{1F4BB}",                             // technologist, tone
        ] {
            assert!(is_reaction(ok), "{ok:?}");
        }
    }

    #[test]
    fn text_and_several_emoji_fail() {
        for bad in [
            "",
            "a",
            "ok",
            "1",
            " ",
            "\u{1F44D} ",
            " \u{1F44D}",
            "\n",
            "\u{0007}",
            "\u{1F44D}\u{1F44D}",
            "\u{1F44D}a",
            "\u{200D}",
            "\u{1F44D}\u{200D}",
            "\u{FE0F}",
            "\u{1F3FD}",
            "\u{1F1EB}",
            "\u{1F1EB}\u{1F1F7}\u{1F1E9}\u{1F1EA}",
            "\u{1F3F4}\u{E0067}",
            "1\u{FE0F}",
            "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}\u{200D}\u{1F466}\u{200D}\u{1F466}\u{200D}\u{1F466}",
        ] {
            assert!(!is_reaction(bad), "{bad:?}");
        }
    }
}
