//! Values hidden by the name they are written under, in the text formats diffs and messages
//! show: YAML and INI-like lines (`token: x`, `password = x`, `DB_PASSWORD=x`, a kubeconfig's
//! `client-key-data: LS0t...`), JSON members (`"token": "x"`, anywhere on a line), and
//! command-line flags (`--token x`, `--password=x`). The key names are those of
//! [`SECRET_FIELD_SUFFIXES`].
//!
//! Certificates are not secret: a kubeconfig's `client-certificate-data` and
//! `certificate-authority-data` stay visible (a diff then shows that they changed); only
//! keys, tokens, passwords and secrets are hidden.
//!
//! A YAML block scalar under a secret-named key (`password: |`, `token: >-`) is followed: every
//! line of it (each line more indented than the key, blank lines included) is hidden, in plain
//! YAML and in a unified diff alike (one leading diff marker is set aside when indentation is
//! compared).
//!
//! Limit, on purpose: a key must start its line (after a diff marker, indentation, a list dash or
//! a comment sign), so prose that mentions "the token: ..." mid-sentence is left alone.

use super::REDACTED;

/// Key names (lower-cased, without `_`, `-` and `.`) ending with one of these hold secrets:
/// tokens, passwords, secrets, private keys, kubeadm's certificate key, API keys, and
/// base64-embedded keys (`client-key-data`).
const SECRET_FIELD_SUFFIXES: &[&str] =
    &["token", "password", "passwd", "secret", "keydata", "privatekey", "certificatekey", "apikey"];

/// Whether a key name is one whose value is secret.
fn secret_name(key: &str) -> bool {
    let key: String =
        key.chars().filter(|c| !matches!(c, '_' | '-' | '.')).map(|c| c.to_ascii_lowercase()).collect();
    !key.is_empty() && SECRET_FIELD_SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// Whether a value is already hidden (by this pass or an earlier one).
fn hidden(value: &str) -> bool {
    value.starts_with("<secret")
}

/// `text` with the value of every secret-named field, JSON member and flag replaced by
/// [`REDACTED`], or `None` when there is none.
pub(super) fn redact_secret_fields(text: &str) -> Option<String> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut start = 0;
    // Inside a secret block scalar: the indentation of its key.
    let mut block: Option<usize> = None;
    for line in text.split_inclusive('\n') {
        let body = line.strip_suffix('\n').unwrap_or(line);
        let body = body.strip_suffix('\r').unwrap_or(body);
        if let Some(key_indent) = block
            && let BlockLine::Inside(span) = block_line(body, key_indent)
        {
            if let Some((a, b)) = span {
                spans.push((start + a, start + b));
            }
            start += line.len();
            continue;
        }
        let mut found: Vec<(usize, usize)> = Vec::new();
        json_members(body, &mut found);
        block = line_field(body, &mut found);
        flags(body, &mut found);
        spans.extend(found.into_iter().map(|(a, b)| (start + a, start + b)));
        start += line.len();
    }
    if spans.is_empty() {
        return None;
    }
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (a, b) in spans {
        if a < copied {
            continue; // inside a span already replaced
        }
        out.push_str(&text[copied..a]);
        out.push_str(REDACTED);
        copied = b;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The end of a quoted value starting at `from` (just after the opening `quote`): the byte
/// offset of the closing quote that is not escaped by a backslash, or the end of the line.
fn closing_quote(line: &str, from: usize, quote: char) -> usize {
    let mut escaped = false;
    for (i, c) in line[from..].char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return from + i,
            _ => escaped = false,
        }
    }
    line.len()
}

/// The span of a value starting at `at`: inside its quotes when quoted, else up to the end of
/// the line without trailing blanks and a trailing `,` (JSON-ish). `None` when there is no value
/// or it is already hidden.
fn value_span(line: &str, at: usize) -> Option<(usize, usize)> {
    let rest = &line[at..];
    let (a, b) = match rest.chars().next()? {
        q @ ('"' | '\'') => (at + 1, closing_quote(line, at + 1, q)),
        _ => {
            let trimmed = rest.trim_end();
            let trimmed = trimmed.strip_suffix(',').unwrap_or(trimmed).trim_end();
            (at, at + trimmed.len())
        }
    };
    (b > a && !hidden(&line[a..b])).then_some((a, b))
}

