//! Integration tests of the telemetry agent against real parts: files in temporary data
//! directories, HTTP and TLS on 127.0.0.1, the real collector and store.

mod cluster;
mod delivery;
mod hostile;
mod identity;
mod off_means_off;
mod privacy;
mod support;
mod switches;
