//! Secrets never leave the process in clear text: this is the one place that hides them.
//!
//! A [`Redactor`] knows the run's secrets: values a playbook wrapped in `secret(...)` (added
//! while it is evaluated), and values modules produce that are secret by nature (a bootstrap
//! token, a certificate key, a private key; added by the runner as soon as a task reports
//! them). Besides those literal values (and every spelling of them: quoted as the shell, sudo,
//! JSON and Rust's `{:?}` quote them, and in base64) it always hides PEM private key blocks
//! ([`contract::diff::redact_private_keys`]), base64 that decodes to one ([`base64`]: a
//! kubeconfig's `client-key-data`), the values of secret-named fields in YAML, INI, JSON and
//! command-line text ([`fields`]: `token:`, `password =`, `"secret":`, `--token x`), and
//! anything shaped like a kubeadm bootstrap token.
//!
//! Who goes through it: the event bus redacts every event before any subscriber sees it
//! (console, `--json`, the tracing log, the run journal); the tracing writer redacts every log
//! line; DOT labels and the CLI's error reports are redacted too. There is no process-wide
//! redactor: the binary makes one (`Arc<Redactor>`) and hands it to the playbook loader
//! ([`crate::playbook::LoadOptions`], where `secret()` adds to it), the event bus (whose
//! [`crate::events::EventSink::redactor`] the runner adds secret outputs to) and the log
//! writer, so a secret known to one is hidden by all, and two runs in one process (tests)
//! never share their secrets.
//!
//! Concurrency: the secret list sits behind an `RwLock`; redaction takes the read side, adding
//! a secret the write side. Secrets are only ever added, never removed.

mod base64;
mod fields;

use std::borrow::Cow;
use std::sync::{Arc, PoisonError, RwLock};

use serde_json::Value;

/// What a secret value is replaced with.
pub const REDACTED: &str = "<secret>";

/// Keys (of outputs and arguments, lower-cased, without `_` and `-`) whose values are secret
/// whatever the module: a bootstrap `token`, kubeadm's `certificate_key` (`certificateKey`), and
/// anything ending in `password`, `secret` or `private_key`.
const SECRET_KEY_SUFFIXES: &[&str] = &["token", "certificatekey", "password", "secret", "privatekey"];

/// Keys (spelled as for [`SECRET_KEY_SUFFIXES`]) that end like a secret's name but hold a
/// setting about one: `user`'s `update_password` (Ansible's name) is `always` or `on_create`,
/// and hiding every "always" of a run would garble it and protect nothing.
const NOT_SECRET_KEYS: &[&str] = &["updatepassword"];

/// Values found by their name (not marked with `secret()`) shorter than this are not taken for
/// secrets: hiding every "1" or "yes" would garble the output and protect nothing.
const MIN_NAMED_SECRET: usize = 4;

/// Secrets shorter than this are still hidden, but their lines are not split out (see [`Redactor::add`]).
const MIN_LINE_SECRET: usize = 8;

/// The set of secrets to hide, and the function that hides them.
#[derive(Debug, Default)]
pub struct Redactor {
    /// Longest first, so a secret that contains another is replaced whole.
    secrets: RwLock<Vec<String>>,
}

