//! Lab operations: up, down, status, ssh and fault injection. Each mutating command
//! holds the machine-wide lab lock, because the bridge and addresses are machine-wide.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::inventory::Login;
use crate::paths::{HostKind, HostState, Paths, State};
use crate::topology::{BRIDGE, FLEET, HostSpec, Topology};
use crate::{
    bare, bastion, cgroup, host, image, inventory, k8srepo, labvars, net, procs, ssh, standins, tools,
};

/// Time for all hosts to answer SSH before `up` gives up.
const READY_LIMIT: Duration = Duration::from_secs(90);
/// Time for hosts to halt after SIGTERM before they are killed.
const HALT_GRACE: Duration = Duration::from_secs(20);
const LOCK_FILE: &str = "/var/cache/engine-lab/lab.lock";

/// Held while a command changes the lab; released on drop (or when the process dies).
#[derive(Debug)]
pub(crate) struct LabLock(#[allow(dead_code)] File);

pub(crate) fn lock() -> Result<LabLock> {
    fs::create_dir_all("/var/cache/engine-lab").context("cannot create /var/cache/engine-lab")?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_FILE)
        .with_context(|| format!("cannot open {LOCK_FILE}"))?;
    let start = Instant::now();
    for i in 0..6_000 {
        match file.try_lock() {
            Ok(()) => return Ok(LabLock(file)),
            Err(fs::TryLockError::WouldBlock) => {
                if i == 0 {
                    eprintln!("lab: waiting for another `cargo xtask lab` to finish ({LOCK_FILE})");
                }
                if start.elapsed() > Duration::from_secs(600) {
                    break;
                }
                thread::sleep(Duration::from_millis(100));
            }
            Err(fs::TryLockError::Error(e)) => return Err(e).context("cannot lock the lab"),
        }
    }
    bail!("the lab stayed locked for 10 minutes ({LOCK_FILE})")
}

pub(crate) fn require_root() -> Result<()> {
    let status = fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
    if euid != Some("0") {
        bail!("the lab needs root (systemd-nspawn, bridges, sysctl); run as root");
    }
    Ok(())
}

/// `lab up`: brings `topology` up, unless it is already up and healthy. `bare`: its hosts boot
/// the bare images of these Debian releases, taken in turn in host order (see
/// [`bare::assign`]), beside the package mirror host (see [`crate::bare`]); the `bastion`
/// topology is always bare (Debian 12 unless releases are given).
pub(crate) fn up(paths: &Paths, topology: Topology, bare: Option<&[u8]>) -> Result<()> {
    require_root()?;
    tools::ensure()?;
    let _lock = lock()?;
    up_locked(paths, topology, bare)
}

/// `lab build`: the images (and with `bare` the bare images of every release, their mirrors
/// and the Kubernetes repositories) built or found cached; nothing boots.
pub(crate) fn build(paths: &Paths, bare: bool) -> Result<()> {
    require_root()?;
    tools::ensure()?;
    let _lock = lock()?;
    let (image_dir, built) = image::ensure()?;
    match built {
        Some(t) => println!("lab: image {} built in {:.1} s", image::current_hash(), t.as_secs_f64()),
        None => println!("lab: image {} cached ({})", image::current_hash(), image_dir.display()),
    }
    standins::stage(paths)?;
    if bare {
        let every: Vec<u8> = bare::RELEASES.iter().map(|r| r.debian).collect();
        for (debian, hash) in bare::ensure(&standins::built(paths), &every)? {
            println!("lab: Debian {debian} package mirror {}", bare::repo_dir(&hash).display());
        }
    }
    Ok(())
}

/// The releases of the bastion lab's bare hosts.
const BASTION_RELEASES: &[u8] = &[bare::DEFAULT_DEBIAN];

