//! Message lifecycle over the socket (issue 15): `message.edit`,
//! `message.delete` and replies (`message.send` with `reply_to`): every
//! request and refusal as a table, the events and views members see,
//! `change.sync`, resume never replaying deleted text (in-process broker
//! here, Redis in the cluster case), and delivery across a Redis cluster.

mod common;

use std::collections::BTreeSet;

use common::cluster::Cluster;
use common::{Client, TestServer};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.rate_burst = 1000.0;
        c.user_writes_burst = 1000.0;
    })
    .await
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_else(|| panic!("a string: {v}")).to_owned()
}

async fn say(c: &mut Client, conv: &str, text: &str) -> Value {
    c.ok("message.send", json!({"conversation": conv, "text": text})).await["message"].clone()
}

fn outcome(r: &Value) -> String {
    if r["type"] == "ok" { "ok".into() } else { s(&r["code"]) }
}

/// Every request of this area, by who asks about which message, in order
/// (steps change state: a delete before an edit of the same message): the
/// code each must get. "No such message", "not in that conversation" and
/// "not a member" are one `not_found` with one message.
#[tokio::test]
async fn requests_and_refusals_as_a_table() {
    let srv = server().await;
    let mut ann = Client::register(&srv, "lt_ann").await;
    let mut bob = Client::register(&srv, "lt_bob").await;
    let mut cy = Client::register(&srv, "lt_cy").await;
    let mut dee = Client::register(&srv, "lt_dee").await;
    let mut rem = Client::register(&srv, "lt_rem").await;
    let dm = bob.send_dm("lt_ann", "bob to ann").await;
    let dm2 = bob.send_dm("lt_ann", "another").await;
    let dconv = s(&dm["conversation_id"]);
    let other = cy.send_dm("lt_bob", "elsewhere").await;
    let g = ann.ok("group.create", json!({"title": "t", "members": ["lt_bob", "lt_dee", "lt_rem"]})).await;
    let gconv = s(&g["group"]["conversation_id"]);
    ann.ok("group.role", json!({"conversation": gconv, "username": "lt_dee", "role": "admin"})).await;
    let by_bob = say(&mut bob, &gconv, "bob in group").await;
    let by_bob2 = say(&mut bob, &gconv, "bob again").await;
    let by_ann = say(&mut ann, &gconv, "ann in group").await;
    let by_rem = say(&mut rem, &gconv, "rem says").await;
    ann.ok("group.remove", json!({"conversation": gconv, "username": "lt_rem"})).await;
    let unknown = (s(&dm["id"]).parse::<u64>().unwrap() + 1).to_string();
    let long = "x".repeat(4001);
    let id = |m: &Value| s(&m["id"]);
    // (who, kind, conversation, message id, text, expected)
    let table: Vec<(&str, &str, &str, String, &str, &str)> = vec![
        ("bob", "message.edit", &dconv, id(&dm), "fixed", "ok"),
        ("ann", "message.edit", &dconv, id(&dm), "not mine", "forbidden"),
        ("cy", "message.edit", &dconv, id(&dm), "outsider", "not_found"),
        ("bob", "message.edit", &dconv, unknown.clone(), "nothing", "not_found"),
        ("bob", "message.edit", &dconv, id(&other), "other conversation", "not_found"),
        ("bob", "message.edit", &dconv, id(&dm), "   ", "bad_request"),
        ("bob", "message.edit", &dconv, id(&dm), &long, "too_large"),
        ("ann", "message.delete", &dconv, id(&dm), "", "forbidden"),
        ("cy", "message.delete", &dconv, id(&dm), "", "not_found"),
        ("bob", "message.delete", &dconv, id(&dm2), "", "ok"),
        ("bob", "message.delete", &dconv, id(&dm2), "", "ok"),
        ("bob", "message.edit", &dconv, id(&dm2), "resurrect", "conflict"),
        ("ann", "reply", &dconv, id(&dm2), "to a deleted one", "conflict"),
        ("ann", "reply", &dconv, unknown.clone(), "to nothing", "not_found"),
        ("ann", "reply", &dconv, id(&other), "to another conversation", "not_found"),
        ("ann", "reply", &dconv, id(&dm), "a fine reply", "ok"),
        ("bob", "message.delete", &gconv, id(&by_ann), "", "forbidden"),
        ("dee", "message.edit", &gconv, id(&by_bob), "admin edit", "forbidden"),
        ("dee", "message.delete", &gconv, id(&by_bob), "", "ok"),
        ("ann", "message.delete", &gconv, id(&by_bob2), "", "ok"),
        ("cy", "message.delete", &gconv, id(&by_ann), "", "not_found"),
        ("rem", "message.edit", &gconv, id(&by_rem), "after removal", "not_found"),
        ("rem", "message.delete", &gconv, id(&by_rem), "", "not_found"),
        ("rem", "reply", &gconv, id(&by_ann), "after removal", "not_found"),
        ("bob", "reply", &gconv, id(&by_rem), "to a removed member's", "ok"),
        ("ann", "message.edit", &gconv, id(&by_ann), "owner edits own", "ok"),
    ];
    let mut not_found = BTreeSet::new();
    for (who, kind, conv, msg, text, want) in table {
        let c = match who {
            "ann" => &mut ann,
            "bob" => &mut bob,
            "cy" => &mut cy,
            "dee" => &mut dee,
            _ => &mut rem,
        };
        let r = match kind {
            "reply" => c.request("message.send", json!({"conversation": conv, "text": text, "reply_to": msg})).await,
            "message.edit" => c.request(kind, json!({"conversation": conv, "message_id": msg, "text": text})).await,
            _ => c.request(kind, json!({"conversation": conv, "message_id": msg})).await,
        };
        assert_eq!(outcome(&r), want, "{who} {kind} {msg} {text:.20}: {r}");
        if want == "not_found" && kind != "reply" {
            not_found.insert(s(&r["message"]));
        }
    }
    assert_eq!(not_found.len(), 1, "one error for all: {not_found:?}");
    let mut anon = Client::connect(&srv).await;
    let r = anon.request("message.edit", json!({"conversation": dconv, "message_id": id(&dm), "text": "x"})).await;
    assert_eq!(outcome(&r), "unauthorized");
    srv.stop().await;
}

