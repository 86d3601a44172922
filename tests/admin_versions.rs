//! The admin API's versions: history, rollback, `If-Match` and two
//! writers racing for real, a change KV refuses, and what another instance
//! sees while KV catches up.

mod support;

use mcp_edge::adapters::memory::MockServer;
use serde_json::{json, Value};
use support::admin::*;

#[tokio::test]
async fn every_change_keeps_a_version_and_rollback_restores_one() {
    let (h, _) = setup();
    // Alpha was seeded: no history yet, version 0.
    let seeded = call(&h, "GET", "/admin/servers/alpha", None, &[]).await;
    assert_eq!(seeded.json()["version"], 0);
    let seeded_doc = seeded.json()["document"].clone();
    let mut changed = seeded_doc.clone();
    changed["description"] = json!("alpha, renamed");
    let put = call(
        &h,
        "PUT",
        "/admin/servers/alpha",
        Some(&changed),
        &[("if-match", "\"0\"")],
    )
    .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["version"], 1);
    changed["description"] = json!("alpha, third");
    let put = call(
        &h,
        "PUT",
        "/admin/servers/alpha",
        Some(&changed),
        &[("if-match", "1")],
    )
    .await;
    assert_eq!(put.json()["version"], 2);

    let versions = get(&h, "/admin/servers/alpha/versions").await;
    assert_eq!(versions["current_version"], 2);
    let listed: Vec<(u64, String, String)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["action"].as_str().unwrap().into(),
                v["author"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (2, "replace".into(), "apikey|root".into()),
            (1, "replace".into(), "apikey|root".into()),
            (0, "found in KV".into(), "outside the admin API".into()),
        ]
    );
    let v0 = get(&h, "/admin/servers/alpha/versions/0").await;
    assert_eq!(v0["document"], seeded_doc);
    assert_eq!(
        call(&h, "GET", "/admin/servers/alpha/versions/9", None, &[])
            .await
            .status,
        404
    );

    let back = call(
        &h,
        "POST",
        "/admin/servers/alpha/rollback",
        Some(&json!({"version": 0})),
        &[("if-match", "2")],
    )
    .await;
    assert_eq!(back.status, 200, "{}", back.text);
    assert_eq!(back.json()["version"], 3);
    assert_eq!(back.json()["document"], seeded_doc);
    let stored: Value = serde_json::from_str(&h.p.kv.value("servers/alpha").unwrap()).unwrap();
    assert_eq!(stored, seeded_doc, "KV serves the rolled-back document");
    let newest = &get(&h, "/admin/servers/alpha/versions").await["versions"][0];
    assert_eq!(newest["action"], "rollback to 0");
    let found = h
        .send(request("GET", "/registry/alpha", ALICE, None, &[]))
        .await
        .json();
    assert_eq!(found["description"], "alpha server");

    // A changed-by-hand KV document is reported as the next version and
    // recorded before the next change.
    h.p.kv.put(
        "servers/alpha",
        &server_doc("http://alpha.us.test/mcp").to_string(),
    );
    tokio::time::pause();
    tokio::time::advance(std::time::Duration::from_secs(70)).await;
    let outside = get(&h, "/admin/servers/alpha").await;
    assert_eq!(outside["version"], 4);
    assert_eq!(outside["document"]["description"], "gamma server");
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_of_two_racing_writers_one_wins() {
    let (h, _) = setup();
    let doc = json!({"description": "development"});
    let created = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let exists = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-none-match", "*")],
    )
    .await;
    assert_eq!(exists.status, 412);
    let stale = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-match", "\"7\"")],
    )
    .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(stale.json()["error"]["data"]["current_version"], 1);
    let garbled = call(
        &h,
        "PUT",
        "/admin/groups/dev",
        Some(&doc),
        &[("if-match", "latest")],
    )
    .await;
    assert_eq!(garbled.status, 400);

    // Two instances write at once, both against version 1: the history is
    // the referee (both pass the If-Match check on what they read), one
    // wins, the other is told it lost, and KV holds the winner's.
    let other = second_instance(&h);
    let (one, two) = (json!({"description": "one"}), json!({"description": "two"}));
    let (first, second) = tokio::join!(
        call(
            &h,
            "PUT",
            "/admin/groups/dev",
            Some(&one),
            &[("if-match", "1")]
        ),
        call(
            &other,
            "PUT",
            "/admin/groups/dev",
            Some(&two),
            &[("if-match", "1")]
        ),
    );
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", first.text, second.text);
    let winner = if first.status == 200 { "one" } else { "two" };
    assert!(h.p.kv.value("groups/dev").unwrap().contains(winner));
    let versions = get(&h, "/admin/groups/dev/versions").await;
    assert_eq!(versions["current_version"], 2);

    // A change without If-Match to a document that exists is refused (428).
    let blind = call(&h, "PUT", "/admin/groups/dev", Some(&doc), &[]).await;
    assert_eq!(blind.status, 428, "{}", blind.text);
    assert_eq!(
        call(&h, "DELETE", "/admin/groups/dev", None, &[])
            .await
            .status,
        428
    );

    // A group servers still use stays.
    let mut alpha = h.raw_entry("alpha");
    alpha["group"] = json!("dev");
    h.register("alpha", alpha);
    let refused = call(
        &h,
        "DELETE",
        "/admin/groups/dev",
        None,
        &[("if-match", "2")],
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("alpha"));
}

