//! The module planned and applied on this machine (local hosts in scratch folders): zip and
//! tar archives on the host and on the controller, and the refusals.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;
use crate::validate::resolved;
use contract::host::{ExecOutput, HostError};
use contract::module::PlanOptions;

/// A fresh folder under the system's temporary folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("engine-unarchive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, relative: &str) -> String {
        self.0.join(relative).to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A zip archive (stored, made on Unix) of `(name, mode with its type bits, content)`: a
/// symbolic link's content is its target. Written here so that a test can hold any name.
fn zip(entries: &[(&str, u32, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, mode, data) in entries {
        let offset = u32::try_from(out.len()).unwrap();
        let (crc, len, name_len) = (crc32(data), u32::try_from(data.len()).unwrap(), name.len() as u16);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20u16, 0, 0, 0, 0x21].iter().flat_map(|v| v.to_le_bytes()));
        out.extend([crc, len, len].iter().flat_map(|v| v.to_le_bytes()));
        out.extend([name_len, 0].iter().flat_map(|v| v.to_le_bytes()));
        out.extend(name.as_bytes());
        out.extend(*data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([(3u16 << 8) | 20, 20, 0, 0, 0, 0x21].iter().flat_map(|v| v.to_le_bytes()));
        central.extend([crc, len, len].iter().flat_map(|v| v.to_le_bytes()));
        central.extend([name_len, 0, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes()));
        central.extend([mode << 16, offset].iter().flat_map(|v| v.to_le_bytes()));
        central.extend(name.as_bytes());
    }
    let (count, at, size) =
        (entries.len() as u16, u32::try_from(out.len()).unwrap(), u32::try_from(central.len()).unwrap());
    out.extend(central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u16, 0, count, count].iter().flat_map(|v| v.to_le_bytes()));
    out.extend([size, at].iter().flat_map(|v| v.to_le_bytes()));
    out.extend(0u16.to_le_bytes());
    out
}

const FILE: u32 = 0o100_644;
const DIR: u32 = 0o40_755;
const LINK: u32 = 0o120_777;

fn package() -> Vec<u8> {
    zip(&[
        ("pkg-1/", DIR, b""),
        ("pkg-1/bin/", DIR, b""),
        ("pkg-1/bin/tool", 0o100_755, b"tool"),
        ("pkg-1/README", FILE, b"readme"),
        ("pkg-1/bin/t", LINK, b"tool"),
        ("pkg-1/RE AD[1]*", FILE, b"odd"),
    ])
}

fn module(args: Value) -> Unarchive {
    Unarchive::new(resolved::<UnarchiveArgs>(args).unwrap())
}

async fn plan(module: &Unarchive, host: &dyn Host) -> Result<Plan, ModuleError> {
    module.plan(&Context::new(host, PlanOptions::default())).await
}

async fn run(module: &Unarchive, host: &dyn Host) -> Vec<String> {
    let plan = plan(module, host).await.unwrap();
    if let Some(action) = plan.action {
        action.apply(host).await.unwrap();
    }
    plan.changes
}

