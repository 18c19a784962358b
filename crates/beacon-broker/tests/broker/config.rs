//! Reading the broker's settings from HOCON: defaults, and errors that name the key.

use std::net::SocketAddr;
use std::path::Path;

use beacon_broker::{BrokerConfig, BrokerError};
use beacon_config::Config;

fn parse(text: &str) -> Result<BrokerConfig, BrokerError> {
    let config =
        Config::from_str(text, Path::new("etc/emqx.conf"), Vec::new()).expect("test HOCON parses");
    BrokerConfig::from_config(&config)
}

fn error(text: &str) -> String {
    parse(text).expect_err("config is refused").to_string()
}

#[test]
fn empty_config_listens_on_1883_everywhere() {
    let config = parse("").expect("valid");
    assert_eq!(
        config.listener(),
        Some("0.0.0.0:1883".parse::<SocketAddr>().unwrap())
    );
    let default = BrokerConfig::default();
    assert_eq!(default.listener(), config.listener());
}

#[test]
fn bind_and_enable_are_read() {
    let config = parse("listeners.tcp.default { bind = \"127.0.0.1:11883\" }").expect("valid");
    assert_eq!(config.listener(), Some("127.0.0.1:11883".parse().unwrap()));
    let config = parse("listeners.tcp.default.enable = false").expect("valid");
    assert_eq!(config.listener(), None);
    let config = parse("listeners.tcp.default.bind = 2883").expect("valid");
    assert_eq!(config.listener(), Some("0.0.0.0:2883".parse().unwrap()));
}

#[test]
fn errors_name_the_key_and_the_file_line() {
    let message = error("\nretainer {\n  enable = maybe\n}\n");
    assert!(message.contains("retainer.enable"), "{message}");
    assert!(message.contains("etc/emqx.conf line 3"), "{message}");
}

#[test]
fn bad_rewrite_rules_are_refused_naming_the_rule() {
    let message = error(
        r#"rewrite = [
             {action = all, source_topic = "a/#", re = "^a/(.+)$", dest_topic = "b/$1"}
             {action = all, source_topic = "c/#", re = "^c/(.+$", dest_topic = "d/$1"}
           ]"#,
    );
    assert!(message.contains("rewrite[1].re"), "{message}");
    assert!(message.contains("regular expression"), "{message}");
    assert!(message.contains("etc/emqx.conf line 1"), "{message}");

    let message =
        error(r#"rewrite = [{action = sideways, source_topic = "a", re = "a", dest_topic = "b"}]"#);
    assert!(message.contains("rewrite[0].action"), "{message}");
    assert!(message.contains("all, publish, subscribe"), "{message}");

    let message =
        error(r#"rewrite = [{action = all, source_topic = "a/#/b", re = "a", dest_topic = "b"}]"#);
    assert!(message.contains("rewrite[0].source_topic"), "{message}");

    let message = error(r#"rewrite = [{action = all, re = "a", dest_topic = "b"}]"#);
    assert!(
        message.contains("rewrite[0]: missing field `source_topic`"),
        "{message}"
    );

    let message = error(
        r#"rewrite = [
             {action = all, source_topic = "a/#", re = "a", dest_topic = "b"}
             {action = publish, source_topic = "a/#", re = "b", dest_topic = "c"}
           ]"#,
    );
    assert!(
        message.contains("rewrite[1]") && message.contains("already"),
        "{message}"
    );
}

#[test]
fn bad_auto_subscriptions_are_refused() {
    let message = error(r#"auto_subscribe.topics = [{topic = "x", qos = 3}]"#);
    assert!(
        message.contains("auto_subscribe.topics[0].qos"),
        "{message}"
    );
    let message = error(r#"auto_subscribe.topics = [{topic = "h/${host}"}]"#);
    assert!(
        message.contains("auto_subscribe.topics[0].topic"),
        "{message}"
    );
    assert!(message.contains("${clientid}"), "{message}");
}

#[test]
fn unsupported_authentication_is_refused_unless_disabled() {
    let message = error("authentication = [{mechanism = jwt, from = password}]");
    assert!(
        message.contains("authentication[0]: missing field `backend`"),
        "{message}"
    );
    let message = error("authentication = [{mechanism = password_based, backend = mysql}]");
    assert!(
        message.contains("password_based:mysql is not supported"),
        "{message}"
    );
    parse("authentication = [{mechanism = password_based, backend = mysql, enable = false}]")
        .expect("a disabled authenticator is ignored");
}

#[test]
fn bad_users_are_refused() {
    let base = "mechanism = password_based, backend = built_in_database";
    let message = error(&format!(
        "authentication {{ {base}, users = [{{user_id = u, password = a}}, {{user_id = u, password = b}}] }}"
    ));
    assert!(message.contains("authentication.users[1]"), "{message}");
    assert!(message.contains("listed twice"), "{message}");
    let message = error(&format!(
        "authentication = [{{ {base}, users = [{{user_id = u, password_hash = \"zz\"}}] }}]"
    ));
    assert!(
        message.contains("authentication[0].users[0].password_hash"),
        "{message}"
    );
    let message = error(&format!(
        "authentication = [{{ {base}, users = [{{user_id = u}}] }}]"
    ));
    assert!(message.contains("exactly one of"), "{message}");
    let message = error(&format!(
        "authentication = [{{ {base}, password_hash_algorithm {{ name = bcrypt }} }}]"
    ));
    assert!(
        message.contains("password_hash_algorithm.name"),
        "{message}"
    );
}

#[test]
fn bad_authorization_is_refused() {
    let message = error("authorization.no_match = maybe");
    assert!(message.contains("authorization.no_match"), "{message}");
    let message = error(r#"authorization.sources = [{type = file, path = "etc/acl.conf"}]"#);
    assert!(
        message.contains("authorization.sources[0].path"),
        "{message}"
    );
    let message = error(r#"authorization.sources = [{type = http}]"#);
    assert!(
        message.contains("authorization.sources[0].type"),
        "{message}"
    );
    let message = error(
        r#"authorization.sources = [{type = file, rules = [{permission = allow, action = all, ipaddr = "10.0.0.0/33"}]}]"#,
    );
    assert!(
        message.contains("authorization.sources[0].rules[0].ipaddr"),
        "{message}"
    );
    let message = error(
        r#"authorization.sources = [{type = file, rules = [{permission = allow, action = all, topic = "a/${peerhost}"}]}]"#,
    );
    assert!(
        message.contains("authorization.sources[0].rules[0].topic"),
        "{message}"
    );
}

#[test]
fn environment_values_are_named_by_their_variable() {
    let env = vec![("EMQX_DELAYED__ENABLE".to_string(), "perhaps".to_string())];
    let config = Config::from_str("", Path::new("etc/emqx.conf"), env).expect("parses");
    let message = BrokerConfig::from_config(&config)
        .expect_err("refused")
        .to_string();
    assert!(message.contains("EMQX_DELAYED__ENABLE"), "{message}");
}

#[test]
fn session_flow_limits_are_checked() {
    parse("mqtt { max_inflight = 64, max_mqueue_len = 0 }").expect("valid");
    for bad in ["mqtt.max_inflight = 0", "mqtt.max_inflight = 70000"] {
        let message = error(bad);
        assert!(message.contains("mqtt.max_inflight"), "{bad}: {message}");
        assert!(message.contains("1 to 65535"), "{bad}: {message}");
    }
    let message = error("mqtt.max_mqueue_len = -1");
    assert!(message.contains("mqtt.max_mqueue_len"), "{message}");
}
