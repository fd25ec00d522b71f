//! Host facts: gathered in one round trip, lazily (only when a task or template uses them),
//! and cached by the engine for the rest of the run.
//!
//! ```text
//! hostname, fqdn, os { id, version_id, pretty_name }, cpus, memory_mb, systemd,
//! interfaces { NAME: { ipv4: [..], ipv6: [..], mac } },
//! default_ipv4 { interface, address }      (the default route's interface; absent without one)
//! ```
//! The guide's `ip addr show eth1 | grep ...` becomes `interfaces.eth1.ipv4[0]`, or
//! `default_ipv4.address`.

use serde_json::{Map, Value, json};

use crate::error::ModuleError;
use crate::host::{Exec, Host};
use crate::remote::run_checked;

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

/// Gathers the facts of `host`.
pub async fn gather(host: &dyn Host) -> Result<Value, ModuleError> {
    let out = run_checked(host, Exec::new(script())).await?;
    parse(&out.stdout_text())
        .map_err(|e| ModuleError::Refused(format!("cannot read facts of {}: {e}", host.name())))
}

fn parse(text: &str) -> Result<Value, String> {
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
            os.insert(key.into(), Value::String(v.trim_matches('"').to_owned()));
        }
    }
    let memory_kb: u64 =
        section("meminfo").split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or_default();

    let addr: Value = serde_json::from_str(&section("addr")).map_err(|e| format!("ip -j addr: {e}"))?;
    let mut interfaces = Map::new();
    for link in addr.as_array().into_iter().flatten() {
        let Some(name) = link.get("ifname").and_then(Value::as_str) else { continue };
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for a in link.get("addr_info").and_then(Value::as_array).into_iter().flatten() {
            let (Some(family), Some(local)) =
                (a.get("family").and_then(Value::as_str), a.get("local").and_then(Value::as_str))
            else {
                continue;
            };
            match family {
                "inet" => v4.push(Value::String(local.to_owned())),
                "inet6" => v6.push(Value::String(local.to_owned())),
                _ => {}
            }
        }
        interfaces.insert(
            name.to_owned(),
            json!({ "ipv4": v4, "ipv6": v6, "mac": link.get("address").cloned().unwrap_or(Value::Null) }),
        );
    }
    let route: Value = serde_json::from_str(&section("route")).map_err(|e| format!("ip -j route: {e}"))?;
    let default_ipv4 = route
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r.get("dev"))
        .and_then(Value::as_str)
        .map(|dev| {
            let address = interfaces.get(dev).and_then(|i| i["ipv4"].get(0)).cloned().unwrap_or(Value::Null);
            json!({ "interface": dev, "address": address })
        })
        .unwrap_or(Value::Null);

    Ok(json!({
        "hostname": section("hostname"),
        "fqdn": section("fqdn"),
        "os": os,
        "cpus": section("cpus").parse::<u64>().unwrap_or_default(),
        "memory_mb": memory_kb / 1024,
        "systemd": section("systemd") == "yes",
        "interfaces": interfaces,
        "default_ipv4": default_ipv4,
    }))
}

/// Looks up a dotted path (`interfaces.host0.ipv4.0`) in gathered facts.
pub fn lookup<'a>(facts: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(facts, |value, key| match value {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
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

    #[test]
    fn parses_facts() {
        let facts = parse(SAMPLE).unwrap();
        assert_eq!(facts["hostname"], "etcd0");
        assert_eq!(facts["os"]["id"], "debian");
        assert_eq!(facts["os"]["version_id"], "12");
        assert_eq!(facts["cpus"], 2);
        assert_eq!(facts["memory_mb"], 23992);
        assert_eq!(facts["systemd"], true);
        assert_eq!(facts["interfaces"]["host0"]["ipv4"][0], "10.77.0.11");
        assert_eq!(facts["default_ipv4"]["interface"], "host0");
        assert_eq!(facts["default_ipv4"]["address"], "10.77.0.11");
        assert_eq!(lookup(&facts, "interfaces.host0.ipv4.0"), Some(&json!("10.77.0.11")));
        assert_eq!(lookup(&facts, "interfaces.eth9.ipv4.0"), None);
    }
}
