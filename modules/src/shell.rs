//! The one place where shell words are quoted.
//!
//! Every value that reaches a remote command line goes through [`quote`] (or [`join`]).
//! Nothing else in the project builds command lines by pasting.

/// Quotes `word` for POSIX `sh` so that it stays one word and nothing in it is expanded.
///
/// Always uses single quotes, with embedded single quotes written as `'\''`, so the result
/// is safe for any text, including newlines, `$()`, backticks and globs.
pub fn quote(word: &str) -> String {
    single_quote(word)
}

fn single_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for ch in text.chars() {
        if ch == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(ch);
        }
    }
    out.push('\'');
    out
}

/// Joins already-separate words into one command line, quoting each.
pub fn join<I, S>(words: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    words.into_iter().map(|w| quote(w.as_ref())).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_hostile_words() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf /) `x` \n"), "'$(rm -rf /) `x` \n'");
        assert_eq!(join(["a b", "c"]), "'a b' 'c'");
    }
}
