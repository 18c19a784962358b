//! The broker against real MQTT clients, real clusters (in one process and as processes)
//! and its config files, on 127.0.0.1.

mod access;
mod cluster;
mod cluster_config;
mod cluster_restart;
mod common;
mod config;
mod listeners;
mod mqtt;
