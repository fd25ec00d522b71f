//! Ansible's INI inventory, as its `ini` plugin reads it: `[group]` sections of host lines
//! (`web[01:10].example.com:2222 key=value ...`), `[group:vars]` of `key=value` lines,
//! `[group:children]` of group names; hosts before any section are `ungrouped`; lines starting
//! with `#` or `;` are comments, and so is a `#` word on a host line. Values are read as Python
//! literals, as Ansible's `ast.literal_eval` does (`1` a number, `True` a boolean, `[1, 2]` a
//! list, `'x'` a string), and anything else is the text itself (`true`, `yes`, `01` stay text).

use serde_json::{Number, Value};

use super::Vars;
use super::model::Raw;
use super::parse::{ParseError, holds_marker_char, validate_name};
use super::range;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Hosts,
    Vars,
    Children,
}

/// Parses INI inventory text into `raw`, after what earlier sources put there.
pub(super) fn parse(text: &str, raw: &mut Raw) -> Result<(), ParseError> {
    let mut group = "ungrouped".to_owned();
    let mut kind = Kind::Hosts;
    for (index, line) in text.lines().enumerate() {
        let at = |message: String| ParseError { line: Some(index + 1), message };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            (group, kind) = header(line).map_err(at)?;
            validate_name("group", &group).map_err(|e| at(e.message))?;
            raw.group(&group);
            continue;
        }
        match kind {
            Kind::Hosts => host_line(line, &group, raw).map_err(at)?,
            Kind::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(at(format!("[{group}:vars] holds key=value lines, found {line:?}")));
                };
                let key = key.trim();
                check_key(key, &format!("[{group}:vars]")).map_err(at)?;
                let value = literal(value.trim());
                refuse_marker(key, &value, &format!("vars of group {group:?}")).map_err(at)?;
                raw.group(&group).vars.insert(key.to_owned(), value);
            }
            Kind::Children => {
                let child = line.split('#').next().unwrap_or_default().trim();
                if child.split_whitespace().count() != 1 {
                    return Err(at(format!(
                        "[{group}:children] holds one group name a line, found {line:?}"
                    )));
                }
                validate_name("group", child).map_err(|e| at(e.message))?;
                raw.add_child(&group, child);
            }
        }
    }
    Ok(())
}

/// `[name]`, `[name:hosts]`, `[name:vars]` or `[name:children]`, with an optional `# comment`.
fn header(line: &str) -> Result<(String, Kind), String> {
    let shape = || {
        format!(
            "a section header is [group], [group:vars] or [group:children] with no spaces inside, found {line:?}"
        )
    };
    let body = line.strip_prefix('[').ok_or_else(shape)?;
    let (inside, after) = body.split_once(']').ok_or_else(shape)?;
    let after = after.trim();
    if !(after.is_empty() || after.starts_with('#') || after.starts_with(';'))
        || inside.contains(char::is_whitespace)
    {
        return Err(shape());
    }
    let (name, suffix) = inside.split_once(':').unwrap_or((inside, "hosts"));
    let kind = match suffix {
        "hosts" => Kind::Hosts,
        "vars" => Kind::Vars,
        "children" => Kind::Children,
        other => {
            return Err(format!(
                "section [{inside}] has an unknown type {other:?}: use [{name}], [{name}:vars] or [{name}:children]"
            ));
        }
    };
    Ok((name.to_owned(), kind))
}

/// `PATTERN[:PORT] [key=value ...] [# comment]`.
fn host_line(line: &str, group: &str, raw: &mut Raw) -> Result<(), String> {
    let words = words(line)?;
    let Some((pattern, assignments)) = words.split_first() else { return Ok(()) };
    let (pattern, port) = split_port(pattern)?;
    let mut vars = Vars::new();
    if let Some(port) = port {
        vars.insert("ansible_port".into(), Value::Number(port.into()));
    }
    for word in assignments {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!("expected key=value after the host {pattern:?}, found {word:?}"));
        };
        check_key(key, &format!("host {pattern:?}"))?;
        let value = literal(value);
        refuse_marker(key, &value, &format!("vars of host {pattern:?}"))?;
        vars.insert(key.to_owned(), value);
    }
    for host in range::expand(pattern)? {
        validate_name("host", &host).map_err(|e| e.message)?;
        raw.add_host(group, &host, vars.clone());
    }
    Ok(())
}

/// `name:22` -> (`name`, 22); a colon inside a range's brackets is not a port.
fn split_port(pattern: &str) -> Result<(&str, Option<u16>), String> {
    let mut depth = 0i32;
    let mut colons = Vec::new();
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons.as_slice() {
        [i] => {
            let port = &pattern[i + 1..];
            let number =
                port.parse::<u16>().ok().filter(|p| *p != 0 && port.bytes().all(|b| b.is_ascii_digit()));
            match number {
                Some(p) => Ok((&pattern[..*i], Some(p))),
                None => {
                    Err(format!("host {pattern:?}: {port:?} after the colon is not a port number (1-65535)"))
                }
            }
        }
        _ => Ok((pattern, None)),
    }
}

fn check_key(key: &str, what: &str) -> Result<(), String> {
    let ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok { Ok(()) } else { Err(format!("{what}: {key:?} is not a variable name (letters, digits and _)")) }
}

fn refuse_marker(key: &str, value: &Value, what: &str) -> Result<(), String> {
    if holds_marker_char(key) || holds_marker_char(&value.to_string()) {
        return Err(format!(
            "{what}: variable \"{key}\" holds U+2063 (INVISIBLE SEPARATOR), which engine \
             reserves for run-time references (another task's output would be read in its place)"
        ));
    }
    Ok(())
}

