#!/usr/bin/env python3
"""Real-client interop scenarios: exchangelib against an EWS endpoint.

Written the way an exchangelib user would write them (explicit endpoint, Basic
credentials, explicit server version, DELEGATE access, no autodiscover), so
that a pass means "an unmodified exchangelib application works against this
server". Each scenario asserts real outcomes (event kinds, ids, counts) and
prints one line:

    PASS pull: Created+NewMail+Modified(inbox) for the new item, unsubscribed
    FAIL push: no notification within 4.0 s

Exit codes: 0 all passed, 1 a scenario failed, 2 bad arguments,
3 exchangelib is not importable (the caller decides whether that is a skip).

The scenarios work in the Inbox and in folders they create, and only look at
events about the items they created, so they can run against a shared
mailbox; they still run one after another, since NewMail/Inbox counts are
per mailbox.
"""

import argparse
import contextlib
import faulthandler
import http.server
import logging
import os
import re
import queue
import sys
import threading
import time
import traceback
import uuid

PINNED = "5.6.0"

try:
    import exchangelib
    from exchangelib import (
        BASIC,
        DELEGATE,
        NTLM,
        UTC,
        Account,
        Build,
        Configuration,
        Credentials,
        FailFast,
        FolderCollection,
        Message,
        Version,
    )
    from exchangelib.errors import (
        ErrorInvalidWatermark,
        ErrorSubscriptionNotFound,
    )
    from exchangelib.folders import Inbox, Root
    from exchangelib.properties import (
        CreatedEvent,
        DistinguishedFolderId,
        Mailbox,
        ModifiedEvent,
        NewMailEvent,
        StatusEvent,
    )
    from exchangelib.services import (
        GetEvents,
        SendNotification,
        SubscribeToPull,
        Unsubscribe,
    )
except ImportError as e:  # pragma: no cover - depends on the machine
    print(f"SKIP exchangelib is not importable: {e}", flush=True)
    sys.exit(3)

ITEM_EVENTS = ["CopiedEvent", "CreatedEvent", "DeletedEvent", "ModifiedEvent", "MovedEvent", "NewMailEvent"]


class Failed(Exception):
    """A scenario's expectation did not hold."""


def check(condition, message):
    if not condition:
        raise Failed(message)


def kind(e):
    return type(e).__name__


def describe(events):
    """A short readable list of events for failure messages."""
    out = []
    for e in events:
        if isinstance(e, StatusEvent):
            out.append("Status")
            continue
        who = "item" if e.item_id is not None else "folder"
        ident = e.item_id.id if e.item_id is not None else (e.folder_id.id if e.folder_id is not None else "?")
        out.append(f"{kind(e).replace('Event', '')}({who} {ident[-10:]})")
    return "[" + ", ".join(out) + "]"


def about_item(events, item_id):
    """Events whose item (or old item, for moves and copies) is `item_id`."""
    hits = []
    for e in events:
        if isinstance(e, StatusEvent) or e.item_id is None:
            continue
        old = getattr(e, "old_item_id", None)
        if e.item_id.id == item_id or (old is not None and old.id == item_id):
            hits.append(e)
    return hits


def folder_modified(events, folder_id):
    return [
        e
        for e in events
        if isinstance(e, ModifiedEvent) and e.folder_id is not None and e.folder_id.id == folder_id
    ]


def check_timestamps(events):
    for e in events:
        if isinstance(e, StatusEvent):
            continue
        check(e.timestamp is not None, f"{kind(e)} has a TimeStamp exchangelib cannot parse")


class Wire(logging.Handler):
    """Keeps the request bodies exchangelib sends (from its XML debug log),
    so a scenario can assert what went over the wire, not just what came back."""

    BODY_OP = re.compile(rb"<(?:[A-Za-z0-9_]+:)?Body[^>]*>\s*<(?:[A-Za-z0-9_]+:)?([A-Za-z]+)")

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.requests = []
        self._guard = threading.Lock()
        log = logging.getLogger("exchangelib.util.xml")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        log.addHandler(self)

    def emit(self, record):
        args = record.args
        if isinstance(args, dict) and isinstance(args.get("xml_request"), (bytes, str)):
            body = args["xml_request"]
            with self._guard:
                self.requests.append(body.encode() if isinstance(body, str) else body)

    def mark(self):
        with self._guard:
            return len(self.requests)

    def since(self, mark):
        with self._guard:
            return list(self.requests[mark:])

    def operations(self, mark=0):
        ops = []
        for body in self.since(mark):
            m = self.BODY_OP.search(body)
            ops.append(m.group(1).decode() if m else "?")
        return ops


