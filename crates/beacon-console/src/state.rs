//! What every console handler shares, and the options it is built from.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use beacon_auth::Sessions;
use beacon_store::Store;

use crate::throttle::LoginThrottle;

/// Login sessions end after this long without a request.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(8 * 3600);

/// Sign-in attempts allowed per user name: this many a minute on average...
pub const DEFAULT_LOGINS_PER_MINUTE: NonZeroU32 = NonZeroU32::new(5).unwrap();
/// ...and this many in a row.
pub const DEFAULT_LOGIN_BURST: NonZeroU32 = NonZeroU32::new(10).unwrap();

/// How the console is served.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// Mark cookies `Secure`: set when the console is served over TLS.
    pub secure_cookies: bool,
    pub session_idle: Duration,
    /// Sign-in attempts per user name, on average and in a row (see `throttle`).
    pub logins_per_minute: NonZeroU32,
    pub login_burst: NonZeroU32,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            secure_cookies: false,
            session_idle: DEFAULT_SESSION_IDLE,
            logins_per_minute: DEFAULT_LOGINS_PER_MINUTE,
            login_burst: DEFAULT_LOGIN_BURST,
        }
    }
}

/// What every console handler shares.
#[derive(Clone)]
pub(crate) struct Console {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) logins: Arc<LoginThrottle>,
    pub(crate) secure_cookies: bool,
}

impl Console {
    pub(crate) fn new(store: Arc<dyn Store>, options: ConsoleOptions) -> Self {
        Self {
            store,
            sessions: Arc::new(Sessions::new(options.session_idle)),
            logins: Arc::new(LoginThrottle::new(
                options.logins_per_minute,
                options.login_burst,
            )),
            secure_cookies: options.secure_cookies,
        }
    }
}