#[tokio::test]
async fn a_change_kv_refuses_is_not_reported_as_made() {
    let (h, _) = setup();
    let key = call(
        &h,
        "POST",
        "/admin/apikeys",
        Some(&json!({"subject": "bot"})),
        &[],
    )
    .await
    .json();
    let (id, secret) = (
        key["id"].as_str().unwrap().to_string(),
        key["key"].as_str().unwrap().to_string(),
    );
    h.p.kv.fail_writes(Some("auth/apikeys/"));
    let revoke = call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[]).await;
    assert_eq!(revoke.status, 503, "{}", revoke.text);
    assert!(
        revoke.text.contains("could not be written"),
        "{}",
        revoke.text
    );
    // The admin API says what callers get: not revoked, and the history
    // says why.
    let read = get(&h, &format!("/admin/apikeys/{id}")).await;
    assert_eq!(read["document"]["revoked"], json!(null), "{read}");
    let versions = get(&h, &format!("/admin/apikeys/{id}/versions")).await;
    assert!(
        versions["versions"][0]["action"]
            .as_str()
            .unwrap()
            .starts_with("not published"),
        "{versions}"
    );
    assert_eq!(
        h.send(request("GET", "/registry", &secret, None, &[]))
            .await
            .status,
        200
    );
    // Retried once KV takes writes again: revoked.
    h.p.kv.fail_writes(None);
    assert_eq!(
        call(&h, "DELETE", &format!("/admin/apikeys/{id}"), None, &[])
            .await
            .status,
        200
    );
    assert_eq!(
        h.send(request("GET", "/registry", &secret, None, &[]))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn the_writing_instance_sees_its_write_at_once_while_kv_catches_up() {
    tokio::time::pause();
    let (h, _) = setup();
    let gamma = std::rc::Rc::new(MockServer::new("gamma").tools(&["ping"]));
    h.p.http.mount("http://gamma.us.test/mcp", gamma);
    let elsewhere = second_instance(&h);
    assert_eq!(
        elsewhere
            .send(request("GET", "/registry", ALICE, None, &[]))
            .await
            .status,
        200
    );

    // KV takes the write but serves it nowhere yet (as Workers KV, for up
    // to a minute).
    h.p.kv.lag_writes();
    let created = call(
        &h,
        "PUT",
        "/admin/servers/gamma",
        Some(&server_doc("http://gamma.us.test/mcp")),
        &[],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        h.p.kv.value("servers/gamma").is_none(),
        "KV has not caught up"
    );
    let here = h
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(
        here.status, 200,
        "the writing instance serves it at once: {}",
        here.text
    );
    let read = call(&h, "GET", "/admin/servers/gamma", None, &[]).await;
    assert_eq!(read.json()["version"], 1);
    // Another instance: not yet (its registry copy, and KV, are older).
    let there = elsewhere
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(there.status, 404);
    // The admin API there reports the history's newest version, not KV's
    // stale answer: a change made there is made against version 1.
    let seen = call(&elsewhere, "GET", "/admin/servers/gamma", None, &[]).await;
    assert_eq!(seen.json()["version"], 1, "{}", seen.text);

    // KV catches up and the other instance's copy expires: served there too.
    h.p.kv.propagate();
    tokio::time::advance(std::time::Duration::from_secs(31)).await;
    let there = elsewhere
        .send(request("GET", "/registry/gamma", ALICE, None, &[]))
        .await;
    assert_eq!(there.status, 200, "{}", there.text);
}