class Context:
    def __init__(self, args):
        self.args = args
        self.wire = Wire()
        self.minute = args.minute_ms / 1000.0
        self.tag = uuid.uuid4().hex[:8]
        if args.auth == "ntlm":
            # On-premises Exchange's default: DOMAIN\\user, the handshake on
            # each connection (requests_ntlm through pyspnego).
            local, _, domain = args.user.partition("@")
            login = args.ntlm_login or f"{domain.split('.')[0].upper()}\\{local}"
            credentials, auth_type = Credentials(login, args.password), NTLM
        else:
            credentials, auth_type = Credentials(args.user, args.password), BASIC
        config = Configuration(
            service_endpoint=args.endpoint,
            credentials=credentials,
            auth_type=auth_type,
            version=Version(build=Build(15, 0, 0, 0)),  # Exchange2013, no version guessing
            retry_policy=FailFast(),
            max_connections=2,  # the streaming scenario creates items while a stream is open
        )
        self.account = Account(
            primary_smtp_address=args.email or args.user,
            config=config,
            autodiscover=False,
            access_type=DELEGATE,
            default_timezone=UTC,
            locale="en_US",
        )
        self._inbox = None

    @property
    def inbox(self):
        """The natural path: account.inbox (GetFolder), once."""
        if self._inbox is None:
            self._inbox = self.account.inbox
        return self._inbox

    def subject(self, what):
        return f"interop {self.tag} {what}"

    def new_message(self, folder, what):
        """Saves a message (CreateItem SaveOnly): CreatedEvent, never NewMailEvent."""
        m = Message(account=self.account, folder=folder, subject=self.subject(what), body=f"body of {what}")
        m.save()
        check(m.id, f"CreateItem for {what} returned no ItemId")
        return m

    def deliver(self, what):
        """Sends a message to the account itself (CreateItem SendOnly) and
        returns it as delivered to the Inbox: only delivered mail raises
        NewMailEvent. Delivery may lag behind the send, as on Exchange."""
        subject = self.subject(what)
        email = self.args.email or self.args.user
        Message(account=self.account, subject=subject, body=f"body of {what}", to_recipients=[email]).send(save_copy=False)
        deadline = time.monotonic() + 30
        while True:
            found = list(self.inbox.filter(subject__contains=subject))
            if found:
                return found[0]
            check(time.monotonic() < deadline, f"the message {what!r} sent to {email} was not delivered within 30 s")
            time.sleep(0.2)


def drain(folder, subscription_id, watermark):
    """GetEvents until MoreEvents is false: (events, watermark to send next, notifications)."""
    events, notes = [], []
    for n in folder.get_events(subscription_id, watermark):
        notes.append(n)
        check(n.subscription_id == subscription_id, f"Notification names subscription {n.subscription_id!r}")
        check(n.more_events is not None, "MoreEvents is not a boolean exchangelib can read")
        for e in n.events:
            events.append(e)
            if e.watermark:
                watermark = e.watermark
    return events, watermark, notes


def get_events_direct(account, subscription_id, watermark):
    """GetEvents through the service class (no folder object needed)."""
    n = GetEvents(account=account).get(subscription_id=subscription_id, watermark=watermark)
    return n


# ---------------------------------------------------------------- scenarios