/// `"KEY": "VALUE"` anywhere on the line, for secret-named keys.
fn json_members(line: &str, found: &mut Vec<(usize, usize)>) {
    let mut from = 0;
    while let Some(i) = line[from..].find('"') {
        let key_start = from + i + 1;
        let key_end = closing_quote(line, key_start, '"');
        if key_end >= line.len() {
            return;
        }
        let after = &line[key_end + 1..];
        let colon = after.len() - after.trim_start().len();
        if after[colon..].starts_with(':') {
            let value = key_end + 1 + colon + 1;
            let value = value + (line[value..].len() - line[value..].trim_start().len());
            if secret_name(&line[key_start..key_end])
                && line[value..].starts_with('"')
                && let Some(span) = value_span(line, value)
            {
                found.push(span);
                from = (span.1 + 1).min(line.len());
                continue;
            }
        }
        from = key_end + 1;
    }
}

/// One line after a secret block scalar's key.
enum BlockLine {
    /// Part of the block: the span to hide (`None` for a blank line).
    Inside(Option<(usize, usize)>),
    /// The first line after the block (it is read as any other line).
    After,
}

/// The indentation of a line with one leading diff marker set aside, and where its text starts.
fn indentation(line: &str) -> (usize, usize) {
    let marker = usize::from(line.starts_with(['+', '-', ' ']));
    let rest = &line[marker..];
    let indent = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    (indent, marker + indent)
}

/// Whether `line` belongs to the block scalar of a key indented by `key_indent`.
fn block_line(line: &str, key_indent: usize) -> BlockLine {
    let (indent, text) = indentation(line);
    if line[text..].is_empty() {
        return BlockLine::Inside(None);
    }
    if indent <= key_indent {
        return BlockLine::After;
    }
    BlockLine::Inside((!hidden(&line[text..])).then_some((text, line.len())))
}

