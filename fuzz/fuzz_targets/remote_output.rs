//! Fuzzes every parser of what a host prints (listings, stats, facts, certificates,
//! `systemctl show`, package queries, kubeadm's output): any bytes give a value or an error,
//! never a panic, and the promises the parsers make hold (no `scp` destination outside the
//! copy's destination, every fact that parsed of its kind). The first byte picks the parser;
//! see `modules::fuzz`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    modules::fuzz::remote_output(data);
});
