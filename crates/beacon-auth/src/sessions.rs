//! Login sessions held in memory: a random token per login, each with its own CSRF token
//! and an idle timeout. A restart logs everybody out, which is the safe default for an
//! admin interface.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::random_token;

/// Who a session belongs to, and the token its forms must echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    pub csrf: String,
    /// What the user's credential was at sign-in, for a caller whose credentials can change
    /// while it runs (the console keeps the password hash, so a new password ends older
    /// sessions); empty where they cannot.
    pub stamp: String,
}

/// Live sessions by token.
#[derive(Debug)]
pub struct Sessions {
    idle_timeout: Duration,
    live: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    session: Session,
    last_used: Instant,
}

impl Sessions {
    /// Sessions that end after `idle_timeout` without use.
    pub fn new(idle_timeout: Duration) -> Self {
        Self {
            idle_timeout,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Starts a session for `user` with its credential `stamp` (see [`Session::stamp`]):
    /// its token (for a cookie or a Bearer header) and state.
    pub fn create(&self, user: &str, stamp: &str) -> (String, Session) {
        let token = random_token();
        let session = Session {
            user: user.to_owned(),
            csrf: random_token(),
            stamp: stamp.to_owned(),
        };
        let mut live = self.lock();
        // Expired entries are dropped on each login, so the map cannot grow without bound.
        let now = Instant::now();
        live.retain(|_, entry| now.duration_since(entry.last_used) < self.idle_timeout);
        live.insert(
            token.clone(),
            Entry {
                session: session.clone(),
                last_used: now,
            },
        );
        (token, session)
    }

    /// The live session of `token`, refreshing its idle timer; `None` if unknown or expired.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut live = self.lock();
        let now = Instant::now();
        let entry = live.get_mut(token)?;
        if now.duration_since(entry.last_used) >= self.idle_timeout {
            live.remove(token);
            return None;
        }
        entry.last_used = now;
        Some(entry.session.clone())
    }

    /// Ends the session of `token` (logout).
    pub fn revoke(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Ends every session of `user` (after a password change or removal).
    pub fn revoke_user(&self, user: &str) {
        self.lock().retain(|_, entry| entry.session.user != user);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic elsewhere while holding the lock leaves a valid map: keep serving.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lives_until_revoked() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (token, session) = sessions.create("admin", "");
        assert_eq!(session.user, "admin");
        assert_ne!(session.csrf, token);
        assert_eq!(sessions.get(&token), Some(session));
        assert_eq!(sessions.get("unknown"), None);
        sessions.revoke(&token);
        assert_eq!(sessions.get(&token), None);
    }

    #[test]
    fn idle_sessions_expire() {
        let sessions = Sessions::new(Duration::from_millis(30));
        let (token, _) = sessions.create("admin", "");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(sessions.get(&token), None);
    }

    #[test]
    fn revoking_a_user_ends_all_of_their_sessions() {
        let sessions = Sessions::new(Duration::from_secs(60));
        let (first, _) = sessions.create("alice", "");
        let (second, _) = sessions.create("alice", "");
        let (other, _) = sessions.create("bob", "");
        sessions.revoke_user("alice");
        assert_eq!(sessions.get(&first), None);
        assert_eq!(sessions.get(&second), None);
        assert!(sessions.get(&other).is_some());
    }
}
