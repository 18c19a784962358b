//! Publish/subscribe authorization from rules written in the config file.
//!
//! EMQX 5 key names; the rules are the HOCON form of EMQX's `acl.conf` lines
//! (an Erlang-terms `path = "acl.conf"` file is not read):
//! ```hocon
//! authorization {
//!   no_match = allow                   # or deny; when no rule matches
//!   deny_action = ignore               # or disconnect; for a refused publish
//!   sources = [{
//!     type = file, enable = true
//!     rules = [
//!       {permission = allow, username = "admin", action = all, topics = ["#"]}
//!       {permission = deny, action = subscribe, topics = ["$SYS/#", "eq #"]}
//!       {permission = allow, clientid = "c1", ipaddr = "10.0.0.0/8", action = publish, topic = "c1/${clientid}/up"}
//!     ]
//!   }]
//! }
//! ```
//! A rule matches a client when every given `username`, `clientid`, `ipaddr`
//! (address or CIDR) matches; without `topics`/`topic` it covers every topic.
//! Topics are filters matched against the client's topic (`eq t/#` means that exact
//! string), with `${username}` and `${clientid}` filled in. Rules are tried in
//! order across sources; the first match decides. Superusers skip these checks.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use beacon_config::Config;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::topic::Topic;
use rmqtt::types::{Id, PublishAclResult, SubscribeAclResult};
use tracing::debug;

use crate::BrokerError;
use crate::setting::Setting;

const KEY: &str = "authorization";
const FILE: &str = "file";
const PLACEHOLDERS: &[&str] = &["${username}", "${clientid}"];

#[derive(Debug, Clone)]
pub(crate) struct Authorization {
    no_match_allows: bool,
    deny_disconnects: bool,
    sources: Vec<Source>,
}

impl Default for Authorization {
    /// EMQX's defaults: allow what no rule covers, refuse quietly.
    fn default() -> Self {
        Authorization {
            no_match_allows: true,
            deny_disconnects: false,
            sources: Vec::new(),
        }
    }
}

impl Authorization {
    /// Whether any check can refuse anything; without it no hook is installed.
    pub(crate) fn is_active(&self) -> bool {
        !self.sources.is_empty() || !self.no_match_allows
    }

    /// The EMQX source types that are enabled, for telemetry.
    pub(crate) fn source_types(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.kind.to_string()).collect()
    }

    /// `Some(allowed)` from the first matching rule, `None` when no rule matches.
    fn decide(&self, id: &Id, action: Action, topic: &str) -> Option<bool> {
        self.sources
            .iter()
            .flat_map(|s| &s.rules)
            .find(|rule| rule.covers(id, action, topic))
            .map(|rule| rule.allow)
    }

    fn allows(&self, id: &Id, action: Action, topic: &str) -> bool {
        let allowed = self
            .decide(id, action, topic)
            .unwrap_or(self.no_match_allows);
        if !allowed {
            debug!(client_id = %id.client_id, ?action, "MQTT request refused by authorization");
        }
        allowed
    }
}

#[derive(Debug, Clone)]
struct Source {
    kind: &'static str,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Publish,
    Subscribe,
}

#[derive(Debug, Clone)]
struct Rule {
    allow: bool,
    publish: bool,
    subscribe: bool,
    username: Option<String>,
    clientid: Option<String>,
    ipaddr: Option<IpNet>,
    /// `None` covers every topic.
    topics: Option<Vec<TopicPattern>>,
}

impl Rule {
    fn covers(&self, id: &Id, action: Action, topic: &str) -> bool {
        let action_matches = match action {
            Action::Publish => self.publish,
            Action::Subscribe => self.subscribe,
        };
        action_matches && self.who_matches(id) && self.topic_matches(id, topic)
    }

    fn who_matches(&self, id: &Id) -> bool {
        let username = id.username.as_deref();
        self.username.as_deref().is_none_or(|u| username == Some(u))
            && self.clientid.as_deref().is_none_or(|c| c == &*id.client_id)
            && self
                .ipaddr
                .as_ref()
                .is_none_or(|net| id.remote_addr.is_some_and(|addr| net.contains(addr.ip())))
    }

