//! Sending a report an operator exported on a node with no route to the collector
//! (`beacon telemetry upload`), from any machine that has one: the agent's own sender, so
//! the same verified TLS, `telemetry.ca_file`, proxy and timeout rules apply.

use reqwest::Url;

use crate::AgentError;
use crate::sender::{Network, Sender};
use crate::settings::AgentSettings;

/// The collector's answer to an accepted upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub url: Url,
    pub status: u16,
    pub body: String,
}

/// POSTs the report `json` (already validated by the caller) to `url`, else to
/// `telemetry.url` (https, or http to loopback); any answer but a 2xx is an error carrying the collector's words.
pub async fn upload(
    settings: &AgentSettings,
    url: Option<Url>,
    json: &str,
) -> Result<Uploaded, AgentError> {
    let mut settings = settings.clone();
    if let Some(url) = url {
        settings.url = url;
    }
    let refused = |reason: String| AgentError::Upload {
        url: settings.url.to_string(),
        reason,
    };
    // The same rule as for `telemetry.url`: a report crosses the network only encrypted.
    let plain_ok = settings.url.scheme() == "http" && settings.is_loopback_url();
    if settings.url.scheme() != "https" && !plain_ok {
        return Err(refused(
            "use https (plain http only to a collector on a loopback address)".to_owned(),
        ));
    }
    let answer = Sender::new(&settings, Network::default())?
        .post(json)
        .await
        .map_err(refused)?;
    if !answer.status.is_success() {
        return Err(refused(format!(
            "the collector answered {}: {}",
            answer.status, answer.body
        )));
    }
    Ok(Uploaded {
        url: settings.url.clone(),
        status: answer.status.as_u16(),
        body: answer.body,
    })
}