fn names(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_zip_on_the_host_is_extracted_stripped_and_included_once() {
    let s = Scratch::new("zip");
    std::fs::write(s.path("pkg.zip"), package()).unwrap();
    let host = LocalHost::new("worker2");
    let dest = s.path("out");
    let m = module(
        json!({ "src": s.path("pkg.zip"), "dest": dest, "strip_components": 1, "include": ["pkg-1/bin"] }),
    );
    assert_eq!(run(&m, &host).await, [format!("extract {} into {dest} (3 members)", s.path("pkg.zip"))]);
    let mut got = names(Path::new(&dest));
    got.retain(|n| !n.starts_with(".engine-unarchive-"));
    assert_eq!(got, ["bin", "bin/t", "bin/tool"], "only the included members, stripped; no temporary left");
    assert_eq!(std::fs::read_link(s.path("out/bin/t")).unwrap(), Path::new("tool"));
    assert_eq!(std::fs::read(s.path("out/bin/tool")).unwrap(), b"tool");
    assert!(run(&m, &host).await.is_empty(), "the manifest matches: nothing to do");
    std::fs::write(s.path("out/bin/tool"), b"changed").unwrap();
    assert_eq!(run(&m, &host).await.len(), 1, "a changed file is extracted again");
    assert_eq!(std::fs::read(s.path("out/bin/tool")).unwrap(), b"tool");

    let whole = module(json!({ "src": s.path("pkg.zip"), "dest": s.path("all") }));
    run(&whole, &host).await;
    assert_eq!(
        std::fs::read(s.path("all/pkg-1/RE AD[1]*")).unwrap(),
        b"odd",
        "a name unzip would read as a pattern"
    );
}

#[tokio::test]
async fn a_zip_with_a_member_escaping_the_destination_is_refused_with_nothing_written() {
    let s = Scratch::new("zip-escape");
    let host = LocalHost::new("worker2");
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "dotdot",
            zip(&[("ok", FILE, b"ok"), ("../escape", FILE, b"evil")]),
            "member \"../escape\" climbs out with ..",
        ),
        ("abs", zip(&[("/etc/evil", FILE, b"evil")]), "member \"/etc/evil\" has an absolute name"),
        (
            "link",
            zip(&[("a/l", LINK, b"../../etc")]),
            "symbolic link \"a/l\" points outside the destination (\"../../etc\")",
        ),
        // Not included, still refused: unzip extracts every member before the wanted are moved.
        (
            "through",
            zip(&[("l", LINK, b"d"), ("l/x", FILE, b"x"), ("ok", FILE, b"ok")]),
            "member \"l/x\" lies under the symbolic link \"l\"",
        ),
    ];
    for (name, bytes, why) in cases {
        let src = s.path(&format!("{name}.zip"));
        std::fs::write(&src, bytes).unwrap();
        let dest = s.path(&format!("out-{name}"));
        let include = if name == "through" { json!(["ok"]) } else { Value::Null };
        let m = module(json!({ "src": src, "dest": dest, "include": include }));
        let error = plan(&m, &host).await.unwrap_err().to_string();
        assert_eq!(error, format!("{src} is refused, nothing was extracted: {why}"));
        assert!(!Path::new(&dest).exists(), "{name}: nothing written");
    }
    assert!(!Path::new(&s.path("escape")).exists());
}

#[tokio::test]
async fn an_archive_on_the_controller_is_uploaded_to_a_private_temporary_file_and_extracted_once() {
    let s = Scratch::new("upload");
    std::fs::create_dir_all(s.path("controller/files")).unwrap();
    std::fs::write(s.path("controller/files/pkg.zip"), package()).unwrap();
    let controller = LocalHost::controller().in_dir(s.path("controller"));
    let host = LocalHost::new("worker2");
    let dest = s.path("host/opt");
    let m = module(
        json!({ "src": "files/pkg.zip", "from_controller": true, "dest": dest, "strip_components": 1 }),
    )
    .with_controller(controller.clone());
    assert_eq!(
        run(&m, &host).await,
        [format!("upload controller:files/pkg.zip and extract it into {dest} (5 members)")]
    );
    let mut got = names(Path::new(&dest));
    assert!(got.iter().any(|n| n.starts_with(".engine-unarchive-")), "{got:?}");
    got.retain(|n| !n.starts_with(".engine-unarchive-"));
    assert_eq!(got, ["RE AD[1]*", "README", "bin", "bin/t", "bin/tool"], "no upload or unzip temporary left");
    assert!(run(&m, &host).await.is_empty(), "nothing is uploaded again");

    // A tar.xz too, whose upload is checked the same way.
    let tar = std::process::Command::new("tar")
        .args(["-cJf", "files/pkg.tar.xz", "-C", "files", "pkg.zip"])
        .current_dir(s.path("controller"))
        .status()
        .unwrap();
    assert!(tar.success());
    let xz = module(json!({ "src": "files/pkg.tar.xz", "from_controller": true, "dest": s.path("host/xz") }))
        .with_controller(controller);
    assert_eq!(run(&xz, &host).await.len(), 1);
    assert_eq!(std::fs::read(s.path("host/xz/pkg.zip")).unwrap(), package());
    let missing = module(json!({ "src": "files/none.zip", "from_controller": true, "dest": dest }))
        .with_controller(LocalHost::controller().in_dir(s.path("controller")));
    assert_eq!(
        plan(&missing, &host).await.unwrap_err().to_string(),
        "controller:files/none.zip does not exist on the controller"
    );
}

