//! The reference server over real HTTP: item and folder operations, the
//! events they log, and pull subscriptions (Subscribe, GetEvents, Unsubscribe).

use crate::support::server as server_support;

use std::time::Duration;

use ews_proto::ews::{
    EventKind, FolderRef, FolderScope, ResponseCode, SubscribeRequest, SubscriptionKind,
};
use ews_server::{ServerConfig, start};
use server_support::*;

/// A folder of its own under the inbox and a pull subscription on it.
async fn watched_folder(c: &Client, name: &str) -> (String, String, String) {
    let f = c.create_folder(&distinguished("inbox"), name).await;
    let (id, wm) = c.pull(listed(&[&f]), ALL_KINDS, 10).await;
    (f, id, wm)
}

/// (kind, object id, parent id) of every event after `wm`.
async fn events(c: &Client, id: &str, wm: &str) -> Vec<(EventKind, String, String)> {
    c.notification(id, wm)
        .await
        .events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.object
                    .as_ref()
                    .map(|o| o.id().id.clone())
                    .unwrap_or_default(),
                e.parent_folder_id
                    .as_ref()
                    .map(|p| p.id.clone())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn item_operations_answer_and_change_ids() {
    let s = server().await;
    let c = Client::alice(&s);
    let f = c
        .create_folder(&distinguished("msgfolderroot"), "Work")
        .await;
    let ids = c.save_messages(&folder_id(&f), 1).await;

    let got = c.op(&format!("<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:GetItem>", ids[0])).await;
    assert_eq!(got.code(), "NoError", "{}", got.body);
    assert_eq!(got.one("//t:Message/t:Subject"), "m0");
    assert_eq!(got.one("//t:Message/t:IsRead"), "false");
    assert_eq!(got.one("//t:Message/t:ParentFolderId/@Id"), f);
    let ck = got.one("//t:Message/t:ItemId/@ChangeKey");

    let upd = c.op(&format!("<m:UpdateItem MessageDisposition=\"SaveOnly\" ConflictResolution=\"AutoResolve\"><m:ItemChanges><t:ItemChange><t:ItemId Id=\"{}\" ChangeKey=\"{ck}\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"message:IsRead\"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>", ids[0])).await;
    assert_eq!(upd.code(), "NoError", "{}", upd.body);
    assert_ne!(
        upd.one("//t:ItemId/@ChangeKey"),
        ck,
        "the ChangeKey changes on update"
    );
    assert_eq!(upd.one("//m:ConflictResults/t:Count"), "0");

    let mv = c.op(&format!("<m:MoveItem><m:ToFolderId>{}</m:ToFolderId><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:MoveItem>", distinguished("drafts"), ids[0])).await;
    assert_eq!(mv.code(), "NoError", "{}", mv.body);
    let moved = mv.one("//m:Items/t:Message/t:ItemId/@Id");
    assert_ne!(moved, ids[0], "a moved item gets a new id");
    let old = c
        .op(&format!(
            "<m:GetItem><m:ItemShape/><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:GetItem>",
            ids[0]
        ))
        .await;
    assert_eq!(old.code(), "ErrorItemNotFound");

    let cp = c.op(&format!("<m:CopyItem><m:ToFolderId>{}</m:ToFolderId><m:ItemIds><t:ItemId Id=\"{moved}\"/></m:ItemIds></m:CopyItem>", folder_id(&f))).await;
    assert_eq!(cp.code(), "NoError", "{}", cp.body);
    let copy = cp.one("//t:ItemId/@Id");
    assert_ne!(copy, moved);

    for (how, id) in [("HardDelete", &copy), ("MoveToDeletedItems", &moved)] {
        let d = c.op(&format!("<m:DeleteItem DeleteType=\"{how}\"><m:ItemIds><t:ItemId Id=\"{id}\"/></m:ItemIds></m:DeleteItem>")).await;
        assert_eq!(d.code(), "NoError", "{how}: {}", d.body);
        assert_eq!(
            d.all("//m:DeleteItemResponseMessage/@ResponseClass"),
            ["Success"]
        );
    }
    let trash = c
        .op(&format!(
            "<m:GetFolder><m:FolderShape/><m:FolderIds>{}</m:FolderIds></m:GetFolder>",
            distinguished("deleteditems")
        ))
        .await;
    assert_eq!(trash.one("//t:Folder/t:TotalCount"), "1");
}

#[tokio::test]
async fn item_and_folder_errors() {
    let s = server().await;
    let alice = Client::alice(&s);
    let bob = Client::bob(&s);
    let get = |id: &str| {
        format!(
            "<m:GetItem><m:ItemShape/><m:ItemIds><t:ItemId Id=\"{id}\"/></m:ItemIds></m:GetItem>"
        )
    };
    assert_eq!(
        alice.op(&get("not-an-id")).await.code(),
        "ErrorInvalidIdMalformed"
    );
    let ids = alice.save_messages(&distinguished("drafts"), 1).await;
    assert_eq!(bob.op(&get(&ids[0])).await.code(), "ErrorAccessDenied");
    alice.op(&format!("<m:DeleteItem DeleteType=\"HardDelete\"><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:DeleteItem>", ids[0])).await;
    assert_eq!(alice.op(&get(&ids[0])).await.code(), "ErrorItemNotFound");

    let f = alice.create_folder(&distinguished("inbox"), "Dup").await;
    let again = alice.op(&format!("<m:CreateFolder><m:ParentFolderId>{}</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Dup</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>", distinguished("inbox"))).await;
    assert_eq!(again.code(), "ErrorFolderExists");
    let del = |r: &str| {
        format!(
            "<m:DeleteFolder DeleteType=\"HardDelete\"><m:FolderIds>{r}</m:FolderIds></m:DeleteFolder>"
        )
    };
    assert_eq!(
        alice.op(&del(&distinguished("inbox"))).await.code(),
        "ErrorDeleteDistinguishedFolder"
    );
    assert_eq!(
        bob.op(&del(&folder_id(&f))).await.code(),
        "ErrorAccessDenied"
    );
    assert_eq!(alice.op(&del(&folder_id(&f))).await.code(), "NoError");
    assert_eq!(
        alice.op(&del(&folder_id(&f))).await.code(),
        "ErrorFolderNotFound"
    );
    let other = "<t:DistinguishedFolderId Id=\"inbox\"><t:Mailbox><t:EmailAddress>bob@example.com</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>";
    let gf = alice
        .op(&format!(
            "<m:GetFolder><m:FolderShape/><m:FolderIds>{other}</m:FolderIds></m:GetFolder>"
        ))
        .await;
    assert_eq!(gf.code(), "ErrorAccessDenied");
    let unimplemented = alice.op("<m:FindFolder Traversal=\"Shallow\"/>").await;
    assert_eq!(unimplemented.status, 200);
    assert_eq!(unimplemented.code(), "ErrorInvalidOperation");
    assert_eq!(
        unimplemented.one("//m:FindFolderResponseMessage/@ResponseClass"),
        "Error"
    );
}

#[tokio::test]
async fn get_folder_serves_root_then_inbox_like_exchangelib_asks() {
    let s = server().await;
    let c = Client::alice(&s);
    let shape = "<m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>";
    let root = c
        .op(&format!(
            "<m:GetFolder>{shape}<m:FolderIds>{}</m:FolderIds></m:GetFolder>",
            distinguished("root")
        ))
        .await;
    assert_eq!(root.code(), "NoError", "{}", root.body);
    let root_id = root.one("//t:Folder/t:FolderId/@Id");
    let inbox = c
        .op(&format!(
            "<m:GetFolder>{shape}<m:FolderIds>{}</m:FolderIds></m:GetFolder>",
            distinguished("inbox")
        ))
        .await;
    for field in [
        "FolderId",
        "ParentFolderId",
        "FolderClass",
        "DisplayName",
        "TotalCount",
        "ChildFolderCount",
        "UnreadCount",
    ] {
        assert_eq!(
            inbox.all(&format!("//t:Folder/t:{field}")).len()
                + inbox.all(&format!("//t:Folder/t:{field}/@Id")).len().min(1),
            if field.ends_with("Id") { 2 } else { 1 },
            "{field}: {}",
            inbox.body
        );
    }
    assert_eq!(inbox.one("//t:Folder/t:DisplayName"), "Inbox");
    assert_ne!(
        inbox.one("//t:Folder/t:ParentFolderId/@Id"),
        root_id,
        "the inbox sits under msgfolderroot"
    );
    assert_eq!(inbox.one("//t:Folder/t:FolderClass"), "IPF.Note");
}

#[tokio::test]
async fn save_logs_created_and_folder_modified() {
    let s = server().await;
    let c = Client::alice(&s);
    let (f, id, wm) = watched_folder(&c, "Saves").await;
    let item = c.save_messages(&folder_id(&f), 1).await;
    let ev = events(&c, &id, &wm).await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(
        (ev[0].0, ev[0].1.as_str(), ev[0].2.as_str()),
        (EventKind::Created, item[0].as_str(), f.as_str())
    );
    assert_eq!(
        (ev[1].0, ev[1].1.as_str()),
        (EventKind::Modified, f.as_str())
    );
    let r = c.get_events(&id, &wm).await;
    let n = r.notification.expect("notification");
    let modified = &n.events[1];
    assert_eq!(modified.unread_count, Some(1));
    for e in &n.events {
        let ts = e.timestamp.as_deref().expect("a TimeStamp");
        assert!(
            ews_proto::ews::time::is_xs_datetime(ts) && !ts.contains('.'),
            "{ts}"
        );
        assert!(e.watermark.as_deref().is_some_and(|w| !w.is_empty()));
    }
}

#[tokio::test]
async fn event_shapes_of_update_move_copy_and_deletes() {
    let s = server().await;
    let c = Client::alice(&s);
    let (f, id, wm) = watched_folder(&c, "Shapes").await;
    let items = c.save_messages(&folder_id(&f), 4).await;
    let head = c.head(&id, &wm).await;

    // UpdateItem: Modified(item) + Modified(folder, UnreadCount down by one).
    c.op(&format!("<m:UpdateItem><m:ItemChanges><t:ItemChange><t:ItemId Id=\"{}\"/><t:Updates><t:SetItemField><t:FieldURI FieldURI=\"message:IsRead\"/><t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>", items[0])).await;
    let r = c.notification(&id, &head).await;
    assert_eq!(kinds(&r), [EventKind::Modified, EventKind::Modified]);
    assert_eq!(r.events[1].unread_count, Some(3));
    let head = r.last_watermark().expect("wm").to_string();

    // MoveItem out: Moved(new id, new parent, old id, old parent) + Modified(old) + Modified(new).
    let mv = c.op(&format!("<m:MoveItem><m:ToFolderId>{}</m:ToFolderId><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:MoveItem>", distinguished("drafts"), items[1])).await;
    let new_id = mv.one("//m:Items/t:Message/t:ItemId/@Id");
    let r = c.notification(&id, &head).await;
    let moved = &r.events[0];
    assert_eq!(moved.kind, EventKind::Moved);
    assert_eq!(
        moved.object.as_ref().map(|o| o.id().id.clone()),
        Some(new_id)
    );
    assert_eq!(
        moved.old_object.as_ref().map(|o| o.id().id.clone()),
        Some(items[1].clone())
    );
    assert_eq!(
        moved.old_parent_folder_id.as_ref().map(|p| p.id.clone()),
        Some(f.clone())
    );
    assert_ne!(moved.parent_folder_id, moved.old_parent_folder_id);
    // Modified(drafts) is not in this subscription's folders; Modified(old) is.
    assert_eq!(r.events.len(), 2, "Moved + Modified(old): {:?}", r.events);
    let head = r.last_watermark().expect("wm").to_string();

    // CopyItem in: Copied(new, target) + Modified(target).
    c.op(&format!("<m:CopyItem><m:ToFolderId>{}</m:ToFolderId><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:CopyItem>", folder_id(&f), items[2])).await;
    let r = c.notification(&id, &head).await;
    assert_eq!(kinds(&r), [EventKind::Copied, EventKind::Modified]);
    assert_eq!(
        r.events[0].old_object.as_ref().map(|o| o.id().id.clone()),
        Some(items[2].clone())
    );
    let head = r.last_watermark().expect("wm").to_string();

    // HardDelete: Deleted(item, original parent) + Modified(parent).
    c.op(&format!("<m:DeleteItem DeleteType=\"HardDelete\"><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:DeleteItem>", items[2])).await;
    let ev = events(&c, &id, &head).await;
    assert_eq!(
        ev.iter().map(|e| e.0).collect::<Vec<_>>(),
        [EventKind::Deleted, EventKind::Modified]
    );
    assert_eq!(
        (ev[0].1.as_str(), ev[0].2.as_str()),
        (items[2].as_str(), f.as_str())
    );
    let head = c.head(&id, &head).await;

    // SoftDelete: Moved(to the dumpster, old parent = f) + Modified(f).
    c.op(&format!("<m:DeleteItem DeleteType=\"SoftDelete\"><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:DeleteItem>", items[3])).await;
    let r = c.notification(&id, &head).await;
    assert_eq!(kinds(&r), [EventKind::Moved, EventKind::Modified]);
    assert_eq!(
        r.events[0]
            .old_parent_folder_id
            .as_ref()
            .map(|p| p.id.clone()),
        Some(f.clone())
    );
    let head = r.last_watermark().expect("wm").to_string();

    // MoveToDeletedItems: Moved(→ deleteditems) + Modified(old) + Modified(deleteditems);
    // an all-folders subscription sees both folder events.
    let (all, all_wm) = c.pull(FolderScope::AllFolders, ALL_KINDS, 10).await;
    c.op(&format!("<m:DeleteItem DeleteType=\"MoveToDeletedItems\"><m:ItemIds><t:ItemId Id=\"{}\"/></m:ItemIds></m:DeleteItem>", items[0])).await;
    let r = c.notification(&id, &head).await;
    assert_eq!(kinds(&r), [EventKind::Moved, EventKind::Modified]);
    let r = c.notification(&all, &all_wm).await;
    assert_eq!(
        kinds(&r),
        [EventKind::Moved, EventKind::Modified, EventKind::Modified]
    );
}

#[tokio::test]
async fn folder_events_and_delivery_events() {
    let s = server().await;
    let alice = Client::alice(&s);
    let bob = Client::bob(&s);
    let (id, wm) = alice.pull(inbox_scope(), ALL_KINDS, 10).await;
    // CreateFolder under the inbox: Created(folder, inbox) + Modified(inbox).
    let f = alice.create_folder(&distinguished("inbox"), "Sub").await;
    // DeleteFolder MoveToDeletedItems: Moved(folder) + Modified(inbox) (+ Modified(deleteditems), not watched here).
    alice.op(&format!("<m:DeleteFolder DeleteType=\"MoveToDeletedItems\"><m:FolderIds>{}</m:FolderIds></m:DeleteFolder>", folder_id(&f))).await;
    // Bob sends Alice mail: Created + NewMail + Modified(inbox).
    let sent = bob
        .send(&["alice@example.com", "nobody@example.com"], "hi")
        .await;
    assert_eq!(sent.code(), "NoError", "{}", sent.body);
    let r = alice.notification(&id, &wm).await;
    use EventKind::*;
    assert_eq!(
        kinds(&r),
        [
            Created, Modified, Moved, Modified, Created, NewMail, Modified
        ],
        "{:?}",
        r.events
    );
    assert!(r.events[0].object.as_ref().is_some_and(|o| o.is_folder()));
    assert_eq!(r.events[6].unread_count, Some(1));
    // Bob's own mailbox saw nothing: SendOnly saves no copy.
    let (bid, bwm) = bob.pull(FolderScope::AllFolders, ALL_KINDS, 10).await;
    let idle = bob.notification(&bid, &bwm).await;
    assert_eq!(kinds(&idle), [Status]);
    // SendAndSaveCopy: a copy in Bob's sentitems.
    let r = bob.op("<m:CreateItem MessageDisposition=\"SendAndSaveCopy\"><m:Items><t:Message><t:Subject>x</t:Subject><t:ToRecipients><t:Mailbox><t:EmailAddress>alice@example.com</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message></m:Items></m:CreateItem>").await;
    assert_eq!(r.code(), "NoError");
    let mine = bob.notification(&bid, &bwm).await;
    assert_eq!(kinds(&mine), [Created, Modified]);
    // A SaveOnly into the Inbox is not arrived mail: no NewMailEvent (as on Exchange).
    let before = alice.head(&id, &wm).await;
    alice.save_messages(&distinguished("inbox"), 1).await;
    let saved = alice.notification(&id, &before).await;
    assert_eq!(kinds(&saved), [Created, Modified]);
}

#[tokio::test]
async fn a_hundred_and_twenty_events_come_in_batches_of_fifty() {
    let s = server().await;
    let c = Client::alice(&s);
    let f = c.create_folder(&distinguished("inbox"), "Bulk").await;
    let (id, wm) = c.pull(listed(&[&f]), &[EventKind::Created], 10).await;
    let created = c.save_messages(&folder_id(&f), 120).await;
    let mut seen = Vec::new();
    let mut wm = wm;
    let mut sizes = Vec::new();
    loop {
        let n = c.notification(&id, &wm).await;
        assert_eq!(n.previous_watermark.as_deref(), Some(wm.as_str()));
        sizes.push((n.events.len(), n.more_events));
        seen.extend(n.events.iter().map(|e| {
            e.object
                .as_ref()
                .map(|o| o.id().id.clone())
                .unwrap_or_default()
        }));
        wm = n.last_watermark().expect("a watermark").to_string();
        if n.more_events != Some(true) {
            break;
        }
    }
    assert_eq!(
        sizes,
        [(50, Some(true)), (50, Some(true)), (20, Some(false))]
    );
    assert_eq!(seen, created, "every item once, in order");
    // Idle now: one StatusEvent carrying the sent watermark.
    let idle = c.notification(&id, &wm).await;
    assert_eq!(idle.events.len(), 1);
    assert_eq!(idle.events[0].kind, EventKind::Status);
    assert_eq!(idle.events[0].watermark.as_deref(), Some(wm.as_str()));
    assert_eq!(idle.previous_watermark.as_deref(), Some(wm.as_str()));
    assert_eq!(idle.more_events, Some(false));
}

#[tokio::test]
async fn filters_by_folder_and_event_type() {
    let s = server().await;
    let c = Client::alice(&s);
    let a = c.create_folder(&distinguished("inbox"), "A").await;
    let b = c.create_folder(&distinguished("inbox"), "B").await;
    let (id, wm) = c.pull(listed(&[&a]), &[EventKind::Created], 10).await;
    c.save_messages(&folder_id(&b), 3).await;
    let mine = c.save_messages(&folder_id(&a), 1).await;
    let ev = events(&c, &id, &wm).await;
    assert_eq!(ev.len(), 1, "only Created in folder A: {ev:?}");
    assert_eq!(ev[0].1, mine[0]);
}

#[tokio::test]
async fn resume_from_a_watermark_gives_a_new_id_and_replays() {
    let s = server().await;
    let c = Client::alice(&s);
    let f = c.create_folder(&distinguished("inbox"), "Resume").await;
    let (first, wm0) = c.pull(listed(&[&f]), &[EventKind::Created], 10).await;
    let items = c.save_messages(&folder_id(&f), 3).await;
    let n = c.notification(&first, &wm0).await;
    let after_first = n.events[0].watermark.clone().expect("wm");
    // exchangelib writes m:Watermark in Subscribe; the server accepts it.
    let a = c.op(&format!("<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>{}</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType></t:EventTypes><m:Watermark>{after_first}</m:Watermark><t:Timeout>10</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>", folder_id(&f))).await;
    assert_eq!(a.code(), "NoError", "{}", a.body);
    let second = a.one("//m:SubscriptionId");
    assert_ne!(second, first);
    assert_eq!(a.one("//m:Watermark"), after_first);
    let replay = events(&c, &second, &after_first).await;
    assert_eq!(
        replay.iter().map(|e| e.1.clone()).collect::<Vec<_>>(),
        items[1..].to_vec()
    );
    // R40 decision: re-sending an older watermark re-delivers from it.
    let again = events(&c, &first, &wm0).await;
    assert_eq!(again.len(), 3);
    // Unknown watermark in Subscribe and GetEvents.
    let bad = c
        .subscribe(SubscribeRequest {
            kind: SubscriptionKind::Pull { timeout: 5 },
            scope: inbox_scope(),
            event_types: vec![EventKind::Created],
            watermark: Some("AQAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
        })
        .await;
    assert_eq!(bad.message.code, Some(ResponseCode::ErrorInvalidWatermark));
    let r = c.get_events(&first, "garbage").await;
    assert_eq!(r.message.code, Some(ResponseCode::ErrorInvalidWatermark));
    // Bob's watermark is foreign to Alice's mailbox.
    let (_, bob_wm) = Client::bob(&s)
        .pull(FolderScope::AllFolders, ALL_KINDS, 5)
        .await;
    assert_eq!(
        c.get_events(&first, &bob_wm).await.message.code,
        Some(ResponseCode::ErrorInvalidWatermark)
    );
}

#[tokio::test]
async fn get_events_and_unsubscribe_errors() {
    let s = server().await;
    let alice = Client::alice(&s);
    let bob = Client::bob(&s);
    let (id, wm) = alice.pull(inbox_scope(), ALL_KINDS, 10).await;
    assert_eq!(
        bob.get_events(&id, &wm).await.message.code,
        Some(ResponseCode::ErrorSubscriptionAccessDenied)
    );
    assert_eq!(
        bob.unsubscribe(&id).await.message.code,
        Some(ResponseCode::ErrorSubscriptionAccessDenied)
    );
    assert_eq!(
        alice.get_events("bm90LWEtc3Vi", &wm).await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
    assert_eq!(
        alice.unsubscribe("bm90LWEtc3Vi").await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
    let ok = alice.unsubscribe(&id).await;
    assert!(ok.message.is_success(), "{ok:?}");
    assert_eq!(ok.message.code, Some(ResponseCode::NoError));
    assert_eq!(
        alice.get_events(&id, &wm).await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
    assert_eq!(
        alice.unsubscribe(&id).await.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
    let err = alice.get_events("bm90LWEtc3Vi", &wm).await;
    assert_eq!(err.message.class, ews_proto::ews::ResponseClass::Error);
    assert_eq!(err.message.descriptive_link_key, Some(0));
    assert!(err.notification.is_none());
}

#[tokio::test]
async fn subscribe_errors() {
    let config = ServerConfig {
        max_subscriptions_per_user: 2,
        ..ServerConfig::default()
    };
    let s = start(config).await.expect("starts");
    let c = Client::alice(&s);
    let bob_inbox = FolderScope::Listed(vec![FolderRef::Distinguished {
        id: "inbox".into(),
        mailbox: Some("bob@example.com".into()),
    }]);
    let r = c
        .subscribe(SubscribeRequest {
            kind: SubscriptionKind::Pull { timeout: 5 },
            scope: bob_inbox,
            event_types: vec![EventKind::NewMail],
            watermark: None,
        })
        .await;
    assert_eq!(
        r.message.code,
        Some(ResponseCode::ErrorSubscriptionDelegateAccessNotSupported)
    );
    assert!(r.subscription_id.is_none());
    let unknown = c.op("<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id=\"AAMkRgAAAAAAAAAAAAAAAAAAAAA=\"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>").await;
    assert_eq!(unknown.code(), "ErrorFolderNotFound", "{}", unknown.body);
    let malformed = c.op("<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds><t:FolderId Id=\"%%%\"/></t:FolderIds><t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>5</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>").await;
    assert_eq!(malformed.code(), "ErrorInvalidIdMalformed");
    c.pull(inbox_scope(), ALL_KINDS, 5).await;
    c.pull(FolderScope::AllFolders, ALL_KINDS, 5).await;
    let third = c
        .subscribe(SubscribeRequest {
            kind: SubscriptionKind::Pull { timeout: 5 },
            scope: FolderScope::Unspecified,
            event_types: vec![EventKind::NewMail],
            watermark: None,
        })
        .await;
    assert_eq!(
        third.message.code,
        Some(ResponseCode::ErrorExceededSubscriptionCount)
    );
    // The limit is per user.
    Client::bob(&s)
        .pull(FolderScope::Unspecified, ALL_KINDS, 5)
        .await;
}

#[tokio::test]
async fn pull_subscriptions_expire_unless_polled() {
    let minute = Duration::from_millis(400);
    let s = server_with_minute(minute).await;
    let c = Client::alice(&s);
    let (kept, kept_wm) = c.pull(inbox_scope(), ALL_KINDS, 2).await;
    let (dropped, dropped_wm) = c.pull(inbox_scope(), ALL_KINDS, 1).await;
    // Poll `kept` every half minute for three minutes; never poll `dropped`.
    for _ in 0..6 {
        tokio::time::sleep(minute / 2).await;
        let r = c.get_events(&kept, &kept_wm).await;
        assert!(r.message.is_success(), "a polled subscription stays: {r:?}");
    }
    let r = c.get_events(&dropped, &dropped_wm).await;
    assert_eq!(
        r.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound)
    );
    tokio::time::sleep(minute * 3).await;
    let r = c.get_events(&kept, &kept_wm).await;
    assert_eq!(
        r.message.code,
        Some(ResponseCode::ErrorSubscriptionNotFound),
        "expired after 2 idle minutes"
    );
}