impl Redactor {
    /// Marks `value` as secret. Empty values are ignored. A multi-line secret also marks each
    /// of its longer lines, because diffs and logs show text line by line; its escaped
    /// spellings, because messages and command lines quote values (see [`spellings`]); and its
    /// base64 spellings (of 8 characters or more), wherever it sits in a longer base64 text.
    pub fn add(&self, value: &str) {
        let mut new = Vec::new();
        if !value.is_empty() {
            new.push(value.to_owned());
            new.extend(spellings(value).into_iter().filter(|s| s != value && !s.is_empty()));
            new.extend(base64::spellings(value.as_bytes(), MIN_LINE_SECRET));
        }
        if value.contains('\n') {
            new.extend(
                value.lines().map(str::trim).filter(|l| l.len() >= MIN_LINE_SECRET).map(str::to_owned),
            );
        }
        if new.is_empty() {
            return;
        }
        let mut secrets = self.secrets.write().unwrap_or_else(PoisonError::into_inner);
        for value in new {
            if !secrets.contains(&value) {
                secrets.push(value);
            }
        }
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// Marks the secret values among a task's outputs (or arguments): values under a secret
    /// name (see `SECRET_KEY_SUFFIXES`), and any string holding a private key. Nested values count too.
    pub fn add_outputs(&self, outputs: &serde_json::Map<String, Value>) {
        for (key, value) in outputs {
            let secret_name = {
                let key: String =
                    key.chars().filter(|c| !matches!(c, '_' | '-')).map(|c| c.to_ascii_lowercase()).collect();
                SECRET_KEY_SUFFIXES.iter().any(|s| key.ends_with(s))
                    && !NOT_SECRET_KEYS.contains(&key.as_str())
            };
            self.add_value(value, secret_name);
        }
    }

    fn add_value(&self, value: &Value, secret: bool) {
        match value {
            Value::String(s)
                if (secret && s.len() >= MIN_NAMED_SECRET) || contract::diff::looks_secret(s.as_bytes()) =>
            {
                self.add(s);
                // A bootstrap token's secret half is secret on its own too.
                if let Some((_, half)) = s.split_once('.').filter(|_| is_bootstrap_token(s)) {
                    self.add(half);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| self.add_value(v, secret)),
            Value::Object(map) => self.add_outputs(map),
            Value::Number(n) if secret && n.to_string().len() >= MIN_NAMED_SECRET => self.add(&n.to_string()),
            _ => {}
        }
    }

    /// `text` with every secret replaced by [`REDACTED`] (a private key by
    /// [`contract::diff::REDACTED_KEY`]).
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = contract::diff::redact_private_keys(text);
        for pass in [base64::redact_embedded_keys, fields::redact_secret_fields, redact_tokens] {
            if let Some(hidden) = pass(&out) {
                out = Cow::Owned(hidden);
            }
        }
        let secrets = self.secrets.read().unwrap_or_else(PoisonError::into_inner);
        for secret in secrets.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
            }
        }
        out
    }

    /// Redacts `text` in place.
    pub fn redact_in_place(&self, text: &mut String) {
        if let Cow::Owned(hidden) = self.redact(text) {
            *text = hidden;
        }
    }

    /// Whether there is anything to hide in `text`.
    pub fn is_clean(&self, text: &str) -> bool {
        matches!(self.redact(text), Cow::Borrowed(_))
    }
}

/// How `value` reads where text quotes it, without the outer quotes: Rust's `{:?}`, JSON, the
/// shell (`it's` is quoted `'it'\''s'`), a shell line quoted again (sudo's `sh -c '...'`), and a
/// shell-quoted line as `{:?}` or JSON show it (an error quoting a command).
fn spellings(value: &str) -> Vec<String> {
    let inner = |quoted: String| quoted.get(1..quoted.len().saturating_sub(1)).unwrap_or_default().to_owned();
    let debug = |text: &str| inner(format!("{text:?}"));
    let json = |text: &str| inner(serde_json::to_string(text).unwrap_or_default());
    let shell = |text: &str| inner(contract::shell::quote(text));
    let once = shell(value);
    vec![debug(value), json(value), shell(&once), debug(&once), json(&once), once]
}

/// Whether `s` is exactly a kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}`.
fn is_bootstrap_token(s: &str) -> bool {
    let part =
        |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    s.split_once('.').is_some_and(|(id, secret)| part(id, 6) && part(secret, 16))
}

