//! Fuzzes the inventory parsers: any bytes, read as inventory YAML and as INI (with its host
//! ranges and Python literals), give an inventory or an error, never a panic. Non-UTF-8 input
//! is refused the way `Inventory::load` refuses it.
#![no_main]

use std::path::Path;

use engine::inventory::Inventory;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for path in ["fuzz.yml", "fuzz.ini"] {
        let Ok(inventory) = Inventory::parse(text, Path::new(path)) else { continue };
        // What the runner does next with a parsed inventory: every host's connection, and
        // every group as a `--limit` pattern.
        for host in inventory.hosts() {
            let _ = host.connection();
        }
        let groups: Vec<String> = inventory.group_names().into_iter().map(str::to_owned).collect();
        let _ = inventory.resolve_patterns(&groups);
        let _ = inventory.list_json();
        let _ = inventory.graph_text();
    }
});
