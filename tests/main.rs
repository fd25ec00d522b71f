//! The integration and end-to-end tests, as one test binary (as casey/just does): each file
//! beside this one is a module, and `support` is the harness they share. Run one file's tests
//! with a filter on its module, e.g. `cargo test -p engine --test main -- errors::`.
//!
//! Lab tests are `#[ignore]`d, so a plain `cargo test` reports them as ignored; `cargo xtask
//! test` boots the lab and runs them with `--include-ignored` (see `support::lab`).

mod adhoc;
mod ansible_project;
mod apt_modules;
mod bare_lab;
mod bastion;
mod r#become;
mod certgen;
mod cli;
mod day_two;
mod docs;
mod engine_features;
mod errors;
mod examples;
mod faults;
mod ha;
mod host_certs;
mod host_prep;
mod hostile;
mod imports;
mod injection;
mod install;
mod inventory;
mod kube;
mod lab;
mod modules_files;
mod modules_services;
mod nodes;
mod passphrase;
mod report;
mod resume;
mod reviewed;
mod run_control;
mod secrets;
mod support;
mod transport;
mod upgrade;
