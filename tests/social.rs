//! Profiles, user search, follows, password changes and account deletion,
//! end to end over real sockets.

mod common;

use std::collections::HashSet;

use common::{Client, Ended, TestServer};
use futures_util::future::join_all;
use serde_json::{Value, json};

fn names(users: &Value) -> Vec<String> {
    users.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_owned()).collect()
}

async fn profile(c: &mut Client, username: &str) -> Value {
    c.ok("profile.get", json!({ "username": username })).await["profile"].clone()
}

#[tokio::test]
async fn every_new_kind_needs_authentication() {
    let s = TestServer::start().await;
    let mut c = Client::connect(&s).await;
    for (kind, fields) in [
        ("profile.get", json!({"username": "abc"})),
        ("profile.update", json!({"bio": "x"})),
        ("user.search", json!({"query": "a"})),
        ("follow.add", json!({"username": "abc"})),
        ("follow.remove", json!({"username": "abc"})),
        ("follow.followers", json!({"username": "abc"})),
        ("follow.following", json!({"username": "abc"})),
        ("account.password", json!({"old_password": "password123", "new_password": "password456"})),
        ("account.delete", json!({"password": "password123"})),
    ] {
        assert_eq!(c.err(kind, fields).await.0, "unauthorized", "{kind}");
    }
    s.stop().await;
}