    fn topic_matches(&self, id: &Id, topic: &str) -> bool {
        self.topics
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|p| p.matches(id, topic)))
    }
}

#[derive(Debug, Clone)]
enum TopicPattern {
    /// `eq <topic>`: the very same string, wildcards included.
    Exact(String),
    Filter(Topic),
    /// A filter with placeholders, resolved per client.
    Template(String),
}

impl TopicPattern {
    fn matches(&self, id: &Id, topic: &str) -> bool {
        match self {
            TopicPattern::Exact(exact) => fill(exact, id).is_some_and(|e| e == topic),
            TopicPattern::Filter(filter) => filter.matches_str(topic),
            TopicPattern::Template(template) => fill(template, id)
                .and_then(|f| Topic::from_str(&f).ok())
                .is_some_and(|filter| filter.matches_str(topic)),
        }
    }
}

/// Fills placeholders; `None` when a value is missing or could widen the filter
/// (a client id `a/#` must not grant `c/a/#`).
fn fill(template: &str, id: &Id) -> Option<String> {
    let mut filled = template.to_string();
    if filled.contains("${username}") {
        filled = filled.replace("${username}", safe_level(id.username.as_deref()?)?);
    }
    if filled.contains("${clientid}") {
        filled = filled.replace("${clientid}", safe_level(&id.client_id)?);
    }
    Some(filled)
}

fn safe_level(value: &str) -> Option<&str> {
    (!value.is_empty() && !value.contains(['/', '+', '#'])).then_some(value)
}

