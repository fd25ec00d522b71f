//! How the transport shows a command line in logs and errors: without environment values.
//!
//! `command`'s `env` reaches the command line as `env 'NAME=VALUE' ...` (each word quoted by
//! [`contract::shell::quote`]). Those values need not look secret to be private, and `-vv`
//! logs every command line, so the transport shows such words as `'NAME=<hidden>'`: logs and
//! errors name the variables, never their values. Stdin (file content, keys) is never shown.

use std::borrow::Cow;

/// What replaces a hidden value.
const HIDDEN: &str = "<hidden>";

/// `command` with the value of every word quoted as `'NAME=VALUE'` (NAME a shell variable
/// name, the word starting the line or following whitespace) replaced by `<hidden>`.
pub(crate) fn without_env_values(command: &str) -> Cow<'_, str> {
    let bytes = command.as_bytes();
    let mut out = String::new();
    // `command[..copied]` is in `out` already (or nothing was hidden yet).
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let word_start = i == 0 || bytes[i - 1].is_ascii_whitespace();
        if bytes[i] != b'\'' || !word_start {
            i += 1;
            continue;
        }
        let name = &bytes[i + 1..];
        let name_len = name.iter().take_while(|b| b.is_ascii_alphanumeric() || **b == b'_').count();
        let is_assignment = name_len > 0 && !name[0].is_ascii_digit() && name.get(name_len) == Some(&b'=');
        if !is_assignment {
            i += 1;
            continue;
        }
        let value_start = i + 1 + name_len + 1;
        let value_end = closing_quote(bytes, value_start);
        out.push_str(&command[copied..value_start]);
        out.push_str(HIDDEN);
        copied = value_end;
        i = value_end + 1;
    }
    if out.is_empty() {
        return Cow::Borrowed(command);
    }
    out.push_str(&command[copied..]);
    Cow::Owned(out)
}

/// The index of the quote that closes a single-quoted word whose text starts at `from`, past
/// any `'\''` (how [`contract::shell::quote`] writes a quote inside a word); the end of the
/// line when it is not closed.
fn closing_quote(bytes: &[u8], from: usize) -> usize {
    let mut at = from;
    loop {
        match bytes.get(at..).and_then(|rest| rest.iter().position(|&b| b == b'\'')) {
            None => return bytes.len(),
            Some(offset) => at += offset,
        }
        if bytes[at..].starts_with(b"'\\''") {
            at += 4;
        } else {
            return at;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::shell::quote;

    #[test]
    fn env_values_are_hidden_and_names_kept() {
        let line = format!(
            "cd '/srv' && env {} {} 'sh' '-c' 'echo hi'",
            quote("API_URL=https://internal:8443/?k=v w"),
            quote("NOTE=it's a secret")
        );
        assert_eq!(
            without_env_values(&line),
            "cd '/srv' && env 'API_URL=<hidden>' 'NOTE=<hidden>' 'sh' '-c' 'echo hi'"
        );
    }

    #[test]
    fn words_that_are_no_assignment_are_left_alone() {
        for line in ["sed -e 's/x=1/x=2/'", "x'A=b'", "'1A=b'", "'--opt=v'", "plain A=b", "''"] {
            assert_eq!(without_env_values(line), line);
        }
    }

    #[test]
    fn an_unclosed_or_hostile_line_never_panics() {
        assert_eq!(without_env_values("env 'A=never closed"), "env 'A=<hidden>");
        assert_eq!(without_env_values("'"), "'");
        assert_eq!(without_env_values("'A="), "'A=<hidden>");
        assert_eq!(without_env_values("env 'É=x' 'B=é'"), "env 'É=x' 'B=<hidden>'");
    }
}
