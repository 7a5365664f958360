//! The Stream-mode client against the simulator's gateway: it receives what a person writes,
//! replies through the session webhook, acknowledges only what its handler finished (the rest
//! comes again), moves to a new socket on `disconnect` and stops on refused credentials.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dingtalk::stream::{ChatbotMessage, MessageContent, StreamClient, StreamConfig};
use dingtalk::{
    AppClient, AppCredentials, AppKey, AppSecret, Client, ClientConfig, ErrorClass, WebhookMessage,
    WebhookPayload,
};
use dingtalk_sim::{
    Fixture, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, SimHandle, Simulator,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

async fn sim() -> SimHandle {
    Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("simulator starts")
}

fn client_for(sim: &SimHandle) -> Client {
    Client::new(ClientConfig::with_base(&sim.base_url()).unwrap()).unwrap()
}

fn creds(secret: &str) -> AppCredentials {
    AppCredentials {
        app_key: AppKey::new(SANDBOX_APP_KEY),
        app_secret: AppSecret::new(secret),
    }
}

async fn admin(sim: &SimHandle, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().json().await.unwrap()
}

async fn person_says(sim: &SimHandle, text: &str) {
    let said = admin(
        sim,
        reqwest::Method::POST,
        &format!("/_sim/conversations/{SANDBOX_OPS_GROUP}/messages"),
        Some(json!({"sender": {"nick": "Han Meimei", "staff_id": "manager1234"}, "text": text})),
    )
    .await;
    assert!(said["msgId"].is_string(), "{said}");
}

async fn until<F: Fn(&Value) -> bool>(sim: &SimHandle, what: &str, ok: F) -> Value {
    let mut st = Value::Null;
    for _ in 0..100 {
        st = admin(sim, reqwest::Method::GET, "/_sim/stream", None).await;
        if ok(&st) {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: {st}");
}

#[tokio::test]
async fn messages_are_received_replied_to_and_acknowledged_only_when_handled() {
    let sim = sim().await;
    let client = client_for(&sim);
    let stream = Arc::new(StreamClient::new(
        client.clone(),
        creds(SANDBOX_APP_SECRET),
        StreamConfig::default(),
    ));
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<ChatbotMessage>();
    let calls = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop) = watch::channel(false);
    let running = {
        let (stream, calls, client) = (stream.clone(), calls.clone(), client.clone());
        tokio::spawn(async move {
            stream
                .run(
                    move |m: ChatbotMessage| {
                        let (seen_tx, calls, client) =
                            (seen_tx.clone(), calls.clone(), client.clone());
                        async move {
                            let n = calls.fetch_add(1, Ordering::SeqCst);
                            seen_tx.send(m.clone()).unwrap();
                            // The first "flaky" fails: DingTalk must send it again.
                            if m.text().as_deref() == Some("flaky") && n == 1 {
                                return Err("not now".to_owned());
                            }
                            let answer = WebhookMessage::new(WebhookPayload::Text {
                                content: format!("got: {}", m.text().unwrap_or_default()),
                            });
                            m.reply(&client, &answer).await.map_err(|e| e.to_string())
                        }
                    },
                    stop,
                )
                .await
        })
    };
    let mut connected = stream.connected();
    tokio::time::timeout(Duration::from_secs(5), connected.wait_for(|c| *c))
        .await
        .expect("connects")
        .unwrap();

    person_says(&sim, "status db-1").await;
    let m = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(m.is_group());
    assert_eq!(m.conversation_id, SANDBOX_OPS_GROUP);
    assert_eq!(m.text().as_deref(), Some("status db-1"));
    assert_eq!(
        m.content_kind(),
        MessageContent::Text(" status db-1".into())
    );
    assert_eq!(m.sender_staff_id.as_deref(), Some("manager1234"));
    until(&sim, "acknowledged", |st| {
        st["stats"]["acks"] == 1 && st["pending"] == 0
    })
    .await;
    let reply = sim
        .messages()
        .into_iter()
        .find(|r| r.api == "session")
        .expect("the reply reached the group");
    assert_eq!(reply.payload.unwrap()["content"], "got: status db-1");

    // A handler that fails leaves the message unacknowledged; it comes again and is handled.
    person_says(&sim, "flaky").await;
    let first = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    until(&sim, "left pending", |st| st["pending"] == 1).await;
    admin(
        &sim,
        reqwest::Method::POST,
        "/_sim/clock",
        Some(json!({"advance_secs": 61})),
    )
    .await;
    let again = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.msg_id, first.msg_id, "the same message, redelivered");
    until(&sim, "handled the second time", |st| {
        st["pending"] == 0 && st["stats"]["acks"] == 2
    })
    .await;

    // `disconnect`: the client opens a new socket and messages keep coming.
    admin(&sim, reqwest::Method::POST, "/_sim/stream/disconnect", None).await;
    until(&sim, "reconnected", |st| {
        st["stats"]["connections_opened"] == 2
    })
    .await;
    person_says(&sim, "after").await;
    let after = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.text().as_deref(), Some("after"));
    until(&sim, "acknowledged on the new socket", |st| {
        st["stats"]["acks"] == 3
    })
    .await;

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn refused_credentials_end_the_run_with_the_error() {
    let sim = sim().await;
    let stream = StreamClient::new(client_for(&sim), creds("wrong"), StreamConfig::default());
    let (_stop_tx, stop) = watch::channel(false);
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        stream.run(|_m| async { Ok(()) }, stop),
    )
    .await
    .expect("gives up at once")
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::CredentialsRejected);
    assert_eq!(err.code(), Some("authFailed"));
}

