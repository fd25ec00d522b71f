//! `scp` planned and applied on this machine: the task's host and the controller are both the
//! local `sh` ([`LocalHost`]) in a scratch folder, so the controller's side runs for real.
//!
//! ```text
//!   scratch/ctl   (the controller's working directory)   scratch/host   (the task's host)
//!   src/ ──────── from: "controller" ─────────────────►  dest/
//!   pulled/ ◄──── to_controller ───────────────────────  pki/
//! ```

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use contract::module::{Context, PlanOptions};
use serde_json::json;

use super::*;

/// A scratch folder with `ctl/` (the controller's working directory) and `host/`.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ctl")).unwrap();
        std::fs::create_dir_all(dir.path().join("host")).unwrap();
        Self { dir }
    }

    /// An absolute path in the scratch folder, as text.
    fn path(&self, relative: &str) -> String {
        self.dir.path().join(relative).to_str().unwrap().to_owned()
    }

    /// The controller, working in `ctl/`.
    fn controller(&self) -> LocalHost {
        LocalHost::controller().in_dir(self.dir.path().join("ctl"))
    }

    fn module(&self, args: Value) -> Scp {
        let args = crate::validate::resolved::<ScpArgs>(args).unwrap();
        Scp::new(args).with_controller(self.controller())
    }
}