pub(crate) fn up_locked(paths: &Paths, topology: Topology, bare: Option<&[u8]>) -> Result<()> {
    // The bastion lab's HA run installs from the bare lab's mirror; its hosts' apt source (see
    // `bastion::extra_binds`) is Debian 12's.
    let bare = if topology == Topology::Bastion {
        if bare.is_some_and(|r| r != BASTION_RELEASES) {
            bail!("the bastion lab boots Debian {} only", bare::DEFAULT_DEBIAN);
        }
        Some(BASTION_RELEASES)
    } else {
        bare
    };
    let (image_dir, built) = image::ensure()?;
    let hash = image::current_hash();
    standins::stage(paths)?;
    match built {
        Some(t) => println!("lab: image {hash} built in {:.1} s", t.as_secs_f64()),
        None => println!("lab: image {hash} cached ({})", image_dir.display()),
    }
    let mut specs = topology.hosts();
    let releases = match bare {
        Some(releases) => bare::assign(releases, specs.len())?,
        None => Vec::new(),
    };
    let bare_images = match bare {
        Some(releases) => bare::ensure(&standins::built(paths), releases)?,
        None => Vec::new(),
    };
    let bare_hash = bare_images.first().map(|(_, h)| h.clone());
    let wanted_releases = bare.map(<[u8]>::to_vec).unwrap_or_default();
    if let Some(state) = State::load(paths)?
        && state.topology == topology.to_string()
        && state.image == hash
        && state.bare_image == bare_hash
        && state.bare_images == bare_images
        && state.releases == wanted_releases
        && healthy(paths, &state)
    {
        println!(
            "lab: the {topology} lab is already up and healthy ({} hosts); nothing to do",
            state.hosts.len()
        );
        return Ok(());
    }
    down_locked(paths)?;
    standins::fresh_api(paths)?;
    // The bare images are kept while they are current, also when this lab does not boot them.
    let mut keep = vec![image::current_hash()];
    keep.extend(bare::RELEASES.iter().map(|r| r.recipe.hash()));
    image::prune_except(&keep)?;
    net::raise_inotify_limits()?;
    net::load_node_modules();

    let host_kind = if bare.is_some() { HostKind::Bare } else { HostKind::Lab };
    let mut kinds = vec![host_kind; specs.len()];
    let mut debian: Vec<Option<u8>> = releases.iter().copied().map(Some).collect();
    debian.resize(specs.len(), None);
    if bare.is_some() {
        specs.insert(
            0,
            HostSpec {
                name: bare::MIRROR_NAME.to_owned(),
                addr: bare::MIRROR_ADDR,
                group: MIRROR_GROUP.to_owned(),
            },
        );
        kinds.insert(0, HostKind::Mirror);
        debian.insert(0, None);
    }
    if topology == Topology::Bastion {
        specs.insert(1, bastion::spec());
        kinds.insert(1, HostKind::Bare);
        debian.insert(1, releases.first().copied());
    }
    let login = if bare.is_some() { Login::Become(bare::USER) } else { Login::Root };
    // A bare lab's playbooks install from the mirror (see `labvars`).
    let mut vars = match &bare_hash {
        Some(hash) => labvars::mirror_vars(&bare::repo_dir(hash))?,
        None => Vec::new(),
    };
    if topology == Topology::Bastion {
        vars = bastion::internal_vars(vars);
    }
    write_lab_files(paths, topology, &specs, &debian, login, &vars)?;
    net::ensure_bridge()?;
    if topology == Topology::Bastion {
        bastion::write_files(paths, topology.groups(), &specs, &vars)?;
        bastion::ensure_bridge()?;
    }

    let started = Instant::now();
    let mut state = State {
        topology: topology.to_string(),
        image: hash,
        bare_image: bare_hash,
        bare_images,
        releases: wanted_releases,
        hosts: Vec::new(),
    };
    let mirror_dirs = state.mirror_dirs();
    let mut boot_error = None;
    for ((spec, kind), debian) in specs.iter().zip(kinds).zip(debian) {
        let entry = HostState {
            name: spec.name.clone(),
            addr: spec.addr,
            group: spec.group.clone(),
            pid: None,
            kind,
            debian,
        };
        let booted = boot_host(paths, &state, &entry, &mirror_dirs);
        let pid = match booted {
            Ok(pid) => Some(pid),
            Err(e) => {
                boot_error = Some(e);
                None
            }
        };
        state.hosts.push(HostState { pid, ..entry });
        if boot_error.is_some() {
            break;
        }
    }
    state.save(paths)?;
    if let Some(e) = boot_error {
        return Err(e.context("booting the lab (run `cargo xtask lab down` to clean up)"));
    }
    let waiting: Vec<ssh::Waiting<'_>> = state
        .hosts
        .iter()
        .filter(|h| !bastion::internal(h.addr))
        .filter_map(|h| Some((h.name.as_str(), h.addr, h.pid?, h.kind.login())))
        .collect();
    let ready = ssh::wait_ready(paths, &waiting, started, READY_LIMIT)?;
    if bare.is_some() {
        serve_mirror(paths, &state)?;
    }
    let slowest = ready.iter().map(|(_, t)| *t).max().unwrap_or_default();
    println!(
        "lab: {} hosts of the {topology} lab answer SSH {:.1} s after boot",
        ready.len(),
        slowest.as_secs_f64()
    );
    if topology == Topology::Bastion {
        bastion_ready(paths, &state.hosts, started)?;
        println!(
            "lab: {} hosts answer SSH through the bastion {:.1} s after boot; `debian`'s sudo asks for the password in {}",
            state.hosts.iter().filter(|h| bastion::internal(h.addr)).count(),
            started.elapsed().as_secs_f64(),
            bastion::password_path(paths).display()
        );
        println!("lab: ssh_config {}", bastion::ssh_config_path(paths).display());
        println!("lab: inventory {}", bastion::inventory_ini_path(paths).display());
    }
    println!("lab: inventory {}", paths.inventory().display());
    Ok(())
}

