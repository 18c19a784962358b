//! EMQX's four listener kinds with real clients on 127.0.0.1: MQTT over TLS (a CA made
//! here), over WebSocket and over secure WebSocket; messages cross listeners; the probe
//! counts clients on all of them; verify_peer; bad settings refused naming key and place.

use crate::common;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;

use beacon_broker::{Broker, BrokerConfig, BrokerError, RunningBroker};
use beacon_config::Config;
use common::{TestClient, settle, within};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use tempfile::TempDir;

/// A test CA, a server certificate for 127.0.0.1 it signed, and a client certificate it
/// signed, as PEM files in a temporary directory.
struct Pki {
    dir: TempDir,
    ca_pem: String,
    client: (String, String),
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ca_pem, issuer) = ca("Beacon test CA");
        let (server_cert, server_key) = sign(&issuer, vec!["127.0.0.1".into(), "localhost".into()]);
        let client = sign(&issuer, Vec::new());
        for (name, text) in [
            ("ca.pem", &ca_pem),
            ("server.pem", &server_cert),
            ("server.key", &server_key),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write PEM");
        }
        Pki {
            dir,
            ca_pem,
            client,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// `ssl_options` for a server with this PKI's certificate.
    fn ssl_options(&self, verify: &str) -> String {
        format!(
            "ssl_options {{ certfile = \"{}\", keyfile = \"{}\", cacertfile = \"{}\", verify = {verify} }}",
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        )
    }

    /// A client trusting this CA, presenting `client` (certificate, key) if given.
    fn client_tls(&self, client: Option<&(String, String)>) -> TlsConfiguration {
        // rustls has two crypto providers compiled in here; say which one.
        let _ = rmqtt::net::tls_provider::default_provider().install_default();
        TlsConfiguration::Simple {
            ca: self.ca_pem.clone().into_bytes(),
            alpn: None,
            client_auth: client
                .map(|(cert, key)| (cert.clone().into_bytes(), key.clone().into_bytes())),
        }
    }
}

fn ca(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA certificate");
    (cert.pem(), rcgen::Issuer::new(params, key))
}

fn sign(issuer: &rcgen::Issuer<'static, rcgen::KeyPair>, names: Vec<String>) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(names).expect("params");
    let cert = params.signed_by(&key, issuer).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

const FILE: &str = "etc/emqx.conf";

fn parse_with_env(hocon: &str, env: &[(&str, &str)]) -> Result<BrokerConfig, BrokerError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = Config::from_str(hocon, Path::new(FILE), env).expect("test HOCON parses");
    BrokerConfig::from_config(&config)
}

fn refused(hocon: &str, env: &[(&str, &str)]) -> String {
    parse_with_env(hocon, env)
        .expect_err("config is refused")
        .to_string()
}

async fn start(hocon: &str) -> RunningBroker {
    let config = parse_with_env(hocon, &[]).expect("test config is valid");
    Broker::start(config).await.expect("broker starts")
}

fn addr_of(broker: &RunningBroker, id: &str) -> SocketAddr {
    broker
        .listeners()
        .into_iter()
        .find(|(listener, _)| listener == id)
        .unwrap_or_else(|| panic!("{id} is served: {:?}", broker.listeners()))
        .1
}

fn tcp(id: &str, addr: SocketAddr) -> MqttOptions {
    MqttOptions::new(id, addr.ip().to_string(), addr.port())
}

fn ssl(id: &str, addr: SocketAddr, tls: TlsConfiguration) -> MqttOptions {
    let mut options = tcp(id, addr);
    options.set_transport(Transport::tls_with_config(tls));
    options
}

/// rumqttc takes a WebSocket's host, port and path from the URL.
fn ws(id: &str, addr: SocketAddr, path: &str) -> MqttOptions {
    let mut options = MqttOptions::new(id, format!("ws://{addr}{path}"), addr.port());
    options.set_transport(Transport::Ws);
    options
}

