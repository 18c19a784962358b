//! A real collector on 127.0.0.1 over both stores: ingest, its console, connection limits,
//! the hostile corpus, deletion and retention.

mod connections;
mod console;
mod forget;
mod hostile_corpus;
mod ingest;
mod service;
mod support;
