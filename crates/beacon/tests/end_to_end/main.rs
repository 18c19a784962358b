//! The `beacon` binary end to end, as operators run it: real collector, broker and cluster
//! processes on 127.0.0.1, signals, files, PostgreSQL and headless Chromium.

mod airgap;
mod broker_faults;
mod broker_process;
mod cluster;
mod collector_process;
mod collector_settles;
mod collectors_share_postgres;
mod console;
mod console_import;
mod demo;
mod forget;
mod node_abuse;
mod node_proxy;
mod support;