/// Boots one host of `state`'s lab with its kind's binds (`mirror_repo`: the mirror's
/// directory), and in a `bastion` lab on its network(s) (see [`crate::bastion`]).
fn boot_host(
    paths: &Paths,
    state: &State,
    entry: &HostState,
    mirror_dirs: &[std::path::PathBuf],
) -> Result<u32> {
    let mut binds = host::kind_binds(paths, entry.kind, mirror_dirs)?;
    let image = state.image_dir(entry);
    if state.topology != bastion::TOPOLOGY {
        return host::boot(paths, &image, &entry.name, &binds);
    }
    binds.extend(bastion::extra_binds(paths, &entry.name, entry.addr));
    let network = bastion::network_args(&entry.name, entry.addr);
    let pid = host::boot_on(paths, &image, &entry.name, &network, &binds)?;
    bastion::attach(&entry.name, pid)?;
    Ok(pid)
}

/// A `bastion` lab's internal `hosts` answer SSH through the bastion (waited for until
/// [`READY_LIMIT`] after `started`), then every bare host's sudo asks for the lab's password.
fn bastion_ready(paths: &Paths, hosts: &[HostState], started: Instant) -> Result<()> {
    let internal: Vec<(&str, u32)> = hosts
        .iter()
        .filter(|h| bastion::internal(h.addr))
        .filter_map(|h| Some((h.name.as_str(), h.pid?)))
        .collect();
    bastion::wait_ready(paths, &internal, started, READY_LIMIT)?;
    let all: Vec<(&str, std::net::Ipv4Addr, HostKind)> =
        hosts.iter().map(|h| (h.name.as_str(), h.addr, h.kind)).collect();
    bastion::require_sudo_password(paths, &all)
}

/// The inventory group of the bare lab's mirror host: in no inventory, since no playbook manages it.
const MIRROR_GROUP: &str = "mirror";

/// Starts nginx on the mirror host and checks that it serves the signed Release of each suite.
fn serve_mirror(paths: &Paths, state: &State) -> Result<()> {
    let mut suites = vec![bare::release(bare::DEFAULT_DEBIAN)?.recipe.suite];
    for (debian, _) in &state.bare_images {
        let suite = bare::release(*debian)?.recipe.suite;
        if !suites.contains(&suite) {
            suites.push(suite);
        }
    }
    let mut urls: Vec<String> =
        suites.iter().map(|s| format!("{}/dists/{s}/InRelease", bare::MIRROR_URL)).collect();
    urls.extend(k8srepo::RELEASES.iter().map(|r| format!("{}InRelease", k8srepo::url(r.minor))));
    let mut script = vec![
        "sh",
        "-c",
        "systemctl start nginx && for u; do curl -fsS -o /dev/null -- \"$u\" || exit; done",
        "sh",
    ];
    script.extend(urls.iter().map(String::as_str));
    if ssh::capture(paths, bare::MIRROR_ADDR, &script, Duration::from_secs(30)).is_none() {
        bail!(
            "the mirror host does not serve {}; see `cargo xtask lab ssh mirror -- journalctl -u nginx`",
            urls.join(" ")
        );
    }
    println!("lab: the package mirror serves {} ({})", bare::MIRROR_URL, suites.join(", "));
    Ok(())
}

