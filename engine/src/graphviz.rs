//! SVG from DOT, by Graphviz's own `dot`.

use std::io::Write;

use crate::error::Error;

/// Renders `dot` as SVG with the `dot` program. A missing Graphviz is its own error, with how
/// to install it.
pub fn render_svg(dot: &str) -> Result<Vec<u8>, Error> {
    let mut child = match std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::GraphvizMissing),
        Err(e) => {
            return Err(Error::Io { what: "cannot start `dot`".into(), source: e });
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dot.as_bytes())
            .map_err(|e| Error::Io { what: "cannot feed `dot`".into(), source: e })?;
    }
    let output =
        child.wait_with_output().map_err(|e| Error::Io { what: "`dot` did not finish".into(), source: e })?;
    if !output.status.success() {
        return Err(Error::Graphviz(String::from_utf8_lossy(&output.stderr).trim().to_owned()));
    }
    Ok(output.stdout)
}
