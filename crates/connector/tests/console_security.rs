//! The console's guards, over plain HTTP: the session cookie's flags and contents, CSRF on
//! every form post, roles mirrored from the API, a revoked token ending its sessions, the
//! Content-Security-Policy, and no secret in any page.

mod common;

use common::{TOKEN, spawn_app};
use reqwest::redirect::Policy;
use serde_json::json;

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `token`; returns the `dtc_session=…` cookie pair and the page's CSRF value.
async fn sign_in(app: &common::TestApp, token: &str) -> (String, String) {
    let http = browser();
    let resp = http
        .post(format!("{}/console/sign-in", app.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/console"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    assert!(!set.contains(token), "the cookie never holds the token");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = http
        .get(format!("{}/console/connections", app.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_value_and_the_right_role() {
    let app = spawn_app().await;
    let http = browser();
    let (cookie, csrf) = sign_in(&app, TOKEN).await;
    let create = |cookie: String, fields: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = format!("{}/console/connections", app.base);
        async move {
            http.post(url)
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    let fields = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("kind", "app_robot".into()),
            ("name", "ops".into()),
            ("app_key", dingtalk_sim::SANDBOX_APP_KEY.into()),
            ("app_secret", dingtalk_sim::SANDBOX_APP_SECRET.into()),
        ]
    };
    // Without the CSRF value (or with another one), nothing is created.
    assert_eq!(create(cookie.clone(), fields("forged")).await.status(), 403);
    assert_eq!(create(cookie.clone(), fields("")).await.status(), 403);
    assert_eq!(app.get("/v1/connections").await.1, json!([]));
    // Without a session, the browser is sent to sign in.
    let resp = create(String::new(), fields(&csrf)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console/sign-in");

    let resp = create(cookie.clone(), fields(&csrf)).await;
    assert_eq!(resp.status(), 303, "{}", resp.text().await.unwrap());
    assert_eq!(app.get("/v1/connections").await.1[0]["name"], "ops");

    // A viewer sees the list but not the admin's buttons, and cannot create.
    let (status, viewer) = app
        .post("/v1/tokens", json!({"label": "v", "role": "viewer"}))
        .await;
    assert_eq!(status, 201);
    let (v_cookie, v_csrf) = sign_in(&app, viewer["token"].as_str().unwrap()).await;
    let page = http
        .get(format!("{}/console/connections", app.base))
        .header("cookie", &v_cookie)
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    assert!(page.contains(">ops<"), "the viewer reads the list");
    assert!(
        !page.contains("/console/connections/new") && !page.contains("/delete"),
        "{page}"
    );
    let mut v_fields = fields(&v_csrf);
    v_fields[2].1 = "by-viewer".into();
    assert_eq!(create(v_cookie.clone(), v_fields).await.status(), 403);

    // Revoking the viewer's token ends its session.
    let resp = app
        .request(
            reqwest::Method::DELETE,
            &format!("/v1/tokens/{}", viewer["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(resp.status(), 204);
    let resp = http
        .get(format!("{}/console/connections", app.base))
        .header("cookie", &v_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // A tampered cookie is no session.
    let tampered = cookie.replace("eyJyIjoiYWRtaW4i", "eyJyIjoidmlld2Vy");
    let resp = http
        .get(format!("{}/console/connections", app.base))
        .header("cookie", &tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);

    // No page holds a secret.
    for path in ["/console/connections", "/console/connections/new"] {
        let page = http
            .get(format!("{}{path}", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains(dingtalk_sim::SANDBOX_APP_SECRET), "{path}");
        assert!(!page.contains(TOKEN), "{path}");
    }
}

#[tokio::test]
async fn the_language_switch_never_redirects_outside_the_console() {
    let app = spawn_app().await;
    let resp = browser()
        .post(format!("{}/console/lang", app.base))
        .form(&[("lang", "zh"), ("back", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/console");
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("dtc_lang=zh")
    );
}

/// A console form: its path, the least role that may post it, its other fields.
type Post = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static str)>,
);

/// Every console form, for each role and with a forged CSRF value: what a role may not do is
/// refused (403) and changes nothing; a post without the session's CSRF value is refused for
/// everyone. Pages a role cannot use are refused too.
#[tokio::test]
async fn every_console_route_checks_csrf_and_role() {
    let app = spawn_app().await;
    app.create_app_connection("ops").await;
    let (status, body) = app
        .post(
            "/v1/flows",
            json!({"name": "hello", "trigger": {"type": "manual"}, "steps": [
                {"id": "s", "action": "send_text", "connection": "ops",
                 "input": {"group_chat_id": common::OPS, "content": "hi"}}]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let http = browser();
    // (method path, the least role that may, the form's other fields)
    let posts: Vec<Post> = vec![
        (
            "/console/connections",
            "admin",
            vec![("kind", "app_robot"), ("name", "x")],
        ),
        (
            "/console/connections/ops/edit",
            "admin",
            vec![("name", "ops")],
        ),
        ("/console/connections/ops/delete", "admin", vec![]),
        ("/console/connections/ops/test", "operator", vec![]),
        ("/console/send/preview", "operator", vec![]),
        (
            "/console/deliveries/00000000-0000-0000-0000-000000000000/retry",
            "operator",
            vec![],
        ),
        (
            "/console/tokens",
            "admin",
            vec![("label", "x"), ("role", "viewer")],
        ),
        (
            "/console/tokens/00000000-0000-0000-0000-000000000000/revoke",
            "admin",
            vec![],
        ),
        ("/console/flows", "admin", vec![("text", "name: x")]),
        (
            "/console/flows/hello/dry-run",
            "operator",
            vec![("sample", "{}")],
        ),
        (
            "/console/flows/hello/run",
            "operator",
            vec![("sample", "{}")],
        ),
        ("/console/flows/hello/delete", "admin", vec![]),
    ];
    let gets = [
        ("/console/connections/new", "admin"),
        ("/console/connections/ops/edit", "admin"),
        ("/console/tokens", "admin"),
        ("/console/flows/new", "admin"),
        ("/console/send", "operator"),
        ("/console/connections", "viewer"),
        ("/console/deliveries", "viewer"),
        ("/console/flows", "viewer"),
        ("/console/flows/hello", "viewer"),
        ("/console/runs", "viewer"),
    ];
    let rank = |r: &str| {
        ["viewer", "operator", "admin"]
            .iter()
            .position(|x| *x == r)
            .unwrap()
    };
    for role in ["viewer", "operator", "admin"] {
        let (cookie, csrf) = if role == "admin" {
            sign_in(&app, TOKEN).await
        } else {
            let (_, made) = app
                .post("/v1/tokens", json!({"label": role, "role": role}))
                .await;
            sign_in(&app, made["token"].as_str().unwrap()).await
        };
        for (path, least, fields) in &posts {
            let form = |csrf: &str| {
                let mut f: Vec<(&str, String)> = vec![("csrf", csrf.to_owned())];
                f.extend(fields.iter().map(|(k, v)| (*k, (*v).to_owned())));
                f
            };
            let post = |form: Vec<(&str, String)>| {
                let req = http
                    .post(format!("{}{path}", app.base))
                    .header("cookie", &cookie);
                // The Send page's forms are multipart (they may carry files).
                if path.starts_with("/console/send") {
                    let mut mp = reqwest::multipart::Form::new();
                    for (k, v) in form {
                        mp = mp.text(k.to_owned(), v);
                    }
                    req.multipart(mp)
                } else {
                    req.form(&form)
                }
            };
            let forged = post(form("forged")).send().await.unwrap();
            assert_eq!(
                forged.status(),
                403,
                "{role} {path} with a forged CSRF value"
            );
            if rank(role) < rank(least) {
                let resp = post(form(&csrf)).send().await.unwrap();
                assert_eq!(resp.status(), 403, "{role} may not POST {path}");
                let page = resp.text().await.unwrap();
                assert!(page.contains("Your role may not do this."), "{page}");
            }
        }
        for (path, least) in gets {
            let resp = http
                .get(format!("{}{path}", app.base))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let want = if rank(role) < rank(least) { 403 } else { 200 };
            assert_eq!(resp.status().as_u16(), want, "{role} GET {path}");
            // Every page renders (a template error would still answer with the status).
            let page = resp.text().await.unwrap();
            assert!(
                !page.contains("could not be shown"),
                "{role} GET {path}: {page}"
            );
        }
    }
    // Nothing a refused post asked for happened.
    assert_eq!(app.get("/v1/connections").await.1[0]["name"], "ops");
    assert_eq!(app.get("/v1/flows/hello").await.0, 200);
    let (_, tokens) = app.get("/v1/tokens").await;
    assert_eq!(tokens.as_array().map(Vec::len), Some(2), "{tokens}");
    let (_, runs) = app.get("/v1/runs").await;
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(0), "{runs}");
}
