//! The one way the harness talks EWS: a session for one user on one
//! transport. Two layers:
//!
//! - raw: [`Session::post`] sends a prepared envelope and returns the answer
//!   as it came (status, headers, body), for callers that judge every byte
//!   (the suite's steps, the explorer, the tests);
//! - typed: build a named operation, send it, read the typed answer. A
//!   refusal (SOAP fault, error ResponseCode, a status other than 200) is
//!   an error that names the operation and quotes the code, so callers that
//!   only need the happy path stay short.

use std::sync::Arc;
use std::time::Duration;

use roxmltree::Node;

use super::auth::Auth;
use super::error::TransportError;
use super::stream::StreamReader;
use super::transport::{HttpRequest, HttpResponse, OpenResponse, Transport};
use ews_proto::ews::envelope::{RequestHeader, open, request};
use ews_proto::ews::items::{CreateFolder, CreateItem, DeleteFolder, Disposition};
use ews_proto::ews::{
    FolderRef, GetEventsRequest, GetEventsResponse, GetStreamingEventsRequest, Notification,
    ParseError, SubscribeRequest, SubscribeResponse, UnsubscribeRequest, UnsubscribeResponse,
};
use ews_proto::xml::{ElementExt, XmlWriter, child, element_children, ns, parse_document};

/// Why an operation did not give its answer.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{operation}: {source}")]
    Transport {
        operation: &'static str,
        source: TransportError,
    },
    #[error("{operation} refused ({code}): {text}")]
    Refused {
        operation: &'static str,
        code: String,
        text: String,
    },
    #[error("{operation}: the answer cannot be read: {detail}")]
    Unreadable {
        operation: &'static str,
        detail: String,
    },
}

impl SessionError {
    /// Whether the target is gone (so going on is pointless).
    pub fn is_fatal(&self) -> bool {
        matches!(self, SessionError::Transport { source, .. } if source.is_fatal())
    }
}

/// One user's session against one endpoint.
#[derive(Clone)]
pub struct Session {
    transport: Arc<Transport>,
    auth: Auth,
    header: RequestHeader,
    headers: Vec<(String, String)>,
    /// Return 401/403 as an answer instead of an error (a step that
    /// expects the target to refuse).
    accept_auth_failure: bool,
}

impl Session {
    /// A session on a shared transport, as `auth`, asking for `version`.
    pub fn new(transport: Arc<Transport>, auth: Auth, version: Option<String>) -> Self {
        Session {
            transport,
            auth,
            header: RequestHeader {
                version,
                impersonate: None,
            },
            headers: Vec::new(),
            accept_auth_failure: false,
        }
    }

    /// Sends `headers` (never Authorization: that is the session's `auth`)
    /// with every request.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// Answers 401 and 403 as responses rather than errors.
    pub fn accepting_auth_failure(mut self, accept: bool) -> Self {
        self.accept_auth_failure = accept;
        self
    }

    /// Whom the session acts as.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The transport the session sends on.
    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    fn request<'a>(&'a self, envelope: &'a str) -> HttpRequest<'a> {
        HttpRequest {
            body: envelope,
            auth: &self.auth,
            headers: &self.headers,
            accept_auth_failure: self.accept_auth_failure,
        }
    }

    /// Sends a prepared envelope and returns the answer as it came.
    pub async fn post(&self, envelope: &str) -> Result<HttpResponse, TransportError> {
        self.transport.post(&self.request(envelope)).await
    }

    /// Sends a prepared envelope whose answer streams (GetStreamingEvents):
    /// returns once the response headers arrived within `deadline`, with
    /// the body still to read.
    pub async fn open(
        &self,
        envelope: &str,
        deadline: Duration,
    ) -> Result<OpenResponse, TransportError> {
        self.transport.open(&self.request(envelope), deadline).await
    }

    /// The whole envelope of an operation.
    pub fn envelope(&self, body: impl FnOnce(&mut XmlWriter)) -> String {
        request(&self.header, body)
    }

    /// Sends an operation and reads its payload with `read`.
    async fn call<T>(
        &self,
        operation: &'static str,
        body: impl FnOnce(&mut XmlWriter),
        read: impl FnOnce(Node<'_, '_>) -> Result<T, ParseError>,
    ) -> Result<T, SessionError> {
        let envelope = self.envelope(body);
        let answer = self
            .post(&envelope)
            .await
            .map_err(|source| SessionError::Transport { operation, source })?;
        let unreadable = |detail: String| SessionError::Unreadable { operation, detail };
        let doc = parse_document(&answer.body).map_err(|e| {
            let head: String = answer.body.chars().take(200).collect();
            unreadable(format!("HTTP {} and not XML ({e}): {head}", answer.status))
        })?;
        let opened = open(&doc).map_err(|e| unreadable(e.to_string()))?;
        if let Some(fault) = opened.fault() {
            return Err(SessionError::Refused {
                operation,
                code: fault
                    .response_code
                    .as_ref()
                    .map_or_else(|| fault.fault_code.clone(), |c| c.as_str().to_string()),
                text: fault.fault_string.clone(),
            });
        }
        if answer.status != 200 {
            return Err(unreadable(format!("HTTP {}", answer.status)));
        }
        // The first error message, if any, refuses the whole operation.
        if let Some(bad) = first_error(opened.payload) {
            let text = |local| {
                child(bad, ns::MESSAGES, local)
                    .map(|n| n.text_trimmed())
                    .unwrap_or_default()
            };
            return Err(SessionError::Refused {
                operation,
                code: text("ResponseCode"),
                text: text("MessageText"),
            });
        }
        read(opened.payload).map_err(|e| unreadable(e.to_string()))
    }

