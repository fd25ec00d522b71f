//! What `line` and `block` share: a regular expression checked when it is read ([`Regexp`]),
//! where to insert what is missing ([`Insert`]), and a text file read as lines
//! ([`read_text`], [`Lines`]).

use std::fmt;

use regex::Regex;
use serde::de::{Deserialize, Deserializer, Error as _};

use contract::error::ModuleError;
use contract::host::Host;
use contract::remote::{self, FileKind, FileStat};

/// A regular expression (Rust `regex` syntax, matched anywhere in a line unless anchored with
/// `^` or `$`), compiled when the arguments are read, so a broken one is refused at seal.
#[derive(Clone)]
pub struct Regexp(Regex);

impl Regexp {
    pub fn is_match(&self, line: &str) -> bool {
        self.0.is_match(line)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for Regexp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Regexp({:?})", self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Regexp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.contains('\n') {
            return Err(D::Error::custom(
                "a regular expression matches within one line: it holds no newline",
            ));
        }
        regex::RegexBuilder::new(&text)
            .size_limit(1 << 20)
            .build()
            .map(Regexp)
            .map_err(|e| D::Error::custom(format!("not a valid regular expression: {}", first_line(&e))))
    }
}

contract::string_schema!(Regexp);

/// The regex crate's message without its multi-line picture of the pattern: its last line
/// says what is wrong ("error: unclosed group"), kept without the "error: ".
fn first_line(error: &regex::Error) -> String {
    let text = error.to_string();
    let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// Where a missing line (or block) goes, as `insert_after` or `insert_before` gives it: `EOF`
/// (the end of the file), `BOF` (its beginning), or a regular expression.
#[derive(Debug, Clone)]
pub enum Anchor {
    Eof,
    Bof,
    Line(Regexp),
}

impl<'de> Deserialize<'de> for Anchor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        match text.as_str() {
            "EOF" => Ok(Anchor::Eof),
            "BOF" => Ok(Anchor::Bof),
            _ => Regexp::deserialize(serde::de::value::StringDeserializer::<D::Error>::new(text))
                .map(Anchor::Line),
        }
    }
}

contract::string_schema!(Anchor);

/// Where to insert: resolved from `insert_after` / `insert_before`.
#[derive(Debug, Clone)]
pub(crate) enum Insert {
    Eof,
    Bof,
    After(Regexp),
    Before(Regexp),
}

impl Insert {
    /// From the two arguments, at most one of which is set (the caller checks); neither is
    /// the end of the file.
    pub(crate) fn from_args(after: Option<&Anchor>, before: Option<&Anchor>) -> Insert {
        match (after, before) {
            (Some(Anchor::Line(re)), _) => Insert::After(re.clone()),
            (_, Some(Anchor::Line(re))) => Insert::Before(re.clone()),
            (Some(Anchor::Bof), _) | (_, Some(Anchor::Bof)) => Insert::Bof,
            _ => Insert::Eof,
        }
    }

    /// The index at which to insert into `lines`: after (or before) the last line the
    /// regular expression matches, at the end when none matches, or an end of the file.
    pub(crate) fn index(&self, lines: &[String]) -> usize {
        let last = |re: &Regexp| lines.iter().rposition(|l| re.is_match(l));
        match self {
            Insert::Eof => lines.len(),
            Insert::Bof => 0,
            Insert::After(re) => last(re).map_or(lines.len(), |i| i + 1),
            Insert::Before(re) => last(re).unwrap_or(lines.len()),
        }
    }
}

/// A text file as lines, without their newlines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lines {
    pub(crate) lines: Vec<String>,
}

impl Lines {
    pub(crate) fn parse(text: &str) -> Lines {
        Lines { lines: text.split_terminator('\n').map(str::to_owned).collect() }
    }

    /// The text of these lines, each ending with a newline.
    pub(crate) fn text(&self) -> String {
        let mut out = String::with_capacity(self.lines.iter().map(|l| l.len() + 1).sum());
        for line in &self.lines {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The state of `path` and its text: `None` when nothing is there. Refuses a path that is not
/// a regular file, and content that is not UTF-8.
pub(crate) async fn read_text(
    host: &dyn Host,
    path: &str,
) -> Result<Option<(FileStat, String)>, ModuleError> {
    let Some(stat) = remote::stat(host, path).await? else {
        return Ok(None);
    };
    if stat.kind != FileKind::File {
        return Err(ModuleError::Refused(format!("{path} exists and is not a regular file")));
    }
    let bytes = remote::read(host, path).await?;
    let text =
        String::from_utf8(bytes).map_err(|_| ModuleError::Refused(format!("{path} is not a text file")))?;
    Ok(Some((stat, text)))
}

/// The file `line` and `block` edit: its state (`None` when it is to be created) and text.
/// `Ok(None)` when it is missing and `absent` is wanted (nothing to do); a missing file is
/// otherwise refused unless `create`.
pub(crate) async fn read_for_edit(
    host: &dyn Host,
    path: &str,
    absent: bool,
    create: bool,
) -> Result<Option<(Option<FileStat>, String)>, ModuleError> {
    match read_text(host, path).await? {
        Some((stat, text)) => Ok(Some((Some(stat), text))),
        None if absent => Ok(None),
        None if !create => {
            Err(ModuleError::Refused(format!("{path} does not exist (create: true creates it)")))
        }
        None => Ok(Some((None, String::new()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::args::from_value;
    use serde_json::json;

    fn lines(text: &str) -> Vec<String> {
        Lines::parse(text).lines
    }

    #[test]
    fn a_broken_regular_expression_is_refused_with_the_reason() {
        let error = from_value::<Regexp>(json!("(unclosed")).unwrap_err().to_string();
        assert_eq!(error, "not a valid regular expression: unclosed group");
        assert!(from_value::<Regexp>(json!("^a\nb")).is_err());
        assert!(from_value::<Regexp>(json!("^PermitRootLogin ")).unwrap().is_match("PermitRootLogin yes"));
    }

    #[test]
    fn insert_goes_after_or_before_the_last_match_else_at_the_end() {
        let text = lines("a\n[x]\nb\n[x]\nc\n");
        let re = |s: &str| from_value::<Regexp>(json!(s)).unwrap();
        assert_eq!(Insert::After(re(r"^\[x\]")).index(&text), 4);
        assert_eq!(Insert::Before(re(r"^\[x\]")).index(&text), 3);
        assert_eq!(Insert::After(re("nothing")).index(&text), 5);
        assert_eq!(Insert::Before(re("nothing")).index(&text), 5);
        assert_eq!(Insert::Bof.index(&text), 0);
        assert_eq!(Insert::Eof.index(&text), 5);
    }

    #[test]
    fn lines_round_trip_and_end_with_a_newline() {
        assert_eq!(Lines::parse("a\nb").text(), "a\nb\n");
        assert_eq!(Lines::parse("a\n\n").lines, ["a", ""]);
        assert_eq!(Lines::parse("").text(), "");
    }
}