def scenario_pull(ctx):
    """Subscribe to the Inbox by DistinguishedFolderId (no GetFolder at all),
    create a message, get the events, unsubscribe."""
    account = ctx.account
    mark = ctx.wire.mark()
    email = ctx.args.email or ctx.args.user
    inbox = Inbox(
        root=Root(account=account),
        _distinguished_id=DistinguishedFolderId(id="inbox", mailbox=Mailbox(email_address=email)),
    )
    sid, wm0 = SubscribeToPull(account=account).get(
        folders=[inbox], event_types=ITEM_EVENTS, watermark=None, timeout=10
    )
    check(sid and wm0, f"Subscribe returned id={sid!r} watermark={wm0!r}")
    first = get_events_direct(account, sid, wm0)
    check(first.previous_watermark == wm0, "PreviousWatermark does not echo the watermark sent")
    check(
        [kind(e) for e in first.events] == ["StatusEvent"],
        f"an idle subscription gave {describe(first.events)}, not one StatusEvent",
    )
    # The delivery's own requests (the Inbox lookup for the delivered message)
    # are not the DistinguishedFolderId subscription path checked below.
    ops = ctx.wire.operations(mark)
    m = ctx.deliver("pull")
    mark = ctx.wire.mark()
    n = get_events_direct(account, sid, first.events[-1].watermark or wm0)
    events = n.events
    check_timestamps(events)
    mine = about_item(events, m.id)
    check(
        [kind(e) for e in mine] == ["CreatedEvent", "NewMailEvent"],
        f"events about the new item: {describe(mine)}",
    )
    parent = mine[0].parent_folder_id.id
    check(all(e.parent_folder_id.id == parent for e in mine), "the item's events name different parents")
    check(folder_modified(events, parent), f"no ModifiedEvent for the Inbox in {describe(events)}")
    check(n.more_events is False, "MoreEvents is not false after three events")
    check(Unsubscribe(account=account).get(subscription_id=sid) is True, "Unsubscribe did not succeed")
    try:
        get_events_direct(account, sid, events[-1].watermark)
        raise Failed("GetEvents after Unsubscribe succeeded")
    except ErrorSubscriptionNotFound:
        pass
    ops += ctx.wire.operations(mark)
    check("GetFolder" not in ops, f"the DistinguishedFolderId path still sent GetFolder: {ops}")
    return (
        f"Created+NewMail+Modified(inbox) for the new item ({len(events)} events), unsubscribed, "
        f"then ErrorSubscriptionNotFound; sent {' '.join(ops)}"
    )


def scenario_resume(ctx):
    """Re-subscribe from a remembered watermark (exchangelib writes it as
    m:Watermark) and get exactly the events after it."""
    inbox = ctx.inbox
    sid, wm0 = inbox.subscribe_to_pull(event_types=ITEM_EVENTS, timeout=10)
    a = ctx.deliver("resume A")
    events_a, wm_after_a, _ = drain(inbox, sid, wm0)
    check(about_item(events_a, a.id), f"A's events missing: {describe(events_a)}")
    b = ctx.deliver("resume B")
    check(inbox.unsubscribe(sid) is True, "Unsubscribe did not succeed")
    # The application restarts and resumes from the last watermark it processed.
    mark = ctx.wire.mark()
    sid2, wm2 = inbox.subscribe_to_pull(event_types=ITEM_EVENTS, watermark=wm_after_a, timeout=10)
    sent = b"".join(ctx.wire.since(mark))
    check(
        re.search(rb"<m:Watermark>[^<]+</m:Watermark>\s*<t:Timeout>", sent) is not None,
        "exchangelib no longer writes m:Watermark in Subscribe; revisit the server's tolerance",
    )
    check(sid2 and sid2 != sid, "re-subscribe did not create a new subscription")
    events, _, _ = drain(inbox, sid2, wm2)
    check(not about_item(events, a.id), f"events before the watermark were replayed: {describe(events)}")
    mine = about_item(events, b.id)
    check(
        [kind(e) for e in mine] == ["CreatedEvent", "NewMailEvent"],
        f"B's events after resuming: {describe(mine)}",
    )
    check(folder_modified(events, inbox.id), f"no ModifiedEvent for the Inbox: {describe(events)}")
    check(
        all(isinstance(e, (CreatedEvent, NewMailEvent, ModifiedEvent)) for e in events),
        f"unexpected events after resuming: {describe(events)}",
    )
    check(len(events) == 3, f"expected exactly B's three events, got {describe(events)}")
    check(inbox.unsubscribe(sid2) is True, "Unsubscribe did not succeed")
    try:
        inbox.subscribe_to_pull(event_types=ITEM_EVENTS, watermark="AAAAbm90LWEtd2F0ZXJtYXJr", timeout=10)
        raise Failed("Subscribe with an unknown watermark succeeded")
    except ErrorInvalidWatermark:
        pass
    return (
        f"re-subscribed with m:Watermark from A's watermark: exactly B's {len(events)} events; "
        "unknown watermark -> ErrorInvalidWatermark"
    )