fn wss(id: &str, addr: SocketAddr, path: &str, tls: TlsConfiguration) -> MqttOptions {
    let mut options = MqttOptions::new(id, format!("wss://{addr}{path}"), addr.port());
    options.set_transport(Transport::wss_with_config(tls));
    options
}

async fn connect(options: MqttOptions) -> TestClient {
    let id = options.client_id();
    within(
        &format!("{id} to connect"),
        TestClient::try_connect_with(options),
    )
    .await
    .unwrap_or_else(|e| panic!("{id} connects: {e}"))
}

fn all_four(pki: &Pki) -> String {
    format!(
        "listeners.tcp.default.bind = \"127.0.0.1:0\"
         listeners.ssl.default {{ bind = \"127.0.0.1:0\", {ssl} }}
         listeners.ws.default {{ bind = \"127.0.0.1:0\", websocket.mqtt_path = \"/mqtt\" }}
         listeners.wss.default {{ bind = \"127.0.0.1:0\", {ssl} }}",
        ssl = pki.ssl_options("verify_none"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_tcp_ssl_ws_and_wss_and_the_probe_counts_clients_on_all_of_them() {
    let pki = Pki::new();
    let broker = start(&all_four(&pki)).await;
    let ids: Vec<String> = broker.listeners().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids,
        ["tcp:default", "ssl:default", "ws:default", "wss:default"]
    );
    assert!(broker.listeners().iter().all(|(_, addr)| addr.port() != 0));
    assert_eq!(broker.mqtt_addr(), Some(addr_of(&broker, "tcp:default")));

    let mut on_ws = connect(ws("on-ws", addr_of(&broker, "ws:default"), "/mqtt")).await;
    let mut on_wss = connect(wss(
        "on-wss",
        addr_of(&broker, "wss:default"),
        "/mqtt",
        pki.client_tls(None),
    ))
    .await;
    let mut on_ssl = connect(ssl(
        "on-ssl",
        addr_of(&broker, "ssl:default"),
        pki.client_tls(None),
    ))
    .await;
    let mut on_tcp = connect(tcp("on-tcp", addr_of(&broker, "tcp:default"))).await;
    on_ws.subscribe("news/ws").await;
    on_wss.subscribe("news/wss").await;
    on_ssl.subscribe("news/ssl").await;
    on_tcp.subscribe("news/tcp").await;

    // Each one publishes to the next one's topic, round the four listeners.
    on_ssl.publish("news/ws", "from ssl", false).await;
    on_ws.publish("news/wss", "from ws", false).await;
    on_wss.publish("news/tcp", "from wss", false).await;
    on_tcp.publish("news/ssl", "from tcp", false).await;
    for (client, expected) in [
        (&mut on_ws, "from ssl"),
        (&mut on_wss, "from ws"),
        (&mut on_tcp, "from wss"),
        (&mut on_ssl, "from tcp"),
    ] {
        assert_eq!(
            &client.next_publish().await.payload[..],
            expected.as_bytes()
        );
    }

    let reading = settle(&broker, |r| r.connections == 4).await;
    assert_eq!(reading.connections, 4, "one client on each listener");
    on_wss.disconnect().await;
    on_ws.disconnect().await;
    assert_eq!(settle(&broker, |r| r.connections == 2).await.connections, 2);
    on_ssl.disconnect().await;
    on_tcp.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_peer_admits_only_clients_with_a_certificate_signed_by_cacertfile() {
    let pki = Pki::new();
    let broker = start(&format!(
        "listeners.tcp.default.enable = false
         listeners.ssl.default {{ bind = \"127.0.0.1:0\", {} }}",
        pki.ssl_options("verify_peer"),
    ))
    .await;
    let addr = addr_of(&broker, "ssl:default");

    let anonymous = TestClient::try_connect_with(ssl("no-cert", addr, pki.client_tls(None))).await;
    assert!(
        anonymous.is_err(),
        "a client without a certificate is refused"
    );
    let (_, stranger_ca) = ca("Another CA");
    let stranger = sign(&stranger_ca, Vec::new());
    let foreign =
        TestClient::try_connect_with(ssl("foreign", addr, pki.client_tls(Some(&stranger)))).await;
    assert!(foreign.is_err(), "a certificate from another CA is refused");
    assert_eq!(broker.probe().await.connections, 0);

    let mut admitted = connect(ssl("signed", addr, pki.client_tls(Some(&pki.client)))).await;
    admitted.subscribe("t").await;
    admitted.publish("t", "hello", false).await;
    assert_eq!(
        &admitted.next_publish().await.payload[..],
        "hello".as_bytes()
    );
    admitted.disconnect().await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_listeners_and_listeners_set_from_the_environment_are_served() {
    let hocon = "listeners.tcp.default.bind = \"127.0.0.1:0\"
                 listeners.tcp.internal { bind = \"127.0.0.1:0\" }
                 listeners.ssl.default { enable = false }";
    let env = [("EMQX_LISTENERS__WS__DEFAULT__BIND", "127.0.0.1:0")];
    let config = parse_with_env(hocon, &env).expect("valid");
    let broker = Broker::start(config).await.expect("broker starts");
    let ids: Vec<String> = broker.listeners().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["tcp:default", "tcp:internal", "ws:default"]);

    let mut internal = connect(tcp("internal", addr_of(&broker, "tcp:internal"))).await;
    let mut web = connect(ws("web", addr_of(&broker, "ws:default"), "/mqtt")).await;
    web.subscribe("t").await;
    internal.publish("t", "across", false).await;
    assert_eq!(&web.next_publish().await.payload[..], "across".as_bytes());
    internal.disconnect().await;
    web.disconnect().await;
    broker.shutdown().await;
}

/// Documented in README: rmqtt upgrades a WebSocket on any path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_are_served_on_any_path_as_documented() {
    let broker = start(
        "listeners.tcp.default.enable = false
         listeners.ws.default { bind = \"127.0.0.1:0\", websocket.mqtt_path = \"/custom\" }",
    )
    .await;
    let addr = addr_of(&broker, "ws:default");
    connect(ws("configured", addr, "/custom"))
        .await
        .disconnect()
        .await;
    connect(ws("elsewhere", addr, "/mqtt"))
        .await
        .disconnect()
        .await;
    broker.shutdown().await;
}

#[test]
fn only_tcp_default_is_served_without_configuration() {
    let config = parse_with_env("", &[]).expect("valid");
    assert_eq!(
        config.listeners(),
        [("tcp:default".to_owned(), "0.0.0.0:1883".parse().unwrap())]
    );
}

#[test]
fn a_listener_block_without_bind_takes_emqx_port_for_its_kind() {
    let config = parse_with_env(
        "listeners.ws.default { websocket.mqtt_path = \"/mqtt\" }
         listeners.tcp.default.enable = false",
        &[],
    )
    .expect("valid");
    assert_eq!(
        config.listeners(),
        [("ws:default".to_owned(), "0.0.0.0:8083".parse().unwrap())]
    );
}

#[test]
fn an_ssl_listener_without_certfile_is_refused_naming_the_key_and_line() {
    let message = refused("\nlisteners.ssl.default {\n  bind = 8883\n}\n", &[]);
    assert!(
        message.contains("listeners.ssl.default.ssl_options.certfile"),
        "{message}"
    );
    assert!(message.contains("missing"), "{message}");
    assert!(message.contains(&format!("{FILE} line 2")), "{message}");
}

#[test]
fn an_ssl_listener_set_from_the_environment_without_certfile_names_the_variable() {
    let message = refused(
        "",
        &[("EMQX_LISTENERS__SSL__DEFAULT__BIND", "127.0.0.1:8883")],
    );
    assert!(
        message.contains("listeners.ssl.default.ssl_options.certfile"),
        "{message}"
    );
    assert!(
        message.contains("EMQX_LISTENERS__SSL__DEFAULT__BIND"),
        "{message}"
    );
}

#[test]
fn unreadable_or_empty_certificate_files_are_refused_naming_the_key() {
    let pki = Pki::new();
    let missing = pki.path("nowhere.pem");
    let message = refused(
        &format!(
            "listeners.wss.default {{\n ssl_options {{\n  certfile = \"{missing}\"\n  keyfile = \"{}\"\n }}\n}}",
            pki.path("server.key")
        ),
        &[],
    );
    assert!(
        message.contains("listeners.wss.default.ssl_options.certfile"),
        "{message}"
    );
    assert!(message.contains(&format!("{FILE} line 3")), "{message}");
    assert!(message.contains(&missing), "{message}");

    // A key where the certificate belongs, and a certificate where the key belongs.
    let swapped = |cert: &str, key: &str| {
        refused(
            &format!(
                "listeners.ssl.default.ssl_options {{ certfile = \"{}\", keyfile = \"{}\" }}",
                pki.path(cert),
                pki.path(key)
            ),
            &[],
        )
    };
    let message = swapped("server.key", "server.key");
    assert!(message.contains("ssl_options.certfile"), "{message}");
    assert!(message.contains("no PEM certificate"), "{message}");
    let message = swapped("server.pem", "server.pem");
    assert!(message.contains("ssl_options.keyfile"), "{message}");
    assert!(message.contains("no PEM private key"), "{message}");
}

#[test]
fn an_unknown_verify_and_verify_peer_without_cacertfile_are_refused() {
    let pki = Pki::new();
    let files = format!(
        "certfile = \"{}\"\n keyfile = \"{}\"",
        pki.path("server.pem"),
        pki.path("server.key")
    );
    let message = refused(
        &format!("listeners.ssl.default.ssl_options {{\n {files}\n verify = verify_always\n}}"),
        &[],
    );
    assert!(
        message.contains("listeners.ssl.default.ssl_options.verify"),
        "{message}"
    );
    assert!(message.contains("verify_peer, verify_none"), "{message}");
    assert!(message.contains(&format!("{FILE} line 4")), "{message}");

    let message = refused(
        &format!("listeners.ssl.default.ssl_options {{\n {files}\n}}"),
        &[(
            "EMQX_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__VERIFY",
            "verify_peer",
        )],
    );
    assert!(
        message.contains("listeners.ssl.default.ssl_options.cacertfile"),
        "{message}"
    );
    assert!(
        message.contains("EMQX_LISTENERS__SSL__DEFAULT__SSL_OPTIONS__VERIFY"),
        "{message}"
    );
}

#[test]
fn a_bad_bind_or_mqtt_path_is_refused_naming_the_key_and_line() {
    let message = refused(
        "listeners.ws.internal {\n  bind = \"localhost:8083\"\n}",
        &[],
    );
    assert!(message.contains("listeners.ws.internal.bind"), "{message}");
    assert!(message.contains(&format!("{FILE} line 2")), "{message}");

    let message = refused("listeners.ws.default.websocket.mqtt_path = mqtt", &[]);
    assert!(
        message.contains("listeners.ws.default.websocket.mqtt_path"),
        "{message}"
    );
    assert!(message.contains("must start with `/`"), "{message}");

    let message = refused("listeners.ssl = 8883", &[]);
    assert!(message.contains("listeners.ssl"), "{message}");
    assert!(message.contains("expected an object"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_reported_with_the_listener_id() {
    let pki = Pki::new();
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken = holder.local_addr().expect("addr");
    let config = parse_with_env(
        &format!(
            "listeners.tcp.default.bind = \"127.0.0.1:0\"
             listeners.ssl.default {{ bind = \"{taken}\", {} }}",
            pki.ssl_options("verify_none")
        ),
        &[],
    )
    .expect("valid");
    let message = Broker::start(config)
        .await
        .expect_err("port is taken")
        .to_string();
    assert!(message.contains("ssl:default"), "{message}");
    assert!(message.contains(&taken.to_string()), "{message}");
}
