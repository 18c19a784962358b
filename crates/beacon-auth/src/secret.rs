//! Random secrets and their comparison.

use subtle::ConstantTimeEq;

/// 256 random bits as 64 lowercase hex characters: session tokens, API secrets, CSRF tokens.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Characters of generated passwords: no look-alikes (0/O, 1/l/I), so that a password
/// printed once in a log can be typed without mistakes.
const PASSWORD_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
/// 20 characters of a 56-letter alphabet: about 116 bits.
const PASSWORD_LENGTH: usize = 20;

/// A password for a first admin account, printed once to the operator.
pub fn random_password() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..PASSWORD_LENGTH)
        .map(|_| char::from(PASSWORD_ALPHABET[rng.random_range(0..PASSWORD_ALPHABET.len())]))
        .collect()
}

/// Equality whose duration does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn passwords_use_the_unambiguous_alphabet() {
        let password = random_password();
        assert_eq!(password.len(), PASSWORD_LENGTH);
        assert!(password.bytes().all(|c| PASSWORD_ALPHABET.contains(&c)));
        assert_ne!(password, random_password());
    }

    #[test]
    fn comparison_is_exact() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
