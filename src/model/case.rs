//! Renders a (shrunk) sequence as an ordinary case file, so a failure found
//! by the generator replays deterministically against any target without
//! proptest: named operations, captures for every id a response reports,
//! and one `DrainEvents` step per poll with the predicted events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::latitude::Latitude;
use super::mailbox::{ExpectedEvent, PredictedEvent, Prediction};
use super::ops::{
    FolderHandle, Handle, ItemHandle, Mode, Op, OtherAction, Scope, SubHandle, WatermarkHandle,
};
use ews_proto::ews::EventKind;

/// The case file for `ops`. `prediction` must be the model's prediction
/// for `ops`; `profile` decides whether a poll's events must be exact
/// (strict) or only appear in order (lenient).
///
/// The case format collects events by pull only, so streaming and push
/// subscriptions replay as pull subscriptions (a comment says so); the
/// model predicts the same events for every mode.
pub fn to_case_toml(
    title: &str,
    ops: &[Op],
    prediction: &Prediction,
    profile: &Latitude,
) -> String {
    let mut r = Renderer::new(ops, profile);
    let other = ops.iter().any(|op| matches!(op, Op::OtherMailbox { .. }));
    r.decoys = other;
    r.header(title, prediction, other);
    r.lookups(prediction);
    for (index, op) in ops.iter().enumerate() {
        r.op(index, op, prediction);
    }
    r.cleanup();
    r.out
}

struct Renderer<'a> {
    out: String,
    profile: &'a Latitude,
    /// Items whose id a response reports (CreateItem, MoveItem, CopyItem).
    captured_items: BTreeSet<ItemHandle>,
    /// The variable holding the watermark each subscription sends next.
    next_watermark: BTreeMap<SubHandle, String>,
    remembered: BTreeMap<WatermarkHandle, (SubHandle, String)>,
    filters: BTreeMap<SubHandle, (Scope, BTreeSet<EventKind>)>,
    live: BTreeSet<SubHandle>,
    polls: BTreeMap<SubHandle, usize>,
    /// The sequence has the second user's decoys (their deliveries).
    decoys: bool,
}

impl<'a> Renderer<'a> {
    fn new(ops: &[Op], profile: &'a Latitude) -> Self {
        let captured_items = ops
            .iter()
            .filter_map(|op| match op {
                Op::CreateItem { item, .. } => Some(*item),
                Op::MoveItem { new, .. } | Op::CopyItem { new, .. } => Some(*new),
                _ => None,
            })
            .collect();
        Renderer {
            out: String::new(),
            profile,
            captured_items,
            next_watermark: BTreeMap::new(),
            remembered: BTreeMap::new(),
            filters: BTreeMap::new(),
            live: BTreeSet::new(),
            polls: BTreeMap::new(),
            decoys: false,
        }
    }

    /// Whether the profile's events can be expected exactly (no extra or
    /// missing ModifiedEvents).
    fn strict(&self) -> bool {
        !self.profile.loose()
    }