/// What members see: events on every socket (the actor's other ones
/// included), history, conversation.list and change.sync built as the
/// messages read now, previews cut on a char boundary.
#[tokio::test]
async fn members_see_edits_deletes_and_replies_everywhere() {
    let srv = server().await;
    let mut ann = Client::register(&srv, "lv_ann").await;
    let mut ann2 = Client::login(&srv, "lv_ann").await;
    let mut bob = Client::register(&srv, "lv_bob").await;
    let long: String = "é".repeat(70) + &"z".repeat(30);
    let original = ann.send_dm("lv_bob", &long).await;
    let conv = s(&original["conversation_id"]);
    assert_eq!(bob.event("message.new").await["message"]["id"], original["id"]);
    ann2.event("message.new").await;
    // A reply carries the original's sender and an 80-character preview.
    let reply = bob.ok("message.send", json!({"conversation": conv, "text": "yes", "reply_to": original["id"]})).await;
    let r = &reply["message"]["reply_to"];
    assert_eq!((r["message_id"].clone(), r["from"].clone()), (original["id"].clone(), json!("lv_ann")));
    assert_eq!(s(&r["preview"]), "é".repeat(70) + &"z".repeat(10));
    assert_eq!(ann.event("message.new").await["message"]["reply_to"], *r);
    // An edit: the reply, every socket, history.
    let edited =
        ann.ok("message.edit", json!({"conversation": conv, "message_id": original["id"], "text": "short"})).await;
    assert_eq!(edited["message"]["text"], "short");
    assert!(edited["message"]["edited_at"].is_string(), "{edited}");
    for c in [&mut bob, &mut ann2] {
        let e = c.event("message.updated").await;
        assert_eq!(
            (e["message"]["id"].clone(), e["message"]["text"].clone()),
            (original["id"].clone(), json!("short"))
        );
    }
    let h = bob.ok("message.history", json!({"conversation": conv})).await;
    assert_eq!(h["messages"][1]["text"], "short");
    assert_eq!(h["messages"][0]["reply_to"]["preview"], "short", "the preview is built at read time");
    // A delete: a tombstone everywhere, the reply's preview gone.
    let gone = ann.ok("message.delete", json!({"conversation": conv, "message_id": original["id"]})).await;
    assert_eq!((gone["message"]["deleted"].clone(), gone["message"]["text"].clone()), (json!(true), json!("")));
    for c in [&mut bob, &mut ann2] {
        let e = c.event("message.deleted").await;
        assert_eq!(
            (e["message"]["id"].clone(), e["message"]["deleted"].clone()),
            (original["id"].clone(), json!(true))
        );
    }
    let h = bob.ok("message.history", json!({"conversation": conv})).await;
    assert_eq!(h["messages"].as_array().unwrap().len(), 2, "the tombstone keeps its place");
    assert_eq!((h["messages"][1]["text"].clone(), h["messages"][1]["deleted"].clone()), (json!(""), json!(true)));
    assert!(h["messages"][1].get("edited_at").is_none());
    let rv = &h["messages"][0]["reply_to"];
    assert_eq!((rv["deleted"].clone(), rv["preview"].clone()), (json!(true), json!("")));
    let list = bob.ok("conversation.list", json!({})).await;
    assert_eq!(list["conversations"][0]["last_message"]["reply_to"]["deleted"], true);
    assert_eq!(list["conversations"][0]["unread"], 1, "the tombstone is still a message above the pointer");
    let synced = bob.sync_all("0").await;
    assert!(synced.iter().any(|m| m["id"] == original["id"] && m["deleted"] == true && m["text"] == ""));
    // change.sync: the edit and the delete, each with the message as it reads now.
    let feed = bob.ok("change.sync", json!({})).await;
    let kinds: Vec<(String, String)> =
        feed["changes"].as_array().unwrap().iter().map(|c| (s(&c["kind"]), s(&c["message"]["text"]))).collect();
    assert_eq!(kinds, [("edit".into(), String::new()), ("delete".into(), String::new())]);
    assert_eq!(feed["changes"][1]["by"], "lv_ann");
    assert_eq!(feed["changes"][1]["message"]["deleted"], true);
    // Deleting again sends nothing.
    ann.ok("message.delete", json!({"conversation": conv, "message_id": original["id"]})).await;
    bob.assert_no_events().await;
    srv.stop().await;
}