    /// Subscribe: the new subscription's id and watermark.
    pub async fn subscribe(
        &self,
        req: &SubscribeRequest,
    ) -> Result<(String, String), SessionError> {
        let r = self
            .call("Subscribe", |w| req.render(w), SubscribeResponse::parse)
            .await?;
        Ok((
            r.subscription_id.unwrap_or_default(),
            r.watermark.unwrap_or_default(),
        ))
    }

    /// One GetEvents.
    pub async fn get_events(
        &self,
        id: &str,
        watermark: &str,
    ) -> Result<Notification, SessionError> {
        let req = GetEventsRequest {
            subscription_id: id.into(),
            watermark: watermark.into(),
        };
        let r = self
            .call("GetEvents", |w| req.render(w), GetEventsResponse::parse)
            .await?;
        r.notification.ok_or_else(|| SessionError::Unreadable {
            operation: "GetEvents",
            detail: "a success without a Notification".into(),
        })
    }

    pub async fn unsubscribe(&self, id: &str) -> Result<(), SessionError> {
        let req = UnsubscribeRequest {
            subscription_id: id.into(),
        };
        self.call("Unsubscribe", |w| req.render(w), UnsubscribeResponse::parse)
            .await
            .map(drop)
    }

    /// CreateItem of `count` messages saved (not sent) into `folder`: their ids.
    pub async fn save_messages(
        &self,
        folder: &FolderRef,
        subject: &str,
        count: usize,
    ) -> Result<Vec<String>, SessionError> {
        let req = CreateItem {
            folder: folder.clone(),
            subject: subject.into(),
            count,
            disposition: Disposition::SaveOnly,
            to: Vec::new(),
            is_read: None,
        };
        self.call(
            "CreateItem",
            |w| req.render(w),
            |payload| Ok(item_ids(payload)),
        )
        .await
    }

    /// CreateFolder of one folder under `parent`: the new folder.
    pub async fn create_folder(
        &self,
        parent: &FolderRef,
        name: &str,
    ) -> Result<FolderRef, SessionError> {
        let req = CreateFolder {
            parent: parent.clone(),
            name: name.into(),
        };
        let ids = self
            .call(
                "CreateFolder",
                |w| req.render(w),
                |payload| {
                    Ok(payload
                        .descendants()
                        .filter(|n| n.is(ns::TYPES, "FolderId"))
                        .filter_map(|n| n.attribute("Id").map(str::to_string))
                        .collect::<Vec<_>>())
                },
            )
            .await?;
        ids.into_iter()
            .next()
            .map(|id| FolderRef::Id(ews_proto::ews::Id::new(id)))
            .ok_or(SessionError::Unreadable {
                operation: "CreateFolder",
                detail: "no t:FolderId in a success".into(),
            })
    }

    /// DeleteFolder with HardDelete.
    pub async fn delete_folder(&self, folder: &FolderRef) -> Result<(), SessionError> {
        let req = DeleteFolder {
            folder: folder.clone(),
            delete_type: "HardDelete".into(),
        };
        self.call("DeleteFolder", |w| req.render(w), |_| Ok(()))
            .await
    }

    /// Opens GetStreamingEvents for `ids`; the reader yields its envelopes.
    pub async fn open_stream(
        &self,
        ids: &[String],
        minutes: u32,
        deadline: Duration,
    ) -> Result<StreamReader, SessionError> {
        let req = GetStreamingEventsRequest {
            subscription_ids: ids.to_vec(),
            connection_timeout: i64::from(minutes),
        };
        let envelope = self.envelope(|w| req.render(w));
        let operation = "GetStreamingEvents";
        let opened = self
            .open(&envelope, deadline)
            .await
            .map_err(|source| SessionError::Transport { operation, source })?;
        if opened.status != 200 {
            return Err(SessionError::Unreadable {
                operation,
                detail: format!("HTTP {}", opened.status),
            });
        }
        Ok(StreamReader::from_body(opened.body))
    }
}

/// The first `m:…ResponseMessage` whose ResponseClass is Error.
fn first_error<'a, 'i>(payload: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    let messages = child(payload, ns::MESSAGES, "ResponseMessages")?;
    element_children(messages).find(|m| m.attribute("ResponseClass") == Some("Error"))
}

/// Every `t:ItemId/@Id` in an answer, in document order.
fn item_ids(payload: Node<'_, '_>) -> Vec<String> {
    payload
        .descendants()
        .filter(|n| n.is(ns::TYPES, "ItemId"))
        .filter_map(|n| n.attribute("Id").map(str::to_string))
        .collect()
}
