//! The built-in named operations (`op = "Subscribe"`): the one-request
//! EWS operations and the polling ones, and the registry of every built-in
//! kind (the streaming and push ones come from `notify`).

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::notify::{self, delivery};
use super::operation::{OpRegistry, Operation, Param, ParamKind, opt, req};
use super::step::{StepContext, StepError};
use crate::case::Args;
use ews_proto::ews::envelope::{open, request};
use ews_proto::ews::items::{
    CreateFolder, CreateItem, DELETE_TYPES, DeleteFolder, DeleteItem, Disposition, GetFolder,
    GetItem, MoveOrCopyItem, UpdateItem, folder_ref,
};
use ews_proto::ews::{
    Event, EventKind, FolderScope, GetEventsRequest, GetEventsResponse, Notification,
    SubscribeRequest, SubscriptionKind, UnsubscribeRequest,
};

impl OpRegistry {
    /// Every built-in operation.
    pub fn builtin() -> Self {
        let mut r = Self::empty();
        for op in builtin_ops() {
            r.register(op);
        }
        r.register(Arc::new(GetEvents));
        r.register(Arc::new(DrainEvents));
        notify::operations()
            .into_iter()
            .for_each(|op| r.register(op));
        r
    }
}

// ------------------------------------------------------ one-request operations

type Build = fn(&StepContext<'_>, &Args) -> Result<String, StepError>;

/// An operation that renders one request and sends it once.
struct Simple {
    name: &'static str,
    params: &'static [Param],
    build: Build,
}

impl Operation for Simple {
    fn name(&self) -> &'static str {
        self.name
    }

    fn params(&self) -> &'static [Param] {
        self.params
    }

    fn run<'a>(
        &'a self,
        ctx: &'a mut StepContext<'_>,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let body = (self.build)(ctx, args)?;
            ctx.exchange(body).await.map(|_| ())
        })
    }
}

use ParamKind::{Bool, Int, List, Text};

const SUBSCRIBE: &[Param] = &[
    opt("mode", Text),
    opt("folders", List),
    opt("all_folders", Bool),
    opt("event_types", List),
    opt("watermark", Text),
    opt("timeout", Int),
    opt("status_frequency", Int),
    opt("url", Text),
];
const GET_EVENTS: &[Param] = &[
    req("subscription", Text),
    req("watermark", Text),
    opt("within_minutes", Text),
    opt("within_seconds", Text),
];
const UNSUBSCRIBE: &[Param] = &[req("subscription", Text)];
const CREATE_ITEM: &[Param] = &[
    opt("folder", Text),
    opt("subject", Text),
    opt("count", Int),
    opt("disposition", Text),
    opt("to", List),
    opt("is_read", Bool),
];
const UPDATE_ITEM: &[Param] = &[
    req("item", Text),
    opt("is_read", Bool),
    opt("subject", Text),
];
const MOVE_ITEM: &[Param] = &[req("item", Text), req("to", Text)];
const COPY_ITEM: &[Param] = &[req("item", Text), req("to", Text)];
const DELETE_ITEM: &[Param] = &[req("item", Text), opt("delete_type", Text)];
const CREATE_FOLDER: &[Param] = &[opt("parent", Text), opt("name", Text)];
const DELETE_FOLDER: &[Param] = &[req("folder", Text), opt("delete_type", Text)];
const GET_FOLDER: &[Param] = &[req("folder", Text)];
const GET_ITEM: &[Param] = &[req("item", Text)];
const DRAIN: &[Param] = &[
    req("subscription", Text),
    req("watermark", Text),
    opt("max_calls", Int),
    opt("within_minutes", Text),
    opt("within_seconds", Text),
];