def scenario_streaming(ctx):
    """Subscribe, open the connection, create a message, receive the events, stop."""
    inbox = ctx.inbox
    ctx.account.affinity_cookie = None
    with inbox.streaming_subscription(event_types=ITEM_EVENTS) as sid:
        check(sid, "streaming Subscribe returned no id")
        # exchangelib asks for affinity (X-PreferServerAffinity) and replays
        # the X-BackEndOverrideCookie that Exchange sets on the Subscribe.
        check(ctx.account.affinity_cookie, "no X-BackEndOverrideCookie after a streaming Subscribe")
        created = {}

        def create_later():
            time.sleep(0.3)  # after the connection is open
            try:
                created["m"] = ctx.deliver("streaming")
            except Exception as e:  # reported by the main thread
                created["error"] = e

        maker = threading.Thread(target=create_later, daemon=True)
        events, notifications = [], 0
        started = time.monotonic()
        maker.start()
        with contextlib.closing(inbox.get_streaming_events(sid, connection_timeout=1)) as stream:
            for n in stream:
                notifications += 1
                check(n.subscription_id == sid, f"notification for {n.subscription_id!r}")
                events.extend(n.events)
                m = created.get("m")
                if m is not None and len(about_item(events, m.id)) >= 2 and folder_modified(events, inbox.id):
                    break
        maker.join(5)
        if "error" in created:
            raise created["error"]
        m = created.get("m")
        check(m is not None, "the message was not created while streaming")
        mine = about_item(events, m.id)
        check(
            [kind(e) for e in mine] == ["CreatedEvent", "NewMailEvent"],
            f"streamed events about the new item: {describe(mine)} (all: {describe(events)})",
        )
        check_timestamps(events)
        took = time.monotonic() - started
        # An idle connection ends by itself after ConnectionTimeout with
        # ConnectionStatus=Closed, and exchangelib's loop ends with it.
        closed = ""
        if ctx.minute <= 10:
            t0 = time.monotonic()
            rest = list(inbox.get_streaming_events(sid, connection_timeout=1))
            waited = time.monotonic() - t0
            check(not any(about_item(n.events, m.id) for n in rest), "events were delivered twice")
            check(waited >= 0.8 * ctx.minute, f"the idle stream closed after {waited:.1f} s, before ConnectionTimeout")
            check(waited <= ctx.minute * 1.5 + 5, f"the idle stream took {waited:.1f} s to close")
            closed = f"; an idle stream closed after {waited:.1f} s"
    try:
        inbox.unsubscribe(sid)
        raise Failed("a second Unsubscribe succeeded")
    except ErrorSubscriptionNotFound:
        pass
    return (
        f"affinity cookie kept; Created+NewMail+Modified(inbox) in {notifications} notification(s) "
        f"within {took:.1f} s{closed}; unsubscribed"
    )


class PushListener:
    """A tiny callback server: parses each SendNotification with exchangelib
    and answers with exchangelib's own reply payloads."""

    def __init__(self):
        self.answer = "OK"
        self.received = queue.Queue()
        self.posts = 0
        self.errors = []
        listener = self
        parser = SendNotification(protocol=None)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                listener.posts += 1
                try:
                    notes = list(parser.parse(body))
                except Exception as e:
                    listener.errors.append(f"SendNotification did not parse: {e!r}")
                    notes = []
                answer = listener.answer
                payload = parser.ok_payload() if answer == "OK" else parser.unsubscribe_payload()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                for n in notes:
                    listener.received.put((answer, n))

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def next(self, timeout):
        try:
            return self.received.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def scenario_push(ctx):
    """Subscribe with a callback the test runs, receive SendNotification, answer
    OK, then answer Unsubscribe and see the notifications stop."""
    inbox = ctx.inbox
    listener = PushListener()
    wait = max(4.0, 2 * ctx.minute)
    try:
        sid, wm = inbox.subscribe_to_push(listener.url, event_types=ITEM_EVENTS, status_frequency=1)
        check(sid and wm, f"push Subscribe returned id={sid!r} watermark={wm!r}")
        got = listener.next(wait)
        check(got is not None, f"no notification within {wait:.1f} s of Subscribe")
        _, first = got
        check(first.subscription_id == sid, f"notification for {first.subscription_id!r}")
        check(
            first.events and all(isinstance(e, StatusEvent) for e in first.events),
            f"the first notification of an idle subscription is {describe(first.events)}, not a StatusEvent",
        )
        m = ctx.deliver("push")
        events, chain_ok = [], True
        deadline = time.monotonic() + wait
        while len(about_item(events, m.id)) < 2 and time.monotonic() < deadline:
            got = listener.next(max(0.05, deadline - time.monotonic()))
            if got is None:
                break
            _, n = got
            check(n.subscription_id == sid, f"notification for {n.subscription_id!r}")
            if not all(isinstance(e, StatusEvent) for e in n.events) and not events:
                # The first notification with events continues from what was acknowledged.
                chain_ok = n.previous_watermark == wm
            events.extend(e for e in n.events if not isinstance(e, StatusEvent))
        mine = about_item(events, m.id)
        check(
            [kind(e) for e in mine] == ["CreatedEvent", "NewMailEvent"],
            f"pushed events about the new item: {describe(mine)} (all: {describe(events)})",
        )
        check(chain_ok, "PreviousWatermark of the first event notification is not the Subscribe watermark")
        check_timestamps(events)
        # Answer the next notification with Unsubscribe.
        listener.answer = "Unsubscribe"
        ctx.deliver("push 2")
        got = listener.next(wait)
        check(got is not None and got[0] == "Unsubscribe", "no notification came to answer with Unsubscribe")
        posts = listener.posts
        ctx.deliver("push 3")
        quiet = max(3.0, 1.5 * ctx.minute)  # longer than StatusFrequency
        time.sleep(quiet)
        check(
            listener.posts == posts,
            f"{listener.posts - posts} notification(s) arrived after answering Unsubscribe",
        )
        check(not listener.errors, "; ".join(listener.errors))
        return (
            f"status, then Created+NewMail for the new item, answered OK; answered Unsubscribe and "
            f"no POST in the next {quiet:.1f} s ({posts} POSTs in all)"
        )
    finally:
        listener.close()