#[tokio::test]
async fn a_received_file_is_downloaded_through_its_download_code() {
    let sim = sim().await;
    let said = admin(
        &sim,
        reqwest::Method::POST,
        "/_sim/conversations/cidOneToOne0002==/messages",
        Some(json!({"robot_code": SANDBOX_APP_KEY, "file": {"file_name": "q3.pdf", "content_base64": "JVBERi0xLjQ="}})),
    )
    .await;
    assert!(said["msgId"].is_string(), "{said}");
    // The message waits for a socket; take it over one.
    let stream = Arc::new(StreamClient::new(
        client_for(&sim),
        creds(SANDBOX_APP_SECRET),
        StreamConfig::default(),
    ));
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<ChatbotMessage>();
    let (stop_tx, stop) = watch::channel(false);
    let s2 = stream.clone();
    tokio::spawn(async move {
        s2.run(
            move |m| {
                let seen_tx = seen_tx.clone();
                async move {
                    seen_tx.send(m).unwrap();
                    Ok(())
                }
            },
            stop,
        )
        .await
    });
    let m = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(!m.is_group());
    let MessageContent::File {
        download_code,
        file_name,
    } = m.content_kind()
    else {
        panic!("a file: {m:?}");
    };
    assert_eq!(file_name, "q3.pdf");
    let app = AppClient::new(client_for(&sim), creds(SANDBOX_APP_SECRET));
    let url = app
        .call(&dingtalk::stream::MessageFileDownload {
            robot_code: SANDBOX_APP_KEY.into(),
            download_code,
        })
        .await
        .unwrap()
        .download_url;
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert_eq!(&bytes[..], b"%PDF-1.4");
    stop_tx.send(true).unwrap();
}

/// Each fault the gateway can have, one after the other, on one client that keeps going: a
/// socket dropped without a word, a socket gone silent (only the client's own pings notice),
/// tickets refused as expired, frames that are not JSON, unknown topics, an unreadable robot
/// message and an oversize frame. Every message a person writes still arrives, once.
#[tokio::test]
async fn the_client_outlives_every_fault_of_the_gateway() {
    let sim = sim().await;
    let config = StreamConfig {
        ping_after: Duration::from_millis(300),
        dead_after: Duration::from_millis(1200),
        backoff: dingtalk::RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
        max_frame_bytes: 1024 * 1024,
        ..StreamConfig::default()
    };
    let stream = Arc::new(StreamClient::new(
        client_for(&sim),
        creds(SANDBOX_APP_SECRET),
        config,
    ));
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<String>();
    let (stop_tx, stop) = watch::channel(false);
    let running = {
        let stream = stream.clone();
        tokio::spawn(async move {
            stream
                .run(
                    move |m: ChatbotMessage| {
                        let seen_tx = seen_tx.clone();
                        async move {
                            seen_tx.send(m.text().unwrap_or_default()).unwrap();
                            Ok(())
                        }
                    },
                    stop,
                )
                .await
        })
    };
    let fault = |body: Value| {
        let sim = &sim;
        async move { admin(sim, reqwest::Method::POST, "/_sim/stream/fault", Some(body)).await }
    };
    let opened = |n: u64| move |st: &Value| st["stats"]["connections_opened"] == n;
    let mut heard = async |text: &str| {
        person_says(&sim, text).await;
        let got = tokio::time::timeout(Duration::from_secs(10), seen.recv())
            .await
            .unwrap_or_else(|_| panic!("\"{text}\" did not arrive"))
            .unwrap();
        assert_eq!(got, text);
    };

    until(&sim, "connected", opened(1)).await;
    heard("one").await;

    // Dropped without `disconnect` or a close frame.
    assert_eq!(fault(json!({"kind": "drop"})).await["sockets"], 1);
    until(&sim, "reconnected after a drop", opened(2)).await;
    heard("two").await;

    // Silent: no frame, no pong. The client's pings go unanswered and it moves on.
    assert_eq!(fault(json!({"kind": "freeze"})).await["sockets"], 1);
    until(&sim, "reconnected after silence", opened(3)).await;
    heard("three").await;

    // Tickets refused as expired three times: a fresh ticket each time, with backoff.
    fault(json!({"kind": "refuse_tickets", "count": 3})).await;
    fault(json!({"kind": "drop"})).await;
    let st = until(&sim, "connected past refused tickets", opened(4)).await;
    assert_eq!(st["stats"]["tickets_refused"], 3, "{st}");
    heard("four").await;

    // Frames the client cannot use are logged and answered or left; the socket stays.
    for text in [
        "not json".to_owned(),
        json!({"specVersion": "1.0", "type": "EVENT",
               "headers": {"topic": "/v1.0/card/instances/callback", "messageId": "evt1"},
               "data": "{}"})
        .to_string(),
        json!({"specVersion": "1.0", "type": "CALLBACK",
               "headers": {"topic": dingtalk_sim::BOT_TOPIC, "messageId": "bad1"},
               "data": "{not json"})
        .to_string(),
        json!({"type": 7, "headers": "nope"}).to_string(),
    ] {
        assert_eq!(
            fault(json!({"kind": "frame", "text": text})).await["sockets"],
            1
        );
    }
    heard("five").await;
    assert_eq!(
        sim.stream_status()["stats"]["connections_opened"],
        4,
        "bad frames did not cost the socket"
    );

    // An oversize frame ends the socket; a new one carries on.
    let huge = "x".repeat(2 * 1024 * 1024);
    fault(json!({"kind": "frame", "text": huge})).await;
    until(&sim, "reconnected after an oversize frame", opened(5)).await;
    heard("six").await;

    assert!(seen.try_recv().is_err(), "nothing arrived twice");
    assert!(*stream.connected().borrow());
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("stops")
        .unwrap()
        .unwrap();
}