    /// `other`: the sequence uses the second user's mailbox.
    fn header(&mut self, title: &str, prediction: &Prediction, other: bool) {
        let mut rules: BTreeSet<&str> = BTreeSet::from(["R32"]);
        let mut serial = false;
        for p in prediction.subscriptions.values() {
            rules.extend(p.events.iter().map(|e| e.rule));
            if p.resumed_from.is_some() {
                rules.insert("R21");
            }
            if p.events.iter().any(|e| e.event.unread_count.is_some()) {
                rules.insert("R44");
            }
            if p.events
                .iter()
                .any(|e| matches!(e.event.kind, EventKind::Moved | EventKind::Copied))
            {
                rules.insert("R43");
            }
            let narrowed = p.event_types.len() < 6 || p.scope != Scope::AllFolders;
            if narrowed {
                rules.insert("R42");
            }
            serial |= match &p.scope {
                Scope::AllFolders => true,
                Scope::Folders(set) => set
                    .iter()
                    .any(|f| matches!(f, FolderHandle::Inbox | FolderHandle::DeletedItems)),
            };
        }
        serial |= other
            || prediction
                .log
                .iter()
                .any(|l| l.event.kind == EventKind::NewMail);
        if other {
            // Events are per mailbox: the decoys must raise none of ours.
            rules.insert("R71");
        }
        let mut rules: Vec<&str> = rules.into_iter().collect();
        rules.sort_by_key(|r| r[1..].parse::<u32>().unwrap_or(u32::MAX));
        let _ = writeln!(
            self.out,
            "# Generated from a property-test sequence of the mailbox model; it replays the\n\
             # sequence step by step and expects the events the model predicts ({} profile).",
            self.profile.name
        );
        let _ = writeln!(self.out, "title = {}", q(title));
        let list: Vec<String> = rules.iter().map(|r| q(r)).collect();
        let _ = writeln!(self.out, "requirements = [{}]", list.join(", "));
        if serial {
            let _ = writeln!(self.out, "serial = true");
        }
        if other {
            let _ = writeln!(self.out, "needs = [\"second-user\"]");
        }
    }

    /// GetFolder steps for the well-known folders the expected events name.
    fn lookups(&mut self, prediction: &Prediction) {
        let mut wanted = BTreeSet::new();
        for p in prediction.subscriptions.values() {
            for e in &p.events {
                let ev = &e.event;
                for f in [Some(ev.parent), ev.old_parent].into_iter().flatten() {
                    wanted.insert(f);
                }
                for h in [Some(ev.object), ev.old_object].into_iter().flatten() {
                    if let Handle::Folder(f) = h {
                        wanted.insert(f);
                    }
                }
            }
        }
        for f in wanted {
            let Some(name) = f.distinguished_name() else {
                continue;
            };
            self.step(&format!("look up {name}"), "GetFolder");
            let _ = writeln!(self.out, "with = {{ folder = {} }}", q(name));
            self.no_error();
            let _ = writeln!(
                self.out,
                "capture = {{ {} = \"//t:FolderId/@Id\" }}",
                folder_var(f)
            );
        }
    }

    fn step(&mut self, name: &str, op: &str) {
        let _ = writeln!(self.out, "\n[[step]]\nname = {}\nop = {}", q(name), q(op));
    }

    fn no_error(&mut self) {
        let _ = writeln!(self.out, "expect = {{ code = \"NoError\" }}");
    }

    fn capture(&mut self, var: &str, path: &str) {
        let _ = writeln!(self.out, "capture = {{ {var} = {} }}", q(path));
    }

    fn item_var(&self, h: Handle) -> Option<String> {
        match h {
            Handle::Item(i) if self.captured_items.contains(&i) => Some(format!("${{{i}}}")),
            Handle::Folder(f) => Some(format!("${{{}}}", folder_var(f))),
            _ => None,
        }
    }