/// Every host's process is alive, its link is up and it answers SSH.
fn healthy(paths: &Paths, state: &State) -> bool {
    let Ok(links) = net::links() else {
        return false;
    };
    if !links.iter().any(|l| l.name == BRIDGE && l.up) || !paths.inventory().exists() {
        return false;
    }
    let checks = state.hosts.iter().all(|h| {
        h.pid.is_some_and(|p| procs::is_host(p, &h.name))
            && links.iter().any(|l| l.name == net::veth(&h.name) && l.up)
    });
    checks && probe_all(paths, &state.hosts).values().all(|ok| *ok)
}

/// SSH reachability of each host, probed in parallel.
fn probe_all(paths: &Paths, hosts: &[HostState]) -> BTreeMap<String, bool> {
    thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| {
                let probe = move || {
                    if bastion::internal(h.addr) {
                        bastion::reachable(paths, &h.name)
                    } else {
                        ssh::reachable(paths, h.kind.login(), h.addr)
                    }
                };
                (h.name.clone(), s.spawn(probe))
            })
            .collect();
        handles.into_iter().map(|(n, t)| (n, t.join().unwrap_or(false))).collect()
    })
}

/// A fresh lab: SSH key pair, per-host keys and network files, known_hosts, inventory.
fn write_lab_files(
    paths: &Paths,
    topology: Topology,
    specs: &[HostSpec],
    debian: &[Option<u8>],
    login: Login<'_>,
    vars: &[(String, String)],
) -> Result<()> {
    if paths.lab.exists() {
        fs::remove_dir_all(&paths.lab).with_context(|| format!("cannot clear {}", paths.lab.display()))?;
    }
    fs::create_dir_all(&paths.lab).with_context(|| format!("cannot create {}", paths.lab.display()))?;
    fs::set_permissions(&paths.lab, fs::Permissions::from_mode(0o755))?;
    host::keygen(&paths.key(), "engine-lab")?;
    let public =
        fs::read_to_string(paths.key().with_extension("pub")).context("cannot read the lab public key")?;
    for (file, mode) in [(paths.authorized_keys_root(), 0o600), (paths.authorized_keys_deploy(), 0o644)] {
        fs::write(&file, &public).with_context(|| format!("cannot write {}", file.display()))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(mode))?;
    }
    let mut host_keys = Vec::new();
    for spec in specs {
        host_keys.push(host::prepare(paths, spec)?);
    }
    let lines: Vec<(&str, std::net::Ipv4Addr, &str)> =
        specs.iter().zip(&host_keys).map(|(s, k)| (s.name.as_str(), s.addr, k.as_str())).collect();
    fs::write(paths.known_hosts(), inventory::known_hosts(&lines))?;
    let entries: Vec<inventory::Entry<'_>> =
        specs.iter().zip(debian).map(|(s, d)| (s.name.as_str(), s.addr, s.group.as_str(), *d)).collect();
    // The fleet of an `ha+N` lab has an inventory of its own, so playbooks run against the
    // `ha` hosts (`hosts()`, say) never reach it.
    let (fleet, main): (Vec<&str>, Vec<&str>) = topology.groups().iter().partition(|g| **g == FLEET);
    let text = inventory::render(&main, &entries, &paths.key(), &paths.known_hosts(), login, vars);
    fs::write(paths.inventory(), text)?;
    if !fleet.is_empty() {
        let text = inventory::render(&fleet, &entries, &paths.key(), &paths.known_hosts(), login, vars);
        fs::write(paths.fleet_inventory(), text)?;
    }
    Ok(())
}

/// `lab down`.
pub(crate) fn down(paths: &Paths) -> Result<()> {
    require_root()?;
    let _lock = lock()?;
    down_locked(paths)
}