#[tokio::test]
async fn profiles_have_defaults_update_partially_and_reach_my_other_sockets() {
    let s = TestServer::start().await;
    let mut ada = Client::register(&s, "ada").await;
    let mut ada_laptop = Client::login(&s, "ada").await;
    let mut bea = Client::register(&s, "bea").await;

    let p = profile(&mut bea, "ADA").await;
    assert_eq!(p["id"], json!(ada.user_id));
    assert_eq!(
        (p["username"].clone(), p["display_name"].clone(), p["bio"].clone()),
        (json!("ada"), json!("ada"), json!(""))
    );
    assert_eq!((p["color"].clone(), p["avatar_url"].clone()), (Value::Null, Value::Null));
    assert_eq!((p["followers"].clone(), p["following"].clone()), (json!(0), json!(0)));
    assert!(p["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(bea.err("profile.get", json!({"username": "nobody"})).await.0, "not_found");
    assert_eq!(bea.err("profile.get", json!({"username": "not a name"})).await.0, "not_found");

    let full = json!({"display_name": " Ada L. ", "bio": "maths\npoetry", "color": "#FFaa00",
                      "avatar_url": "https://img.example.com/ada.png"});
    let updated = ada.ok("profile.update", full).await["profile"].clone();
    assert_eq!(updated["display_name"], "Ada L.");
    assert_eq!(updated["bio"], "maths\npoetry");
    assert_eq!(updated["color"], "#ffaa00", "stored lowercase");
    assert_eq!(ada_laptop.event("profile.updated").await["profile"], updated);
    ada.assert_no_events().await;
    assert_eq!(profile(&mut bea, "ada").await, updated);

    // Partial: absent fields stay, null clears color and avatar_url.
    let p = ada.ok("profile.update", json!({"bio": "only bio", "color": null})).await["profile"].clone();
    assert_eq!((p["display_name"].clone(), p["bio"].clone()), (json!("Ada L."), json!("only bio")));
    assert_eq!(p["color"], Value::Null);
    assert_eq!(p["avatar_url"], "https://img.example.com/ada.png");
    assert_eq!(ada_laptop.event("profile.updated").await["profile"], p);
    let p = ada.ok("profile.update", json!({"avatar_url": null, "display_name": ""})).await["profile"].clone();
    assert_eq!((p["avatar_url"].clone(), p["display_name"].clone()), (Value::Null, json!("ada")));
    s.stop().await;
}

#[tokio::test]
async fn profile_updates_are_validated() {
    let s = TestServer::start().await;
    let mut cal = Client::register(&s, "cal").await;
    for bad in [
        json!({}),
        json!({"color": "red"}),
        json!({"color": "#12345"}),
        json!({"bio": "x".repeat(501)}),
        json!({"bio": "tab\there"}),
        json!({"avatar_url": "ftp://example.com/a.png"}),
        json!({"avatar_url": "javascript:alert(1)"}),
        json!({"avatar_url": format!("https://example.com/{}", "a".repeat(490))}),
        json!({"display_name": "x".repeat(65)}),
        json!({"bio": 5}),
    ] {
        assert_eq!(cal.err("profile.update", bad.clone()).await.0, "bad_request", "{bad}");
    }
    cal.ok("profile.update", json!({"bio": "é".repeat(500)})).await;
    assert_eq!(profile(&mut cal, "cal").await["color"], Value::Null, "failed updates changed nothing");
    s.stop().await;
}

#[tokio::test]
async fn search_matches_prefixes_literally_and_shows_public_fields_only() {
    let s = TestServer::start().await;
    let mut dan = Client::register(&s, "dan").await;
    let mut c = Client::connect(&s).await;
    for (name, display) in [("danielle", "Dani Elle"), ("zoe", "Zoe Danvers"), ("per_cent", "P"), ("perXcent", "Q")] {
        c.ok("auth.register", json!({"username": name, "password": "password123", "display_name": display})).await;
    }
    let found = dan.ok("user.search", json!({"query": " DAN "})).await["users"].clone();
    assert_eq!(names(&found), ["dan", "danielle", "zoe"], "exact match first, then by username");
    for u in found.as_array().unwrap() {
        let keys: HashSet<_> = u.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, HashSet::from(["id", "username", "display_name"]));
    }
    assert_eq!(names(&dan.ok("user.search", json!({"query": "dan", "limit": 1})).await["users"]), ["dan"]);
    assert_eq!(names(&dan.ok("user.search", json!({"query": "elle"})).await["users"]), ["danielle"]);
    assert_eq!(names(&dan.ok("user.search", json!({"query": "per_"})).await["users"]), ["per_cent"]);
    assert!(names(&dan.ok("user.search", json!({"query": "%"})).await["users"]).is_empty());
    assert!(names(&dan.ok("user.search", json!({"query": "d%"})).await["users"]).is_empty());

    // A renamed user is found by the new words only.
    dan.ok("profile.update", json!({"display_name": "Captain Hook"})).await;
    assert_eq!(names(&dan.ok("user.search", json!({"query": "capt"})).await["users"]), ["dan"]);
    for bad in [json!({"query": ""}), json!({"query": "   "}), json!({"query": "a", "limit": 51}), json!({})] {
        assert_eq!(dan.err("user.search", bad.clone()).await.0, "bad_request", "{bad}");
    }
    s.stop().await;
}

#[tokio::test]
async fn follows_are_idempotent_counted_and_announced() {
    let s = TestServer::start().await;
    let mut eve = Client::register(&s, "eve").await;
    let mut fay = Client::register(&s, "fay").await;
    eve.ok("profile.update", json!({"display_name": "Eve E"})).await;

    assert_eq!(eve.ok("follow.add", json!({"username": "FAY"})).await, json!({"following": true, "changed": true}));
    let ev = fay.event("follow.new").await;
    assert_eq!(ev["follower"], json!({"id": eve.user_id, "username": "eve", "display_name": "Eve E"}));
    assert_eq!(eve.ok("follow.add", json!({"username": "fay"})).await, json!({"following": true, "changed": false}));
    fay.assert_no_events().await; // no second event for the same follow
    assert_eq!((profile(&mut eve, "fay").await["followers"].clone()), json!(1));
    assert_eq!((profile(&mut eve, "eve").await["following"].clone()), json!(1));
    let list = fay.ok("follow.followers", json!({"username": "fay"})).await;
    assert_eq!((names(&list["users"]), list["next_after"].clone()), (vec!["eve".to_owned()], Value::Null));
    assert_eq!(names(&fay.ok("follow.following", json!({"username": "eve"})).await["users"]), ["fay"]);

    assert_eq!(eve.err("follow.add", json!({"username": "eve"})).await.0, "bad_request");
    assert_eq!(eve.err("follow.remove", json!({"username": "eve"})).await.0, "bad_request");
    assert_eq!(eve.err("follow.add", json!({"username": "ghost"})).await.0, "not_found");
    assert_eq!(eve.err("follow.remove", json!({"username": "ghost"})).await.0, "not_found");
    assert_eq!(eve.err("follow.followers", json!({"username": "ghost"})).await.0, "not_found");
    assert_eq!(eve.err("follow.followers", json!({"username": "fay", "limit": 101})).await.0, "bad_request");
    assert_eq!(eve.err("follow.following", json!({"username": "fay", "after": "abc"})).await.0, "bad_request");

    assert_eq!(eve.ok("follow.remove", json!({"username": "fay"})).await, json!({"following": false, "changed": true}));
    assert_eq!(
        eve.ok("follow.remove", json!({"username": "fay"})).await,
        json!({"following": false, "changed": false})
    );
    assert_eq!(profile(&mut eve, "fay").await["followers"], json!(0));
    assert_eq!(profile(&mut eve, "eve").await["following"], json!(0));
    fay.assert_no_events().await;
    s.stop().await;
}

#[tokio::test]
async fn follower_lists_page_over_hundreds_each_user_once() {
    let s = TestServer::start_with(|c| {
        c.rate_burst = 10_000.0;
        c.user_writes_burst = 10_000.0;
    })
    .await;
    let star = Client::register(&s, "star").await;
    let token = star.access_token.clone();
    drop(star); // offline while the fans arrive
    let fan = |i: usize| {
        let s = &s;
        async move {
            let mut c = Client::register(s, &format!("fan{i:03}")).await;
            c.ok("follow.add", json!({"username": "star"})).await;
            c.username
        }
    };
    let mut fans = Vec::new();
    for chunk in (0..300).collect::<Vec<_>>().chunks(25) {
        fans.extend(join_all(chunk.iter().map(|i| fan(*i))).await);
    }

    let mut star = Client::with_token(&s, &token).await;
    for (kind, who) in [("follow.followers", "star"), ("follow.following", "fan042")] {
        let mut seen = Vec::new();
        let mut after = Value::Null;
        loop {
            let page = star.ok(kind, json!({"username": who, "limit": 37, "after": after})).await;
            assert!(page["users"].as_array().unwrap().len() <= 37);
            seen.extend(names(&page["users"]));
            after = page["next_after"].clone();
            if after.is_null() {
                break;
            }
        }
        if who == "star" {
            assert_eq!(seen.len(), 300, "each follower exactly once");
            assert_eq!(seen.iter().collect::<HashSet<_>>(), fans.iter().collect::<HashSet<_>>());
        } else {
            assert_eq!(seen, ["star"]);
        }
    }
    assert_eq!(profile(&mut star, "star").await["followers"], json!(300));
    let default_page = star.ok("follow.followers", json!({"username": "star"})).await;
    assert_eq!(default_page["users"].as_array().unwrap().len(), 50);
    s.stop().await;
}

#[tokio::test]
async fn a_password_change_ends_my_other_sessions() {
    let s = TestServer::start().await;
    let mut gil = Client::register(&s, "gil").await;
    let mut same_session = Client::with_token(&s, &gil.access_token).await;
    let mut other_session = Client::login(&s, "gil").await;
    let other_token = other_session.access_token.clone();

    let change = |old: &str, new: &str| json!({"old_password": old, "new_password": new});
    assert_eq!(gil.err("account.password", change("wrong-password", "newpass456")).await.0, "forbidden");
    assert_eq!(gil.err("account.password", change("password123", "short")).await.0, "bad_request");
    other_session.ok("ping", json!({})).await;

    assert_eq!(gil.ok("account.password", change("password123", "newpass456")).await, json!({}));
    assert_eq!(other_session.ended().await, Ended::Close(4500));
    same_session.ok("profile.get", json!({"username": "gil"})).await;
    gil.ok("profile.get", json!({"username": "gil"})).await;

    let mut c = Client::connect(&s).await;
    assert_eq!(c.err("auth.token", json!({"token": other_token})).await.0, "unauthorized");
    let (code, _) = c.err("auth.login", json!({"username": "gil", "password": "password123"})).await;
    assert_eq!(code, "unauthorized", "the old password no longer works");
    c.ok("auth.login", json!({"username": "gil", "password": "newpass456"})).await;
    Client::with_token(&s, &gil.access_token).await; // this session lives on
    s.stop().await;
}

#[tokio::test]
async fn deleting_an_account_removes_it_everywhere_and_frees_the_name() {
    let s = TestServer::start().await;
    let mut hal = Client::register(&s, "hal").await;
    let mut hal_phone = Client::login(&s, "hal").await;
    let mut ivy = Client::register(&s, "ivy").await;
    let mut jon = Client::register(&s, "jon").await;
    let (old_id, old_token) = (hal.user_id.clone(), hal.access_token.clone());
    let old_refresh = hal.refresh_token.clone();
    hal.ok("follow.add", json!({"username": "ivy"})).await;
    ivy.ok("follow.add", json!({"username": "hal"})).await;
    jon.ok("follow.add", json!({"username": "ivy"})).await;
    hal.send_dm("ivy", "from hal").await;
    ivy.send_dm("hal", "from ivy").await;
    ivy.send_dm("jon", "to jon").await;
    assert_eq!(profile(&mut ivy, "ivy").await["followers"], json!(2));

    assert_eq!(hal.err("account.delete", json!({"password": "wrong-password"})).await.0, "forbidden");
    assert_eq!(hal.ok("account.delete", json!({"password": "password123"})).await, json!({}));
    assert_eq!(hal.ended().await, Ended::Close(4500));
    assert_eq!(hal_phone.ended().await, Ended::Close(4500));

    // Others' counts and lists drop hal; every conversation with hal is gone.
    let p = profile(&mut ivy, "ivy").await;
    assert_eq!((p["followers"].clone(), p["following"].clone()), (json!(1), json!(0)));
    assert_eq!(names(&ivy.ok("follow.followers", json!({"username": "ivy"})).await["users"]), ["jon"]);
    assert_eq!(ivy.err("profile.get", json!({"username": "hal"})).await.0, "not_found");
    assert_eq!(ivy.err("message.history", json!({"with": "hal"})).await.0, "not_found");
    assert!(ivy.ok("user.search", json!({"query": "hal"})).await["users"].as_array().unwrap().is_empty());
    let synced = ivy.ok("message.sync", json!({"since": "0"})).await["messages"].clone();
    let texts: Vec<_> = synced.as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["to jon"], "the conversation with hal is gone, both directions");
    let convs = ivy.ok("conversation.list", json!({})).await["conversations"].clone();
    assert_eq!(convs.as_array().unwrap().len(), 1);
    assert_eq!(convs[0]["with"]["username"], "jon");

    // The name is free; the old tokens do not open the new account.
    let mut new_hal = Client::register(&s, "HAL").await;
    assert_ne!(new_hal.user_id, old_id, "a new id, never the old one");
    let mut c = Client::connect(&s).await;
    assert_eq!(c.err("auth.token", json!({"token": old_token})).await.0, "unauthorized");
    assert_eq!(c.err("auth.refresh", json!({"refresh_token": old_refresh})).await.0, "unauthorized");
    let p = profile(&mut new_hal, "hal").await;
    assert_eq!((p["followers"].clone(), p["following"].clone(), p["bio"].clone()), (json!(0), json!(0), json!("")));
    let hist = new_hal.ok("message.history", json!({"with": "ivy"})).await;
    assert!(hist["messages"].as_array().unwrap().is_empty(), "a new account starts with no history");
    s.stop().await;
}