    fn op(&mut self, index: usize, op: &Op, prediction: &Prediction) {
        let name = format!("{index}: {op}");
        match op {
            Op::CreateItem { item, folder, read } => {
                self.step(&name, "CreateItem");
                let _ = writeln!(
                    self.out,
                    "with = {{ folder = {}, subject = {}, is_read = {read} }}",
                    q(&folder_param(*folder)),
                    q(&format!("{item} ${{unique}}"))
                );
                self.no_error();
                self.capture(&item.to_string(), "//t:ItemId/@Id");
            }
            Op::CreateItems {
                first,
                count,
                folder,
                read,
            } => {
                self.step(&name, "CreateItem");
                let _ = writeln!(
                    self.out,
                    "with = {{ folder = {}, subject = {}, count = {count}, is_read = {read} }}",
                    q(&folder_param(*folder)),
                    q(&format!("{first} bulk ${{unique}}"))
                );
                self.no_error();
            }
            Op::Deliver { item } => {
                self.step(&name, "CreateItem");
                let _ = writeln!(
                    self.out,
                    "with = {{ disposition = \"SendOnly\", to = [\"${{user}}\"], subject = {} }}",
                    q(&format!("{item} delivered ${{unique}}"))
                );
                self.no_error();
            }
            Op::MarkRead { item, read } => {
                self.step(&name, "UpdateItem");
                let _ = writeln!(
                    self.out,
                    "with = {{ item = {}, is_read = {read} }}",
                    q(&format!("${{{item}}}"))
                );
                self.no_error();
            }
            Op::SetSubject { item } => {
                self.step(&name, "UpdateItem");
                let _ = writeln!(
                    self.out,
                    "with = {{ item = {}, subject = {} }}",
                    q(&format!("${{{item}}}")),
                    q(&format!("{item} renamed ${{unique}}"))
                );
                self.no_error();
            }
            Op::MoveItem { item, to, new } | Op::CopyItem { item, to, new } => {
                let op_name = if matches!(op, Op::MoveItem { .. }) {
                    "MoveItem"
                } else {
                    "CopyItem"
                };
                self.step(&name, op_name);
                let _ = writeln!(
                    self.out,
                    "with = {{ item = {}, to = {} }}",
                    q(&format!("${{{item}}}")),
                    q(&folder_param(*to))
                );
                self.no_error();
                self.capture(&new.to_string(), "//t:ItemId/@Id");
            }
            Op::DeleteItem { item, how } => {
                self.step(&name, "DeleteItem");
                let _ = writeln!(
                    self.out,
                    "with = {{ item = {}, delete_type = {} }}",
                    q(&format!("${{{item}}}")),
                    q(how.as_str())
                );
                self.no_error();
            }
            Op::CreateFolder { folder, parent } => {
                self.step(&name, "CreateFolder");
                let _ = writeln!(
                    self.out,
                    "with = {{ parent = {}, name = {} }}",
                    q(&folder_param(*parent)),
                    q(&format!("{folder} ${{unique}}"))
                );
                self.no_error();
                self.capture(&folder_var(*folder), "//t:FolderId/@Id");
            }
            Op::DeleteFolder { folder, how } => {
                self.step(&name, "DeleteFolder");
                let _ = writeln!(
                    self.out,
                    "with = {{ folder = {}, delete_type = {} }}",
                    q(&folder_param(*folder)),
                    q(how.as_str())
                );
                self.no_error();
            }
            Op::Subscribe {
                sub,
                mode,
                scope,
                event_types,
            } => {
                if *mode != Mode::Pull {
                    let _ = writeln!(
                        self.out,
                        "\n# {sub} was a {} subscription; the case format collects events by pull,\n\
                         # so it replays as a pull subscription (the predicted events are the same).",
                        mode.as_str()
                    );
                }
                self.subscribe(&name, *sub, scope, event_types, None);
            }
            Op::Resubscribe { sub, from } => {
                let Some((origin, var)) = self.remembered.get(from).cloned() else {
                    return;
                };
                let Some((scope, types)) = self.filters.get(&origin).cloned() else {
                    return;
                };
                self.subscribe(&name, *sub, &scope, &types, Some(var));
                let _ = writeln!(
                    self.out,
                    "assert = [{{ path = \"//m:SubscriptionId\", not_equals = {} }}]",
                    q(&format!("${{{origin}}}"))
                );
            }
            Op::Remember { sub, watermark } => {
                if let Some(var) = self.next_watermark.get(sub).cloned() {
                    let _ = writeln!(
                        self.out,
                        "\n# {watermark} = the watermark {sub} sends next: {var}"
                    );
                    self.remembered.insert(*watermark, (*sub, var));
                }
            }
            Op::Poll { sub } => self.poll(index, *sub, prediction),
            Op::OtherMailbox { action } => {
                let subject = format!("op {index} theirs ${{unique}}");
                self.step(&name, "CreateItem");
                let _ = writeln!(self.out, "as = \"user2\"");
                match action {
                    OtherAction::Deliver => {
                        let _ = writeln!(
                            self.out,
                            "with = {{ disposition = \"SendOnly\", to = [\"${{user2}}\"], subject = {} }}",
                            q(&subject)
                        );
                        self.no_error();
                        self.step(&format!("{index}: their delivery arrives"), "AwaitDelivery");
                        let _ = writeln!(self.out, "as = \"user2\"");
                        let _ = writeln!(
                            self.out,
                            "with = {{ folder = \"inbox\", subject = {} }}",
                            q(&subject)
                        );
                    }
                    OtherAction::SaveInInbox => {
                        // Their Inbox by name: "inbox" alone would read, on
                        // the wire, like a save into ours.
                        let _ = writeln!(
                            self.out,
                            "with = {{ folder = \"inbox:${{user2}}\", subject = {} }}",
                            q(&subject)
                        );
                        self.no_error();
                    }
                }
            }
            Op::Unsubscribe { sub } => {
                self.live.remove(sub);
                self.step(&name, "Unsubscribe");
                let _ = writeln!(
                    self.out,
                    "with = {{ subscription = {} }}",
                    q(&format!("${{{sub}}}"))
                );
                self.no_error();
            }
        }
    }

