//! The admin API (`/admin/...`, `--admin-token`): refused without the token, absent without a
//! configured one; a user's sessions listed with their subscriptions; a user or one session
//! disconnected, each client told why with an ERROR before its connection closes.

use conformance_tests::ws::WsClient;
use conformance_tests::{Broker, FrameExt, WAIT};
use serde_json::Value;

const TOKEN: &str = "admin-secret-1";

fn admin_broker() -> Broker {
    Broker::start(&["--admin-token", TOKEN])
}

async fn admin(broker: &Broker, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let (status, body) = broker
        .http(method, path, Some(TOKEN), body)
        .await
        .expect("http listener answers");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body:?}"));
    (status, json)
}

#[tokio::test]
async fn admin_requests_without_the_token_are_refused() {
    let broker = admin_broker();
    for (method, path) in [
        ("GET", "/admin/node"),
        ("GET", "/admin/users/alice/sessions"),
        ("POST", "/admin/users/alice/disconnect"),
        ("POST", "/admin/sessions/x/disconnect"),
        ("POST", "/admin/drain"),
    ] {
        for bearer in [None, Some("wrong"), Some("admin-secret-")] {
            let (status, _) = broker
                .http(method, path, bearer, None)
                .await
                .expect("answered as documented");
            assert_eq!(status, 401, "{method} {path} with {bearer:?}");
        }
    }
    // The refused drain did not drain.
    let (status, node) = admin(&broker, "GET", "/admin/node", None).await;
    assert_eq!(status, 200);
    assert_eq!(node["draining"], false, "{node}");
}

#[tokio::test]
async fn no_admin_api_without_a_configured_token() {
    let broker = Broker::start(&[]);
    let (status, _) = broker
        .http("GET", "/admin/node", Some(TOKEN), None)
        .await
        .expect("answered as documented");
    assert_eq!(status, 404);
    let (status, _) = broker
        .http("POST", "/admin/drain", Some(""), None)
        .await
        .expect("answered as documented");
    assert_eq!(status, 404);
}

#[tokio::test]
async fn node_info_counts_sessions_by_transport() {
    let broker = admin_broker();
    let _a = broker.client("alice").await;
    let _b = broker.client("bob").await;
    let _ws = WsClient::connect(&broker.ws_url(), "alice").await;
    let (status, node) = admin(&broker, "GET", "/admin/node", None).await;
    assert_eq!(status, 200, "{node}");
    assert_eq!(node["sessions"], 3, "{node}");
    assert_eq!(node["users"], 2, "{node}");
    assert_eq!(node["sessions_by_transport"]["tcp"], 2, "{node}");
    assert_eq!(node["sessions_by_transport"]["ws"], 1, "{node}");
    assert_eq!(node["ready"], true, "{node}");
}

#[tokio::test]
async fn sessions_of_a_user_show_transport_address_and_subscriptions() {
    let broker = admin_broker();
    let mut alice = broker.client("alice").await;
    alice.subscribe("s1", "/topic/news").await;
    alice.subscribe("s2", "/user/queue/inbox").await;
    alice.subscribe("s3", "/queue/work").await;
    alice.unsubscribe("s3").await;
    let _other = broker.client("bob").await;
    let (status, body) = admin(&broker, "GET", "/admin/users/alice/sessions", None).await;
    assert_eq!(status, 200);
    let sessions = body["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1, "{body}");
    let s = &sessions[0];
    assert_eq!(s["user"], "alice");
    assert_eq!(s["transport"], "tcp");
    assert_eq!(s["address"], "127.0.0.1");
    assert!(
        s["since_ms"].as_u64().expect("answered as documented") > 1_700_000_000_000,
        "{s}"
    );
    let subs: Vec<(String, String)> = s["subscriptions"]
        .as_array()
        .expect("answered as documented")
        .iter()
        .map(|x| {
            (
                x["id"].as_str().expect("answered as documented").to_owned(),
                x["destination"]
                    .as_str()
                    .expect("answered as documented")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        subs,
        [
            ("s1".to_owned(), "/topic/news".to_owned()),
            ("s2".to_owned(), "/user/queue/inbox".to_owned()),
        ]
    );
    let (_, nobody) = admin(&broker, "GET", "/admin/users/carol/sessions", None).await;
    assert_eq!(nobody["sessions"], serde_json::json!([]));
}

#[tokio::test]
async fn kicking_a_user_closes_every_session_of_theirs_with_the_reason() {
    let broker = admin_broker();
    let mut tcp = broker.client("mallory").await;
    tcp.subscribe("s", "/topic/room").await;
    let mut ws = WsClient::connect(&broker.ws_url(), "mallory").await;
    let mut bystander = broker.client("bob").await;
    bystander.subscribe("s", "/topic/room").await;

    let (status, body) = admin(
        &broker,
        "POST",
        "/admin/users/mallory/disconnect",
        Some(r#"{"reason":"account suspended"}"#),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disconnected"], 2, "{body}");
    let error = tcp.expect_error("disconnected by operator").await;
    assert_eq!(error.text().trim_end(), "account suspended");
    tcp.expect_closed(WAIT).await;
    let error = ws.expect_error("disconnected by operator").await;
    assert_eq!(error.text().trim_end(), "account suspended");
    ws.expect_closed(WAIT).await;

    // Others stay, and the kicked user's sessions are gone from the node.
    let mut publisher = broker.client("pub").await;
    publisher.publish("/topic/room", "still here").await;
    assert_eq!(bystander.expect_message().await.text(), "still here");
    // Their sessions leave the node's books as their tasks end, just after the close.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, sessions) = admin(&broker, "GET", "/admin/users/mallory/sessions", None).await;
        let log = broker.log();
        if sessions["sessions"] == serde_json::json!([])
            && log.contains("disconnected by operator: account suspended")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{sessions}\n{log}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn kicking_one_session_leaves_the_users_others() {
    let broker = admin_broker();
    let mut first = broker.client("alice").await;
    let mut second = broker.client("alice").await;
    let (_, listed) = admin(&broker, "GET", "/admin/users/alice/sessions", None).await;
    let name = listed["sessions"][0]["session"]
        .as_str()
        .expect("answered as documented")
        .to_owned();
    let path = format!("/admin/sessions/{name}/disconnect");
    let (status, body) = admin(&broker, "POST", &path, None).await;
    assert_eq!(status, 200, "{body}");
    first.expect_error("disconnected by operator").await;
    first.expect_closed(WAIT).await;
    second.subscribe("s", "/topic/x").await;

    let (status, _) = admin(&broker, "POST", "/admin/sessions/nosuch/disconnect", None).await;
    assert_eq!(status, 404);
    let (status, _) = admin(&broker, "POST", &path, Some(r#"{"reason":7}"#)).await;
    assert_eq!(status, 400);
}
