//! EMQX's MQTT listeners, served by rmqtt's: `listeners.<kind>.<name>` with kind `tcp`,
//! `ssl`, `ws` or `wss` and any name (`default`, `internal`, ...).
//!
//! ```hocon
//! listeners.tcp.default { bind = "0.0.0.0:1883" }            # exists unless disabled
//! listeners.ssl.default {
//!   bind = "0.0.0.0:8883"
//!   ssl_options {
//!     certfile = "etc/certs/cert.pem"                        # required (PEM chain)
//!     keyfile = "etc/certs/key.pem"                          # required (PEM key)
//!     cacertfile = "etc/certs/cacert.pem"                    # required with verify_peer
//!     verify = verify_none                                   # or verify_peer
//!   }
//! }
//! listeners.ws.default { bind = "0.0.0.0:8083", websocket.mqtt_path = "/mqtt" }
//! listeners.wss.default { bind = "0.0.0.0:8084", ssl_options { ... } }
//! ```
//!
//! Unlike EMQX, which serves all four kinds out of the box with certificates it ships,
//! Beacon serves `listeners.tcp.default` by default and any other listener only when its
//! block is in the configuration (file or `EMQX_LISTENERS__...` variables): Beacon ships
//! no certificates, and a port nobody asked for should not open. A block is served
//! unless `enable = false`; `bind` defaults to the kind's EMQX port.
//!
//! Every problem an operator can fix is refused when the configuration is read, naming
//! the key and where it was set: a missing or unreadable certificate or key file, a
//! file without PEM certificates or key, an unknown `verify`, a bad `bind`.
//!
//! `verify_peer` requires every client to present a certificate signed by
//! `cacertfile` (EMQX's `verify_peer` with `fail_if_no_peer_cert = true`); rmqtt 0.24
//! has no mode that verifies a certificate only when one is offered.
//!
//! rmqtt 0.24 upgrades a WebSocket on any request path, so `websocket.mqtt_path` is
//! checked (it must start with `/`) but not enforced: clients using the configured path
//! are served, and so are clients using another path.

use std::net::{Ipv4Addr, SocketAddr};

use beacon_config::{Config, Origin};
use rmqtt::net::rustls::pki_types::pem::PemObject;
use rmqtt::net::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rmqtt::net::{Builder, Listener};
use tracing::warn;

use crate::BrokerError;
use crate::config::SessionLimits;
use crate::setting::Setting;

/// EMQX's default WebSocket path.
const DEFAULT_MQTT_PATH: &str = "/mqtt";

/// The kinds of MQTT listener, in the order they are read and bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tcp,
    Ssl,
    Ws,
    Wss,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Tcp, Kind::Ssl, Kind::Ws, Kind::Wss];

    fn key(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Ssl => "ssl",
            Kind::Ws => "ws",
            Kind::Wss => "wss",
        }
    }

    /// EMQX's port for the kind.
    fn default_port(self) -> u16 {
        match self {
            Kind::Tcp => 1883,
            Kind::Ssl => 8883,
            Kind::Ws => 8083,
            Kind::Wss => 8084,
        }
    }

    fn is_tls(self) -> bool {
        matches!(self, Kind::Ssl | Kind::Wss)
    }

    fn is_websocket(self) -> bool {
        matches!(self, Kind::Ws | Kind::Wss)
    }
}

/// One listener to serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerConfig {
    kind: Kind,
    name: String,
    pub(crate) bind: SocketAddr,
    tls: Option<TlsFiles>,
}

/// `ssl_options`, checked readable and holding PEM when the configuration was read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TlsFiles {
    certfile: String,
    keyfile: String,
    /// Set exactly when clients must present a certificate signed by it.
    verify_peer_ca: Option<String>,
}

impl ListenerConfig {
    /// `listeners.tcp.default` on all interfaces, EMQX's port.
    pub(crate) fn tcp_default() -> ListenerConfig {
        ListenerConfig::tcp_default_at(SocketAddr::from((
            Ipv4Addr::UNSPECIFIED,
            Kind::Tcp.default_port(),
        )))
    }

    pub(crate) fn tcp_default_at(bind: SocketAddr) -> ListenerConfig {
        ListenerConfig {
            kind: Kind::Tcp,
            name: "default".to_owned(),
            bind,
            tls: None,
        }
    }