    fn subscribe(
        &mut self,
        name: &str,
        sub: SubHandle,
        scope: &Scope,
        event_types: &BTreeSet<EventKind>,
        watermark: Option<String>,
    ) {
        self.step(name, "Subscribe");
        let mut with = vec!["mode = \"pull\"".to_string()];
        match scope {
            Scope::AllFolders => with.push("all_folders = true".to_string()),
            Scope::Folders(set) => {
                let list: Vec<String> = set.iter().map(|f| q(&folder_param(*f))).collect();
                with.push(format!("folders = [{}]", list.join(", ")));
            }
        }
        let kinds: Vec<String> = event_types.iter().map(|k| q(k.element_name())).collect();
        with.push(format!("event_types = [{}]", kinds.join(", ")));
        with.push("timeout = 10".to_string());
        if let Some(w) = watermark {
            with.push(format!("watermark = {}", q(&w)));
        }
        let _ = writeln!(self.out, "with = {{ {} }}", with.join(", "));
        self.no_error();
        let _ = writeln!(
            self.out,
            "capture = {{ {sub} = \"//m:SubscriptionId\", {sub}_wm = \"//m:SubscribeResponseMessage/m:Watermark\" }}"
        );
        self.next_watermark.insert(sub, format!("${{{sub}_wm}}"));
        self.filters
            .insert(sub, (scope.clone(), event_types.clone()));
        self.live.insert(sub);
    }

