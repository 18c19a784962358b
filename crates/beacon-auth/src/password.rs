//! Password (and API secret) hashes: argon2id with the crate's default cost, stored as PHC
//! strings (`$argon2id$v=19$...`) that carry their own salt and parameters.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("password must not be empty")]
    EmptyPassword,
    #[error("password is longer than {max} bytes")]
    PasswordTooLong { max: usize },
    #[error("hashing the password failed: {0}")]
    Hash(String),
}

/// Passwords an operator chooses have at least this many characters: shorter ones fall to
/// a guesser who gets a few attempts a minute from many addresses.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Longer inputs are refused: hashing cost grows with length, and no person types more.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The argon2id PHC string of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.is_empty() {
        return Err(AuthError::EmptyPassword);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(AuthError::PasswordTooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. A malformed `phc` matches nothing.
pub fn verify_password(phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// [`verify_password`] with argon2's working memory taken from `blocks`, grown as needed
/// and kept by the caller for the next check: the allocator then never holds freed
/// 19 MiB blocks of its own (see `pool`).
pub(crate) fn verify_password_in(blocks: &mut Vec<Block>, phc: &str, password: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let argon2 = (|| {
        let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
        let version = hash
            .version
            .map_or(Some(Version::default()), |v| Version::try_from(v).ok())?;
        Some(Argon2::new(
            algorithm,
            version,
            Params::try_from(&hash).ok()?,
        ))
    })();
    let Some(argon2) = argon2 else {
        return false;
    };
    let mut salt_bytes = [0; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    blocks.resize(argon2.params().block_count(), Block::default());
    let mut computed = vec![0; expected.len()];
    argon2
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut *blocks)
        .is_ok()
        && crate::constant_time_eq(&computed, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsf"));
        assert!(!verify_password(&hash, ""));
    }

    #[test]
    fn every_hash_has_its_own_salt() {
        assert_ne!(
            hash_password("same").unwrap(),
            hash_password("same").unwrap()
        );
    }

    #[test]
    fn bad_inputs_are_refused_not_hashed() {
        assert!(matches!(hash_password(""), Err(AuthError::EmptyPassword)));
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(
            hash_password(&long),
            Err(AuthError::PasswordTooLong { .. })
        ));
        assert!(!verify_password("not a phc string", "anything"));
    }

    #[test]
    fn reused_memory_verifies_like_the_crate_does() {
        let hash = hash_password("correct horse").unwrap();
        let mut blocks = Vec::new();
        assert!(verify_password_in(&mut blocks, &hash, "correct horse"));
        assert!(!verify_password_in(&mut blocks, &hash, "correct horsf"));
        assert!(!verify_password_in(&mut blocks, &hash, ""));
        assert!(!verify_password_in(&mut blocks, "not a phc string", "x"));
        assert!(verify_password_in(&mut blocks, &hash, "correct horse"));
    }
}
