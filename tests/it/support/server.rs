//! Helpers shared by the reference-server tests: a started server, a
//! client that speaks EWS to it through the harness's one EWS session
//! (`client::session::Session`, over real HTTP), and readers for answers.
//! `http` stays for the tests that break HTTP itself on purpose.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;

use ews_conformance::client::auth::Auth;
use ews_conformance::client::session::Session;
use ews_conformance::client::transport::{BodyStream, Transport, TransportConfig};

use ews_proto::ews::envelope::{RequestHeader, open, request};
use ews_proto::ews::{
    EventKind, FolderRef, FolderScope, GetEventsRequest, GetEventsResponse, Notification,
    SubscribeRequest, SubscribeResponse, SubscriptionKind, UnsubscribeRequest, UnsubscribeResponse,
};
use ews_proto::xml::XmlWriter;
use ews_proto::xml::path::XPath;
use ews_server::{RunningServer, ServerConfig, start};

pub async fn server_with_minute(minute: Duration) -> RunningServer {
    let config = ServerConfig {
        protocol_minute: minute,
        ..ServerConfig::default()
    };
    start(config).await.expect("the server starts")
}

pub async fn server() -> RunningServer {
    server_with_minute(Duration::from_secs(60)).await
}

#[derive(Clone)]
pub struct Client {
    /// How every EWS request of these tests goes out.
    pub session: Session,
    /// A plain HTTP client, for tests about HTTP itself.
    pub http: reqwest::Client,
    pub url: String,
    pub user: String,
    pub password: String,
    pub version: Option<String>,
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn doc(&self) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(&self.body)
            .unwrap_or_else(|e| panic!("answer is not XML ({e}): {}", self.body))
    }

    /// Every string the path selects.
    pub fn all(&self, path: &str) -> Vec<String> {
        let doc = self.doc();
        XPath::parse(path)
            .expect("test path parses")
            .select(&doc)
            .strings()
    }

    pub fn one(&self, path: &str) -> String {
        let found = self.all(path);
        assert!(!found.is_empty(), "{path} not found in {}", self.body);
        found[0].clone()
    }

    pub fn code(&self) -> String {
        self.one("//m:ResponseCode")
    }

    pub fn fault_code(&self) -> String {
        self.one("//e:ResponseCode")
    }
}

impl Client {
    pub fn new(server: &RunningServer, user: &str, password: &str) -> Self {
        let mut config = TransportConfig::new(server.url());
        config.deadline = Duration::from_secs(30);
        let transport = Arc::new(Transport::new(config).expect("the transport builds"));
        let auth = Auth::Basic {
            username: user.into(),
            password: password.into(),
        };
        Client {
            // Refusals (401, 403) are answers these tests look at.
            session: Session::new(transport, auth, None).accepting_auth_failure(true),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client builds"),
            url: server.url(),
            user: user.into(),
            password: password.into(),
            version: Some("Exchange2013".into()),
        }
    }

    pub fn alice(server: &RunningServer) -> Self {
        Self::new(server, "alice@example.com", "alice-Secret-1")
    }

    pub fn bob(server: &RunningServer) -> Self {
        Self::new(server, "bob@example.com", "bob-Secret-2")
    }

    pub async fn raw(&self, body: impl Into<String>) -> Answer {
        let r = self
            .session
            .post(&body.into())
            .await
            .expect("the request is answered");
        Answer {
            status: r.status,
            body: r.body,
        }
    }

    pub fn envelope(&self, body: impl FnOnce(&mut XmlWriter)) -> String {
        request(
            &RequestHeader {
                version: self.version.clone(),
                impersonate: None,
            },
            body,
        )
    }

    pub async fn call(&self, body: impl FnOnce(&mut XmlWriter)) -> Answer {
        let env = self.envelope(body);
        self.raw(env).await
    }

    /// Sends an operation given as XML with `m:`/`t:` prefixes.
    pub async fn op(&self, xml: &str) -> Answer {
        let xml = xml.to_string();
        self.call(move |w| {
            w.raw(&xml);
        })
        .await
    }