/// A host whose `PATH` holds only the tools `unarchive` needs besides the archivers.
#[derive(Debug)]
struct WithoutUnzip {
    inner: LocalHost,
    path: String,
}

#[async_trait]
impl Host for WithoutUnzip {
    fn name(&self) -> &str {
        "bare0"
    }

    async fn exec(&self, mut exec: Exec) -> Result<ExecOutput, HostError> {
        exec.command = format!("PATH={}; export PATH; {}", quote(&self.path), exec.command);
        self.inner.exec(exec).await
    }
}

#[tokio::test]
async fn a_host_without_unzip_is_refused_naming_the_package() {
    let s = Scratch::new("no-unzip");
    std::fs::write(s.path("pkg.zip"), package()).unwrap();
    std::fs::create_dir_all(s.path("bin")).unwrap();
    for tool in ["stat", "sha256sum", "cat"] {
        let found =
            std::process::Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().unwrap();
        let at = String::from_utf8(found.stdout).unwrap();
        std::os::unix::fs::symlink(at.trim(), s.path(&format!("bin/{tool}"))).unwrap();
    }
    let host = WithoutUnzip { inner: LocalHost::new("bare0"), path: s.path("bin") };
    let m = module(json!({ "src": s.path("pkg.zip"), "dest": s.path("out") }));
    assert_eq!(
        plan(&m, &host).await.unwrap_err().to_string(),
        format!(
            "unzip is not installed on bare0: install the unzip package (apt-get install unzip) to extract {}",
            s.path("pkg.zip")
        )
    );
}

#[test]
fn arguments_are_checked_at_seal() {
    let error = |v: Value| resolved::<UnarchiveArgs>(v).unwrap_err().to_string();
    assert_eq!(
        error(json!({ "src": "files/a.tgz", "dest": "/opt" })),
        "\"files/a.tgz\" is not an absolute path on the host (a file on the controller takes from_controller: true)"
    );
    assert!(
        resolved::<UnarchiveArgs>(json!({ "src": "files/a.tgz", "dest": "/opt", "from_controller": true }))
            .is_ok()
    );
    assert!(
        error(json!({ "src": "/tmp/a[1].zip", "dest": "/opt" })).contains("unzip reads them as a pattern")
    );
    assert_eq!(
        error(json!({ "src": "/a.tgz", "dest": "/opt", "include": ["-x"] })),
        "\"-x\" is not a member name"
    );
    assert_eq!(Format::of("/a.TAR.XZ"), Format::Tar(Some(("xz", "xz-utils"))));
    assert_eq!(Format::of("/a.zip"), Format::Zip);
    assert_eq!(Format::of("/a.tgz"), Format::Tar(None));
}

/// A host whose commands get only the first `keep` bytes of their stdin, as when the
/// controller dies or the link drops mid-upload.
#[derive(Debug)]
struct CutStdin {
    inner: LocalHost,
    keep: usize,
}

#[async_trait]
impl Host for CutStdin {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn exec(&self, mut exec: Exec) -> Result<ExecOutput, HostError> {
        if let Some(stdin) = exec.stdin.as_mut() {
            stdin.truncate(self.keep);
        }
        self.inner.exec(exec).await
    }
}

#[tokio::test]
async fn an_upload_cut_short_extracts_nothing_and_leaves_no_temporary() {
    let s = Scratch::new("cut");
    std::fs::create_dir_all(s.path("controller/files")).unwrap();
    std::fs::write(s.path("controller/files/pkg.zip"), package()).unwrap();
    let dest = s.path("host/opt");
    let len = package().len();
    // Inside the archive, just after it (no end-of-content line) and inside that line.
    for keep in [len / 2, len, len + 5] {
        let host = CutStdin { inner: LocalHost::new("worker2"), keep };
        let m = module(json!({ "src": "files/pkg.zip", "from_controller": true, "dest": dest }))
            .with_controller(LocalHost::controller().in_dir(s.path("controller")));
        let action = plan(&m, &host).await.unwrap().action.unwrap();
        let error = action.apply(&host).await.unwrap_err().to_string();
        assert!(
            error.contains(&format!(
                "the upload was cut short ({len} bytes were sent), nothing was extracted"
            )),
            "{keep}: {error}"
        );
        let left: Vec<String> = names(Path::new(&dest));
        assert!(left.is_empty(), "{keep}: nothing extracted, no temporary left: {left:?}");
    }
}
