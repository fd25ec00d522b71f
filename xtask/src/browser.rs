//! The run report's check in a real browser: Debian's chromium, headless, loads the page and
//! dumps its DOM; the page must have set `data-rendered="ok"` on `<html>` and recorded no
//! script error (`data-script-errors`; see engine/src/report/timeline.rs).
//!
//! Standard library only: `cargo xtask report-check` uses it, and the engine's tests include
//! this very file (`tests/support/mod.rs`, by `#[path]`), so both check the same way.
//!
//! The browser gets no network: every host name resolves to nothing and every request goes to
//! a proxy that is not there, and its background services (updates, sync, metrics) are off.
//! A page that needed anything from outside would fail to render, and nothing leaves the machine.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The browser program (Debian's package `chromium`).
pub(crate) const CHROMIUM: &str = "chromium";

/// What the browser saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Checked {
    /// The page rendered: the marker is set and no script error was recorded.
    Rendered,
    /// There is no `chromium` to check with.
    NoBrowser,
}

/// Loads `file` in headless chromium (killed after `timeout`) and checks its dumped DOM.
/// `Err` says what was wrong: no marker, a script error (quoted), or the browser failing.
pub(crate) fn check(file: &Path, timeout: Duration) -> Result<Checked, String> {
    let file = std::fs::canonicalize(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let profile = scratch_profile()?;
    let result = run_chromium(&file, &profile, timeout);
    let _ = std::fs::remove_dir_all(&profile);
    let dom = match result? {
        Some(dom) => dom,
        None => return Ok(Checked::NoBrowser),
    };
    verdict(&dom).map(|()| Checked::Rendered)
}

/// The dumped DOM's verdict: its `<html>` tag must carry `data-rendered="ok"` and no
/// `data-script-errors`.
pub(crate) fn verdict(dom: &str) -> Result<(), String> {
    let Some(start) = dom.find("<html") else {
        return Err(format!("the browser's DOM has no <html> element: {}", head(dom)));
    };
    let tag = &dom[start..start + dom[start..].find('>').unwrap_or(dom.len() - start)];
    if let Some(at) = tag.find("data-script-errors=\"") {
        let rest = &tag[at + 20..];
        let errors = &rest[..rest.find('"').unwrap_or(rest.len())];
        return Err(format!("the page had script errors: {errors}"));
    }
    if !tag.contains("data-rendered=\"ok\"") {
        return Err(format!("the page's script did not finish (no data-rendered=\"ok\" on {tag}>)"));
    }
    Ok(())
}

/// Runs the browser on `file`; `None` when it is not installed.
fn run_chromium(file: &Path, profile: &Path, timeout: Duration) -> Result<Option<String>, String> {
    let mut child = match Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-domain-reliability",
            "--disable-sync",
            "--disable-breakpad",
            "--proxy-server=127.0.0.1:9",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(file_url(file))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot start {CHROMIUM}: {e}")),
    };
    // Read both pipes on threads, so a chatty browser cannot block on a full pipe.
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{CHROMIUM} did not finish within {}s", timeout.as_secs()));
            }
            Err(e) => return Err(format!("waiting for {CHROMIUM}: {e}")),
        }
    };
    let dom = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() || dom.trim().is_empty() {
        return Err(format!("{CHROMIUM} failed ({status}); its stderr ends with:\n{}", tail(&stderr)));
    }
    Ok(Some(dom))
}

/// `file://` and the absolute path, percent-encoded where a URL needs it.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for b in path.as_os_str().as_encoded_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => {
                url.push(char::from(*b))
            }
            _ => url.push_str(&format!("%{b:02X}")),
        }
    }
    url
}

/// A fresh, private browser profile folder, so that runs do not share (or lock) one.
fn scratch_profile() -> Result<PathBuf, String> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!("engine-report-check-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn head(text: &str) -> String {
    text.chars().take(300).collect()
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_reads_the_html_tag() {
        assert_eq!(verdict("<html lang=\"en\" data-rendered=\"ok\"><head></head></html>"), Ok(()));
        let e = verdict("<html data-script-errors=\"x is not defined (line 3:1); \" data-rendered=\"ok\">");
        assert_eq!(e, Err("the page had script errors: x is not defined (line 3:1); ".to_owned()));
        assert!(
            verdict("<html lang=\"en\"><body data-rendered=\"ok\">").is_err(),
            "only <html>'s marker counts"
        );
        assert!(verdict("").is_err());
        assert_eq!(file_url(Path::new("/tmp/a b/r.html")), "file:///tmp/a%20b/r.html");
    }
}