/// Stops every lab host (from the state file and any stray lab nspawn process), removes
/// leftover veths and the bridge.
pub(crate) fn down_locked(paths: &Paths) -> Result<()> {
    let state = State::load(paths).ok().flatten();
    let mut hosts: BTreeMap<u32, String> = procs::lab_processes().into_iter().collect();
    if let Some(state) = &state {
        for h in &state.hosts {
            if let Some(pid) = h.pid.filter(|p| procs::is_host(*p, &h.name)) {
                hosts.insert(pid, h.name.clone());
            }
        }
    }
    let hosts: Vec<(u32, String)> = hosts.into_iter().collect();
    if !hosts.is_empty() {
        let started = Instant::now();
        let left = procs::stop(&hosts, HALT_GRACE)?;
        if !left.is_empty() {
            bail!("lab hosts still running after SIGKILL: {}", left.join(" "));
        }
        println!("lab: stopped {} hosts in {:.1} s", hosts.len(), started.elapsed().as_secs_f64());
    }
    let orphans = procs::orphan_containers();
    if !orphans.is_empty() {
        for pid in &orphans {
            procs::signal(&procs::tree(*pid), "KILL")?;
        }
        let gone = procs::wait_until(Duration::from_secs(5), || orphans.iter().all(|p| !procs::running(*p)));
        if !gone {
            bail!("orphaned lab containers survive SIGKILL: {orphans:?}");
        }
        println!("lab: killed {} orphaned lab containers (their nspawn was gone)", orphans.len());
    }
    let known: Vec<String> = state.iter().flat_map(|s| s.hosts.iter().map(|h| net::veth(&h.name))).collect();
    for link in net::links()? {
        let ours = link.master.as_deref() == Some(BRIDGE)
            || known.contains(&link.name)
            || link.name.strip_prefix("vb-").is_some_and(looks_like_lab_host);
        if ours && link.name.starts_with("vb-") {
            net::delete(&link.name)?;
            println!("lab: removed leftover link {}", link.name);
        }
    }
    net::delete(BRIDGE)?;
    bastion::remove_links()?;
    cgroup::remove_all()?;
    standins::clear_api(paths)?;
    for file in [paths.state(), paths.inventory(), bastion::password_path(paths)] {
        if file.exists() {
            fs::remove_file(&file).with_context(|| format!("cannot remove {}", file.display()))?;
        }
    }
    println!("lab: down");
    Ok(())
}

