//! The one rule for text in the contract: what a string from an agent, a modem or a person may
//! hold before it reaches a terminal, a line-protocol tag, a notification or a page.
//!
//! Refused: control characters (C0, DEL, C1: a terminal escape or a line break in a line-protocol
//! tag), bidirectional controls (U+202E can make `exe.txt` read as `txt.exe` in a message),
//! zero-width characters and the line and paragraph separators (invisible differences between
//! names that look alike). Vietnamese letters with their diacritics, in either Unicode
//! normalisation form, are of course allowed: combining marks are not refused.

/// Whether `c` may not appear in any string of the contract.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, left-to-right/right-to-left marks, embeddings, overrides,
            // isolates.
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
            // Zero width space, non-joiner, joiner, word joiner, invisible operators, BOM.
            | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}'
            // Line and paragraph separators.
            | '\u{2028}' | '\u{2029}'
        )
}

/// Why a text was refused: `Err` of [`check`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadText {
    #[error("length {len} bytes is outside 1-{max}")]
    Length { len: usize, max: usize },
    #[error("contains the character U+{0:04X} (control, bidirectional or invisible)")]
    Forbidden(u32),
}

/// Checks a required text: 1 to `max` bytes, no forbidden character.
pub fn check(value: &str, max: usize) -> Result<(), BadText> {
    if value.is_empty() || value.len() > max {
        return Err(BadText::Length {
            len: value.len(),
            max,
        });
    }
    match value.chars().find(|&c| is_forbidden(c)) {
        Some(c) => Err(BadText::Forbidden(u32::from(c))),
        None => Ok(()),
    }
}

/// What a sender that does not control its input (a modem, a device) should send instead of
/// `value`: forbidden characters dropped, runs of whitespace made one space, the ends trimmed, cut
/// to at most `max` bytes on a character boundary; `None` when nothing is left.
pub fn clean(value: &str, max: usize) -> Option<String> {
    let mut out = String::with_capacity(value.len().min(max));
    let mut space = false;
    for c in value.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if is_forbidden(c) {
            continue;
        }
        let extra = usize::from(space) + c.len_utf8();
        if out.len() + extra > max {
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    (!out.is_empty()).then_some(out)
}

/// `value` made safe to print in one cell of a terminal table: forbidden characters shown as
/// `\u{…}` escapes, so a name can neither move the cursor nor hide what it is.
pub fn printable(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.chars().any(is_forbidden) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if is_forbidden(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_names_pass_in_both_normal_forms() {
        // "Thôn Thọ Liên" precomposed, and with combining marks (NFD).
        assert_eq!(check("Thôn Thọ Liên", 64), Ok(()));
        assert_eq!(check("Tho\u{302}n Tho\u{323} Lie\u{302}n", 64), Ok(()));
        assert_eq!(check("Viettel (452-04)", 64), Ok(()));
    }

    #[test]
    fn control_bidi_and_invisible_characters_are_refused() {
        for (text, code) in [
            ("a\nb", 0x0a),
            ("a\rb", 0x0d),
            ("\u{1b}[2J", 0x1b),
            ("a\u{7f}", 0x7f),
            ("a\u{85}b", 0x85),
            ("Gateway \u{202e}txt.exe", 0x202e),
            ("a\u{200b}b", 0x200b),
            ("a\u{2028}b", 0x2028),
            ("\u{feff}a", 0xfeff),
            ("a\u{2066}b", 0x2066),
        ] {
            assert_eq!(check(text, 64), Err(BadText::Forbidden(code)), "{text:?}");
        }
        assert_eq!(check("", 64), Err(BadText::Length { len: 0, max: 64 }));
        assert_eq!(
            check(&"x".repeat(65), 64),
            Err(BadText::Length { len: 65, max: 64 })
        );
    }

    #[test]
    fn clean_keeps_the_visible_text_within_the_limit() {
        assert_eq!(
            clean("  Viettel\n\u{1b}]0;owned\u{7}  ", 64).as_deref(),
            Some("Viettel ]0;owned")
        );
        assert_eq!(
            clean("Gateway \u{202e}txt.exe", 64).as_deref(),
            Some("Gateway txt.exe")
        );
        assert_eq!(clean("\u{200b}\n\t", 64), None);
        // Cut on a character boundary: "ệ" is three bytes.
        assert_eq!(clean("Nguyệt", 6).as_deref(), Some("Nguy"));
        assert_eq!(clean("a    b", 3).as_deref(), Some("a b"));
        for dirty in ["x\u{1b}[31m", "\u{2028}y", "a\u{202d}b\u{85}"] {
            let cleaned = clean(dirty, 64).unwrap_or_default();
            assert_eq!(check(&cleaned, 64), Ok(()), "{dirty:?} → {cleaned:?}");
        }
    }

    #[test]
    fn printable_escapes_only_what_is_forbidden() {
        assert_eq!(printable("thôn Giang Trung"), "thôn Giang Trung");
        assert_eq!(
            printable("\u{1b}[2J\u{202e}x\n"),
            "\\u{001b}[2J\\u{202e}x\\u{000a}"
        );
    }
}