    pub async fn subscribe(&self, req: SubscribeRequest) -> SubscribeResponse {
        let a = self.call(|w| req.render(w)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let doc = a.doc();
        let opened = open(&doc).expect("a SOAP envelope");
        SubscribeResponse::parse(opened.payload).expect("a SubscribeResponse")
    }

    /// A pull subscription; returns (id, watermark).
    pub async fn pull(
        &self,
        scope: FolderScope,
        kinds: &[EventKind],
        timeout: i64,
    ) -> (String, String) {
        let r = self
            .subscribe(SubscribeRequest {
                kind: SubscriptionKind::Pull { timeout },
                scope,
                event_types: kinds.to_vec(),
                watermark: None,
            })
            .await;
        assert!(r.message.is_success(), "{r:?}");
        (
            r.subscription_id.expect("a subscription id"),
            r.watermark.expect("a watermark"),
        )
    }

    pub async fn get_events(&self, id: &str, watermark: &str) -> GetEventsResponse {
        let req = GetEventsRequest {
            subscription_id: id.into(),
            watermark: watermark.into(),
        };
        let a = self.call(|w| req.render(w)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let doc = a.doc();
        let opened = open(&doc).expect("a SOAP envelope");
        GetEventsResponse::parse(opened.payload).expect("a GetEventsResponse")
    }

    /// The notification a GetEvents from `watermark` returns.
    pub async fn notification(&self, id: &str, watermark: &str) -> Notification {
        self.get_events(id, watermark)
            .await
            .notification
            .expect("a notification")
    }

    /// The last watermark of the notification a GetEvents from `watermark`
    /// returns: where the next GetEvents resumes.
    pub async fn head(&self, id: &str, watermark: &str) -> String {
        self.notification(id, watermark)
            .await
            .last_watermark()
            .expect("a watermark")
            .to_string()
    }

    pub async fn unsubscribe(&self, id: &str) -> UnsubscribeResponse {
        let req = UnsubscribeRequest {
            subscription_id: id.into(),
        };
        let a = self.call(|w| req.render(w)).await;
        let doc = a.doc();
        let opened = open(&doc).expect("a SOAP envelope");
        UnsubscribeResponse::parse(opened.payload).expect("an UnsubscribeResponse")
    }

    /// CreateItem SaveOnly of `count` messages into a folder given as XML.
    pub async fn save_messages(&self, folder_xml: &str, count: usize) -> Vec<String> {
        let messages: String = (0..count)
            .map(|i| format!("<t:Message><t:Subject>m{i}</t:Subject></t:Message>"))
            .collect();
        let a = self
            .op(&format!(
                "<m:CreateItem MessageDisposition=\"SaveOnly\"><m:SavedItemFolderId>{folder_xml}</m:SavedItemFolderId><m:Items>{messages}</m:Items></m:CreateItem>"
            ))
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
        let ids = a.all("//m:Items/t:Message/t:ItemId/@Id");
        assert_eq!(ids.len(), count, "{}", a.body);
        ids
    }

    /// Creates a folder under a parent given as XML; returns its id.
    pub async fn create_folder(&self, parent_xml: &str, name: &str) -> String {
        let a = self
            .op(&format!(
                "<m:CreateFolder><m:ParentFolderId>{parent_xml}</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>{name}</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>"
            ))
            .await;
        assert_eq!(a.code(), "NoError", "{}", a.body);
        a.one("//t:FolderId/@Id")
    }

    /// Sends a message (SendOnly) to the given addresses.
    pub async fn send(&self, to: &[&str], subject: &str) -> Answer {
        let rcpts: String = to
            .iter()
            .map(|a| format!("<t:Mailbox><t:EmailAddress>{a}</t:EmailAddress></t:Mailbox>"))
            .collect();
        self.op(&format!(
            "<m:CreateItem MessageDisposition=\"SendOnly\"><m:Items><t:Message><t:Subject>{subject}</t:Subject><t:ToRecipients>{rcpts}</t:ToRecipients></t:Message></m:Items></m:CreateItem>"
        ))
        .await
    }
}

/// The kinds of a notification's events, in order.
pub fn kinds(n: &Notification) -> Vec<EventKind> {
    n.events.iter().map(|e| e.kind).collect()
}

pub fn folder_id(id: &str) -> String {
    format!("<t:FolderId Id=\"{id}\"/>")
}

pub fn distinguished(name: &str) -> String {
    format!("<t:DistinguishedFolderId Id=\"{name}\"/>")
}

pub fn listed(ids: &[&str]) -> FolderScope {
    FolderScope::Listed(
        ids.iter()
            .map(|i| FolderRef::Id(ews_proto::ews::Id::new(*i)))
            .collect(),
    )
}

pub fn inbox_scope() -> FolderScope {
    FolderScope::Listed(vec![FolderRef::distinguished("inbox")])
}

pub const ALL_KINDS: &[EventKind] = &[
    EventKind::Copied,
    EventKind::Created,
    EventKind::Deleted,
    EventKind::Modified,
    EventKind::Moved,
    EventKind::NewMail,
];

/// An open GetStreamingEvents response, read envelope by envelope.
pub struct Stream {
    body: BodyStream,
    buf: String,
    pub chunks: usize,
}

impl Stream {
    pub async fn open(c: &Client, ids: &[&str], minutes: u32) -> Stream {
        let list: String = ids
            .iter()
            .map(|i| format!("<t:SubscriptionId>{i}</t:SubscriptionId>"))
            .collect();
        let body = c.envelope(|w| {
            w.raw(&format!(
                "<m:GetStreamingEvents><m:SubscriptionIds>{list}</m:SubscriptionIds><m:ConnectionTimeout>{minutes}</m:ConnectionTimeout></m:GetStreamingEvents>"
            ));
        });
        let response = c
            .session
            .open(&body, Duration::from_secs(30))
            .await
            .expect("the stream opens");
        assert_eq!(response.status, 200);
        Stream {
            body: response.body,
            buf: String::new(),
            chunks: 0,
        }
    }

    /// The body as it arrives, for a reader of its own.
    pub fn into_body(self) -> BodyStream {
        self.body
    }

    /// The next complete envelope, or `None` when the body ends or `wait` passes.
    pub async fn next(&mut self, wait: Duration) -> Option<Answer> {
        let end = tokio::time::Instant::now() + wait;
        loop {
            if let Some(pos) = self.buf.find("</Envelope>") {
                let rest = self.buf.split_off(pos + "</Envelope>".len());
                let env = std::mem::replace(&mut self.buf, rest);
                return Some(Answer {
                    status: 200,
                    body: env,
                });
            }
            let chunk = tokio::time::timeout_at(end, self.body.next()).await.ok()?;
            match chunk {
                Some(Ok(bytes)) => {
                    self.chunks += 1;
                    self.buf.push_str(&String::from_utf8_lossy(&bytes));
                }
                _ => return None,
            }
        }
    }

    /// Reads envelopes until one satisfies `pred` (heartbeats are skipped).
    pub async fn until(&mut self, wait: Duration, pred: impl Fn(&Answer) -> bool) -> Answer {
        let end = tokio::time::Instant::now() + wait;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let env = self
                .next(left)
                .await
                .expect("the awaited envelope arrives in time");
            if pred(&env) {
                return env;
            }
        }
    }
}

pub fn streaming_subscribe_xml(folders: &str) -> String {
    format!(
        "<m:Subscribe><m:StreamingSubscriptionRequest>{folders}<t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>NewMailEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>"
    )
}

impl Client {
    /// A streaming subscription on the given folder XML (empty = all folders).
    pub async fn streaming(&self, folders: &str) -> String {
        let a = self.op(&streaming_subscribe_xml(folders)).await;
        assert_eq!(a.code(), "NoError", "{}", a.body);
        a.one("//m:SubscriptionId")
    }
}