/// etcdN, masterN, workerN, hN or the mirror: names only this lab gives its hosts.
fn looks_like_lab_host(name: &str) -> bool {
    name == bare::MIRROR_NAME
        || name == bastion::NAME
        || ["etcd", "master", "worker", "h"].iter().any(|p| {
            name.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

/// `lab status`.
pub(crate) fn status(paths: &Paths) -> Result<()> {
    let Some(state) = State::load(paths)? else {
        let strays = procs::lab_processes();
        println!("lab: no lab is up");
        if !strays.is_empty() {
            println!("lab: but {} stray lab hosts run; `cargo xtask lab down` stops them", strays.len());
        }
        return Ok(());
    };
    let links = net::links()?;
    let reach = probe_all(paths, &state.hosts);
    match &state.bare_image {
        Some(bare) if state.bare_images.len() > 1 => {
            let images: Vec<String> =
                state.bare_images.iter().map(|(d, h)| format!("Debian {d}: {h}")).collect();
            println!(
                "lab: {} lab, bare (images {}; mirror: image {})",
                state.topology,
                images.join(", "),
                state.image
            )
        }
        Some(bare) => {
            println!("lab: {} lab, bare (image {bare}; mirror: image {})", state.topology, state.image)
        }
        None => println!("lab: {} lab, image {}", state.topology, state.image),
    }
    println!("{:<10} {:<12} {:<6} {:<6} {:<4} {:<6}", "NAME", "ADDRESS", "HOST", "LINK", "SSH", "DEBIAN");
    for h in &state.hosts {
        let alive = h.pid.is_some_and(|p| procs::is_host(p, &h.name));
        let link = match links.iter().find(|l| l.name == net::veth(&h.name)) {
            Some(l) if l.up => "up",
            Some(_) => "cut",
            None => "-",
        };
        let ssh_ok = reach.get(&h.name).copied().unwrap_or(false);
        println!(
            "{:<10} {:<12} {:<6} {:<6} {:<4} {:<6}",
            h.name,
            h.addr,
            if alive { "up" } else { "down" },
            link,
            if ssh_ok { "yes" } else { "no" },
            h.debian()
        );
    }
    Ok(())
}

/// `lab ssh NAME [-- CMD...]`: replaces this process with `ssh`, so the remote exit code
/// is ours.
pub(crate) fn ssh_exec(paths: &Paths, name: &str, remote: &[String]) -> Result<()> {
    let state = State::require(paths)?;
    let h = state.host(name)?;
    let mut c = if bastion::internal(h.addr) {
        bastion::ssh_command(paths, name, 5, remote)
    } else {
        ssh::command(paths, h.kind.login(), h.addr, 5, remote)
    };
    let err = c.exec();
    Err(err).context("cannot run ssh")
}

/// `lab kill NAME`: SIGKILL to the host's whole process tree; it dies without shutdown.
pub(crate) fn kill(paths: &Paths, name: &str) -> Result<()> {
    require_root()?;
    let _lock = lock()?;
    let state = State::require(paths)?;
    let h = state.host(name)?;
    let Some(pid) = h.pid.filter(|p| procs::is_host(*p, name)) else {
        println!("lab: {name} is not running");
        return Ok(());
    };
    if !procs::kill_tree(pid, name)? {
        bail!("{name} (pid {pid}) survived SIGKILL");
    }
    let veth = net::veth(name);
    procs::wait_until(Duration::from_secs(2), || !net::exists(&veth).unwrap_or(true));
    net::delete(&veth)?;
    println!("lab: killed {name} (pid {pid}); `cargo xtask lab restart {name}` boots it again");
    Ok(())
}

/// `lab cut NAME` / `lab heal NAME`: the host's controller-side veth goes down / up.
pub(crate) fn cut(paths: &Paths, name: &str, heal: bool) -> Result<()> {
    require_root()?;
    let _lock = lock()?;
    let state = State::require(paths)?;
    state.host(name)?;
    let veth = net::veth(name);
    if !net::exists(&veth)? {
        bail!("{name} has no link {veth}; is it running?");
    }
    net::set_up(&veth, heal)?;
    println!("lab: {name} {}", if heal { "healed (link up)" } else { "cut off (link down)" });
    Ok(())
}

/// `lab restart NAME`: stops the host if it runs, then boots it again. With
/// `--volatile=overlay` every boot starts from the pristine image: all changes are gone.
pub(crate) fn restart(paths: &Paths, name: &str) -> Result<()> {
    require_root()?;
    let _lock = lock()?;
    let mut state = State::require(paths)?;
    let h = state.host(name)?.clone();
    if let Some(pid) = h.pid.filter(|p| procs::is_host(*p, name)) {
        let left = procs::stop(&[(pid, name.to_owned())], HALT_GRACE)?;
        if !left.is_empty() {
            bail!("{name} still runs after SIGKILL");
        }
    }
    net::delete(&net::veth(name))?;
    net::ensure_bridge()?;
    if state.topology == bastion::TOPOLOGY {
        bastion::ensure_bridge()?;
    }
    net::raise_inotify_limits()?;
    let started = Instant::now();
    let pid = boot_host(paths, &state, &h, &state.mirror_dirs())?;
    if let Some(entry) = state.hosts.iter_mut().find(|x| x.name == name) {
        entry.pid = Some(pid);
    }
    state.save(paths)?;
    if state.topology == bastion::TOPOLOGY {
        let mut restarted = h.clone();
        restarted.pid = Some(pid);
        if !bastion::internal(h.addr) {
            ssh::wait_ready(paths, &[(name, h.addr, pid, h.kind.login())], started, READY_LIMIT)?;
        }
        bastion_ready(paths, &[restarted], started)?;
    } else {
        ssh::wait_ready(paths, &[(name, h.addr, pid, h.kind.login())], started, READY_LIMIT)?;
    }
    if h.kind == HostKind::Mirror {
        serve_mirror(paths, &state)?;
    }
    println!("lab: {name} restarted from the image; SSH after {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// `lab __guard`: waits until its stdin closes (its parent finished or died), then tears
/// the lab down. `cargo xtask test` starts it in its own process group so a Ctrl-C that
/// kills the test run does not reach it.
pub(crate) fn guard(paths: &Paths) -> Result<()> {
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink).ok();
    eprintln!("lab: tearing the lab down");
    down(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_host_names() {
        for n in ["etcd0", "master2", "worker1", "h00", "h149", "mirror", "bastion"] {
            assert!(looks_like_lab_host(n), "{n}");
        }
        for n in ["h", "etcd", "eth0", "hx1", "web0"] {
            assert!(!looks_like_lab_host(n), "{n}");
        }
    }
}
