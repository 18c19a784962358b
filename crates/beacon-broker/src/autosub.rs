//! Auto-subscriptions, EMQX 5 format, carried out by the `rmqtt-auto-subscription` plugin.
//!
//! ```hocon
//! auto_subscribe.topics = [
//!   {topic = "c/${clientid}", qos = 1, rh = 0, rap = false, nl = false}
//! ]
//! ```
//! Placeholders: `${clientid}` and `${username}` (EMQX's `${host}`/`${port}` are
//! refused: rmqtt cannot fill them).

use std::str::FromStr;

use beacon_config::Config;
use rmqtt::topic::Topic;

use crate::BrokerError;
use crate::plugin_toml::{self, TomlValue};
use crate::setting::Setting;

const KEY: &str = "auto_subscribe.topics";
const PLACEHOLDERS: &[&str] = &["${clientid}", "${username}"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AutoSubscribeTopic {
    topic: String,
    qos: u8,
    retain_handling: u8,
    retain_as_published: bool,
    no_local: bool,
}

pub(crate) fn parse(config: &Config) -> Result<Vec<AutoSubscribeTopic>, BrokerError> {
    let Some(list) = Setting::lookup(config, KEY) else {
        return Ok(Vec::new());
    };
    list.items()?.iter().map(parse_topic).collect()
}

fn parse_topic(item: &Setting<'_>) -> Result<AutoSubscribeTopic, BrokerError> {
    let topic_setting = item.required("topic")?;
    let topic = topic_setting.text()?;
    check_filter(&topic_setting, &topic)?;
    Ok(AutoSubscribeTopic {
        topic,
        qos: small_number(item, "qos", 2)?,
        retain_handling: small_number(item, "rh", 2)?,
        retain_as_published: item.bool_or("rap", false)?,
        no_local: item.bool_or("nl", false)?,
    })
}

fn check_filter(setting: &Setting<'_>, topic: &str) -> Result<(), BrokerError> {
    let filled = PLACEHOLDERS
        .iter()
        .fold(topic.to_string(), |t, placeholder| {
            t.replace(placeholder, "x")
        });
    if filled.contains("${") {
        return Err(setting.invalid(format!(
            "only the placeholders {} are supported",
            PLACEHOLDERS.join(" and ")
        )));
    }
    Topic::from_str(&filled)
        .map(|_| ())
        .map_err(|e| setting.invalid(format!("not a valid topic filter: {e}")))
}

fn small_number(item: &Setting<'_>, name: &str, max: u8) -> Result<u8, BrokerError> {
    let Some(setting) = item.field(name) else {
        return Ok(0);
    };
    let value = setting.number()?;
    u8::try_from(value)
        .ok()
        .filter(|v| *v <= max)
        .ok_or_else(|| setting.invalid(format!("expected 0 to {max}, found {value}")))
}

/// Configuration text for `rmqtt-auto-subscription`.
pub(crate) fn plugin_config(topics: &[AutoSubscribeTopic]) -> String {
    let subscribes = topics
        .iter()
        .map(|t| {
            TomlValue::Table(vec![
                ("topic_filter", TomlValue::Str(t.topic.clone())),
                ("qos", TomlValue::Int(i64::from(t.qos))),
                ("no_local", TomlValue::Bool(t.no_local)),
                (
                    "retain_as_published",
                    TomlValue::Bool(t.retain_as_published),
                ),
                (
                    "retain_handling",
                    TomlValue::Int(i64::from(t.retain_handling)),
                ),
            ])
        })
        .collect();
    plugin_toml::document(vec![("subscribes", TomlValue::List(subscribes))])
}