/// Whether a YAML value is a block scalar's header: `|` or `>`, with an optional chomping and
/// indentation indicator, and an optional comment.
fn block_header(value: &str) -> bool {
    let Some(rest) = value.strip_prefix(['|', '>']) else {
        return false;
    };
    let rest = rest.trim_start_matches(['-', '+', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

/// A line that starts (after a diff marker, blanks, a YAML list dash, a comment sign or
/// `export `) with a secret-named key, then `:` or `=`, then a value. A block scalar's header
/// (`key: |`) is left as it is and the key's indentation returned: the block's lines follow.
fn line_field(line: &str, found: &mut Vec<(usize, usize)>) -> Option<usize> {
    let lead = line.len() - line.trim_start_matches(['+', '-', ' ', '\t', '#', ';', '>']).len();
    let mut at = lead;
    if line[at..].starts_with("export ") {
        at += "export ".len();
    }
    let rest = &line[at..];
    let (key, after_key) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let end = closing_quote(line, at + 1, q);
            if end >= line.len() {
                return None;
            }
            (&line[at + 1..end], end + 1)
        }
        Some(_) => {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
                .unwrap_or(rest.len());
            (&rest[..len], at + len)
        }
        None => return None,
    };
    if !secret_name(key) {
        return None;
    }
    let after = &line[after_key..];
    let gap = after.len() - after.trim_start_matches([' ', '\t']).len();
    let sep = after_key + gap;
    if !(line[sep..].starts_with(':') || line[sep..].starts_with('=')) {
        return None;
    }
    let value = sep + 1;
    let value = value + (line[value..].len() - line[value..].trim_start().len());
    if line[sep..].starts_with(':') && block_header(&line[value..]) {
        return Some(indentation(line).0);
    }
    if let Some(span) = value_span(line, value) {
        found.push(span);
    }
    None
}

/// `--KEY=VALUE` and `--KEY VALUE` anywhere on the line, for secret-named flags.
fn flags(line: &str, found: &mut Vec<(usize, usize)>) {
    let mut from = 0;
    while let Some(i) = line[from..].find("--") {
        let start = from + i;
        let name_start = start + 2;
        let name_len = line[name_start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
            .unwrap_or(line.len() - name_start);
        let name_end = name_start + name_len;
        from = name_end.max(start + 2);
        let preceded = start == 0 || line[..start].ends_with([' ', '\t', '\'', '"']);
        if !preceded || !secret_name(&line[name_start..name_end]) {
            continue;
        }
        let value = match line[name_end..].chars().next() {
            Some('=') => name_end + 1,
            Some(' ') => {
                name_end + 1 + (line[name_end + 1..].len() - line[name_end + 1..].trim_start().len())
            }
            _ => continue,
        };
        if line[value..].starts_with('-') {
            continue; // the next flag: this one takes no value here
        }
        let end = match line[value..].chars().next() {
            Some(q @ ('"' | '\'')) => closing_quote(line, value + 1, q) + 1,
            _ => value + line[value..].find([' ', '\t']).unwrap_or(line.len() - value),
        };
        let end = end.min(line.len());
        if end > value && !hidden(line[value..end].trim_matches(['\'', '"'])) {
            found.push((value, end));
            from = end;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> String {
        redact_secret_fields(text).unwrap_or_else(|| text.to_owned())
    }

    #[test]
    fn yaml_ini_and_env_lines_hide_secret_named_values() {
        let kubeconfig = "users:\n- name: admin\n  user:\n    client-certificate-data: LS0tQ0VSVA==\n    \
                          client-key-data: LS0tS0VZ\n    token: abc.def\n";
        assert_eq!(
            redact(kubeconfig),
            "users:\n- name: admin\n  user:\n    client-certificate-data: LS0tQ0VSVA==\n    \
             client-key-data: <secret>\n    token: <secret>\n",
            "keys and tokens hidden, certificates shown"
        );
        assert_eq!(redact("+    password: \"hunter 2\" # x\n"), "+    password: \"<secret>\" # x\n");
        assert_eq!(redact("-  - secret: 's3'\n"), "-  - secret: '<secret>'\n");
        assert_eq!(redact("db_password = hunter2\r\n"), "db_password = <secret>\r\n");
        assert_eq!(redact("export API_KEY=xyz\nPATH=/bin\n"), "export API_KEY=<secret>\nPATH=/bin\n");
        assert_eq!(redact("# token: old-one\n"), "# token: <secret>\n", "commented out");
    }

    #[test]
    fn json_members_and_flags_hide_their_values_anywhere_on_a_line() {
        assert_eq!(
            redact(r#"{"user":"a","password":"p\"w","n":1,"bootstrapToken":"t"}"#),
            r#"{"user":"a","password":"<secret>","n":1,"bootstrapToken":"<secret>"}"#
        );
        assert_eq!(
            redact("kubeadm join x --token abc --discovery-token-ca-cert-hash sha256:1 --password='a b'"),
            "kubeadm join x --token <secret> --discovery-token-ca-cert-hash sha256:1 --password=<secret>"
        );
        assert_eq!(redact("run --token-ttl 0 --secret --x"), "run --token-ttl 0 --secret --x");
    }

    #[test]
    fn block_scalars_under_secret_keys_are_hidden_line_by_line() {
        let yaml =
            "db:\n  password: |\n    line one\n\n    line two\n  user: app\ntoken: >-  # folded\n  abc\n";
        assert_eq!(
            redact(yaml),
            "db:\n  password: |\n    <secret>\n\n    <secret>\n  user: app\ntoken: >-  # folded\n  <secret>\n"
        );
        let diff = "   db:\n-  password: |\n-    old\n+  password: |2\n+    new\n+    more\n   user: app\n";
        assert_eq!(
            redact(diff),
            "   db:\n-  password: |\n-    <secret>\n+  password: |2\n+    <secret>\n+    <secret>\n   user: app\n"
        );
        assert_eq!(redact("- secret: |\n    s3\n- name: x\n"), "- secret: |\n    <secret>\n- name: x\n");
        // Not block scalars: a pipe inside a value, a key that is not secret.
        assert_eq!(redact("password: |x\n"), "password: <secret>\n");
        assert_eq!(redact("note: |\n  token of thanks\n"), "note: |\n  token of thanks\n");
    }

    #[test]
    fn other_text_and_hidden_values_are_left_alone() {
        for text in [
            "the token: given below",
            "tokens: [a]",
            "token:",
            "password: \"\"",
            "token: <secret>",
            "client-key-data: <secret: private key>",
            "kind: Secret\n  secretName: tls\n",
            "--- before: /etc/app.conf\n+++ after: /etc/app.conf\n",
            "ééé token: é",
            "\"token\"",
            "\"token\": ",
        ] {
            assert_eq!(redact(text), text);
        }
        assert_eq!(redact("é: 1\ntoken: é\n"), "é: 1\ntoken: <secret>\n", "multi-byte text around it");
    }
}
