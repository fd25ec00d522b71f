//! Which hosts a lab has, and their fixed addresses on the lab bridge.
//!
//! ```text
//! englab0 10.77.0.1/24 (controller)
//!   .10       keepalived VIP (reserved, never a host)
//!   .11-.13   etcd0-2
//!   .21-.23   master0-2
//!   .31-.33   worker0-2
//!   .100+N    hN (benchmark topologies, and the `fleet` of `ha+N`; N < 150)
//! ```
//!
//! The `bastion` topology puts the `ha` hosts (same last octets, VIP .10) on the internal bridge
//! `englab1`, 10.78.0.0/24, behind the jump host `bastion` (10.77.0.3 and 10.78.0.3): see
//! [`crate::bastion`].

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

pub(crate) const BRIDGE: &str = "englab0";
pub(crate) const BRIDGE_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
pub(crate) const PREFIX_LEN: u8 = 24;
pub(crate) const VIP: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 10);
pub(crate) const INTERFACE: &str = "host0";
/// Most hosts in a numbered topology: h149 is 10.77.0.249.
pub(crate) const MAX_NODES: u16 = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Topology {
    /// etcd0-2, master0-2, worker0-2.
    Ha,
    /// etcd0-2.
    Etcd,
    /// h00..h(N-1), one group `nodes`.
    Nodes(u16),
    /// The `ha` hosts, plus h00..h(N-1) in a group `fleet` that has an inventory of its own
    /// (`fleet.yml`), for tests that kill or cut hosts without touching the `ha` hosts.
    HaFleet(u16),
    /// The `ha` hosts on an internal bridge, behind the jump host `bastion` (always bare; see
    /// [`crate::bastion`]).
    Bastion,
}

/// The group of the extra hosts of [`Topology::HaFleet`].
pub(crate) const FLEET: &str = "fleet";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HostSpec {
    pub(crate) name: String,
    pub(crate) addr: Ipv4Addr,
    /// The inventory group the host belongs to.
    pub(crate) group: String,
}

impl Topology {
    /// The inventory groups, in inventory order.
    pub(crate) fn groups(self) -> &'static [&'static str] {
        match self {
            Self::Ha => &["etcd", "masters", "workers"],
            Self::Etcd => &["etcd"],
            Self::Nodes(_) => &["nodes"],
            Self::HaFleet(_) => &["etcd", "masters", "workers", FLEET],
            Self::Bastion => &["etcd", "masters", "workers"],
        }
    }

    pub(crate) fn hosts(self) -> Vec<HostSpec> {
        let host = |name: String, last: u16, group: &str| HostSpec {
            name,
            addr: Ipv4Addr::new(10, 77, 0, u8::try_from(last).unwrap_or(u8::MAX)),
            group: group.to_owned(),
        };
        let trio = |prefix: &'static str, base: u16, group: &'static str| {
            (0..3u16).map(move |i| host(format!("{prefix}{i}"), base + i, group))
        };
        match self {
            Self::Ha => trio("etcd", 11, "etcd")
                .chain(trio("master", 21, "masters"))
                .chain(trio("worker", 31, "workers"))
                .collect(),
            Self::Etcd => trio("etcd", 11, "etcd").collect(),
            Self::Nodes(n) => numbered(n, "nodes"),
            Self::HaFleet(n) => Self::Ha.hosts().into_iter().chain(numbered(n, FLEET)).collect(),
            // The same names and last octets, on the internal network.
            Self::Bastion => Self::Ha
                .hosts()
                .into_iter()
                .map(|h| {
                    let [_, _, _, last] = h.addr.octets();
                    HostSpec { addr: Ipv4Addr::new(10, 78, 0, last), ..h }
                })
                .collect(),
        }
    }
}

/// h00..h(n-1) at .100 onwards, in `group`.
fn numbered(n: u16, group: &str) -> Vec<HostSpec> {
    let width = if n > 100 { 3 } else { 2 };
    (0..n)
        .map(|i| HostSpec {
            name: format!("h{i:0width$}"),
            addr: Ipv4Addr::new(10, 77, 0, u8::try_from(100 + i).unwrap_or(u8::MAX)),
            group: group.to_owned(),
        })
        .collect()
}

