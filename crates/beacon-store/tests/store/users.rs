//! Console users and API tokens, on SQLite and PostgreSQL.

use crate::support;

use support::{each_backend, open};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_changed_and_removed_with_their_tokens() {
    each_backend(|backend| async move {
        let store = open(&backend).await;
        let name = backend.name;
        assert!(
            store.add_user("bob", "$argon2id$bob").await.unwrap(),
            "{name}"
        );
        assert!(
            store.add_user("alice", "$argon2id$a1").await.unwrap(),
            "{name}"
        );
        assert!(
            !store.add_user("alice", "$argon2id$other").await.unwrap(),
            "{name}: a taken name is refused"
        );
        assert_eq!(
            store.user_names().await.unwrap(),
            ["alice", "bob"],
            "{name}"
        );
        assert_eq!(
            store.password_hash("alice").await.unwrap().as_deref(),
            Some("$argon2id$a1"),
            "{name}: the refused add changed nothing"
        );
        assert!(store.set_password("alice", "$argon2id$a2").await.unwrap());
        assert!(!store.set_password("carol", "$argon2id$c").await.unwrap());
        assert_eq!(
            store.password_hash("alice").await.unwrap().as_deref(),
            Some("$argon2id$a2"),
            "{name}"
        );

        assert!(store.add_api_token("ci", "alice", "aa11").await.unwrap());
        assert!(store.add_api_token("cron", "bob", "bb22").await.unwrap());
        assert!(
            !store.add_api_token("ci", "bob", "cc33").await.unwrap(),
            "{name}: a taken token name is refused"
        );
        assert!(
            !store
                .add_api_token("ghost", "nobody", "dd44")
                .await
                .unwrap(),
            "{name}: a token needs an existing user"
        );
        assert_eq!(
            store.api_token_user("aa11").await.unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(store.api_token_user("cc33").await.unwrap(), None);
        let listed: Vec<_> = store
            .api_tokens()
            .await
            .unwrap()
            .into_iter()
            .map(|token| (token.name, token.user))
            .collect();
        assert_eq!(
            listed,
            [("ci".into(), "alice".into()), ("cron".into(), "bob".into())],
            "{name}"
        );

        assert!(store.remove_user("alice").await.unwrap());
        assert!(!store.remove_user("alice").await.unwrap());
        assert_eq!(store.password_hash("alice").await.unwrap(), None);
        assert_eq!(
            store.api_token_user("aa11").await.unwrap(),
            None,
            "{name}: a removed user's tokens stop working"
        );
        assert!(store.remove_api_token("cron").await.unwrap());
        assert!(!store.remove_api_token("cron").await.unwrap());
        assert_eq!(store.api_token_user("bb22").await.unwrap(), None);
        assert_eq!(store.user_names().await.unwrap(), ["bob"], "{name}");
    })
    .await;
}