/// Resumes from a position before a message that was deleted since:
/// the replayed `message.new` (and a reply's preview) carry no text.
async fn resume_redacts(
    sender: &impl common::Target,
    reader: &impl common::Target,
    resumer: &impl common::Target,
    p: &str,
) {
    let mut ann = Client::register(sender, &format!("{p}_ann")).await;
    let mut bob = Client::register(reader, &format!("{p}_bob")).await;
    let hello = ann.send_dm(&format!("{p}_bob"), "hello").await;
    let e = loop {
        let e = bob.next_event().await;
        if e["event"] == "message.new" {
            break e;
        }
    };
    let (pos, token) = (e["pos"].clone(), bob.access_token.clone());
    drop(bob);
    let conv = s(&hello["conversation_id"]);
    let secret = ann.send_dm(&format!("{p}_bob"), "a secret").await;
    let reply = ann.ok("message.send", json!({"conversation": conv, "text": "re", "reply_to": secret["id"]})).await;
    ann.ok("message.delete", json!({"conversation": conv, "message_id": secret["id"]})).await;
    let (mut bob, data) = Client::resume(resumer, &token, pos).await;
    assert_eq!(data["recovered"], true);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        seen.push(bob.next_event().await);
    }
    assert_eq!(seen[0]["event"], "message.new");
    assert_eq!(seen[0]["data"]["message"]["id"], secret["id"]);
    assert_eq!(
        (seen[0]["data"]["message"]["text"].clone(), seen[0]["data"]["message"]["deleted"].clone()),
        (json!(""), json!(true))
    );
    assert_eq!(seen[1]["data"]["message"]["id"], reply["message"]["id"]);
    assert_eq!(seen[1]["data"]["message"]["reply_to"]["preview"], "");
    assert_eq!(seen[1]["data"]["message"]["reply_to"]["deleted"], true);
    assert_eq!(seen[2]["event"], "message.deleted");
    for f in &seen {
        assert!(!f.to_string().contains("a secret"), "{f}");
    }
}

#[tokio::test]
async fn resume_never_replays_deleted_text_memory_broker() {
    let srv = server().await;
    resume_redacts(&srv, &srv, &srv, "rm").await;
    srv.stop().await;
}

/// Across a Redis cluster: edits and deletes reach the member's sockets
/// on other nodes, and resume from Redis history on a third node is redacted.
#[tokio::test]
async fn edits_and_deletes_reach_every_node_and_redis_resume_is_redacted() {
    let Some(cl) = Cluster::start().await else { return };
    let (a, b, c) = (&cl.nodes[0], &cl.nodes[1], &cl.nodes[2]);
    let mut ann = Client::register(a, "lc_ann").await;
    let mut bob_b = Client::register(b, "lc_bob").await;
    let mut bob_c = Client::login(c, "lc_bob").await;
    let m = ann.send_dm("lc_bob", "first").await;
    let conv = s(&m["conversation_id"]);
    ann.ok("message.edit", json!({"conversation": conv, "message_id": m["id"], "text": "second"})).await;
    ann.ok("message.delete", json!({"conversation": conv, "message_id": m["id"]})).await;
    for bob in [&mut bob_b, &mut bob_c] {
        assert_eq!(bob.event("message.updated").await["message"]["text"], "second");
        assert_eq!(bob.event("message.deleted").await["message"]["deleted"], true);
    }
    let g = ann.ok("group.create", json!({"title": "x", "members": ["lc_bob"]})).await;
    let g = s(&g["group"]["conversation_id"]);
    let gm = say(&mut bob_b, &g, "group text").await;
    ann.ok("message.delete", json!({"conversation": g, "message_id": gm["id"]})).await;
    assert_eq!(bob_c.event("message.deleted").await["message"]["id"], gm["id"]);
    resume_redacts(a, b, c, "rr").await;
}
