//! Authentication and authorization with real MQTT clients.

use crate::common;

use common::{TestClient, settle, start, within};
use rumqttc::{ConnectReturnCode, ConnectionError, SubscribeReasonCode};
use sha2::{Digest, Sha256};

fn refusal(result: Result<TestClient, ConnectionError>) -> ConnectReturnCode {
    match result {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(other) => panic!("expected a refused CONNACK, got {other}"),
        Ok(_) => panic!("expected the connection to be refused"),
    }
}

/// Two authenticators: users by name (one plain, one salted sha256 hash), then
/// devices by client id, which the chain reaches when the first does not know them.
fn users_config() -> String {
    let salted = Sha256::digest(b"hunter2pepper");
    format!(
        r#"authentication = [
             {{
               mechanism = password_based, backend = built_in_database
               password_hash_algorithm {{ name = sha256, salt_position = suffix }}
               users = [
                 {{user_id = "alice", password = "right"}}
                 {{user_id = "bob", password_hash = "{}", salt = "pepper", is_superuser = true}}
               ]
             }}
             {{
               mechanism = password_based, backend = built_in_database, user_id_type = clientid
               users = [{{user_id = "sensor-1", password = "device key"}}]
             }}
           ]"#,
        hex::encode(salted)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_authentication_refuses_wrong_and_unknown_users() {
    let broker = start(&users_config()).await;
    let addr = broker.mqtt_addr().expect("listener enabled");

    let wrong = TestClient::try_connect(addr, "c1", Some(("alice", "wrong"))).await;
    assert_eq!(refusal(wrong), ConnectReturnCode::BadUserNamePassword);
    let wrong_hash = TestClient::try_connect(addr, "c1", Some(("bob", "pepper"))).await;
    assert_eq!(refusal(wrong_hash), ConnectReturnCode::BadUserNamePassword);
    let wrong_key = TestClient::try_connect(addr, "sensor-1", Some(("any", "guess"))).await;
    assert_eq!(refusal(wrong_key), ConnectReturnCode::BadUserNamePassword);
    let unknown = TestClient::try_connect(addr, "c2", Some(("mallory", "x"))).await;
    assert_eq!(refusal(unknown), ConnectReturnCode::NotAuthorized);
    let anonymous = TestClient::try_connect(addr, "c3", None).await;
    assert_eq!(refusal(anonymous), ConnectReturnCode::NotAuthorized);

    let alice = TestClient::try_connect(addr, "c4", Some(("alice", "right"))).await;
    let bob = TestClient::try_connect(addr, "c5", Some(("bob", "hunter2"))).await;
    let sensor = TestClient::try_connect(addr, "sensor-1", Some(("any", "device key"))).await;
    assert!(
        alice.is_ok() && bob.is_ok() && sensor.is_ok(),
        "right passwords are accepted"
    );

    let reading = settle(&broker, |n| n.connections == 3).await;
    assert_eq!(
        reading.connections, 3,
        "refused clients leave no connection behind"
    );
    assert_eq!(
        reading.authenticators,
        vec!["password_based:built_in_database".to_string()]
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_clients_are_allowed_without_authentication() {
    let broker = start("authentication = [{mechanism = password_based, backend = built_in_database, enable = false}]").await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    TestClient::try_connect(addr, "anyone", Some(("who", "ever")))
        .await
        .expect("no enabled authenticator: anyone connects");
    assert!(broker.probe().await.authenticators.is_empty());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_rules_block_publish_and_subscribe() {
    let broker = start(&format!(
        r#"{}
           authorization {{
             no_match = allow
             sources = [{{
               type = file
               rules = [
                 {{permission = deny, action = subscribe, topics = ["secret/#", "eq #"]}}
                 {{permission = deny, username = "alice", action = publish, topic = "alarm/#"}}
                 {{permission = allow, action = all, topics = ["own/${{clientid}}/#"]}}
                 {{permission = deny, action = all, topics = ["own/#"]}}
               ]
             }}]
           }}"#,
        users_config()
    ))
    .await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    let mut alice = TestClient::try_connect(addr, "a1", Some(("alice", "right")))
        .await
        .expect("alice connects");
    let mut bob = TestClient::try_connect(addr, "b1", Some(("bob", "hunter2")))
        .await
        .expect("bob connects");

    assert_eq!(
        alice.subscribe("secret/plans").await,
        SubscribeReasonCode::Failure
    );
    assert_eq!(alice.subscribe("#").await, SubscribeReasonCode::Failure);
    assert!(matches!(
        alice.subscribe("alarm/#").await,
        SubscribeReasonCode::Success(_)
    ));
    assert!(matches!(
        alice.subscribe("own/a1/#").await,
        SubscribeReasonCode::Success(_)
    ));
    assert_eq!(
        alice.subscribe("own/b1/#").await,
        SubscribeReasonCode::Failure
    );
    // Bob is a superuser: no rule applies to him.
    assert!(matches!(
        bob.subscribe("secret/plans").await,
        SubscribeReasonCode::Success(_)
    ));

    // Alice's alarm is dropped; Bob's arrives. Delivery is in order, so the
    // first alarm Alice sees proves hers did not get through.
    alice.publish("alarm/fire", "from alice", false).await;
    bob.publish("alarm/fire", "from bob", false).await;
    assert_eq!(&alice.next_publish().await.payload[..], b"from bob");

    let reading = broker.probe().await;
    assert_eq!(reading.authorization_sources, vec!["file".to_string()]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_action_disconnect_closes_the_publisher() {
    let broker = start(
        r#"authorization {
             deny_action = disconnect
             sources = [{type = file, rules = [{permission = deny, action = publish, topic = "alarm/#"}]}]
           }"#,
    )
    .await;
    let addr = broker.mqtt_addr().expect("listener enabled");
    let mut publisher = TestClient::connect(addr, "pub").await;
    publisher.publish("fine/x", "allowed", false).await;
    publisher.send_publish("alarm/x", "refused").await;
    within(
        "the broker to disconnect the publisher",
        publisher.closed_by_broker(),
    )
    .await;
    assert_eq!(settle(&broker, |n| n.connections == 0).await.connections, 0);
    broker.shutdown().await;
}
