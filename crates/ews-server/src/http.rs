//! The HTTP front: one POST route, Basic auth, SOAP framing, the version
//! header, and dispatch on the Body's element. Every failure becomes a
//! SOAP answer; no input makes a handler panic past this module.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use roxmltree::Document;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::auth::{Authenticated, ConnectionAuth};
use super::faults::FaultSet;
use super::faults::{Fault, rewrite_response};
use super::reply::{
    Call, MessageOut, Reply, SchemaError, exchange_fault, render_fault, render_messages,
    schema_answer,
};
use super::state::State;
use super::validate::{SchemaViolation, notification_request_except};
use super::{front, items, pull, streaming};
use ews_proto::ews::envelope::open;
use ews_proto::ews::grammar;
use ews_proto::ews::{ResponseCode, SERVER_VERSIONS};
use ews_proto::xml::{
    ElementExt, XmlError, child, display_name, element_children, ns, parse_bounded,
};

/// Largest request body accepted (413 above).
pub const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// The version assumed when a request has no RequestServerVersion header.
pub const DEFAULT_VERSION: &str = "Exchange2007_SP1";

/// Operations EWS has (services.wsdl) that this server does not implement:
/// they get ErrorInvalidOperation, not ErrorInvalidRequest, because
/// exchangelib re-sends ErrorInvalidRequest failures with every version.
const OTHER_EWS_OPERATIONS: &[&str] = &[
    "AddDelegate",
    "AddDistributionGroupToImList",
    "AddImContactToGroup",
    "AddImGroup",
    "AddNewImContactToGroup",
    "AddNewTelUriContactToGroup",
    "AddTag",
    "ApplyConversationAction",
    "ArchiveItem",
    "ConvertId",
    "CopyFolder",
    "CreateAttachment",
    "CreateFolderPath",
    "CreateManagedFolder",
    "CreateMeetingInstance",
    "CreateMeetingSpace",
    "CreateUserConfiguration",
    "DeleteAttachment",
    "DeleteMeetingInstance",
    "DeleteMeetingSpace",
    "DeleteSearchSuggestion",
    "DeleteUserConfiguration",
    "DisableApp",
    "DisconnectPhoneCall",
    "EmptyFolder",
    "EndSearchSession",
    "ExecuteSearch",
    "ExpandDL",
    "ExportItems",
    "FindAvailableMeetingTimes",
    "FindConversation",
    "FindFolder",
    "FindItem",
    "FindMeetingSpaceByJoinUrl",
    "FindMeetingTimeCandidates",
    "FindMessageTrackingReport",
    "FindPeople",
    "FindTags",
    "GetAppManifests",
    "GetAppMarketplaceUrl",
    "GetAttachment",
    "GetClientAccessToken",
    "GetConversationItems",
    "GetDelegate",
    "GetDiscoverySearchConfiguration",
    "GetHoldOnMailboxes",
    "GetImItemList",
    "GetImItems",
    "GetInboxRules",
    "GetLastPrivateCatalogUpdate",
    "GetMailTips",
    "GetMeetingInstance",
    "GetMeetingSpace",
    "GetMessageTrackingReport",
    "GetNonIndexableItemDetails",
    "GetNonIndexableItemStatistics",
    "GetPasswordExpirationDate",
    "GetPersona",
    "GetPhoneCallInformation",
    "GetPrivateCatalogAddIns",
    "GetRoomLists",
    "GetRooms",
    "GetSearchSuggestions",
    "GetSearchableMailboxes",
    "GetServerTimeZones",
    "GetServiceConfiguration",
    "GetSharingFolder",
    "GetSharingMetadata",
    "GetSpecificUserConfiguration",
    "GetUserAvailability",
    "GetUserConfiguration",
    "GetUserOofSettings",
    "GetUserPhoto",
    "GetUserRetentionPolicyTags",
    "HideTag",
    "InstallApp",
    "MarkAllItemsAsRead",
    "MarkAsJunk",
    "MoveFolder",
    "PlayOnPhone",
    "RefreshSharingFolder",
    "RemoveContactFromImList",
    "RemoveDelegate",
    "RemoveDistributionGroupFromImList",
    "RemoveImContactFromGroup",
    "RemoveImGroup",
    "ReportMessage",
    "ResolveNames",
    "SearchMailboxes",
    "SendItem",
    "SetHoldOnMailboxes",
    "SetImGroup",
    "SetImListMigrationCompleted",
    "SetTeamMailbox",
    "SetUserOofSettings",
    "SetUserPhoto",
    "StartSearchSession",
    "SyncFolderHierarchy",
    "SyncFolderItems",
    "UninstallApp",
    "UnpinTeamMailbox",
    "UpdateDelegate",
    "UpdateFolder",
    "UpdateInboxRules",
    "UpdateItemInRecoverableItems",
    "UpdateMeetingInstance",
    "UpdateMeetingSpace",
    "UpdateUserConfiguration",
    "UploadItems",
];

