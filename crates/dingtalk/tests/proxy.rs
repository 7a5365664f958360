//! An outbound proxy named in the environment carries every call, new-API calls included
//! (they otherwise take the lean pool, which knows no proxies). Its own test binary: it sets
//! process-wide environment variables.

use dingtalk::robot::Message;
use dingtalk::{
    AppClient, AppCredentials, Client, ClientConfig, ErrorClass, OpenConversationId, RobotCode,
};
use dingtalk_sim::{Fixture, SANDBOX_APP_KEY, SANDBOX_APP_SECRET, SANDBOX_OPS_GROUP, Simulator};
use std::time::Duration;

fn app_at(base: &str) -> AppClient {
    let mut config = ClientConfig::with_base(base).unwrap();
    config.timeout = Duration::from_secs(5);
    AppClient::new(
        Client::new(config).unwrap(),
        AppCredentials {
            app_key: SANDBOX_APP_KEY.into(),
            app_secret: dingtalk::AppSecret::new(SANDBOX_APP_SECRET),
        },
    )
}

#[tokio::test(flavor = "current_thread")]
async fn a_proxy_in_the_environment_carries_group_messages() {
    // DingTalk's address here is a port nobody listens on: only the proxy can reach "it".
    let nowhere = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", socket.local_addr().unwrap())
    };
    let (robot, group) = (
        RobotCode::new(SANDBOX_APP_KEY),
        OpenConversationId::new(SANDBOX_OPS_GROUP),
    );
    let message = Message::Text {
        content: "through the proxy".into(),
    };

    // Without a proxy, a call goes straight to that address and cannot connect.
    let direct = app_at(&nowhere);
    let err = direct
        .send_group_message(&robot, &group, &message)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(err.message().starts_with("could not connect"), "{err}");

    // The simulator serves absolute-form requests, so it stands in for a forward proxy.
    let sim = Simulator::start(Fixture::sandbox(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // SAFETY: this binary's only test, on a current-thread runtime: no other thread reads the
    // environment while it is written.
    unsafe { std::env::set_var("HTTP_PROXY", sim.base_url()) };
    let proxied = app_at(&nowhere);
    proxied
        .send_group_message(&robot, &group, &message)
        .await
        .expect("sent through the proxy");
    let sent = sim.messages();
    assert_eq!(sent.len(), 1);
    assert!(format!("{:?}", sent[0]).contains("through the proxy"));
}