    /// EMQX's listener id, `kind:name` (`ssl:default`).
    pub(crate) fn id(&self) -> String {
        format!("{}:{}", self.kind.key(), self.name)
    }

    pub(crate) fn is_tcp_default(&self) -> bool {
        self.kind == Kind::Tcp && self.name == "default"
    }
}

/// The listeners the configuration asks for: `listeners.tcp.default` unless disabled,
/// and every other enabled block of a served kind.
pub(crate) fn parse(config: &Config) -> Result<Vec<ListenerConfig>, BrokerError> {
    warn_unserved_kinds(config);
    let mut listeners = Vec::new();
    for kind in Kind::ALL {
        for name in names(config, kind)? {
            if let Some(listener) = listener(config, kind, &name)? {
                listeners.push(listener);
            }
        }
    }
    Ok(listeners)
}

/// The names under `listeners.<kind>`; `tcp` always has `default`.
fn names(config: &Config, kind: Kind) -> Result<Vec<String>, BrokerError> {
    let key = format!("listeners.{}", kind.key());
    let mut names: Vec<String> = match Setting::lookup(config, &key) {
        None => Vec::new(),
        Some(block) => {
            block.expect_object()?;
            config
                .subtree(&key)
                .and_then(|v| v.as_object())
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        }
    };
    if kind == Kind::Tcp && !names.iter().any(|n| n == "default") {
        names.insert(0, "default".to_owned());
    }
    Ok(names)
}

fn listener(
    config: &Config,
    kind: Kind,
    name: &str,
) -> Result<Option<ListenerConfig>, BrokerError> {
    let key = format!("listeners.{}.{name}", kind.key());
    if let Some(block) = Setting::lookup(config, &key) {
        block.expect_object()?;
    }
    if !config
        .bool(&format!("{key}.enable"))?
        .is_none_or(|s| s.value)
    {
        return Ok(None);
    }
    let default_bind = SocketAddr::from((Ipv4Addr::UNSPECIFIED, kind.default_port()));
    let bind = config
        .socket_addr(&format!("{key}.bind"))?
        .map_or(default_bind, |s| s.value);
    let tls = if kind.is_tls() {
        Some(tls_files(config, &key)?)
    } else {
        None
    };
    if kind.is_websocket() {
        check_mqtt_path(config, &key)?;
    }
    Ok(Some(ListenerConfig {
        kind,
        name: name.to_owned(),
        bind,
        tls,
    }))
}

fn tls_files(config: &Config, key: &str) -> Result<TlsFiles, BrokerError> {
    let options = format!("{key}.ssl_options");
    let certfile = required_file(config, &format!("{options}.certfile"), key)?;
    certificates(config, &format!("{options}.certfile"), &certfile)?;
    let keyfile = required_file(config, &format!("{options}.keyfile"), key)?;
    private_key(config, &format!("{options}.keyfile"), &keyfile)?;
    let verify_key = format!("{options}.verify");
    let verify_peer = match Setting::lookup(config, &verify_key) {
        None => false,
        Some(verify) => verify.one_of(&["verify_peer", "verify_none"])? == "verify_peer",
    };
    let ca_key = format!("{options}.cacertfile");
    // Checked whenever set, so a typo shows before the day verify_peer is switched on.
    let cacertfile = if verify_peer || config.get(&ca_key).is_some() {
        Some(required_file(config, &ca_key, &verify_key)?)
    } else {
        None
    };
    if let Some(ca) = &cacertfile {
        certificates(config, &ca_key, ca)?;
    }
    Ok(TlsFiles {
        certfile,
        keyfile,
        verify_peer_ca: cacertfile.filter(|_| verify_peer),
    })
}

/// A file name that must be set. When it is missing, the error names the key and
/// where `needed_by` (the listener block, or `verify`) was set.
fn required_file(config: &Config, key: &str, needed_by: &str) -> Result<String, BrokerError> {
    match config.string(key)? {
        Some(path) if !path.value.trim().is_empty() => Ok(path.value),
        Some(path) => Err(invalid(key, path.origin, "is empty: a PEM file is needed")),
        None => Err(invalid(
            key,
            origin_of(config, needed_by),
            "missing: a PEM file is needed",
        )),
    }
}

fn read(config: &Config, key: &str, path: &str) -> Result<Vec<u8>, BrokerError> {
    std::fs::read(path).map_err(|e| invalid_at(config, key, format!("cannot read {path}: {e}")))
}

