//! `crictl`, lab stand-in (installed by the lab's `cri-tools` package only): `--version`
//! (`crictl version v1.30.1`, the package's version) and nothing else; every other use exits 1
//! with "not supported by the lab stand-in".

use kube_standins::{unsupported, version};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["--version" | "-v"] => println!("crictl version {}", version::of("crictl")),
        [] => unsupported("crictl", "without a command"),
        [first, ..] => unsupported("crictl", first),
    }
}