#[derive(Debug, Clone, Copy)]
struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    fn parse(text: &str) -> Option<IpNet> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse().ok()?, Some(prefix.parse().ok()?)),
            None => (text.parse().ok()?, None),
        };
        let max = if matches!(addr, IpAddr::V4(_)) {
            32
        } else {
            128
        };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => masked(
                u128::from(net.to_bits()),
                u128::from(ip.to_bits()),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(net.to_bits(), ip.to_bits(), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(net: u128, ip: u128, width: u8, prefix: u8) -> bool {
    let shift = u32::from(width - prefix);
    // A /0 block shifts every bit out, which `>>` would reject.
    net.checked_shr(shift).unwrap_or(0) == ip.checked_shr(shift).unwrap_or(0)
}

pub(crate) fn parse(config: &Config) -> Result<Authorization, BrokerError> {
    let defaults = Authorization::default();
    let Some(root) = Setting::lookup(config, KEY) else {
        return Ok(defaults);
    };
    root.expect_object()?;
    let no_match_allows = match root.field("no_match") {
        Some(s) => s.one_of(&["allow", "deny"])? == "allow",
        None => defaults.no_match_allows,
    };
    let deny_disconnects = match root.field("deny_action") {
        Some(s) => s.one_of(&["ignore", "disconnect"])? == "disconnect",
        None => defaults.deny_disconnects,
    };
    let mut sources = Vec::new();
    if let Some(list) = root.field("sources") {
        for item in list.items()? {
            if item.bool_or("enable", true)? {
                sources.push(parse_source(&item)?);
            }
        }
    }
    Ok(Authorization {
        no_match_allows,
        deny_disconnects,
        sources,
    })
}

fn parse_source(item: &Setting<'_>) -> Result<Source, BrokerError> {
    let kind = item.required("type")?;
    if kind.text()? != FILE {
        return Err(kind.invalid("only type = file (rules written in this config) is supported"));
    }
    if let Some(path) = item.field("path") {
        return Err(path.invalid(
            "reading an acl.conf file is not supported; write the rules inline under `rules`",
        ));
    }
    let rules = item.required("rules")?;
    let rules = rules
        .items()?
        .iter()
        .map(parse_rule)
        .collect::<Result<_, _>>()?;
    Ok(Source { kind: FILE, rules })
}

fn parse_rule(item: &Setting<'_>) -> Result<Rule, BrokerError> {
    let allow = item.required("permission")?.one_of(&["allow", "deny"])? == "allow";
    let action = item
        .required("action")?
        .one_of(&["publish", "subscribe", "all"])?;
    let ipaddr = match item.field("ipaddr") {
        Some(s) => Some(IpNet::parse(&s.text()?).ok_or_else(|| {
            s.invalid("expected an IP address or a CIDR block such as 10.0.0.0/8")
        })?),
        None => None,
    };
    Ok(Rule {
        allow,
        publish: action != "subscribe",
        subscribe: action != "publish",
        username: item.field("username").map(|s| s.text()).transpose()?,
        clientid: item.field("clientid").map(|s| s.text()).transpose()?,
        ipaddr,
        topics: parse_topics(item)?,
    })
}

fn parse_topics(item: &Setting<'_>) -> Result<Option<Vec<TopicPattern>>, BrokerError> {
    let (setting, texts) = match (item.field("topics"), item.field("topic")) {
        (Some(_), Some(_)) => return Err(item.invalid("give `topics` or `topic`, not both")),
        (Some(list), None) => {
            let texts = list.text_list()?;
            (list, texts)
        }
        (None, Some(one)) => {
            let text = one.text()?;
            (one, vec![text])
        }
        (None, None) => return Ok(None),
    };
    texts
        .iter()
        .map(|t| parse_pattern(t).map_err(|message| setting.invalid(message)))
        .collect::<Result<_, _>>()
        .map(Some)
}

fn parse_pattern(text: &str) -> Result<TopicPattern, String> {
    if let Some(exact) = text.strip_prefix("eq ") {
        return Ok(TopicPattern::Exact(exact.to_string()));
    }
    let filled = PLACEHOLDERS
        .iter()
        .fold(text.to_string(), |t, p| t.replace(p, "x"));
    if filled.contains("${") {
        return Err(format!(
            "`{text}`: only the placeholders {} are supported",
            PLACEHOLDERS.join(" and ")
        ));
    }
    let filter = Topic::from_str(&filled)
        .map_err(|e| format!("`{text}` is not a valid topic filter: {e}"))?;
    if filled == text {
        Ok(TopicPattern::Filter(filter))
    } else {
        Ok(TopicPattern::Template(text.to_string()))
    }
}

/// The subscribe and publish ACL hooks.
pub(crate) struct AuthzHandler {
    authorization: Arc<Authorization>,
}

impl AuthzHandler {
    pub(crate) fn new(authorization: Arc<Authorization>) -> AuthzHandler {
        AuthzHandler { authorization }
    }
}

#[async_trait]
impl Handler for AuthzHandler {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientSubscribeCheckAcl(session, subscribe) => {
                let allowed = self.authorization.allows(
                    &session.id,
                    Action::Subscribe,
                    &subscribe.topic_filter,
                );
                let result = if allowed {
                    SubscribeAclResult::new_success(subscribe.opts.qos(), None)
                } else {
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let allowed =
                    self.authorization
                        .allows(&session.id, Action::Publish, &publish.topic);
                let result = if allowed {
                    PublishAclResult::allow()
                } else {
                    PublishAclResult::rejected(self.authorization.deny_disconnects, None)
                };
                (false, Some(HookResult::PublishAclResult(result)))
            }
            _ => (true, acc),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        IpNet::parse(text).expect("valid block")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("valid address")
    }

    #[test]
    fn cidr_blocks_match_their_addresses_only() {
        assert!(net("10.0.0.0/8").contains(ip("10.200.3.4")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.1").contains(ip("127.0.0.1")));
        assert!(!net("127.0.0.1").contains(ip("127.0.0.2")));
        assert!(net("0.0.0.0/0").contains(ip("192.0.2.1")));
        assert!(net("::/0").contains(ip("::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8::7")));
        assert!(!net("2001:db8::/32").contains(ip("10.0.0.1")));
        // Dual-stack sockets report IPv4 clients as mapped IPv6 addresses.
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.0.0.1")));
    }

    #[test]
    fn malformed_blocks_are_refused() {
        for text in ["10.0.0.0/33", "::/129", "10.0.0/8", "10.0.0.0/x", "host"] {
            assert!(IpNet::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn placeholder_values_that_widen_a_filter_are_refused() {
        assert_eq!(safe_level("dev1"), Some("dev1"));
        for value in ["", "a/b", "+", "a#"] {
            assert_eq!(safe_level(value), None, "{value}");
        }
    }
}