fn write(path: &str, content: &str, mode: u32) {
    std::fs::create_dir_all(Path::new(path).parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

async fn plan(module: &Scp, host: &LocalHost) -> Result<Plan, ModuleError> {
    module.plan(&Context::new(host, PlanOptions::default())).await
}

/// Plans and applies; returns the planned changes.
async fn run(module: &Scp, host: &LocalHost) -> Vec<String> {
    let plan = plan(module, host).await.unwrap();
    if let Some(action) = plan.action {
        action.apply(host).await.unwrap();
    }
    plan.changes
}

#[tokio::test]
async fn pushes_from_the_controller_once_then_only_what_changed() {
    let s = Scratch::new();
    let host = LocalHost::new("h");
    let (src, dest) = (s.path("ctl/src"), s.path("host/dest"));
    write(&format!("{src}/a.txt"), "alpha\n", 0o640);
    write(&format!("{src}/sub/b.txt"), "beta\n", 0o644);
    write(&format!("{src}/skip.tmp"), "no\n", 0o644);
    let scp = s.module(json!({ "from": "controller", "src": src, "dest": dest, "exclude": ["*.tmp"] }));

    assert_eq!(
        run(&scp, &host).await,
        [
            format!("create directory {dest}"),
            format!("create directory {dest}/sub"),
            format!("send controller:{src}/a.txt -> {dest}/a.txt (6 bytes, new)"),
            format!("send controller:{src}/sub/b.txt -> {dest}/sub/b.txt (5 bytes, new)"),
        ]
    );
    assert_eq!(std::fs::read_to_string(format!("{dest}/a.txt")).unwrap(), "alpha\n");
    assert_eq!(std::fs::read_to_string(format!("{dest}/sub/b.txt")).unwrap(), "beta\n");
    assert_eq!(mode(&format!("{dest}/a.txt")), 0o640, "the source's mode");
    assert!(!Path::new(&format!("{dest}/skip.tmp")).exists());

    let again = plan(&scp, &host).await.unwrap();
    assert!(!again.is_change(), "{:?}", again.changes);
    assert_eq!(again.outputs["sent"], json!(0));

    write(&format!("{src}/sub/b.txt"), "beta 2\n", 0o644);
    assert_eq!(
        run(&scp, &host).await,
        [format!("send controller:{src}/sub/b.txt -> {dest}/sub/b.txt (7 bytes, content differs)")]
    );
    assert_eq!(std::fs::read_to_string(format!("{dest}/sub/b.txt")).unwrap(), "beta 2\n");
}

#[tokio::test]
async fn pulls_to_the_controller_atomically_keeping_key_modes() {
    let s = Scratch::new();
    let host = LocalHost::new("master0");
    let (pki, pulled) = (s.path("host/pki"), s.path("ctl/pulled"));
    write(&format!("{pki}/ca.key"), "-----BEGIN PRIVATE KEY-----\nsecret\n", 0o600);
    write(&format!("{pki}/ca.crt"), "-----BEGIN CERTIFICATE-----\n", 0o644);
    let scp = s.module(json!({ "src": pki, "to_controller": format!("{pulled}/") }));

    assert_eq!(
        run(&scp, &host).await,
        [
            format!("create directory controller:{pulled}"),
            format!("send master0:{pki}/ca.crt -> controller:{pulled}/ca.crt (28 bytes, new)"),
            format!("send master0:{pki}/ca.key -> controller:{pulled}/ca.key (35 bytes, new)"),
        ]
    );
    assert_eq!(mode(&format!("{pulled}/ca.key")), 0o600, "a key stays 0600 on the controller");
    assert_eq!(mode(&format!("{pulled}/ca.crt")), 0o644);
    let names: Vec<String> =
        std::fs::read_dir(&pulled).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
    assert!(!plan(&scp, &host).await.unwrap().is_change(), "nothing to do the second time");

    // A different file on the controller is replaced by a new one (renamed over it), with the
    // source's mode; a mode alone is fixed in place.
    let key = format!("{pulled}/ca.key");
    write(&key, "old\n", 0o644);
    let before = std::fs::metadata(&key).unwrap().ino();
    let changes = run(&scp, &host).await;
    assert_eq!(
        changes[0],
        format!("send master0:{pki}/ca.key -> controller:{key} (35 bytes, content differs)")
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), "-----BEGIN PRIVATE KEY-----\nsecret\n");
    assert_eq!(mode(&key), 0o600);
    assert_ne!(std::fs::metadata(&key).unwrap().ino(), before, "written beside, then renamed over");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(run(&scp, &host).await.len(), 1);
    assert_eq!(mode(&key), 0o600);
    assert!(!plan(&scp, &host).await.unwrap().is_change());

    // --diff never shows a key's content, on the controller either.
    write(&key, "old\n", 0o600);
    let shown = scp.plan(&Context::new(&host, PlanOptions { diff: true, ..PlanOptions::default() })).await;
    let diff = shown.unwrap().diff.unwrap();
    assert_eq!(diff, format!("secret content of controller:{key} differs (35 bytes after); not shown\n"));
}

/// Relative controller paths are from the controller's working directory, and a name that
/// starts with `-` is a path there, not an option of the listing's `find`.
#[tokio::test]
async fn relative_controller_paths_with_a_leading_dash() {
    let s = Scratch::new();
    let host = LocalHost::new("h");
    write(&s.path("ctl/-odd dir/x.txt"), "x\n", 0o644);
    let dest = s.path("host/dest");
    let up = s.module(json!({ "from": "controller", "src": "-odd dir", "dest": dest }));
    assert_eq!(
        run(&up, &host).await,
        [
            format!("create directory {dest}"),
            format!("send controller:-odd dir/x.txt -> {dest}/x.txt (2 bytes, new)")
        ]
    );
    assert!(!plan(&up, &host).await.unwrap().is_change());

    let down = s.module(json!({ "src": dest, "to_controller": "-back/" }));
    assert_eq!(
        run(&down, &host).await,
        [
            "create directory controller:-back".to_owned(),
            format!("send h:{dest}/x.txt -> controller:-back/x.txt (2 bytes, new)"),
        ]
    );
    assert_eq!(std::fs::read_to_string(s.path("ctl/-back/x.txt")).unwrap(), "x\n");
    assert!(!plan(&down, &host).await.unwrap().is_change());
}

#[tokio::test]
async fn refuses_controller_names_that_are_not_utf8_and_missing_sources() {
    use std::os::unix::ffi::OsStrExt;
    let s = Scratch::new();
    let host = LocalHost::new("h");
    let local = s.path("ctl/local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(Path::new(&local).join(std::ffi::OsStr::from_bytes(b"bad\xfename")), b"z").unwrap();
    let scp = s.module(json!({ "from": "controller", "src": local, "dest": s.path("host/local") }));
    let error = plan(&scp, &host).await.unwrap_err().to_string();
    assert!(error.contains(r"bad\xfename on the controller is not UTF-8"), "{error}");

    let gone = s.module(json!({ "from": "controller", "src": "gone", "dest": s.path("host/x") }));
    assert_eq!(plan(&gone, &host).await.unwrap_err().to_string(), "controller:gone does not exist");
}

/// A command that fails on the controller says it was the controller's, not the task host's.
#[tokio::test]
async fn controller_failures_name_the_controller() {
    let s = Scratch::new();
    let host = LocalHost::new("h");
    write(&s.path("host/f"), "f\n", 0o644);
    write(&s.path("ctl/blocker"), "a file\n", 0o644);
    let scp = s.module(json!({ "src": s.path("host/f"), "to_controller": "blocker/" }));
    let error = plan(&scp, &host).await.unwrap_err().to_string();
    assert_eq!(error, "controller:blocker exists and is not a directory");

    // The planned directory turns into a file before the copy is applied.
    let scp = s.module(json!({ "src": s.path("host/f"), "to_controller": "late/" }));
    let planned = plan(&scp, &host).await.unwrap();
    write(&s.path("ctl/late"), "now a file\n", 0o644);
    let error = planned.action.unwrap().apply(&host).await.unwrap_err().to_string();
    assert!(error.starts_with("cannot create late on the controller: mkdir: "), "{error}");
}

#[test]
fn private_keys_are_secret() {
    assert!(contract::diff::looks_secret(b"-----BEGIN RSA PRIVATE KEY-----\n"));
    assert!(contract::diff::looks_secret(b"-----BEGIN PRIVATE KEY-----\n"));
    assert!(!contract::diff::looks_secret(b"-----BEGIN CERTIFICATE-----\n"));
}

/// Hostile names and raw bytes make the round trip controller → host → controller unchanged,
/// and nothing in a name runs.
#[tokio::test]
async fn hostile_names_and_raw_bytes_both_ways() {
    let s = Scratch::new();
    let host = LocalHost::new("h");
    let names = ["new\nline", "$(touch pwned)", "it's `x` \\ *", "-n -e", " lead"];
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    for name in names {
        std::fs::create_dir_all(s.path("ctl/src")).unwrap();
        std::fs::write(Path::new(&s.path("ctl/src")).join(name), &all_bytes).unwrap();
    }
    let (dest, back) = (s.path("host/dest"), s.path("ctl/back"));
    let up = s.module(json!({ "from": "controller", "src": "src", "dest": dest }));
    let down = s.module(json!({ "src": dest, "to_controller": "back" }));
    assert_eq!(run(&up, &host).await.len(), 1 + names.len());
    assert_eq!(run(&down, &host).await.len(), 1 + names.len());
    for name in names {
        assert_eq!(std::fs::read(Path::new(&back).join(name)).unwrap(), all_bytes, "{name:?}");
    }
    assert!(!plan(&up, &host).await.unwrap().is_change() && !plan(&down, &host).await.unwrap().is_change());
    for place in ["ctl/pwned", "host/pwned", "pwned"] {
        assert!(!Path::new(&s.path(place)).exists(), "something ran: {place}");
    }
    assert!(!Path::new("pwned").exists(), "something ran in the task host's folder");
}

/// A source host that lies: it answers the listing command with `listing` and every `cat`
/// with `content`; anything else runs on this machine.
struct Hostile {
    name: &'static str,
    listing: Vec<u8>,
    content: &'static [u8],
}

#[async_trait::async_trait]
impl contract::Host for Hostile {
    fn name(&self) -> &str {
        self.name
    }

    async fn exec(&self, exec: contract::Exec) -> Result<contract::ExecOutput, contract::HostError> {
        let answer = |stdout: &[u8]| contract::ExecOutput {
            status: Some(0),
            stdout: stdout.to_vec(),
            stderr: Vec::new(),
        };
        if exec.command.contains("find -H") {
            Ok(answer(&self.listing))
        } else if exec.command.starts_with("cat -- ") {
            Ok(answer(self.content))
        } else {
            LocalHost::new(self.name).exec(exec).await
        }
    }
}

/// A listing of `root` (a directory) with one file at `path`, of raw mode `raw` (hex).
fn hostile_listing(root: &str, path: &str, raw: &str, content: &[u8]) -> Vec<u8> {
    let sha = contract::diff::sha256_hex(content);
    format!("D\t{root}\0F\t{raw}\t{}\troot\troot\t{path}\0{sha}  {path}\0", content.len()).into_bytes()
}

/// Every file under `dir`, relative.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Issue 15: a host listing `/etc/kubernetes/pki/../../../../<somewhere>` had that file written
/// outside the destination on the controller. The copy fails naming the host and the entry,
/// and nothing is written on the controller.
#[tokio::test]
async fn to_controller_refuses_a_listing_that_leaves_the_source() {
    let s = Scratch::new();
    let pki = "/etc/kubernetes/pki";
    let escape = format!("{pki}/../../..{}", s.path("ctl/escaped"));
    let host = Hostile {
        name: "master0",
        listing: hostile_listing(pki, &escape, "81a4", b"pwned\n"),
        content: b"pwned\n",
    };
    let scp = s.module(json!({ "src": pki, "to_controller": "pulled/" }));
    let error = scp.plan(&Context::new(&host, PlanOptions::default())).await.unwrap_err();
    assert!(matches!(&error, ModuleError::Output(e) if e.host == "master0"), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "the listing of {pki} from master0 is refused: a path that leaves {pki} (an empty, `.` or `..` \
             component): \"{escape}\""
        )
    );
    assert_eq!(files_under(&s.dir.path().join("ctl")), Vec::<String>::new(), "nothing written");
}

/// The same listing from a peer (`from: <peer>`): the task's host gets nothing outside `dest`.
#[tokio::test]
async fn from_a_peer_refuses_a_listing_that_leaves_the_source() {
    struct OnePeer(Arc<dyn contract::Host>);
    impl contract::Peers for OnePeer {
        fn peer(&self, name: &str) -> Option<Arc<dyn contract::Host>> {
            (name == self.0.name()).then(|| self.0.clone())
        }
    }
    let s = Scratch::new();
    let pki = "/etc/kubernetes/pki";
    let escape = format!("{pki}/../../..{}", s.path("host/escaped"));
    let peer: Arc<dyn contract::Host> = Arc::new(Hostile {
        name: "etcd1",
        listing: hostile_listing(pki, &escape, "81a4", b"x"),
        content: b"x",
    });
    let dest = s.path("host/dest");
    let scp = s.module(json!({ "from": "etcd1", "src": pki, "dest": dest }));
    let host = LocalHost::new("etcd0");
    let peers = OnePeer(peer);
    let cx = Context { peers: &peers, ..Context::new(&host, PlanOptions::default()) };
    let error = scp.plan(&cx).await.unwrap_err().to_string();
    assert!(
        error.starts_with(&format!("the listing of {pki} from etcd1 is refused: a path that leaves")),
        "{error}"
    );
    assert_eq!(files_under(&s.dir.path().join("host")), Vec::<String>::new(), "nothing written");
}

/// A source host claiming mode 4777 does not plant a setuid, world-writable file on the
/// controller: without `mode`, setuid, setgid, sticky and write-for-others are left out.
/// Device files, symbolic links and FIFOs passed off as files are refused.
#[tokio::test]
async fn a_claimed_setuid_world_writable_mode_is_not_carried_and_non_files_are_refused() {
    let s = Scratch::new();
    let pki = "/etc/kubernetes/pki";
    let content: &'static [u8] = b"#!/bin/sh\n";
    // 0x89ff: a regular file with mode 4777.
    let host = Hostile {
        name: "m0",
        listing: hostile_listing(pki, &format!("{pki}/tool"), "89ff", content),
        content,
    };
    let scp = s.module(json!({ "src": pki, "to_controller": "pulled/" }));
    let planned = scp.plan(&Context::new(&host, PlanOptions::default())).await.unwrap();
    planned.action.unwrap().apply(&host).await.unwrap();
    assert_eq!(mode(&s.path("ctl/pulled/tool")), 0o775);

    for (raw, what) in [
        ("21b6", "a character device"),
        ("a1ff", "a symbolic link"),
        ("11b6", "a FIFO"),
        ("41ed", "a directory"),
    ] {
        let host = Hostile {
            name: "m0",
            listing: hostile_listing(pki, &format!("{pki}/x"), raw, b""),
            content: b"",
        };
        let error = scp.plan(&Context::new(&host, PlanOptions::default())).await.unwrap_err().to_string();
        assert!(error.contains("is refused: an entry that is not a regular file"), "{what}: {error}");
    }
}

/// Whatever bytes a host prints as its listing, planning returns (an error or a plan) and
/// never panics. The checksum line with a multi-byte character where its two spaces belong
/// is issue 15's panic.
#[tokio::test]
async fn no_listing_panics_the_task() {
    let s = Scratch::new();
    let scp = s.module(json!({ "src": "/pki", "to_controller": "pulled/" }));
    let sha = "a".repeat(64);
    let listings: Vec<Vec<u8>> = vec![
        format!("D\t/pki\0F\t81a4\t1\troot\troot\t/pki/x\0{sha} é/pki/x\0").into_bytes(),
        format!("D\t/pki\0{sha}é").into_bytes(),
        b"D\t/pki\0F\t81a4\t1\troot\troot\0".to_vec(),
        b"D\t\xc3".to_vec(),
        b"\0\0\0\t\t\t".to_vec(),
        "D\té\0F\té\t1\té\té\té\0".as_bytes().to_vec(),
    ];
    for listing in listings {
        let host = Hostile { name: "m0", listing: listing.clone(), content: b"" };
        let result = scp.plan(&Context::new(&host, PlanOptions::default())).await;
        assert!(result.is_err(), "{}", listing.escape_ascii());
    }
    assert_eq!(files_under(&s.dir.path().join("ctl")), Vec::<String>::new());
}
