//! Topic rewrite rules, EMQX 5 format, carried out by the `rmqtt-topic-rewrite` plugin.
//!
//! ```hocon
//! rewrite = [
//!   {action = publish, source_topic = "x/#", re = "^x/(.+)$", dest_topic = "y/$1"}
//! ]
//! ```
//! `dest_topic` may use `$N` capture groups, `${clientid}` and `${username}`.

use std::str::FromStr;

use beacon_config::Config;
use rmqtt::topic::Topic;

use crate::BrokerError;
use crate::plugin_toml::{self, TomlValue};
use crate::setting::Setting;

const KEY: &str = "rewrite";
const ACTIONS: &[&str] = &["all", "publish", "subscribe"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RewriteRule {
    action: &'static str,
    source_topic: String,
    re: String,
    dest_topic: String,
}

pub(crate) fn parse(config: &Config) -> Result<Vec<RewriteRule>, BrokerError> {
    let Some(list) = Setting::lookup(config, KEY) else {
        return Ok(Vec::new());
    };
    let mut rules: Vec<RewriteRule> = Vec::new();
    for item in list.items()? {
        let rule = parse_rule(&item)?;
        // rmqtt keys its rules by source filter and refuses duplicates at start;
        // saying so here names the rule.
        if rules.iter().any(|r| r.source_topic == rule.source_topic) {
            return Err(item.invalid(format!(
                "another rule already has source_topic `{}`; merge them into one regular expression",
                rule.source_topic
            )));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_rule(item: &Setting<'_>) -> Result<RewriteRule, BrokerError> {
    let action = item.required("action")?.one_of(ACTIONS)?;
    let source = item.required("source_topic")?;
    let source_topic = source.text()?;
    Topic::from_str(&source_topic)
        .map_err(|e| source.invalid(format!("not a valid topic filter: {e}")))?;
    let re_setting = item.required("re")?;
    let re = re_setting.text()?;
    regex::Regex::new(&re)
        .map_err(|e| re_setting.invalid(format!("not a valid regular expression: {e}")))?;
    let dest_topic = item.required("dest_topic")?.text()?;
    Ok(RewriteRule {
        action,
        source_topic,
        re,
        dest_topic,
    })
}

/// Configuration text for `rmqtt-topic-rewrite`.
pub(crate) fn plugin_config(rules: &[RewriteRule]) -> String {
    let rules = rules
        .iter()
        .map(|r| {
            TomlValue::Table(vec![
                ("action", TomlValue::Str(r.action.to_string())),
                (
                    "source_topic_filter",
                    TomlValue::Str(r.source_topic.clone()),
                ),
                ("dest_topic", TomlValue::Str(r.dest_topic.clone())),
                ("regex", TomlValue::Str(r.re.clone())),
            ])
        })
        .collect();
    plugin_toml::document(vec![("rules", TomlValue::List(rules))])
}
