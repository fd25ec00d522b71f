//! Every parser of what a host prints, run on arbitrary bytes: the body of the `remote_output`
//! fuzz target (`fuzz/fuzz_targets/remote_output.rs`, run by `cargo xtask fuzz`; see
//! docs/fuzzing.md). Hosts are not trusted (`contract::untrusted`), so each parser must return
//! a value or an error for any input, never panic, and keep its promises, which [`remote_output`]
//! checks: no `scp` destination leaves the copy's destination, and every fact that parsed is of
//! its kind. A broken promise panics, which the fuzzer reports as a finding.
//!
//! ```text
//!   first byte (mod 10) picks the parser   rest of the bytes: what the host "printed"
//!   0 scp source listing + pairing        5 certgen's file reads, certificates, keys
//!   1 scp destination listing             6 systemctl show + file states
//!   2 facts (+ a template reading them)   7 dpkg-query / apt-cache policy / list state
//!   3 stat                                8 kubeadm join line, token list
//!   4 stat of many paths                  9 kubeadm endpoint, as a join line's and alone
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use contract::facts::{self, Facts};
use serde_json::Value;

use crate::builtin::{certgen, kubeadm, package, scp, systemd, template};

/// The roots and destination of the `scp` copies the listings are paired with.
const ROOTS: [&str; 3] = ["/etc/kubernetes/pki", "/one.crt", "rel/dir"];
const DEST: &str = "/dest";

/// Runs the parser that `data[0]` picks on the rest of `data`; panics only when a parser
/// broke one of its promises (see the module's header).
pub fn remote_output(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(bytes);
    match which % 10 {
        0 => scp_source(bytes),
        1 => {
            let _ = scp::parse_dest_listing(bytes);
        }
        2 => gathered_facts(&text),
        3 => {
            let _ = contract::remote::parse_stat(&text);
        }
        4 => {
            let paths = ["/etc/a".to_owned(), "/etc/b c".to_owned()];
            let _ = contract::remote::parse_stat_many(&paths, bytes);
        }
        5 => {
            let _ = certgen::read_untrusted(bytes);
        }
        6 => {
            let _ = systemd::parse_status(&text, 2);
        }
        7 => {
            let _ = package::parse_query(&text);
            let _ = package::parse_candidates(&text, &mut package::HostPackages::default());
            if let Ok(gone) = package::parse_simulation(&text) {
                assert!(
                    gone.iter().all(|g| !g.starts_with('-') && !g.contains(char::is_whitespace)),
                    "{gone:?}"
                );
            }
        }
        8 => {
            let _ = kubeadm::parse_join_line(&text);
            if let Some(token) = kubeadm::usable_token(&text) {
                assert!(!token.starts_with('-') && !token.contains(char::is_whitespace), "{token:?}");
            }
        }
        _ => {
            if let Ok((endpoint, token, hash)) = kubeadm::parse_join_line(&format!(
                "kubeadm join {text} --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash sha256:{}",
                "0".repeat(64)
            )) {
                assert!(
                    !endpoint.starts_with('-') && !endpoint.contains(char::is_whitespace),
                    "{endpoint:?}"
                );
                assert!(!token.is_empty() && !hash.is_empty());
            }
        }
    }
}

/// Every destination a source listing leads to is the destination or a plain path under it.
fn scp_source(bytes: &[u8]) {
    let roots: Vec<String> = ROOTS.iter().map(|r| (*r).to_owned()).collect();
    let Ok(dests) = scp::destinations(bytes, &roots, DEST) else { return };
    for dest in dests {
        let rel = dest.strip_prefix(DEST).and_then(|r| r.strip_prefix('/'));
        let plain = rel.is_some_and(|r| r.split('/').all(|p| !p.is_empty() && p != "." && p != ".."));
        assert!(plain, "a listing led outside {DEST}: {dest:?}");
    }
}

/// Facts that parsed are of their kind; reading any path gives a value or an error.
fn gathered_facts(text: &str) {
    let facts = facts::parse("fuzz", text);
    let value = facts.value();
    if let Some(name) = value["hostname"].as_str() {
        assert!(facts::is_hostname(name), "{name:?}");
    }
    for (name, interface) in value["interfaces"].as_object().into_iter().flatten() {
        assert!(facts::is_interface_name(name), "{name:?}");
        for ip in interface["ipv4"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            assert!(ip.parse::<Ipv4Addr>().is_ok(), "{ip:?}");
        }
        for ip in interface["ipv6"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            assert!(ip.parse::<Ipv6Addr>().is_ok(), "{ip:?}");
        }
    }
    if let Ok(Some(Value::String(ip))) = facts.lookup("default_ipv4.address") {
        assert!(ip.parse::<Ipv4Addr>().is_ok(), "{ip:?}");
    }
    for path in ["hostname", "interfaces", "interfaces.host0.ipv4.0", "default_ipv4", "os.pretty_name", ""] {
        let _ = facts.lookup(path);
    }
    let _ = template::render(
        "{{ facts.hostname }} {{ facts.default_ipv4.address }} {% for n, i in facts.interfaces | items %}{{ n }}{{ i }}{% endfor %}",
        &BTreeMap::new(),
        Some(&facts),
    );
    let _ = Facts::new("fuzz", value.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's body on hostile samples of each parser (the corpus's seeds), so that
    /// it is exercised by every `cargo test` and cannot rot between fuzz runs.
    #[test]
    fn every_parser_takes_hostile_samples_without_panicking() {
        let sha = "a".repeat(64);
        let samples: Vec<Vec<u8>> = vec![
            format!("D\t/etc/kubernetes/pki\0F\t81a4\t1\troot\troot\t/etc/kubernetes/pki/../../x\0{sha}  /etc/kubernetes/pki/../../x\0").into_bytes(),
            format!("D\t/etc/kubernetes/pki\0F\t81a4\t1\troot\troot\t/etc/kubernetes/pki/ca.crt\0{sha}  /etc/kubernetes/pki/ca.crt\0").into_bytes(),
            format!("D\t/etc/kubernetes/pki\0{sha} é/x\0").into_bytes(),
            b"D\t/d\0O\t/d/x\0F\t2180\t0\troot\troot\t/d/x\0".to_vec(),
            b"@@hostname\netcd0\n@@addr\n[{\"ifname\":\"host0\",\"addr_info\":[{\"family\":\"inet\",\"local\":\"10.0.0.2:2380\\nExecStartPost=x\"}]}]\n@@route\n[{\"dev\":\"host0\"}]\n".to_vec(),
            b"regular file|17777777|root|root\n".to_vec(),
            b"11\n/etc/a\0regular file|644|r|r\0\0zz  /etc/a\0".to_vec(),
            b"644 99999999999\nx\n".to_vec(),
            b"LoadState=loaded\nActiveState=active\x1b[2J\n#files\nabsent\n".to_vec(),
            b"hello install ok installed\n#policy\nhello:\n  Candidate: $(x)\n#lists 1 2 3 4\n".to_vec(),
            b"kubeadm join --config=/x --token abcdef.0123456789abcdef --discovery-token-ca-cert-hash x\n".to_vec(),
            b"10.0.0.1:6443".to_vec(),
        ];
        for sample in &samples {
            for parser in 0..10u8 {
                let mut data = vec![parser];
                data.extend_from_slice(sample);
                remote_output(&data);
            }
        }
        remote_output(&[]);
    }
}