def scenario_natural(ctx):
    """account.inbox and account.drafts (GetFolder), Message(...).save(),
    save (update), move, copy, delete, soft_delete, move_to_trash: each
    with its expected events.

    The second folder is Drafts, reached like the Inbox: a subfolder made
    with Folder(parent=...).save() would make exchangelib map the whole
    folder tree first (FindFolder), which the reference server does not
    implement."""
    account = ctx.account
    inbox = ctx.inbox
    check(inbox.id, "account.inbox has no FolderId")
    target = account.drafts
    check(target.id and target.id != inbox.id, "account.drafts has no FolderId of its own")
    sub = FolderCollection(account=account, folders=[inbox, target])
    sid, wm = sub.subscribe_to_pull(event_types=ITEM_EVENTS, timeout=10)
    done = []

    def step(name, action, expect):
        nonlocal wm
        result = action()
        events, wm, _ = drain(inbox, sid, wm)
        check_timestamps(events)
        expect(result, events)
        done.append(name)
        return result

    def only(events, item_id, kinds, what):
        mine = about_item(events, item_id)
        got = [kind(e) for e in mine]
        check(got == kinds, f"{what}: expected {kinds}, got {describe(mine)} (all: {describe(events)})")
        return mine

    # save (CreateItem SaveOnly into the Inbox): saved, not delivered, so no NewMailEvent
    def expect_save(m, events):
        mine = only(events, m.id, ["CreatedEvent"], "save")
        check(all(e.parent_folder_id.id == inbox.id for e in mine), "save: parent is not the Inbox")
        check(folder_modified(events, inbox.id), "save: no ModifiedEvent for the Inbox")

    m = step("save", lambda: ctx.new_message(inbox, "natural"), expect_save)

    # save again (UpdateItem)
    def update():
        m.subject = ctx.subject("natural renamed")
        m.save(update_fields=["subject"])
        return m.id

    step("update", update, lambda mid, ev: only(ev, mid, ["ModifiedEvent"], "update"))

    # move to the Drafts
    old = m.id

    def move():
        m.move(target)
        return m.id

    def expect_move(new, events):
        (e,) = only(events, old, ["MovedEvent"], "move")
        check(e.item_id.id == new, "move: ItemId is not the id MoveItem returned")
        check(e.parent_folder_id.id == target.id, "move: ParentFolderId is not the target")
        check(e.old_parent_folder_id.id == inbox.id, "move: OldParentFolderId is not the Inbox")
        check(folder_modified(events, inbox.id) and folder_modified(events, target.id), "move: folder events")

    step("move", move, expect_move)

    # copy back to the Inbox
    def copy():
        res = m.copy(inbox)
        check(res, "CopyItem returned no ItemId")
        return res[0]

    def expect_copy(new, events):
        (e,) = only(events, m.id, ["CopiedEvent"], "copy")
        check(e.item_id.id == new, "copy: ItemId is not the id CopyItem returned")
        check(e.old_item_id.id == m.id, "copy: OldItemId is not the source")
        check(e.parent_folder_id.id == inbox.id, "copy: ParentFolderId is not the Inbox")
        check(e.old_parent_folder_id.id == target.id, "copy: OldParentFolderId is not the Drafts")

    copy_id = step("copy", copy, expect_copy)

    # delete (HardDelete) the moved original
    gone = m.id

    def expect_delete(_, events):
        (e,) = only(events, gone, ["DeletedEvent"], "delete")
        check(e.parent_folder_id.id == target.id, "delete: ParentFolderId is not the Drafts")
        check(folder_modified(events, target.id), "delete: no ModifiedEvent for the Drafts")

    step("delete", m.delete, expect_delete)

    # soft_delete the copy: MovedEvent to Recoverable Items (2013+) or DeletedEvent (2010)
    copy_item = next(iter(account.fetch(ids=[(copy_id, None)])))
    check(copy_item.id == copy_id, "GetItem of the copy failed")

    def expect_soft(_, events):
        mine = about_item(events, copy_id)
        kinds = [kind(e) for e in mine]
        check(kinds in (["MovedEvent"], ["DeletedEvent"]), f"soft_delete: {describe(mine)}")
        if kinds == ["MovedEvent"]:
            check(mine[0].old_parent_folder_id.id == inbox.id, "soft_delete: OldParentFolderId is not the Inbox")
            check(mine[0].parent_folder_id.id not in (inbox.id, target.id), "soft_delete: moved to a visible folder")
        check(folder_modified(events, inbox.id), "soft_delete: no ModifiedEvent for the Inbox")

    step("soft_delete", copy_item.soft_delete, expect_soft)

    # move_to_trash a message saved in the Drafts
    t = ctx.new_message(target, "trash")
    _, wm, _ = drain(inbox, sid, wm)
    trash_from = t.id

    def expect_trash(_, events):
        (e,) = only(events, trash_from, ["MovedEvent"], "move_to_trash")
        check(e.old_parent_folder_id.id == target.id, "move_to_trash: OldParentFolderId is not the Drafts")
        trash = account.trash
        check(e.parent_folder_id.id == trash.id, "move_to_trash: ParentFolderId is not Deleted Items")

    step("move_to_trash", t.move_to_trash, expect_trash)

    check(sub.unsubscribe(sid) is True, "Unsubscribe did not succeed")
    return "GetFolder(inbox, drafts), then " + ", ".join(done) + ": each with its expected events and ids"


