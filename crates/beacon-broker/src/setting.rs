//! Reading structured settings (lists of objects) out of the config tree.
//!
//! `beacon_config` hands out typed scalars; the broker's rules and user lists are
//! lists of objects, so this walks them while keeping a precise key for error
//! messages. List elements have no line of their own: the origin is that of the
//! top-level setting that holds them.

use beacon_config::{Config, Origin, Sourced};
use serde_json::Value;

use crate::BrokerError;

#[derive(Debug, Clone)]
pub(crate) struct Setting<'a> {
    key: String,
    value: &'a Value,
    origin: Origin,
}

impl<'a> Setting<'a> {
    pub(crate) fn lookup(config: &'a Config, key: &str) -> Option<Setting<'a>> {
        config.get(key).map(|found| Setting {
            key: key.to_string(),
            value: found.value,
            origin: found.origin,
        })
    }

    pub(crate) fn field(&self, name: &str) -> Option<Setting<'a>> {
        let value = self.value.as_object()?.get(name)?;
        Some(self.child(format!("{}.{name}", self.key), value))
    }

    pub(crate) fn required(&self, name: &str) -> Result<Setting<'a>, BrokerError> {
        self.expect_object()?;
        self.field(name)
            .ok_or_else(|| self.invalid(format!("missing field `{name}`")))
    }

    /// Elements of a list; a single object is accepted as a list of one, as EMQX does
    /// for `authentication`.
    pub(crate) fn items(&self) -> Result<Vec<Setting<'a>>, BrokerError> {
        match self.value {
            Value::Array(items) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, value)| self.child(format!("{}[{i}]", self.key), value))
                .collect()),
            Value::Object(_) => Ok(vec![self.clone()]),
            _ => Err(self.invalid("expected a list")),
        }
    }

    pub(crate) fn expect_object(&self) -> Result<(), BrokerError> {
        match self.value {
            Value::Object(_) => Ok(()),
            _ => Err(self.invalid("expected an object")),
        }
    }

    pub(crate) fn text(&self) -> Result<String, BrokerError> {
        Ok(self.sourced().to_text(&self.key)?.value)
    }

    pub(crate) fn boolean(&self) -> Result<bool, BrokerError> {
        Ok(self.sourced().to_bool(&self.key)?.value)
    }

    pub(crate) fn number(&self) -> Result<u64, BrokerError> {
        Ok(self.sourced().to_u64(&self.key)?.value)
    }

    pub(crate) fn text_list(&self) -> Result<Vec<String>, BrokerError> {
        Ok(self.sourced().to_string_list(&self.key)?.value)
    }

    /// The value, which must be one of `allowed` (compared ignoring case, as EMQX's
    /// enums are atoms usually written in lower case).
    pub(crate) fn one_of(&self, allowed: &[&'static str]) -> Result<&'static str, BrokerError> {
        let text = self.text()?;
        allowed
            .iter()
            .find(|choice| choice.eq_ignore_ascii_case(&text))
            .copied()
            .ok_or_else(|| {
                self.invalid(format!(
                    "expected one of {}, found `{text}`",
                    allowed.join(", ")
                ))
            })
    }

    pub(crate) fn bool_or(&self, name: &str, default: bool) -> Result<bool, BrokerError> {
        self.field(name).map_or(Ok(default), |f| f.boolean())
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> BrokerError {
        BrokerError::Invalid {
            key: self.key.clone(),
            origin: self.origin.clone(),
            message: message.into(),
        }
    }

    fn child(&self, key: String, value: &'a Value) -> Setting<'a> {
        Setting {
            key,
            value,
            origin: self.origin.clone(),
        }
    }

    fn sourced(&self) -> Sourced<&'a Value> {
        Sourced {
            value: self.value,
            origin: self.origin.clone(),
        }
    }
}