/// Splits a host line as Python's `shlex.split(line, comments=True)`: words apart at blanks,
/// quotes grouping and removed, a backslash escaping the next character, `#` opening a comment
/// where a word starts.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = word.take() {
                    out.push(w);
                }
            }
            '#' if word.is_none() => break,
            '\'' | '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(format!("a quote {c} is not closed on the line {line:?}")),
                        Some(q) if q == c => break,
                        Some('\\') if c == '"' => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => w.push(e),
                            Some(e) => {
                                w.push('\\');
                                w.push(e);
                            }
                            None => return Err(format!("a quote {c} is not closed on the line {line:?}")),
                        },
                        Some(q) => w.push(q),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(e) = chars.next() {
                    w.push(e);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    Ok(out)
}

/// A value as Python's `ast.literal_eval` reads it, or the text itself when it is no literal.
pub(super) fn literal(text: &str) -> Value {
    let mut p = Literal { s: text.as_bytes(), i: 0, depth: 0 };
    match p.value() {
        Some(v) if p.rest_is_blank() => v,
        _ => Value::String(text.to_owned()),
    }
}

struct Literal<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Literal<'_> {
    fn blank(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn rest_is_blank(&mut self) -> bool {
        self.blank();
        self.i == self.s.len()
    }

    fn eat(&mut self, c: u8) -> bool {
        self.blank();
        let hit = self.s.get(self.i) == Some(&c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn value(&mut self) -> Option<Value> {
        self.blank();
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let value = match *self.s.get(self.i)? {
            b'\'' | b'"' => self.string().map(Value::String),
            b'[' => {
                self.i += 1;
                self.items(b']').map(Value::Array)
            }
            b'(' => {
                self.i += 1;
                let start = self.i;
                let items = self.items(b')')?;
                // `(x)` is x; `(x,)` and `()` are tuples, which JSON knows as lists.
                let text = std::str::from_utf8(&self.s[start..self.i - 1]).ok()?;
                if items.len() == 1 && !text.trim_end().ends_with(',') {
                    items.into_iter().next()
                } else {
                    Some(Value::Array(items))
                }
            }
            b'{' => {
                self.i += 1;
                self.dict()
            }
            _ => self.word(),
        };
        self.depth -= 1;
        value
    }

    fn items(&mut self, close: u8) -> Option<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            if self.eat(close) {
                return Some(items);
            }
            items.push(self.value()?);
            if !self.eat(b',') {
                return self.eat(close).then_some(items);
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        let mut map = serde_json::Map::new();
        loop {
            if self.eat(b'}') {
                return Some(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_owned(),
                _ => return None,
            };
            if !self.eat(b':') {
                return None;
            }
            map.insert(key, self.value()?);
            if !self.eat(b',') {
                return self.eat(b'}').then_some(Value::Object(map));
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let c = *self.s.get(self.i)?;
            self.i += 1;
            match c {
                c if c == quote => return String::from_utf8(out).ok(),
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'0' => out.push(0),
                        b'\\' | b'\'' | b'"' => out.push(e),
                        b'\n' => {}
                        other => out.extend([b'\\', other]),
                    }
                }
                b'\n' => return None,
                c => out.push(c),
            }
        }
    }

    /// A number, `True`, `False` or `None`.
    fn word(&mut self) -> Option<Value> {
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-' | b'_'))
        {
            self.i += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        match word {
            "True" => return Some(Value::Bool(true)),
            "False" => return Some(Value::Bool(false)),
            "None" => return Some(Value::Null),
            _ => {}
        }
        let digits = word.trim_start_matches(['-', '+']);
        let leading_zero =
            digits.len() > 1 && digits.starts_with('0') && digits.bytes().all(|c| c.is_ascii_digit());
        if digits.is_empty() || !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') || leading_zero
        {
            return None;
        }
        let plain = word.replace('_', "");
        if let Ok(n) = plain.parse::<i64>() {
            return Some(Value::Number(n.into()));
        }
        plain.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(Number::from_f64).map(Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_read_as_python_literals_or_stay_text() {
        for (text, value) in [
            ("1", json!(1)),
            ("-2", json!(-2)),
            ("1.5", json!(1.5)),
            ("True", json!(true)),
            ("None", json!(null)),
            ("'x y'", json!("x y")),
            ("\"a\\nb\"", json!("a\nb")),
            ("[1, 'a', [True]]", json!([1, "a", [true]])),
            ("(1, 2)", json!([1, 2])),
            ("{'a': 1, 2: None}", json!({"a": 1, "2": null})),
            ("true", json!("true")),
            ("yes", json!("yes")),
            ("01", json!("01")),
            ("1.2.3", json!("1.2.3")),
            ("/usr/bin/python3", json!("/usr/bin/python3")),
            ("[1, 2", json!("[1, 2")),
            ("", json!("")),
        ] {
            assert_eq!(literal(text), value, "{text:?}");
        }
    }

    #[test]
    fn host_lines_split_like_shlex_with_comments() {
        assert_eq!(words("a x='1 2' y=\"q\\\"\" # note").unwrap(), ["a", "x=1 2", "y=q\""]);
        assert_eq!(words("a b#c").unwrap(), ["a", "b#c"]);
        assert!(words("a x='open").unwrap_err().contains("not closed"));
    }
}