    fn poll(&mut self, index: usize, sub: SubHandle, prediction: &Prediction) {
        let Some(pred) = prediction.subscriptions.get(&sub) else {
            return;
        };
        let Some(watermark) = self.next_watermark.get(&sub).cloned() else {
            return;
        };
        let n = self.polls.entry(sub).or_insert(0);
        *n += 1;
        let step_name = format!("{sub}-poll{n}");
        let due_events: Vec<&PredictedEvent> = pred.due_at(index).collect();
        let due: Vec<&ExpectedEvent> = due_events.iter().map(|e| &e.event).collect();
        self.step(&step_name, "DrainEvents");
        let _ = writeln!(
            self.out,
            "with = {{ subscription = {}, watermark = {} }}",
            q(&format!("${{{sub}}}")),
            q(&watermark)
        );
        // An event with another legal form (R76, R77) or none is left
        // out of the patterns, so the poll's events cannot be exact.
        let strict = self.strict() && !due_events.iter().any(|pe| self.latitude(pe));
        if strict && due.len() <= Latitude::MAX_BATCH {
            // One GetEvents call is predicted, so its PreviousWatermark is
            // the watermark the step sends (R31).
            let _ = writeln!(
                self.out,
                "assert = [{{ path = \"//t:PreviousWatermark\", equals = {} }}]",
                q(&watermark)
            );
        }
        let _ = writeln!(self.out, "\n[step.expect]\ncode = \"NoError\"");
        let _ = writeln!(
            self.out,
            "events = {}",
            if strict { "\"exact\"" } else { "\"in-order\"" }
        );
        // In-order tolerates extra events (a profile's extra
        // ModifiedEvents), but no profile has extra new mail: where none of
        // ours is due, the second user's deliveries must not show.
        let wants_new_mail = self
            .filters
            .get(&sub)
            .is_some_and(|(_, kinds)| kinds.contains(&EventKind::NewMail));
        if !strict
            && self.decoys
            && wants_new_mail
            && !due.iter().any(|e| e.kind == EventKind::NewMail)
        {
            let _ = writeln!(self.out, "no_events = [\"NewMailEvent\"]");
        }
        if strict {
            let batches: Vec<String> = if due.is_empty() {
                vec!["1".to_string()]
            } else {
                due.chunks(Latitude::MAX_BATCH)
                    .map(|c| c.len().to_string())
                    .collect()
            };
            let _ = writeln!(self.out, "batches = [{}]", batches.join(", "));
        }
        if due.is_empty() {
            let _ = writeln!(self.out, "\n[[step.expect.event]]\nkind = \"StatusEvent\"");
        }
        for pe in due_events {
            if !self.latitude(pe) {
                self.pattern(&pe.event);
            }
        }
        self.next_watermark
            .insert(sub, format!("${{{step_name}.watermark}}"));
    }

    /// Whether a legal outcome differs from `pe`'s predicted form: another
    /// form (a copy's CreatedEvent, R77; a soft delete's per-version event,
    /// R76).
    fn latitude(&self, pe: &PredictedEvent) -> bool {
        pe.has_latitude() || (pe.event.kind == EventKind::Copied && self.profile.copy_as_created)
    }

    fn pattern(&mut self, e: &ExpectedEvent) {
        let _ = writeln!(
            self.out,
            "\n[[step.expect.event]]\nkind = {}",
            q(e.kind.element_name())
        );
        let key = if e.object.is_folder() {
            "folder"
        } else {
            "item"
        };
        if let Some(v) = self.item_var(e.object) {
            let _ = writeln!(self.out, "{key} = {}", q(&v));
        }
        if let Some(v) = self.item_var(Handle::Folder(e.parent)) {
            let _ = writeln!(self.out, "parent = {}", q(&v));
        }
        if let Some(old) = e.old_object
            && let Some(v) = self.item_var(old)
        {
            let key = if old.is_folder() {
                "old_folder"
            } else {
                "old_item"
            };
            let _ = writeln!(self.out, "{key} = {}", q(&v));
        }
        if let Some(p) = e.old_parent
            && let Some(v) = self.item_var(Handle::Folder(p))
        {
            let _ = writeln!(self.out, "old_parent = {}", q(&v));
        }
        if let Some(n) = e.unread_count {
            let _ = writeln!(self.out, "unread_count = {n}");
        }
    }

    fn cleanup(&mut self) {
        let live: Vec<SubHandle> = self.live.iter().copied().collect();
        for sub in live {
            self.step(&format!("clean up: unsubscribe {sub}"), "Unsubscribe");
            let _ = writeln!(
                self.out,
                "with = {{ subscription = {} }}",
                q(&format!("${{{sub}}}"))
            );
            self.no_error();
        }
    }
}

/// The variable a folder's id is captured into.
fn folder_var(f: FolderHandle) -> String {
    match f {
        FolderHandle::Case => "folder".to_string(),
        other => other.to_string(),
    }
}

/// How an operation parameter names a folder: its variable, or its
/// distinguished name (the runner renders those as DistinguishedFolderId).
fn folder_param(f: FolderHandle) -> String {
    match f.distinguished_name() {
        Some(name) => name.to_string(),
        None => format!("${{{}}}", folder_var(f)),
    }
}

/// A TOML string, as the toml crate writes one.
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}