fn certificates(config: &Config, key: &str, path: &str) -> Result<(), BrokerError> {
    let pem = read(config, key, path)?;
    let found = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>();
    match found {
        Ok(certs) if !certs.is_empty() => Ok(()),
        Ok(_) => Err(invalid_at(
            config,
            key,
            format!("{path} holds no PEM certificate"),
        )),
        Err(e) => Err(invalid_at(config, key, format!("{path}: {e}"))),
    }
}

fn private_key(config: &Config, key: &str, path: &str) -> Result<(), BrokerError> {
    let pem = read(config, key, path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map(drop)
        .map_err(|e| invalid_at(config, key, format!("{path} holds no PEM private key: {e}")))
}

fn check_mqtt_path(config: &Config, key: &str) -> Result<(), BrokerError> {
    let path_key = format!("{key}.websocket.mqtt_path");
    let Some(path) = config.string(&path_key)? else {
        return Ok(());
    };
    if !path.value.starts_with('/') {
        return Err(invalid(&path_key, path.origin, "must start with `/`"));
    }
    if path.value != DEFAULT_MQTT_PATH {
        warn!(key = %path_key, path = %path.value, "rmqtt serves MQTT over WebSocket on every path, not only this one");
    }
    Ok(())
}

fn invalid(key: &str, origin: Origin, message: impl Into<String>) -> BrokerError {
    BrokerError::Invalid {
        key: key.to_owned(),
        origin,
        message: message.into(),
    }
}

/// An error about a key that is set.
fn invalid_at(config: &Config, key: &str, message: String) -> BrokerError {
    invalid(key, origin_of(config, key), message)
}

fn origin_of(config: &Config, key: &str) -> Origin {
    config.get(key).map_or(Origin::Default, |v| v.origin)
}

/// EMQX has kinds Beacon does not serve (`quic`); a block of one is worth a warning.
fn warn_unserved_kinds(config: &Config) {
    let Some(kinds) = config.subtree("listeners").and_then(|v| v.as_object()) else {
        return;
    };
    for kind in kinds.keys() {
        if !Kind::ALL.iter().any(|k| k.key() == kind) {
            let key = format!("listeners.{kind}");
            warn!(%key, "listener kind is not served: Beacon serves tcp, ssl, ws and wss");
        }
    }
}

/// A bound listener, ready for rmqtt's server.
pub(crate) struct Bound {
    pub(crate) id: String,
    pub(crate) addr: SocketAddr,
    pub(crate) listener: Listener,
}

/// Binds every listener, or none: on an error the ones bound so far are closed.
pub(crate) fn bind_all(
    listeners: &[ListenerConfig],
    allow_anonymous: bool,
    session: SessionLimits,
) -> Result<Vec<Bound>, BrokerError> {
    listeners
        .iter()
        .map(|l| bind(l, allow_anonymous, session))
        .collect()
}

fn bind(
    config: &ListenerConfig,
    allow_anonymous: bool,
    session: SessionLimits,
) -> Result<Bound, BrokerError> {
    let id = config.id();
    let bind_error = |e: rmqtt::Error| BrokerError::Bind {
        listener: id.clone(),
        addr: config.bind,
        detail: format!("{e:#}"),
    };
    let builder = Builder::new()
        .name(&id)
        .laddr(config.bind)
        // Lets a restarted broker take its port back while old connections linger
        // in TIME_WAIT; a port another process listens on is still refused.
        .reuseaddr(Some(true))
        // Anonymous clients skip the authentication hook entirely in rmqtt.
        .allow_anonymous(allow_anonymous)
        .max_inflight(session.max_inflight)
        .max_mqueue_len(session.max_mqueue_len);
    let builder = match &config.tls {
        None => builder,
        Some(tls) => builder
            .tls_cert(Some(&tls.certfile))
            .tls_key(Some(&tls.keyfile))
            .tls_cross_certificate(tls.verify_peer_ca.is_some())
            .tls_client_ca_certs(tls.verify_peer_ca.as_ref()),
    };
    let listener = builder
        .bind()
        .and_then(|l| match config.kind {
            Kind::Tcp => l.tcp(),
            Kind::Ssl => l.tls(),
            Kind::Ws => l.ws(),
            Kind::Wss => l.wss(),
        })
        .map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    Ok(Bound { id, addr, listener })
}
