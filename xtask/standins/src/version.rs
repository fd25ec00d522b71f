//! The version a stand-in reports: the version of the lab package that installed it.
//!
//! Each package of the lab's Kubernetes repository (`cargo xtask lab up --bare`, see
//! docs/lab.md) installs `/usr/share/kube-standins/<tool>.version` beside its stand-in, holding
//! one line, `vMAJOR.MINOR.PATCH` (the package `kubeadm 1.30.4-1.1` writes `v1.30.4`). The
//! pre-baked lab binds the same folder with `v1.31.0` for every tool. A stand-in without its
//! file, or with anything else in it, refuses to run: it never makes a version up.

use crate::{die, host_path};

/// Where the packages install the version files.
pub const DIR: &str = "/usr/share/kube-standins";

/// The file of `tool` (`kubeadm`, `kubectl`, `kubelet`, `crictl`).
pub fn file(tool: &str) -> String {
    format!("{DIR}/{tool}.version")
}

/// `text` if it is exactly one `vMAJOR.MINOR.PATCH` line.
pub fn parse(text: &str) -> Option<&str> {
    let line = text.strip_suffix('\n')?;
    let numbers = line.strip_prefix('v')?;
    let parts: Vec<&str> = numbers.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    (parts.len() == 3 && parts.iter().all(numeric)).then_some(line)
}

/// The version of `tool`, `v1.30.4`, from its file; exits 1 naming the file when it is missing or
/// malformed.
pub fn of(tool: &str) -> String {
    let path = file(tool);
    let text = std::fs::read_to_string(host_path(&path)).unwrap_or_else(|e| {
        die(1, &format!("{tool} (lab stand-in): cannot read its version from {path}: {e}"))
    });
    match parse(&text) {
        Some(v) => v.to_owned(),
        None => die(1, &format!("{tool} (lab stand-in): {path} does not hold one vMAJOR.MINOR.PATCH line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_exact_version_line_counts() {
        assert_eq!(parse("v1.30.4\n"), Some("v1.30.4"));
        assert_eq!(parse("v10.0.12\n"), Some("v10.0.12"));
        for bad in
            ["v1.30.4", "1.30.4\n", "v1.30\n", "v1.30.4-1.1\n", "v1.30.4\n\n", "v1..4\n", " v1.30.4\n", ""]
        {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert_eq!(file("kubeadm"), "/usr/share/kube-standins/kubeadm.version");
    }
}