pub fn router(state: Arc<State>) -> Router {
    let path = state.config.path.clone();
    let body_timeout = state.config.limits.body_timeout;
    let late = state.clone();
    Router::new()
        .route(&path, post(handle))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // A Content-Length over the limit is refused before any body byte
        // is read.
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        // A body that has not arrived whole by then is given up: 408, as a
        // SOAP fault like every other refusal of the request.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            body_timeout,
        ))
        .layer(axum::middleware::map_response(move |response: Response| {
            let state = late.clone();
            async move { fault_for_bare_refusal(&state, response) }
        }))
        .with_state(state)
}

/// A request refused before it was read whole, answered as a SOAP fault
/// with the HTTP status that says why (413 too large, 400 unreadable,
/// 408 too slow, 503 too many connections).
fn refusal(state: &State, status: StatusCode, code: ResponseCode, text: &str) -> Response<Bytes> {
    let actor = format!("http://localhost{}", state.config.path);
    let xml = match finish(state, Reply::Fault(exchange_fault(code, text)), &actor) {
        Answer::Document(_, xml) => xml,
        Answer::Stream(_) => String::new(),
    };
    let mut r = Response::new(Bytes::from(xml));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XML_CONTENT_TYPE),
    );
    r
}

fn into_axum(r: Response<Bytes>) -> Response {
    let (parts, body) = r.into_parts();
    Response::from_parts(parts, Body::from(body))
}

/// The answer a connection over the server's connection cap gets.
pub fn busy_answer(state: &State) -> Response<Bytes> {
    let mut r = refusal(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        ResponseCode::ErrorServerBusy,
        "The server cannot service this request right now. Try again later.",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The layers' bare refusals (408 from the body deadline, 413 from the
/// announced length) become SOAP faults.
fn fault_for_bare_refusal(state: &State, response: Response) -> Response {
    let status = response.status();
    let bare = !response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/xml"));
    match status {
        StatusCode::REQUEST_TIMEOUT if bare => into_axum(refusal(
            state,
            status,
            ResponseCode::ErrorTimeoutExpired,
            "The request was not received in time.",
        )),
        StatusCode::PAYLOAD_TOO_LARGE if bare => into_axum(refusal(
            state,
            status,
            ResponseCode::ErrorInvalidRequest,
            &format!("The request is larger than {BODY_LIMIT} bytes."),
        )),
        _ => response,
    }
}

const XML_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

fn xml_response(status: StatusCode, body: Body) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(XML_CONTENT_TYPE),
    );
    r
}

async fn handle(
    AxumState(state): AxumState<Arc<State>>,
    connection: Option<axum::Extension<ConnectionAuth>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejected) => {
            let too_large = rejected.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let (status, text) = if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("The request is larger than {BODY_LIMIT} bytes."),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The request body could not be read: {}",
                        rejected.body_text()
                    ),
                )
            };
            return into_axum(refusal(
                &state,
                status,
                ResponseCode::ErrorInvalidRequest,
                &text,
            ));
        }
    };
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let connection = connection.map(|axum::Extension(c)| c).unwrap_or_default();
    let user = match connection.authenticate(auth, &state.config.users) {
        Authenticated::User(user) => user,
        Authenticated::Challenge(token) => {
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            if let Ok(v) = HeaderValue::from_str(&token) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
        Authenticated::No => {
            // Both schemes on-premises Exchange offers, as two header lines.
            let mut r = StatusCode::UNAUTHORIZED.into_response();
            r.headers_mut()
                .append(header::WWW_AUTHENTICATE, HeaderValue::from_static("NTLM"));
            r.headers_mut().append(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ews\""),
            );
            return r;
        }
    };
    let mut subscribe = false;
    let reply = catch_unwind(AssertUnwindSafe(|| {
        process(&state, user, &body, &mut subscribe)
    }))
    .unwrap_or_else(|_| {
        tracing::error!("a request handler panicked");
        Reply::Fault(exchange_fault(
            ResponseCode::ErrorInternalServerError,
            "An internal server error occurred. The operation failed.",
        ))
    });
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let actor = format!("http://{host}{}", state.config.path);
    let mut response = match finish(&state, reply, &actor) {
        Answer::Document(status, xml) => xml_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Body::from(xml),
        ),
        Answer::Stream(body) => xml_response(StatusCode::OK, body),
    };
    if subscribe && prefers_affinity(&headers) {
        response.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static(AFFINITY_COOKIE),
        );
    }
    front::dress(&state, &headers, response)
}