fn builtin_ops() -> Vec<Arc<dyn Operation>> {
    let simple = |name, params, build| -> Arc<dyn Operation> {
        Arc::new(Simple {
            name,
            params,
            build,
        })
    };
    vec![
        simple("Subscribe", SUBSCRIBE, build_subscribe),
        simple("Unsubscribe", UNSUBSCRIBE, |ctx, a| {
            let r = UnsubscribeRequest {
                subscription_id: a.required_text(ctx, "subscription")?,
            };
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
        simple("CreateItem", CREATE_ITEM, build_create_item),
        simple("UpdateItem", UPDATE_ITEM, |ctx, a| {
            let r = UpdateItem {
                item: a.required_text(ctx, "item")?,
                is_read: a.boolean(ctx, "is_read")?,
                subject: a.text(ctx, "subject")?,
            };
            if r.is_read.is_none() && r.subject.is_none() {
                return Err(StepError::Case(
                    "UpdateItem needs `is_read` or `subject`".into(),
                ));
            }
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
        simple("MoveItem", MOVE_ITEM, |ctx, a| {
            build_move_copy(ctx, a, false)
        }),
        simple("CopyItem", COPY_ITEM, |ctx, a| {
            build_move_copy(ctx, a, true)
        }),
        simple("DeleteItem", DELETE_ITEM, |ctx, a| {
            let r = DeleteItem {
                item: a.required_text(ctx, "item")?,
                delete_type: delete_type(ctx, a)?,
            };
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
        simple("CreateFolder", CREATE_FOLDER, |ctx, a| {
            let r = CreateFolder {
                parent: folder_ref(&a.text_or(ctx, "parent", "${folder}")?),
                name: a.text_or(ctx, "name", "folder ${unique}")?,
            };
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
        simple("DeleteFolder", DELETE_FOLDER, |ctx, a| {
            let r = DeleteFolder {
                folder: folder_ref(&a.required_text(ctx, "folder")?),
                delete_type: delete_type(ctx, a)?,
            };
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
        simple("GetFolder", GET_FOLDER, |ctx, a| {
            let r = GetFolder {
                folder: folder_ref(&a.required_text(ctx, "folder")?),
            };
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
        simple("GetItem", GET_ITEM, |ctx, a| {
            let r = GetItem {
                item: a.required_text(ctx, "item")?,
            };
            Ok(request(&ctx.request_header(), |w| r.render(w)))
        }),
    ]
}

fn build_subscribe(ctx: &StepContext<'_>, a: &Args) -> Result<String, StepError> {
    let mode = a.text_or(ctx, "mode", "pull")?;
    let kind = match mode.as_str() {
        "pull" => SubscriptionKind::Pull {
            timeout: a.int(ctx, "timeout")?.unwrap_or(10),
        },
        "push" => SubscriptionKind::Push {
            status_frequency: a.int(ctx, "status_frequency")?,
            url: a.text_or(ctx, "url", "${push_url}")?,
            caller_data: None,
        },
        "streaming" => SubscriptionKind::Streaming,
        other => {
            return Err(StepError::Case(format!(
                "Subscribe: mode {other:?} is not pull, push or streaming"
            )));
        }
    };
    let folders = a.list(ctx, "folders")?;
    let all = a.boolean(ctx, "all_folders")?.unwrap_or(false);
    let scope = match (folders, all) {
        (Some(_), true) => {
            return Err(StepError::Case(
                "Subscribe: `folders` and `all_folders = true` together cannot be rendered; send the request raw".into(),
            ));
        }
        (Some(list), false) => FolderScope::Listed(list.iter().map(|f| folder_ref(f)).collect()),
        (None, true) => FolderScope::AllFolders,
        (None, false) => FolderScope::Unspecified,
    };
    let event_types = a
        .list(ctx, "event_types")?
        .unwrap_or_default()
        .iter()
        .map(|name| {
            EventKind::from_element_name(name).ok_or_else(|| {
                StepError::Case(format!(
                    "Subscribe: `{name}` is not an event type (CreatedEvent, NewMailEvent, …)"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let r = SubscribeRequest {
        kind,
        scope,
        event_types,
        watermark: a.text(ctx, "watermark")?,
    };
    Ok(request(&ctx.request_header(), |w| r.render(w)))
}

fn build_create_item(ctx: &StepContext<'_>, a: &Args) -> Result<String, StepError> {
    let count = a.int(ctx, "count")?.unwrap_or(1);
    if !(1..=1000).contains(&count) {
        return Err(StepError::Case(format!(
            "CreateItem: count {count} is outside 1..1000"
        )));
    }
    let disposition = a.text_or(ctx, "disposition", "SaveOnly")?;
    let Some(disposition) = Disposition::parse(&disposition) else {
        return Err(StepError::Case(format!(
            "CreateItem: disposition {disposition:?} is not one of {}",
            Disposition::NAMES.join(", ")
        )));
    };
    let folder = if disposition == Disposition::SendOnly {
        a.text(ctx, "folder")?.unwrap_or_default()
    } else {
        a.text_or(ctx, "folder", "${folder}")?
    };
    let r = CreateItem {
        folder: folder_ref(&folder),
        subject: a.text_or(ctx, "subject", "ews-conformance ${unique}")?,
        count: count as usize,
        disposition,
        to: a.list(ctx, "to")?.unwrap_or_default(),
        is_read: a.boolean(ctx, "is_read")?,
    };
    Ok(request(&ctx.request_header(), |w| r.render(w)))
}

fn build_move_copy(ctx: &StepContext<'_>, a: &Args, copy: bool) -> Result<String, StepError> {
    let r = MoveOrCopyItem {
        copy,
        item: a.required_text(ctx, "item")?,
        to: folder_ref(&a.required_text(ctx, "to")?),
    };
    Ok(request(&ctx.request_header(), |w| r.render(w)))
}

fn delete_type(ctx: &StepContext<'_>, a: &Args) -> Result<String, StepError> {
    let t = a.text_or(ctx, "delete_type", "HardDelete")?;
    if DELETE_TYPES.contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(StepError::Case(format!(
            "delete_type {t:?} is not one of {}",
            DELETE_TYPES.join(", ")
        )))
    }
}

// ------------------------------------------------- GetEvents, DrainEvents

/// GetEvents once. A step that expects events (`expect.event`) polls
/// again from the last watermark until they have arrived or its delivery
/// deadline passes (see [`delivery`]). Binds `${<step name>.watermark}` to
/// the watermark to send next.
struct GetEvents;

impl Operation for GetEvents {
    fn name(&self) -> &'static str {
        "GetEvents"
    }

    fn params(&self) -> &'static [Param] {
        GET_EVENTS
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["watermark"]
    }

    fn run<'a>(
        &'a self,
        ctx: &'a mut StepContext<'_>,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<(), StepError>> {
        Box::pin(pull(ctx, args, None))
    }
}

/// GetEvents repeatedly, sending the last event's watermark each time, until
/// MoreEvents is false; a step that expects events then polls like
/// [`GetEvents`]. Binds `${<step name>.watermark}` to the watermark to send next.
struct DrainEvents;

impl Operation for DrainEvents {
    fn name(&self) -> &'static str {
        "DrainEvents"
    }

    fn params(&self) -> &'static [Param] {
        DRAIN
    }

    fn outputs(&self) -> &'static [&'static str] {
        &["watermark"]
    }

    fn run<'a>(
        &'a self,
        ctx: &'a mut StepContext<'_>,
        args: &'a Args,
    ) -> BoxFuture<'a, Result<(), StepError>> {
        Box::pin(async move {
            let max_calls = args.int(ctx, "max_calls")?.unwrap_or(50);
            if !(1..=1000).contains(&max_calls) {
                return Err(StepError::Case(format!(
                    "DrainEvents: max_calls {max_calls} is outside 1..1000"
                )));
            }
            pull(ctx, args, Some(max_calls as usize)).await
        })
    }
}

/// The pull loop of GetEvents (`drain` = `None`) and DrainEvents (`Some(max_calls)`).
async fn pull(
    ctx: &mut StepContext<'_>,
    args: &Args,
    drain: Option<usize>,
) -> Result<(), StepError> {
    let subscription = args.required_text(ctx, "subscription")?;
    let mut watermark = args.required_text(ctx, "watermark")?;
    let wait = if delivery::expects_events(ctx.step()) {
        Some(delivery::PollWait::of(ctx, args)?)
    } else {
        None
    };
    let out_var = format!("{}.watermark", ctx.step().name);
    let mut polls = 0;
    let mut chain = 0;
    let mut round_began = ctx.exchanges().len();
    // The events of each answer, by exchange index (read once, here).
    let mut received: Vec<(usize, Vec<Event>)> = Vec::new();
    loop {
        let r = GetEventsRequest {
            subscription_id: subscription.clone(),
            watermark: watermark.clone(),
        };
        let body = request(&ctx.request_header(), |w| r.render(w));
        let idx = match ctx.exchange(body).await {
            Ok(i) => i,
            Err(e) => {
                ctx.set_var(out_var, watermark);
                return Err(e);
            }
        };
        polls += 1;
        // Not a successful GetEvents answer: the checks say why.
        let Some(notification) = read_notification(&ctx.exchanges()[idx].response_text) else {
            break;
        };
        if let Some(next) = notification.last_watermark() {
            watermark = next.to_string();
        }
        let more = notification.more_events == Some(true);
        if wait.is_some() {
            received.push((idx, notification.events));
        }
        if let Some(max_calls) = drain {
            if more {
                chain += 1;
                if chain >= max_calls {
                    ctx.fail(
                        "events",
                        format!(
                            "step \"{}\": MoreEvents was still true after {max_calls} GetEvents calls",
                            ctx.step().name
                        ),
                    );
                    break;
                }
                continue;
            }
            chain = 0;
        }
        let Some(wait) = &wait else {
            break;
        };
        if delivery::events_arrived(ctx, &received)
            || !delivery::poll_again(ctx, wait, round_began, polls, &received).await
        {
            break;
        }
        round_began = ctx.exchanges().len();
    }
    ctx.set_var(out_var, watermark);
    Ok(())
}

/// The notification of a successful GetEvents response.
fn read_notification(body: &str) -> Option<Notification> {
    let doc = ews_proto::xml::parse_document(body).ok()?;
    let opened = open(&doc).ok()?;
    let resp = GetEventsResponse::parse(opened.payload).ok()?;
    if !resp.message.is_success() {
        return None;
    }
    resp.notification
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::operation::validate_args;
    use std::collections::BTreeMap;

    fn table(pairs: &[(&str, toml::Value)]) -> BTreeMap<String, toml::Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn args_are_validated_against_params() {
        let r = OpRegistry::builtin();
        let sub = r.get("Subscribe").expect("Subscribe is built in");
        assert!(
            validate_args(
                sub.as_ref(),
                &table(&[
                    ("mode", "pull".into()),
                    ("folders", toml::Value::Array(vec!["inbox".into()])),
                    ("timeout", 10.into()),
                ])
            )
            .is_ok()
        );
        let err = validate_args(sub.as_ref(), &table(&[("folder", "inbox".into())]))
            .expect_err("unknown key");
        assert!(err.contains("Subscribe has no parameter `folder`"), "{err}");
        let err = validate_args(sub.as_ref(), &table(&[("timeout", true.into())]))
            .expect_err("wrong type");
        assert!(
            err.contains("`timeout` must be an integer, not boolean"),
            "{err}"
        );
        let ge = r.get("GetEvents").expect("GetEvents is built in");
        let err = validate_args(ge.as_ref(), &table(&[("subscription", "x".into())]))
            .expect_err("missing");
        assert!(err.contains("GetEvents needs `with.watermark`"), "{err}");
    }

    #[test]
    fn registry_lists_every_named_operation() {
        assert_eq!(
            OpRegistry::builtin().names(),
            [
                "AwaitDelivery",
                "AwaitPush",
                "AwaitStream",
                "AwaitStreamClosed",
                "CloseStream",
                "CollectPushes",
                "CopyItem",
                "CreateFolder",
                "CreateItem",
                "DeleteFolder",
                "DeleteItem",
                "DrainEvents",
                "ExpectNoPush",
                "GetEvents",
                "GetFolder",
                "GetItem",
                "MoveItem",
                "OpenStream",
                "SetPushAnswer",
                "Subscribe",
                "Unsubscribe",
                "UpdateItem"
            ]
        );
    }

    #[test]
    fn get_events_answers_are_read() {
        let body = crate::check::testing::GET_EVENTS_OK;
        let n = read_notification(body).expect("a notification");
        assert_eq!(n.last_watermark(), Some("W3"));
        assert_eq!(n.more_events, Some(false));
        assert_eq!(n.events.len(), 3);
        assert!(read_notification(crate::check::testing::NOT_FOUND).is_none());
        assert!(read_notification("garbage").is_none());
    }
}