/// `text` with every bootstrap-token-shaped word replaced, or `None` when there is none.
fn redact_tokens(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i + 23 <= bytes.len() {
        let starts_word = i == 0 || !word(bytes[i - 1]);
        let ends_word = i + 23 == bytes.len() || !word(bytes[i + 23]);
        let candidate = &bytes[i..i + 23];
        let part = |p: &[u8]| p.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        // Only ASCII bytes match, so a match starts and ends on char boundaries.
        if starts_word && ends_word && candidate[6] == b'.' && part(&candidate[..6]) && part(&candidate[7..])
        {
            let o = out.get_or_insert_with(String::new);
            o.push_str(&text[copied..i]);
            o.push_str(REDACTED);
            copied = i + 23;
            i += 23;
        } else {
            i += 1;
        }
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

/// A writer for log lines that redacts each write (tracing's formatter writes one event per
/// call). Used as the tracing subscriber's writer.
#[derive(Debug)]
pub struct RedactingWriter<W: std::io::Write> {
    inner: W,
    redactor: Arc<Redactor>,
}

impl<W: std::io::Write> RedactingWriter<W> {
    pub fn new(inner: W, redactor: Arc<Redactor>) -> Self {
        Self { inner, redactor }
    }
}

impl<W: std::io::Write> std::io::Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(self.redactor.redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hides_marked_values_keys_and_tokens() {
        let r = Redactor::default();
        r.add("hunter2-password");
        r.add("");
        assert_eq!(r.redact("pw=hunter2-password;"), "pw=<secret>;");
        r.add("with \"quotes\"\tand tab");
        assert_eq!(
            r.redact(r#"got "with \"quotes\"\tand tab""#),
            r#"got "<secret>""#,
            "as Debug and JSON quote it"
        );
        assert_eq!(r.redact("nothing here"), "nothing here");
        assert!(r.is_clean("nothing here"));
        r.add("it's-s3cret");
        assert_eq!(r.redact("echo 'it'\\''s-s3cret'"), "echo '<secret>'", "as the shell quotes it");
        let token = "abcdef.0123456789abcdef";
        assert_eq!(r.redact(&format!("--token {token} --x")), "--token <secret> --x");
        assert_eq!(r.redact("xabcdef.0123456789abcdef"), "xabcdef.0123456789abcdef", "not a whole word");
        assert_eq!(r.redact("é abcdef.0123456789abcdef é"), "é <secret> é", "multi-byte text around it");
        assert_eq!(r.redact("ééééééééééééééééé"), "ééééééééééééééééé");
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n";
        assert_eq!(r.redact(&format!("k={pem}")), format!("k={}\n", contract::diff::REDACTED_KEY));
    }

    /// A registered secret is hidden however it is quoted: the shell's `'\''`, sudo's second
    /// layer of it, JSON, Rust's `{:?}`, an error's `{:?}` of a shell line, and base64 (alone, or
    /// inside a longer base64 text such as an HTTP basic-auth header).
    #[test]
    fn every_quoting_of_a_secret_is_hidden() {
        let r = Redactor::default();
        let secret = "it's \"s3cr3t\"\\x";
        r.add(secret);
        let shell = contract::shell::quote(secret);
        let sudo = contract::shell::quote(&format!("cat {shell}"));
        let b64 = |text: &str| base64::spellings(text.as_bytes(), 0)[0].clone();
        let texts = [
            format!("echo {shell}"),
            format!("sudo -n -u root -- sh -c {sudo}"),
            serde_json::to_string(&format!("v={secret}")).unwrap(),
            format!("{:?}", format!("v={secret}")),
            format!("{:?}", format!("echo {shell}")),
            serde_json::to_string(&format!("echo {shell}")).unwrap(),
            format!("data: {}", b64(secret)),
            format!("Authorization: Basic {}", b64(&format!("admin:{secret}"))),
        ];
        for text in texts {
            let hidden = r.redact(&text);
            assert!(hidden.contains(REDACTED), "nothing hidden in {text}: {hidden}");
            assert!(!hidden.contains("s3cr3t"), "{text} -> {hidden}");
            for spelling in base64::spellings(secret.as_bytes(), 8) {
                assert!(!hidden.contains(&spelling), "{text} -> {hidden}");
            }
        }
    }

    /// A kubeconfig as a diff shows it: the client key (base64 PEM) and the token are hidden,
    /// the certificates and the rest are shown; hiding twice changes nothing more.
    #[test]
    fn a_kubeconfig_diff_hides_its_key_and_token_but_not_its_certificates() {
        let r = Redactor::default();
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn\n-----END RSA PRIVATE KEY-----\n";
        let key_data = base64::spellings(pem.as_bytes(), 0)[0].clone() + "=";
        let diff = format!(
            "--- before: /root/.kube/config\n+++ after: /root/.kube/config\n@@ -1,3 +1,9 @@\n apiVersion: v1\n\
             +users:\n+- name: admin\n+  user:\n+    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n\
             +    client-key-data: {key_data}\n+    token: 0a1b2c3d4e5f60718293\n"
        );
        let hidden = r.redact(&diff);
        assert!(hidden.contains("+    client-key-data: <secret: private key>\n"), "{hidden}");
        assert!(hidden.contains("+    token: <secret>\n"), "{hidden}");
        assert!(hidden.contains("client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t"), "{hidden}");
        assert!(!hidden.contains(&key_data[..40]) && !hidden.contains("0a1b2c3d4e5f60718293"), "{hidden}");
        assert!(r.is_clean(&hidden), "redacting is idempotent: {hidden}");
    }

    #[test]
    fn multi_line_secrets_hide_their_lines_too() {
        let r = Redactor::default();
        r.add("first line of it\nsecond line of it\nab");
        assert_eq!(r.redact("+second line of it"), "+<secret>");
        assert_eq!(r.redact("ab"), "ab", "short lines alone are not secrets");
    }

    #[test]
    fn outputs_with_secret_names_or_keys_are_registered() {
        let r = Redactor::default();
        r.add_outputs(
            json!({
                "token": "abcdef.0123456789abcdef",
                "certificate_key": "c0ffee",
                "config": [{ "certificateKey": "c1ffee", "bootstrapTokens": [{ "token": "t0ken-value" }] }],
                "nested": { "db_password": "pa55", "max_token": 5, "short_secret": "no" },
                "key_pem": "-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n",
                "stdout": "public",
                "update_password": "always",
            })
            .as_object()
            .unwrap(),
        );
        assert_eq!(r.redact("c0ffee pa55 public always"), "<secret> <secret> public always");
        assert_eq!(r.redact("c1ffee t0ken-value"), "<secret> <secret>", "nested, in kubeadm's spelling");
        assert_eq!(r.redact("5 no"), "5 no", "too short to be taken for secrets by name");
        assert_eq!(r.redact("0123456789abcdef"), "<secret>", "the token's secret half");
    }
}
