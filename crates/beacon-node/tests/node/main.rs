//! The broker node (broker, agent, dashboard and REST API) as an operator and a script see
//! it, with real MQTT clients, HTTP and headless Chromium.

mod browser;
mod connections;
mod hardening;
mod node;
mod support;
