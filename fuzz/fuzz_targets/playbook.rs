//! Fuzzes the playbook loader: any bytes, read as playbook text against a fixed small
//! inventory, give a sealed plan or an error, never a panic.
//!
//! The sandbox limits are far below the defaults so that runaway scripts (loops, huge
//! strings and arrays, deep recursion) stop within milliseconds and iterations stay fast.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use engine::inventory::Inventory;
use engine::playbook::{self, Limits, LoadOptions};
use libfuzzer_sys::fuzz_target;

const INVENTORY: &str = "\
all:
  vars:
    ansible_user: root
  children:
    etcd:
      hosts:
        etcd0: {ansible_host: 192.0.2.11}
        etcd1: {ansible_host: 192.0.2.12}
    web:
      hosts:
        web0: {ansible_host: 192.0.2.21, role: primary, port: 8080}
";

fn fixtures() -> &'static (Inventory, LoadOptions) {
    static FIXTURES: OnceLock<(Inventory, LoadOptions)> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let inventory =
            Inventory::parse(INVENTORY, Path::new("fuzz.yml")).expect("the fixed inventory parses");
        let mut extra_vars = engine::inventory::Vars::new();
        extra_vars.insert("dir".into(), "/tmp/fuzz".into());
        // Fields set one by one so that limits added later keep their defaults.
        let mut limits = Limits::default();
        limits.max_operations = 20_000;
        limits.max_call_levels = 16;
        limits.max_expr_depth = 32;
        limits.max_string_size = 64 << 10;
        limits.max_array_size = 1_000;
        limits.max_map_size = 1_000;
        let mut options = LoadOptions::default();
        options.extra_vars = extra_vars;
        options.limits = limits;
        (inventory, options)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (inventory, options) = fixtures();
    // Imports and templates resolve next to this (nonexistent) file: a folder with nothing in it.
    let _ = playbook::load_source(Path::new("/nonexistent/fuzz/playbook.rhai"), text, inventory, options);
});
