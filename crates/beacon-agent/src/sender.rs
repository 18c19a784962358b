//! The HTTPS sender: one POST of one report, gzip-compressed, with certificate
//! verification against the system roots plus `telemetry.ca_file`.
//!
//! The HTTP client is built on the first send, not at start, so that a disabled agent
//! never even prepares a connection (and a machine without a CA bundle can still boot).

use std::error::Error as _;
use std::io::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Certificate, Client, StatusCode};

use crate::AgentError;
use crate::probe::BEACON_VERSION;
use crate::settings::AgentSettings;

/// How much of a collector's answer is kept for the sent log and error messages.
const ANSWER_LIMIT: usize = 2048;

/// How the agent reaches the network; tests inject a resolver that records names.
#[derive(Clone, Default)]
pub struct Network {
    /// Resolves every name the agent looks up. When set, the standard proxy variables
    /// are ignored (a proxy would resolve the collector's name instead); an explicit
    /// `telemetry.proxy` still applies.
    pub resolver: Option<Arc<dyn reqwest::dns::Resolve>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("resolver", &self.resolver.as_ref().map(|_| "custom"))
            .finish()
    }
}

/// The collector's answer to one POST.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) body: String,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) at: DateTime<Utc>,
}

impl Answer {
    /// 429, 408 and 5xx: the same report may succeed later. Other refusals (400, 413, ...)
    /// would be refused again, so the period gives up.
    pub(crate) fn is_retryable(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS
            || self.status == StatusCode::REQUEST_TIMEOUT
            || self.status.is_server_error()
    }
}

pub(crate) struct Sender {
    settings: AgentSettings,
    network: Network,
    ca_certs: Vec<Certificate>,
    client: Mutex<Option<Client>>,
}

impl Sender {
    /// Reads `telemetry.ca_file` now, so that a bad file stops the start with its path.
    pub(crate) fn new(settings: &AgentSettings, network: Network) -> Result<Self, AgentError> {
        let ca_certs = match &settings.ca_file {
            Some(path) => read_ca_file(path)?,
            None => Vec::new(),
        };
        Ok(Self {
            settings: settings.clone(),
            network,
            ca_certs,
            client: Mutex::new(None),
        })
    }

    /// POSTs `json` gzip-compressed. `Err` means no answer arrived (name resolution,
    /// connection, TLS, timeout), with the whole error chain as text.
    pub(crate) async fn post(&self, json: &str) -> Result<Answer, String> {
        let client = self.client()?;
        let body = gzip(json.as_bytes()).map_err(|e| format!("cannot compress the report: {e}"))?;
        let request = client
            .post(self.settings.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(CONTENT_ENCODING, "gzip")
            .body(body);
        answer_of(request).await
    }

    /// DELETEs `url` with a JSON body, with the same TLS, proxy and timeout rules.
    pub(crate) async fn delete(&self, url: &str, json: &str) -> Result<Answer, String> {
        let request = self
            .client()?
            .delete(url)
            .header(CONTENT_TYPE, "application/json")
            .body(json.to_owned());
        answer_of(request).await
    }

    fn client(&self) -> Result<Client, String> {
        let mut cached = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        let client = self
            .builder()
            .build()
            .map_err(|e| format!("cannot prepare the HTTPS client: {}", chain(&e)))?;
        *cached = Some(client.clone());
        Ok(client)
    }

    fn builder(&self) -> reqwest::ClientBuilder {
        let settings = &self.settings;
        let mut builder = Client::builder()
            .user_agent(format!("beacon/{BEACON_VERSION}"))
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            // A weekly report gains nothing from a kept-alive connection; closing it
            // means no connection to the collector lingers after a send or a switch-off.
            .pool_max_idle_per_host(0)
            // The report goes to the configured URL or nowhere.
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_merge(self.ca_certs.iter().cloned());
        if self.network.resolver.is_some() || settings.is_loopback_url() {
            builder = builder.no_proxy();
        }
        if let Some(resolver) = &self.network.resolver {
            builder = builder.dns_resolver(resolver.clone());
        }
        // Checked when the settings were read; a failure here cannot happen.
        if let Some(proxy) = settings
            .proxy
            .as_deref()
            .and_then(|p| reqwest::Proxy::all(p).ok())
        {
            builder = builder.proxy(proxy);
        }
        builder
    }
}

/// Sends `request` and reads the start of the answer.
async fn answer_of(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let mut response = request.send().await.map_err(|e| chain(&e))?;
    let status = response.status();
    let retry_after = retry_after(response.headers(), Utc::now());
    let mut body = Vec::new();
    // A 2xx means committed even if the body is cut short, so read errors end the read.
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ANSWER_LIMIT {
            break;
        }
    }
    body.truncate(ANSWER_LIMIT);
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        retry_after,
        at: Utc::now(),
    })
}

fn read_ca_file(path: &Path) -> Result<Vec<Certificate>, AgentError> {
    let pem = std::fs::read(path).map_err(|source| AgentError::CaFileRead {
        path: path.to_path_buf(),
        source,
    })?;
    let content_error = |reason: String| AgentError::CaFileContent {
        path: path.to_path_buf(),
        reason,
    };
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| content_error(chain(&e)))?;
    if certs.is_empty() {
        return Err(content_error("no PEM certificate found".to_owned()));
    }
    Ok(certs)
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(text).ok()?;
    Some(
        (at.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its causes on one line: the useful part of a TLS or connection failure
/// ("invalid peer certificate: UnknownIssuer") is several levels down.
fn chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = Utc::now();
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        let later = (now + chrono::TimeDelta::seconds(30)).to_rfc2822();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).expect("header"));
        let wait = retry_after(&headers, now).expect("date form");
        assert!(
            wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn gzip_round_trip() {
        use std::io::Read as _;
        let packed = gzip(b"{\"a\":1}").expect("gzip");
        let mut text = String::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_string(&mut text)
            .expect("gunzip");
        assert_eq!(text, "{\"a\":1}");
    }
}