/// The affinity cookie of the one backend this server is. Exchange 2013+
/// and Online answer a Subscribe that carries `X-PreferServerAffinity: true`
/// with an `X-BackEndOverrideCookie` naming the mailbox server that holds
/// the subscription; clients replay it on later notification calls
/// ("Maintain affinity between a group of subscriptions and the Mailbox
/// server in Exchange", digest S11). exchangelib's integration suite
/// requires the cookie after a streaming Subscribe against Exchange Online
/// (`test_streaming_subscribe`: `assertIsNotNone(account.affinity_cookie)`).
/// The value is opaque to clients; the server ignores it when it comes back.
pub const AFFINITY_COOKIE: &str = "X-BackEndOverrideCookie=reference-server~1; path=/; HttpOnly";

fn prefers_affinity(headers: &HeaderMap) -> bool {
    headers
        .get("X-PreferServerAffinity")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// What goes on the wire for a reply.
enum Answer {
    /// HTTP status and one XML document.
    Document(u16, String),
    Stream(Body),
}

/// A reply in this server's wire form: faults and schema errors in its
/// fault form, every document through the dialects' rewriting layer.
/// `actor` is the URL a `faultactor` names.
fn finish(state: &State, reply: Reply, actor: &str) -> Answer {
    let (status, xml) = match reply {
        Reply::Envelope(xml) => (200, rewrite_response(&state.faults, xml)),
        Reply::Fault(f) => (500, render_fault(state, &f, None, actor)),
        Reply::Schema(e) => schema_answer(state, &e, actor),
        Reply::Stream(body) => return Answer::Stream(body),
    };
    Answer::Document(status, state.rewriter.apply(xml))
}

/// The answer to one request body from `user` without HTTP: status and
/// text (a streaming body is dropped unread, which closes it). Panics are
/// not caught here, so a fuzzer sees them.
pub(crate) fn answer(state: &Arc<State>, user: usize, body: &[u8]) -> (u16, Option<String>) {
    let mut subscribed = false;
    let reply = process(state, user, body, &mut subscribed);
    let actor = format!("http://localhost{}", state.config.path);
    match finish(state, reply, &actor) {
        Answer::Document(status, xml) => (status, Some(xml)),
        Answer::Stream(_) => (200, None),
    }
}

/// Parsing limits for untrusted requests: no DTDs (Exchange refuses them
/// too), a node budget far above any real request, and a bound on
/// attributes per element that keeps the parse linear.
fn parse(text: &str) -> Result<Document<'_>, XmlError> {
    parse_bounded(text, false, 1_000_000)
}

fn schema(path: &str, message: impl Into<String>) -> Reply {
    Reply::Schema(SchemaError::new(SchemaViolation::new(path, message)))
}

/// `subscribe` is set when the request is a Subscribe (for the affinity cookie).
fn process(state: &Arc<State>, user: usize, body: &[u8], subscribe: &mut bool) -> Reply {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let Ok(text) = std::str::from_utf8(body) else {
        return schema("/", "the request is not UTF-8 text");
    };
    let doc = match parse(text) {
        Ok(d) => d,
        Err(e) => {
            let mut err = SchemaError::new(SchemaViolation::new(
                "/",
                format!("the request is not well-formed XML: {e}"),
            ));
            err.at = Some(e.pos());
            return Reply::Schema(err);
        }
    };
    let root = doc.root_element();
    if root.is(ns::SOAP, "Envelope")
        && let Some(b) = child(root, ns::SOAP, "Body")
        && element_children(b).next().is_none()
    {
        return Reply::Fault(exchange_fault(
            ResponseCode::ErrorInvalidRequest,
            "The request is invalid: the SOAP Body is empty.",
        ));
    }
    let opened = match open(&doc) {
        Ok(o) => o,
        Err(e) => return schema(&e.path, e.message),
    };
    let version = match opened
        .header
        .and_then(|h| child(h, ns::TYPES, "RequestServerVersion"))
    {
        None => DEFAULT_VERSION.to_string(),
        Some(rsv) => match rsv.attribute("Version") {
            None => {
                return schema(
                    "/soap:Envelope/soap:Header/t:RequestServerVersion",
                    "the Version attribute is required",
                );
            }
            Some(v) if SERVER_VERSIONS.contains(&v) => v.to_string(),
            Some(_) => {
                return Reply::Fault(exchange_fault(
                    ResponseCode::ErrorInvalidServerVersion,
                    "The specified server version is invalid.",
                ));
            }
        },
    };
    let call = Call {
        state,
        user,
        version,
    };
    *subscribe = opened.payload.is(ns::MESSAGES, "Subscribe");
    dispatch(&call, opened.payload)
}

