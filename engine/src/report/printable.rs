//! Remote text made safe for a terminal: anything a host prints (stderr in errors, diffs of
//! its files, names it reports) reaches the operator's terminal only through [`printable`],
//! so an escape sequence is shown, never executed (it could otherwise move the cursor, rewrite
//! lines already printed, retitle the window or hide text).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character but newline and tab written out visibly: C0 controls
/// (ESC as `\x1b`, CR as `\r`, ...), DEL, and C1 controls (`\u{9b}`), as well as the Unicode
/// bidirectional overrides and isolates that reorder what a line seems to say (`\u{202e}`).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        match ch {
            '\r' => out.push_str("\\r"),
            ch if u32::from(ch) < 0x80 && hidden(ch) => {
                let _ = write!(out, "\\x{:02x}", u32::from(ch));
            }
            ch if hidden(ch) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(ch));
            }
            ch => out.push(ch),
        }
    }
    Cow::Owned(out)
}

/// Whether `ch` must not reach a terminal as it is.
fn hidden(ch: char) -> bool {
    match ch {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidirectional embeddings, overrides and isolates (LRE..RLO, LRI..PDI).
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_executed() {
        // Clear the screen, move home, red text, a title change ending in BEL, a CR overwrite.
        let hostile = "\x1b[2J\x1b[Hpwned \x1b[31mred\x1b[0m\x1b]0;title\x07 ok\rfake";
        assert_eq!(
            printable(hostile),
            "\\x1b[2J\\x1b[Hpwned \\x1b[31mred\\x1b[0m\\x1b]0;title\\x07 ok\\rfake"
        );
        assert_eq!(printable("a\u{9b}31mb\u{7f}\u{0}"), "a\\u{9b}31mb\\x7f\\x00");
        assert_eq!(printable("abc\u{202e}fed"), "abc\\u{202e}fed");
    }

    #[test]
    fn plain_text_newlines_tabs_and_unicode_pass_unchanged() {
        let text = "line one\n\tline two: é ü 日本 ✓";
        assert!(matches!(printable(text), Cow::Borrowed(t) if t == text));
    }
}
