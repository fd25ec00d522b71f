//! The one place where shell words are quoted.
//!
//! Every value that reaches a remote command line goes through [`quote`] (or [`join`]).
//! Nothing else in the project builds command lines by pasting.

/// Quotes `word` for POSIX `sh` so that it stays one word and nothing in it is expanded.
///
/// Always uses single quotes, with embedded single quotes written as `'\''`, so the result
/// is safe for any text, including newlines, `$()`, backticks and globs.
///
/// The one text no command line can carry is a NUL byte (sshd drops the whole connection on
/// one, and `execve` would cut the line short): a word holding one becomes [`NUL_WORD`], whose
/// expansion stops the shell with an error, so that the command fails cleanly, naming the
/// problem, and never runs with a mangled argument.
pub fn quote(word: &str) -> String {
    if word.contains('\0') {
        return NUL_WORD.to_owned();
    }
    single_quote(word)
}

/// What [`quote`] makes of a word holding a NUL byte: `${NAME:?message}` on a variable that is
/// never set, which a non-interactive POSIX shell answers by printing the message and exiting
/// non-zero before it runs the command holding the word (the value itself is not shown: it may
/// be a secret).
pub const NUL_WORD: &str =
    "${ENGINE_NUL_BYTE_IN_ARGUMENT:?a value holds a NUL byte, which no command line can carry}";

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

    /// A NUL byte used to reach sshd, which dropped the connection: the host was reported
    /// unreachable. Now the shell stops with a message, before the command runs.
    #[test]
    fn a_word_with_a_nul_byte_stops_the_shell_before_the_command() {
        for shell in ["sh", "bash"] {
            let line = format!("p={}; echo ran; touch {}; echo ran", quote("/tmp/a\0b"), quote("x\0y"));
            let out = std::process::Command::new(shell).arg("-c").arg(&line).output().unwrap();
            assert!(!out.status.success(), "{shell}: {line}");
            assert!(out.stdout.is_empty(), "{shell} ran on: {:?}", String::from_utf8_lossy(&out.stdout));
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("a value holds a NUL byte"), "{shell}: {stderr}");
        }
        assert_eq!(join(["ok", "\0"]), format!("'ok' {NUL_WORD}"));
    }
}