/// The schema violations a switched-on fault lets through.
fn overlooked_by_faults(faults: &FaultSet, v: &grammar::Violation) -> bool {
    let range = |element: &str| {
        v.rule == grammar::Rule::Range
            && v.path.rsplit('/').next().is_some_and(|last| {
                last.trim_start_matches("t:").trim_start_matches("m:") == element
            })
    };
    (faults.has(Fault::PullTimeoutUnchecked) && range("Timeout"))
        || (faults.has(Fault::StatusFrequencyUnchecked) && range("StatusFrequency"))
        || (faults.has(Fault::ConnectionTimeoutUnchecked) && range("ConnectionTimeout"))
        || (faults.has(Fault::FreeBusyAnyVersion) && v.message.contains("FreeBusyChangedEvent"))
}

fn dispatch(call: &Call<'_>, op: roxmltree::Node<'_, '_>) -> Reply {
    let at = "/soap:Envelope/soap:Body";
    if op.tag_name().namespace() != Some(ns::MESSAGES) {
        return schema(at, format!("{} is not an EWS operation", display_name(op)));
    }
    let name = op.tag_name().name();
    tracing::debug!(user = call.user, operation = name, "request");
    match name {
        "Subscribe" | "GetEvents" | "GetStreamingEvents" | "Unsubscribe" => {
            // The fault judges streaming requests by the newest schema,
            // whatever version they ask for.
            let version = if call.state.faults.has(Fault::StreamingAnyVersion)
                && (name == "GetStreamingEvents"
                    || op
                        .descendants()
                        .any(|n| n.tag_name().name() == "StreamingSubscriptionRequest"))
            {
                "Exchange2013"
            } else {
                call.version.as_str()
            };
            if !call.state.faults.has(Fault::SkipRequestValidation)
                && let Err(v) = notification_request_except(op, version, |v| {
                    overlooked_by_faults(&call.state.faults, v)
                })
            {
                return Reply::Schema(SchemaError::new(v).in_operation(op));
            }
            match name {
                "Subscribe" => pull::subscribe(call, op),
                "GetEvents" => pull::get_events(call, op),
                "Unsubscribe" => pull::unsubscribe(call, op),
                _ => streaming::get_streaming_events(call, op),
            }
        }
        "CreateItem" => messages(call, op, items::create_item(call, op)),
        "UpdateItem" => messages(call, op, items::update_item(call, op)),
        "MoveItem" => messages(call, op, items::move_or_copy_item(call, op, false)),
        "CopyItem" => messages(call, op, items::move_or_copy_item(call, op, true)),
        "DeleteItem" => messages(call, op, items::delete_item(call, op)),
        "CreateFolder" => messages(call, op, items::create_folder(call, op)),
        "DeleteFolder" => messages(call, op, items::delete_folder(call, op)),
        "GetFolder" => messages(call, op, items::get_folder(call, op)),
        "GetItem" => messages(call, op, items::get_item(call, op)),
        "FindItem" => messages(call, op, items::find_item(call, op)),
        _ if OTHER_EWS_OPERATIONS.contains(&name) => messages(
            call,
            op,
            Ok(vec![MessageOut::error(
                ResponseCode::ErrorInvalidOperation,
                format!("The reference server does not implement {name}."),
            )]),
        ),
        _ => schema(at, format!("m:{name} is not an EWS operation")),
    }
}

fn messages(
    call: &Call<'_>,
    op: roxmltree::Node<'_, '_>,
    outcome: Result<Vec<MessageOut>, SchemaViolation>,
) -> Reply {
    let name = op.tag_name().name();
    match outcome {
        Ok(msgs) => Reply::Envelope(call.envelope(|w| render_messages(w, name, &msgs))),
        Err(v) => Reply::Schema(SchemaError::new(v).in_operation(op)),
    }
}
