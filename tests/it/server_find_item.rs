//! The reference server's FindItem: what a client (and the suite's
//! AwaitDelivery) uses to see that sent mail has arrived.

use crate::support::server as server_support;

use server_support::*;

fn find(folder_xml: &str, restriction: &str, shape: &str) -> String {
    format!(
        "<m:FindItem Traversal=\"Shallow\"><m:ItemShape><t:BaseShape>{shape}</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI=\"item:Subject\"/></t:AdditionalProperties></m:ItemShape>{restriction}<m:ParentFolderIds>{folder_xml}</m:ParentFolderIds></m:FindItem>"
    )
}

fn contains(value: &str, mode: &str, comparison: &str) -> String {
    format!(
        "<m:Restriction><t:Contains ContainmentMode=\"{mode}\" ContainmentComparison=\"{comparison}\"><t:FieldURI FieldURI=\"item:Subject\"/><t:Constant Value=\"{value}\"/></t:Contains></m:Restriction>"
    )
}

#[tokio::test]
async fn find_item_lists_delivered_mail_with_subjects_newest_first() {
    let s = server().await;
    let alice = Client::alice(&s);
    let inbox = distinguished("inbox");
    let empty = alice.op(&find(&inbox, "", "IdOnly")).await;
    assert_eq!(empty.code(), "NoError", "{}", empty.body);
    assert_eq!(empty.one("//m:RootFolder/@TotalItemsInView"), "0");
    assert_eq!(empty.one("//m:RootFolder/@IncludesLastItemInRange"), "true");

    for subject in ["Report one", "report two", "other"] {
        let a = alice.send(&["alice@example.com"], subject).await;
        assert_eq!(a.code(), "NoError", "{}", a.body);
    }
    let all = alice.op(&find(&inbox, "", "IdOnly")).await;
    assert_eq!(
        all.all("//m:RootFolder/t:Items/t:Message/t:Subject"),
        ["other", "report two", "Report one"]
    );
    assert_eq!(all.all("//t:Message/t:ItemId/@Id").len(), 3);

    let some = alice
        .op(&find(
            &inbox,
            &contains("REPORT", "Substring", "IgnoreCase"),
            "IdOnly",
        ))
        .await;
    assert_eq!(some.one("//m:RootFolder/@TotalItemsInView"), "2");
    assert_eq!(
        some.all("//t:Message/t:Subject"),
        ["report two", "Report one"]
    );
    let exact = alice
        .op(&find(
            &inbox,
            &contains("report", "Prefixed", "Exact"),
            "IdOnly",
        ))
        .await;
    assert_eq!(exact.all("//t:Message/t:Subject"), ["report two"]);

    // The ids are those GetItem and the events know.
    let id = some.one("//t:Message/t:ItemId/@Id");
    let got = alice
        .op(&format!(
            "<m:GetItem><m:ItemShape><t:BaseShape>Default</t:BaseShape></m:ItemShape><m:ItemIds><t:ItemId Id=\"{id}\"/></m:ItemIds></m:GetItem>"
        ))
        .await;
    assert_eq!(got.one("//t:Subject"), "report two");

    // Bob's Inbox is his own.
    let bob = Client::bob(&s).op(&find(&inbox, "", "IdOnly")).await;
    assert_eq!(bob.one("//m:RootFolder/@TotalItemsInView"), "0");
}

#[tokio::test]
async fn find_item_errors_are_exchange_shaped() {
    let s = server().await;
    let alice = Client::alice(&s);
    let no_traversal = alice
        .op("<m:FindItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ParentFolderIds><t:DistinguishedFolderId Id=\"inbox\"/></m:ParentFolderIds></m:FindItem>")
        .await;
    assert_eq!(no_traversal.status, 500);
    assert_eq!(no_traversal.fault_code(), "ErrorSchemaValidation");
    let unknown = alice
        .op(&find(&folder_id("AAMkbm90LWFuLWlk"), "", "IdOnly"))
        .await;
    assert_eq!(unknown.status, 200);
    assert_ne!(unknown.code(), "NoError", "{}", unknown.body);
    let unsupported = alice
        .op(&find(
            &distinguished("inbox"),
            "<m:Restriction><t:Exists><t:FieldURI FieldURI=\"item:Subject\"/></t:Exists></m:Restriction>",
            "IdOnly",
        ))
        .await;
    assert_eq!(unsupported.code(), "ErrorInvalidOperation");
}