impl FromStr for Topology {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ha" => Ok(Self::Ha),
            "etcd" => Ok(Self::Etcd),
            crate::bastion::TOPOLOGY => Ok(Self::Bastion),
            _ if s.starts_with("ha+") => {
                let n: u16 = s[3..].parse().with_context(|| format!("topology `{s}`: expected ha+N"))?;
                if !(1..=MAX_NODES).contains(&n) {
                    bail!("topology `{s}`: a fleet has 1 to {MAX_NODES} hosts");
                }
                Ok(Self::HaFleet(n))
            }
            _ => {
                let n: u16 = s
                    .parse()
                    .with_context(|| format!("topology `{s}`: expected ha, etcd, bastion or a number"))?;
                if !(1..=MAX_NODES).contains(&n) {
                    bail!("topology `{s}`: a numbered lab has 1 to {MAX_NODES} hosts");
                }
                Ok(Self::Nodes(n))
            }
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ha => f.write_str("ha"),
            Self::Etcd => f.write_str("etcd"),
            Self::Nodes(n) => write!(f, "{n}"),
            Self::HaFleet(n) => write!(f, "ha+{n}"),
            Self::Bastion => f.write_str(crate::bastion::TOPOLOGY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_addrs(t: Topology) -> Vec<(String, String)> {
        t.hosts().into_iter().map(|h| (h.name, h.addr.to_string())).collect()
    }

    #[test]
    fn ha_addresses() {
        let got = names_addrs(Topology::Ha);
        let want = [
            ("etcd0", "10.77.0.11"),
            ("etcd1", "10.77.0.12"),
            ("etcd2", "10.77.0.13"),
            ("master0", "10.77.0.21"),
            ("master1", "10.77.0.22"),
            ("master2", "10.77.0.23"),
            ("worker0", "10.77.0.31"),
            ("worker1", "10.77.0.32"),
            ("worker2", "10.77.0.33"),
        ]
        .map(|(n, a)| (n.to_owned(), a.to_owned()));
        assert_eq!(got, want);
        assert!(Topology::Ha.hosts().iter().all(|h| h.addr != VIP));
    }

    #[test]
    fn etcd_is_the_etcd_trio() {
        let hosts = Topology::Etcd.hosts();
        assert_eq!(hosts.len(), 3);
        assert!(hosts.iter().all(|h| h.group == "etcd"));
        assert_eq!(Topology::Etcd.groups(), ["etcd"]);
    }

    #[test]
    fn numbered_names_and_addresses() {
        let two = names_addrs(Topology::Nodes(2));
        assert_eq!(two, [("h00", "10.77.0.100"), ("h01", "10.77.0.101")].map(|(n, a)| (n.into(), a.into())));
        let hundred = Topology::Nodes(100).hosts();
        assert_eq!(hundred[99].name, "h99");
        let big = Topology::Nodes(150).hosts();
        assert_eq!(big[0].name, "h000");
        assert_eq!(big[149].name, "h149");
        assert_eq!(big[149].addr, Ipv4Addr::new(10, 77, 0, 249));
    }

    #[test]
    fn a_fleet_beside_the_ha_hosts() {
        let hosts = Topology::HaFleet(50).hosts();
        assert_eq!(hosts.len(), 59);
        assert_eq!(hosts[9].name, "h00");
        assert_eq!(hosts[58].addr, Ipv4Addr::new(10, 77, 0, 149));
        assert_eq!(hosts.iter().filter(|h| h.group == FLEET).count(), 50);
    }

    #[test]
    fn parse_and_display_round_trip() -> Result<()> {
        for s in ["ha", "etcd", "bastion", "1", "9", "150", "ha+50"] {
            assert_eq!(s.parse::<Topology>()?.to_string(), s);
        }
        for bad in ["0", "151", "x", "-1", "", "ha+0", "ha+", "ha+151"] {
            assert!(bad.parse::<Topology>().is_err(), "{bad}");
        }
        Ok(())
    }
}