SCENARIOS = {
    "pull": scenario_pull,
    "resume": scenario_resume,
    "streaming": scenario_streaming,
    "push": scenario_push,
    "natural": scenario_natural,
}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", required=True, help="EWS URL, e.g. http://127.0.0.1:8080/EWS/Exchange.asmx")
    p.add_argument("--user", required=True, help="SMTP address; the login for Basic authentication")
    p.add_argument("--auth", choices=["basic", "ntlm"], default="basic", help="HTTP authentication (default basic)")
    p.add_argument("--ntlm-login", help="NTLM login (default DOMAIN\\local from --user)")
    p.add_argument("--password", default=os.environ.get("EWS_INTEROP_PASSWORD"), help="or EWS_INTEROP_PASSWORD")
    p.add_argument("--email", help="primary SMTP address (default: --user)")
    p.add_argument("--minute-ms", type=int, default=60000, help="the server's protocol minute (default 60000)")
    p.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    p.add_argument("--deadline", type=float, default=300.0, help="abort the whole run after this many seconds")
    args = p.parse_args(argv)
    if not args.password:
        p.error("--password (or EWS_INTEROP_PASSWORD) is required")
    # Bounded everything: a hung scenario dumps where it hangs and ends the run.
    faulthandler.dump_traceback_later(args.deadline, exit=True)
    version = getattr(exchangelib, "__version__", "?")
    note = "" if version == PINNED else f" (the pinned version is {PINNED})"
    print(f"exchangelib {version}{note} against {args.endpoint} ({args.auth} authentication)", flush=True)
    ctx = Context(args)
    failed = 0
    for name in args.only or list(SCENARIOS):
        started = time.monotonic()
        try:
            summary = SCENARIOS[name](ctx)
            print(f"PASS {name}: {summary} [{time.monotonic() - started:.1f} s]", flush=True)
        except Failed as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
        except Exception as e:
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            traceback.print_exc()
    total = len(args.only or SCENARIOS)
    print(f"interop: {total - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
