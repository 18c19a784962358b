//! Self-service deletion: asks the collector to delete this node's reports, proving with
//! the deletion secret kept in the data directory (the reports carried only its SHA-256),
//! then starts the node over with new ids, a new secret and an empty record of sends.
//!
//! [`forget`] works on a stopped node's data directory; a running agent forgets through
//! [`crate::AgentHandle::forget`], which also swaps the ids it holds in memory.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::AgentError;
use crate::datadir::{
    CLUSTER_UUID_FILE, DataDir, NODE_UUID_FILE, SECRET_FILE, SENT_LOG_FILE, STATE_FILE,
};
use crate::identity::{Identity, is_id};
use crate::sender::{Network, Sender};
use crate::settings::AgentSettings;

/// What the collector said, and the node's new uuid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgotten {
    pub old_uuid: String,
    pub new_uuid: String,
    /// False when the collector held nothing of this node (404, from collectors that tell
    /// an unknown node from a wrong secret): nothing was left to delete.
    pub collector_had_data: bool,
}

/// Sends `DELETE <telemetry.url>/<uuid>` with the secret, then starts over with new ids.
pub async fn forget(settings: &AgentSettings, data_dir: &Path) -> Result<Forgotten, AgentError> {
    let sender = Sender::new(settings, Network::default())?;
    let data = DataDir::new(data_dir.to_path_buf());
    Ok(forget_with(settings, &sender, &data).await?.0)
}

/// [`forget`] through `sender`, also returning the new identity; when the collector does
/// not delete, nothing in `data` changes.
pub(crate) async fn forget_with(
    settings: &AgentSettings,
    sender: &Sender,
    data: &DataDir,
) -> Result<(Forgotten, Identity), AgentError> {
    let old_uuid = read_text(data, NODE_UUID_FILE)?
        .filter(|id| is_id(id))
        .ok_or_else(|| {
            refused(
                settings,
                "this node has no telemetry id yet: nothing was ever sent",
            )
        })?;
    let secret = read_text(data, SECRET_FILE)?.ok_or_else(|| {
        refused(
            settings,
            "the deletion secret is missing from the data directory",
        )
    })?;
    let url = format!("{}/{old_uuid}", settings.url.as_str().trim_end_matches('/'));
    let body = serde_json::json!({ "secret": secret }).to_string();
    let answer = sender
        .delete(&url, &body)
        .await
        .map_err(|reason| refused(settings, &reason))?;
    let collector_had_data = match answer.status.as_u16() {
        204 | 200 => true,
        404 => false,
        403 => {
            return Err(refused(
                settings,
                "the collector refused (403): it holds no reports this secret can delete (the \
                 node never reported there, or its reports announced another secret)",
            ));
        }
        status => {
            return Err(refused(
                settings,
                &format!("the collector answered {status}: {}", answer.body),
            ));
        }
    };
    for file in [
        NODE_UUID_FILE,
        CLUSTER_UUID_FILE,
        SECRET_FILE,
        STATE_FILE,
        SENT_LOG_FILE,
    ] {
        data.remove(file).map_err(|source| AgentError::Read {
            path: data.path(file),
            source,
        })?;
    }
    let identity = Identity::load_or_create(data);
    let new_uuid = identity.uuid.clone();
    tracing::info!(%old_uuid, %new_uuid, collector_had_data, "telemetry data deleted; node starts over");
    let forgotten = Forgotten {
        old_uuid,
        new_uuid,
        collector_had_data,
    };
    Ok((forgotten, identity))
}

fn read_text(data: &DataDir, file: &str) -> Result<Option<String>, AgentError> {
    data.read_text(file).map_err(|source| AgentError::Read {
        path: data.path(file),
        source,
    })
}

fn refused(settings: &AgentSettings, reason: &str) -> AgentError {
    AgentError::Forget {
        url: settings.url.to_string(),
        reason: reason.to_owned(),
    }
}
