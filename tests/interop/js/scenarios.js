#!/usr/bin/env node
// Real-client interop scenarios: ews-javascript-api against an EWS endpoint.
//
// Written the way an ews-javascript-api user writes them (explicit URL,
// WebCredentials, ExchangeVersion.Exchange2013, no autodiscover), so a pass
// means "an unmodified ews-javascript-api application works against this
// server". Each scenario asserts real outcomes (event kinds, item and folder
// ids, subscription ids) and prints one line:
//
//     PASS pull: Created+NewMail for the new item, Modified(inbox), ...
//     FAIL streaming: no events within 4.0 s
//
// Scenarios: pull (PullSubscription on the Inbox, EmailMessage.Send to itself, GetEvents,
// Unsubscribe), resume (re-subscribe from a kept watermark), streaming
// (StreamingSubscriptionConnection, events, Close), stream-open (the first
// envelope comes at once, every envelope is the unprefixed `<Envelope` the
// client scans for, the server ends an idle connection cleanly), takeover (a
// second connection for one subscription), stale (an unsubscribed id on a
// connection).
//
// The client groups the events of one notification by element name, so the
// order *across* event types is lost (and its NewWatermark can be stale when
// a type repeats non-adjacently). No scenario asserts cross-type order; the
// events about one item are compared as a sorted list of kinds.
//
// Exit codes: 0 all passed, 1 a scenario failed, 2 bad arguments,
// 3 the client is not installed (the caller decides whether that is a skip).
//
// Install the pinned client with `npm ci` in this directory.

'use strict';

const fs = require('fs');
const path = require('path');

const PINNED = { 'ews-javascript-api': '0.15.3', '@ewsjs/xhr': '3.1.3', axios: '1.21.1' };
const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
/** The exact start tag the client scans the stream for. */
const UNPREFIXED = `<Envelope xmlns="${SOAP_NS}">`;

let ews;
let XhrApi;
try {
  ews = require('ews-javascript-api');
  ({ XhrApi } = require('@ewsjs/xhr'));
} catch (e) {
  console.log(`SKIP ews-javascript-api is not installed (run npm ci in ${__dirname}): ${e.message}`);
  process.exit(3);
}

const {
  BodyType,
  EmailMessage,
  EventType,
  ExchangeService,
  ExchangeVersion,
  FolderEvent,
  FolderId,
  ItemEvent,
  ItemSchema,
  ItemView,
  MessageBody,
  SearchFilter,
  ServiceError,
  StreamingSubscriptionConnection,
  Uri,
  WebCredentials,
  WellKnownFolderName,
} = ews;

const ITEM_EVENTS = [
  EventType.NewMail,
  EventType.Created,
  EventType.Deleted,
  EventType.Modified,
  EventType.Moved,
  EventType.Copied,
];

class Failed extends Error {}

function check(condition, message) {
  if (!condition) throw new Failed(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Number(process.hrtime.bigint() / 1000000n);

/** Polls `condition` every 10 ms until it holds or `ms` pass; returns whether it held. */
async function until(condition, ms) {
  const end = now() + ms;
  for (;;) {
    if (condition()) return true;
    if (now() >= end) return false;
    await sleep(10);
  }
}

function installedVersion(name) {
  try {
    const file = path.join(__dirname, 'node_modules', ...name.split('/'), 'package.json');
    return JSON.parse(fs.readFileSync(file, 'utf8')).version;
  } catch {
    return '?';
  }
}

const kind = (e) => EventType[e.EventType];
const itemId = (e) => (e instanceof ItemEvent && e.ItemId ? e.ItemId.UniqueId : null);
const folderId = (e) => (e instanceof FolderEvent && e.FolderId ? e.FolderId.UniqueId : null);
const parentId = (e) => (e.ParentFolderId ? e.ParentFolderId.UniqueId : null);

function describe(events) {
  const short = (id) => (id ? id.slice(-10) : '?');
  return (
    '[' +
    events
      .map((e) => (itemId(e) ? `${kind(e)}(item ${short(itemId(e))})` : `${kind(e)}(folder ${short(folderId(e))})`))
      .join(', ') +
    ']'
  );
}

/** The sorted kinds of the events about `id` (item or old item). */
function kindsAbout(events, id) {
  return events
    .filter((e) => itemId(e) === id || (e instanceof ItemEvent && e.OldItemId && e.OldItemId.UniqueId === id))
    .map(kind)
    .sort();
}

function folderModified(events, id) {
  return events.filter((e) => e.EventType === EventType.Modified && folderId(e) === id);
}

/** Every event has a TimeStamp the client parsed, close to the local clock. */
function checkTimestamps(events) {
  for (const e of events) {
    const ms = e.TimeStamp ? e.TimeStamp.TotalMilliSeconds : NaN;
    check(Number.isFinite(ms), `${kind(e)} has a TimeStamp the client cannot parse`);
    check(Math.abs(ms - Date.now()) < 10 * 60 * 1000, `${kind(e)} TimeStamp ${e.TimeStamp} is not about now`);
  }
}

/** What the client itself reports for an error: the ServiceError name when it has one. */
function errorCode(e) {
  if (e && e.ErrorCode !== undefined && e.ErrorCode !== null) return ServiceError[e.ErrorCode] || String(e.ErrorCode);
  return e && (e.message || e.Message || String(e));
}

/**
 * The client's own transport (@ewsjs/xhr over axios), wrapped to keep what
 * goes over the wire: each request's operation and each stream's raw chunks
 * with their arrival times. Nothing is changed on the way.
 */
class Wire {
  constructor() {
    this.requests = [];
    this.streams = [];
    this.api = this.transport();
  }

  /**
   * A new recorded transport. The client keeps one open stream per transport
   * (Close() destroys "the" stream), so each concurrent connection needs its own.
   */
  transport() {
    const api = new XhrApi();
    const plain = api.xhr.bind(api);
    const stream = api.xhrStream.bind(api);
    api.xhr = async (options, progress) => {
      const entry = { op: Wire.operation(options.data), status: null };
      this.requests.push(entry);
      const response = await plain(options, progress);
      entry.status = response && response.status;
      return response;
    };
    api.xhrStream = (options, progress) => {
      const entry = { op: Wire.operation(options.data), sent: now(), chunks: [], ended: null };
      this.requests.push(entry);
      this.streams.push(entry);
      return stream(options, (p) => {
        if (p.type === 'data') entry.chunks.push({ at: now(), text: String(p.data) });
        if (p.type === 'end') entry.ended = now();
        progress(p);
      });
    };
    return api;
  }

  static operation(body) {
    const m = /<(?:[A-Za-z0-9_]+:)?Body[^>]*>\s*<(?:[A-Za-z0-9_]+:)?([A-Za-z]+)/.exec(String(body || ''));
    return m ? m[1] : '?';
  }

  mark() {
    return this.requests.length;
  }

  operations(mark = 0) {
    return this.requests.slice(mark).map((r) => r.op);
  }
}

class Context {
  constructor(args, wire) {
    this.args = args;
    this.wire = wire;
    this.tag = Math.random().toString(16).slice(2, 10);
    this.unhandled = [];
    this.service = this.newService(wire.api);
    this.inbox = new FolderId(WellKnownFolderName.Inbox); // no request
  }

  /** An ExchangeService as an application configures one; `api` is its transport. */
  newService(api) {
    const service = new ExchangeService(ExchangeVersion.Exchange2013);
    service.Credentials = new WebCredentials(this.args.user, this.args.password);
    service.Url = new Uri(this.args.endpoint);
    service.XHRApi = api;
    return service;
  }

  /**
   * Sends a message to the account itself (CreateItem SendOnly) and returns
   * the id of the copy delivered to the Inbox: only delivered mail raises
   * NewMailEvent (a message saved into the Inbox raises CreatedEvent alone).
   * Delivery may lag behind the send, as on Exchange.
   */
  async newMessage(what) {
    const subject = `interop ${this.tag} ${what}`;
    const m = new EmailMessage(this.service);
    m.Subject = subject;
    m.Body = new MessageBody(BodyType.Text, `body of ${what}`);
    m.ToRecipients.Add(this.args.user);
    await m.Send();
    const deadline = Date.now() + 30000;
    for (;;) {
      const found = await this.service.FindItems(
        this.inbox,
        new SearchFilter.ContainsSubstring(ItemSchema.Subject, subject),
        new ItemView(5),
      );
      if (found.Items.length > 0) {
        const id = found.Items[0].Id;
        check(id && id.UniqueId, `the delivered ${what} has no ItemId`);
        return id.UniqueId;
      }
      check(Date.now() < deadline, `the message ${what} sent to ${this.args.user} was not delivered within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** A streaming connection lifetime (minutes) lasting at least `seconds`. */
  lifetimeFor(seconds) {
    return Math.min(30, Math.max(1, Math.ceil((seconds * 1000) / this.args.minuteMs)));
  }
}

/** Checks the events one CreateItem into the Inbox causes: Created+NewMail, Modified(parent). */
function checkCreated(events, id, what) {
  const kinds = kindsAbout(events, id);
  check(
    JSON.stringify(kinds) === JSON.stringify(['Created', 'NewMail']),
    `${what}: events about the new item are ${JSON.stringify(kinds)} (all: ${describe(events)})`,
  );
  const parents = new Set(events.filter((e) => itemId(e) === id).map(parentId));
  check(parents.size === 1 && !parents.has(null), `${what}: the item's events name parents ${[...parents]}`);
  const [parent] = parents;
  check(folderModified(events, parent).length > 0, `${what}: no ModifiedEvent for the Inbox in ${describe(events)}`);
  checkTimestamps(events);
  return parent;
}

// ---------------------------------------------------------------- scenarios

async function scenarioPull(ctx) {
  const mark = ctx.wire.mark();
  const sub = await ctx.service.SubscribeToPullNotifications([ctx.inbox], 10, null, ...ITEM_EVENTS);
  check(sub.Id && sub.Watermark, `Subscribe returned id=${sub.Id} watermark=${sub.Watermark}`);
  const w0 = sub.Watermark;
  const idle = await sub.GetEvents();
  check(idle.SubscriptionId === sub.Id, `an idle GetEvents names subscription ${idle.SubscriptionId}`);
  check(idle.PreviousWatermark === w0, 'PreviousWatermark does not echo the watermark sent');
  check(idle.AllEvents.length === 0, `an idle subscription gave ${describe(idle.AllEvents)}`);
  check(idle.NewWatermark, 'an idle GetEvents carried no StatusEvent watermark');
  const sent = sub.Watermark;
  const id = await ctx.newMessage('pull');
  const got = await sub.GetEvents();
  check(got.PreviousWatermark === sent, 'PreviousWatermark does not echo the watermark sent');
  check(got.MoreEventsAvailable === false, 'MoreEvents is not false after three events');
  const parent = checkCreated(got.AllEvents, id, 'pull');
  check(got.AllEvents.length === 3, `expected exactly three events, got ${describe(got.AllEvents)}`);
  check(sub.Watermark && sub.Watermark !== sent, 'the watermark did not move on');
  // Nothing twice: the next GetEvents (from the client's NewWatermark) has no item events.
  const again = await sub.GetEvents();
  check(again.AllEvents.length === 0, `events delivered twice: ${describe(again.AllEvents)}`);
  await sub.Unsubscribe();
  let after = null;
  try {
    await sub.GetEvents();
  } catch (e) {
    after = errorCode(e);
  }
  check(after === 'ErrorSubscriptionNotFound', `GetEvents after Unsubscribe gave ${after}`);
  const ops = ctx.wire.operations(mark);
  check(
    // FindItem: the test's own look for the delivered message (not the subscription's path).
    ops.every((op) => ['Subscribe', 'GetEvents', 'CreateItem', 'FindItem', 'Unsubscribe'].includes(op)),
    `unexpected operations: ${ops.join(' ')}`,
  );
  return (
    `Created+NewMail for item …${id.slice(-8)} and Modified(inbox …${parent.slice(-8)}), ` +
    `PreviousWatermark echoed, nothing twice, unsubscribed, then ErrorSubscriptionNotFound; sent ${ops.join(' ')}`
  );
}

async function scenarioResume(ctx) {
  const sub = await ctx.service.SubscribeToPullNotifications([ctx.inbox], 10, null, ...ITEM_EVENTS);
  const a = await ctx.newMessage('resume A');
  const first = await sub.GetEvents();
  checkCreated(first.AllEvents, a, 'resume A');
  const remembered = sub.Watermark; // NewWatermark: one event of each type, so it is the last one
  const b = await ctx.newMessage('resume B');
  await sub.Unsubscribe();
  // The application restarts and resumes from the watermark it kept (t:Watermark on the wire).
  const again = await ctx.service.SubscribeToPullNotifications([ctx.inbox], 10, remembered, ...ITEM_EVENTS);
  check(again.Id && again.Id !== sub.Id, 're-subscribe did not create a new subscription');
  const got = await again.GetEvents();
  check(kindsAbout(got.AllEvents, a).length === 0, `events before the watermark were replayed: ${describe(got.AllEvents)}`);
  checkCreated(got.AllEvents, b, 'resume B');
  check(got.AllEvents.length === 3, `expected exactly B's three events, got ${describe(got.AllEvents)}`);
  await again.Unsubscribe();
  let bad = null;
  try {
    await ctx.service.SubscribeToPullNotifications([ctx.inbox], 10, 'AAAAbm90LWEtd2F0ZXJtYXJr', ...ITEM_EVENTS);
  } catch (e) {
    bad = errorCode(e);
  }
  check(bad === 'ErrorInvalidWatermark', `Subscribe with an unknown watermark gave ${bad}`);
  return "re-subscribed from A's watermark: exactly B's 3 events; unknown watermark -> ErrorInvalidWatermark";
}

/**
 * Opens `connection` the way the client must be driven: Open() is never
 * awaited (its promise does not resolve while the connection lives), and
 * the connection counts as open only once the first bytes arrived.
 */
function open(connection) {
  const opened = now();
  const failures = [];
  const pending = connection.Open();
  Promise.resolve(pending).catch((e) => failures.push(errorCode(e)));
  return { opened, failures };
}

async function scenarioStreaming(ctx) {
  const sub = await ctx.service.SubscribeToStreamingNotifications([ctx.inbox], ...ITEM_EVENTS);
  check(sub.Id, 'streaming Subscribe returned no id');
  const lifetime = ctx.lifetimeFor(6);
  const connection = new StreamingSubscriptionConnection(ctx.service, lifetime);
  connection.AddSubscription(sub);
  const events = [];
  const foreign = [];
  const errors = [];
  const disconnects = [];
  let notifications = 0;
  connection.OnNotificationEvent.push((sender, args) => {
    notifications += 1;
    if (args.Subscription.Id !== sub.Id) foreign.push(args.Subscription.Id);
    events.push(...args.Events);
  });
  connection.OnSubscriptionError.push((sender, args) => errors.push(errorCode(args.Exception)));
  connection.OnDisconnect.push((sender, args) => disconnects.push({ at: now(), error: args.Exception }));
  const { opened, failures } = open(connection);
  check(await until(() => connection.IsOpen, 3000), 'the connection did not open within 3 s');
  const id = await ctx.newMessage('streaming');
  const wait = Math.max(4000, 2 * ctx.args.minuteMs);
  const done = () => kindsAbout(events, id).length >= 2 && folderModified(events, parentId(events.find((e) => itemId(e) === id))).length > 0;
  check(await until(done, wait), `no complete events within ${wait / 1000} s: ${describe(events)}`);
  const took = (now() - opened) / 1000;
  checkCreated(events, id, 'streaming');
  check(foreign.length === 0, `notifications for other subscriptions: ${foreign}`);
  check(connection.IsOpen, 'the connection closed before the client closed it');
  connection.Close();
  check(await until(() => disconnects.length > 0, 2000), 'OnDisconnect did not fire after Close()');
  check(disconnects.length === 1, `OnDisconnect fired ${disconnects.length} times`);
  check(!disconnects[0].error, `OnDisconnect carried ${errorCode(disconnects[0].error)}`);
  check(!connection.IsOpen, 'IsOpen after Close()');
  await sub.Unsubscribe();
  check(errors.length === 0, `OnSubscriptionError: ${errors}`);
  check(failures.length === 0, `Open() rejected: ${failures}`);
  return (
    `Created+NewMail for item …${id.slice(-8)} and Modified(inbox) in ${notifications} notification(s) ` +
    `within ${took.toFixed(1)} s of Open; Close() -> one clean OnDisconnect; unsubscribed`
  );
}

async function scenarioStreamOpen(ctx) {
  const sub = await ctx.service.SubscribeToStreamingNotifications([ctx.inbox], EventType.NewMail, EventType.Created);
  const connection = new StreamingSubscriptionConnection(ctx.service, 1);
  connection.AddSubscription(sub);
  // Count the envelopes the client parses: the handler Open() binds is wrapped
  // on this instance only; it still does all its own work.
  let parsed = 0;
  const handle = connection.HandleServiceResponseObject;
  connection.HandleServiceResponseObject = function (response) {
    parsed += 1;
    return handle.call(this, response);
  };
  const disconnects = [];
  const errors = [];
  connection.OnDisconnect.push((sender, args) => disconnects.push({ at: now(), error: args.Exception }));
  connection.OnSubscriptionError.push((sender, args) => errors.push(errorCode(args.Exception)));
  const streamsBefore = ctx.wire.streams.length;
  const { opened, failures } = open(connection);
  check(await until(() => connection.IsOpen, 3000), 'IsOpen was not true within 3 s of Open()');
  const openAfter = now() - opened;
  const stream = ctx.wire.streams[streamsBefore];
  check(stream && stream.op === 'GetStreamingEvents', 'no GetStreamingEvents stream was recorded');
  check(stream.chunks.length > 0, 'the connection is open but no chunk was recorded');
  const firstAfter = stream.chunks[0].at - stream.sent;
  // The first envelope comes at once, not when the first heartbeat is due:
  // within a generous absolute bound, and (checked below, once the next
  // envelope came) in less than half the time between it and the next one.
  const bound = Math.max(1500, ctx.args.minuteMs / 4);
  check(firstAfter < bound, `the first bytes came ${firstAfter} ms after the request (bound ${bound} ms)`);
  // Idle, the connection ends by itself after its lifetime with ConnectionStatus=Closed,
  // which the client turns into one clean OnDisconnect.
  const lifetime = ctx.args.minuteMs;
  check(
    await until(() => disconnects.length > 0, lifetime * 1.5 + 5000),
    `no OnDisconnect within ${(lifetime * 1.5 + 5000) / 1000} s of a ${lifetime / 1000} s lifetime`,
  );
  await until(() => stream.ended !== null, 2000);
  const lasted = (disconnects[0].at - opened) / 1000;
  check(disconnects.length === 1, `OnDisconnect fired ${disconnects.length} times`);
  check(!disconnects[0].error, `OnDisconnect carried ${errorCode(disconnects[0].error)}`);
  check(lasted >= (0.8 * lifetime) / 1000, `the idle connection closed after ${lasted.toFixed(1)} s, before its lifetime`);
  // Every envelope on the wire is the unprefixed form, one start tag per envelope,
  // and the client parsed every one of them.
  const raw = stream.chunks.map((c) => c.text).join('');
  const starts = raw.match(/<([A-Za-z0-9_]+:)?Envelope[\s>]/g) || [];
  check(starts.length > 0, 'no envelope on the stream');
  check(
    starts.every((s) => s === '<Envelope ' || s === '<Envelope>'),
    `prefixed envelopes on the stream: ${[...new Set(starts)].join(' ')}`,
  );
  const exact = raw.split(UNPREFIXED).length - 1;
  check(exact === starts.length, `${starts.length - exact} envelope(s) do not start with ${UNPREFIXED}`);
  check(!raw.includes('<?xml'), 'an XML declaration inside the stream');
  check(stream.chunks.length >= 2, 'a single chunk on a connection that lived its whole lifetime');
  const gap = stream.chunks[1].at - stream.chunks[0].at;
  check(
    firstAfter < gap / 2,
    `the first bytes came ${firstAfter} ms after the request and the next ${gap} ms later: ` +
      'the first envelope was not sent at once',
  );
  const first = stream.chunks[0].text.trim();
  check(first.startsWith(UNPREFIXED), `the first chunk starts ${JSON.stringify(first.slice(0, 60))}`);
  check(/ConnectionStatus>OK</.test(first), 'the first envelope is not ConnectionStatus OK');
  const last = raw.slice(raw.lastIndexOf(UNPREFIXED));
  check(/ConnectionStatus>Closed</.test(last), 'the last envelope is not ConnectionStatus Closed');
  check(
    parsed === starts.length,
    `the client parsed ${parsed} of the ${starts.length} envelopes (${stream.chunks.length} data events)`,
  );
  check(errors.length === 0, `OnSubscriptionError: ${errors}`);
  check(failures.length === 0, `Open() rejected: ${failures}`);
  await sub.Unsubscribe();
  return (
    `first bytes ${firstAfter} ms after the request (next ${gap} ms later), IsOpen ${openAfter} ms after Open(); ` +
    `${starts.length} unprefixed envelopes (OK … Closed), all ${parsed} parsed; ` +
    `closed by the server after ${lasted.toFixed(1)} s -> one clean OnDisconnect`
  );
}

async function scenarioTakeover(ctx) {
  // Two connections, as after a client restart: each on its own service and transport.
  const sub = await ctx.service.SubscribeToStreamingNotifications([ctx.inbox], ...ITEM_EVENTS);
  const make = (service) => {
    const connection = new StreamingSubscriptionConnection(service, ctx.lifetimeFor(6));
    connection.AddSubscription(sub);
    const seen = { events: [], errors: [], disconnects: [] };
    connection.OnNotificationEvent.push((sender, args) => seen.events.push(...args.Events));
    connection.OnSubscriptionError.push((sender, args) =>
      seen.errors.push({ id: args.Subscription ? args.Subscription.Id : null, code: errorCode(args.Exception) }),
    );
    connection.OnDisconnect.push((sender, args) => seen.disconnects.push(args.Exception));
    return { connection, seen };
  };
  const one = make(ctx.service);
  const oneOpen = open(one.connection);
  check(await until(() => one.connection.IsOpen, 3000), 'the first connection did not open within 3 s');
  const two = make(ctx.newService(ctx.wire.transport()));
  const twoOpen = open(two.connection);
  check(await until(() => two.connection.IsOpen, 3000), 'the second connection did not open within 3 s');
  // The first connection is told its subscription moved, and (having no other) ends.
  check(await until(() => one.seen.disconnects.length > 0, 3000), 'the first connection was not closed');
  check(
    one.seen.errors.length === 1 &&
      one.seen.errors[0].id === sub.Id &&
      one.seen.errors[0].code === 'ErrorNewEventStreamConnectionOpened',
    `the first connection's subscription errors: ${JSON.stringify(one.seen.errors)}`,
  );
  check(!one.seen.disconnects[0], `the first OnDisconnect carried ${errorCode(one.seen.disconnects[0])}`);
  // The events go to the new connection only.
  const id = await ctx.newMessage('takeover');
  const wait = Math.max(4000, 2 * ctx.args.minuteMs);
  check(await until(() => kindsAbout(two.seen.events, id).length >= 2, wait), `the new connection got ${describe(two.seen.events)}`);
  checkTimestamps(two.seen.events);
  check(
    JSON.stringify(kindsAbout(two.seen.events, id)) === JSON.stringify(['Created', 'NewMail']),
    `the new connection got ${describe(two.seen.events)}`,
  );
  check(one.seen.events.length === 0, `the old connection got ${describe(one.seen.events)}`);
  check(two.seen.errors.length === 0, `the new connection's errors: ${JSON.stringify(two.seen.errors)}`);
  two.connection.Close();
  check(await until(() => two.seen.disconnects.length > 0, 2000), 'OnDisconnect did not fire after Close()');
  await sub.Unsubscribe();
  check(oneOpen.failures.length === 0 && twoOpen.failures.length === 0, 'Open() rejected');
  return (
    'a second connection for the subscription: the first got ErrorNewEventStreamConnectionOpened for it ' +
    'and a clean OnDisconnect; the new item\'s Created+NewMail reached only the second'
  );
}

async function scenarioStale(ctx) {
  // A connection carrying a subscription the application already unsubscribed:
  // the client is told about that one (OnSubscriptionError) and the other delivers.
  const good = await ctx.service.SubscribeToStreamingNotifications([ctx.inbox], ...ITEM_EVENTS);
  const stale = await ctx.service.SubscribeToStreamingNotifications([ctx.inbox], ...ITEM_EVENTS);
  await stale.Unsubscribe();
  const connection = new StreamingSubscriptionConnection(ctx.service, ctx.lifetimeFor(6));
  connection.AddSubscription(good);
  connection.AddSubscription(stale);
  const events = [];
  const foreign = [];
  const errors = [];
  const disconnects = [];
  // (The client swallows exceptions thrown by handlers: record, check later.)
  connection.OnNotificationEvent.push((sender, args) => {
    if (args.Subscription.Id !== good.Id) foreign.push(args.Subscription.Id);
    events.push(...args.Events);
  });
  connection.OnSubscriptionError.push((sender, args) =>
    errors.push({ id: args.Subscription ? args.Subscription.Id : null, code: errorCode(args.Exception) }),
  );
  connection.OnDisconnect.push((sender, args) => disconnects.push(args.Exception));
  const { failures } = open(connection);
  check(await until(() => connection.IsOpen, 3000), 'the connection did not open within 3 s');
  check(await until(() => errors.length > 0, 3000), 'no OnSubscriptionError for the unsubscribed subscription');
  check(
    errors.length === 1 && errors[0].id === stale.Id && errors[0].code === 'ErrorSubscriptionNotFound',
    `subscription errors: ${JSON.stringify(errors)}`,
  );
  check(connection.IsOpen && disconnects.length === 0, 'the connection closed although one subscription is good');
  const id = await ctx.newMessage('stale');
  const wait = Math.max(4000, 2 * ctx.args.minuteMs);
  check(await until(() => kindsAbout(events, id).length >= 2, wait), `the good subscription got ${describe(events)}`);
  checkCreated(events, id, 'stale');
  check(foreign.length === 0, `events for the unsubscribed subscription: ${foreign}`);
  connection.Close();
  check(await until(() => disconnects.length > 0, 2000), 'OnDisconnect did not fire after Close()');
  await good.Unsubscribe();
  check(failures.length === 0, `Open() rejected: ${failures}`);
  return 'the unsubscribed one -> OnSubscriptionError(ErrorSubscriptionNotFound) for its id; the other delivered Created+NewMail';
}

const SCENARIOS = {
  pull: scenarioPull,
  resume: scenarioResume,
  streaming: scenarioStreaming,
  'stream-open': scenarioStreamOpen,
  takeover: scenarioTakeover,
  stale: scenarioStale,
};

function usage(message) {
  console.error(`${message}
usage: scenarios.js --endpoint URL --user LOGIN [--minute-ms N] [--deadline S] [--only NAME]...
  the password comes from EWS_INTEROP_PASSWORD; scenarios: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}

function parseArgs(argv) {
  const args = { minuteMs: 60000, deadline: 300, only: [], password: process.env.EWS_INTEROP_PASSWORD };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${flag} needs a value`);
    i += 1;
    switch (flag) {
      case '--endpoint':
        args.endpoint = value;
        break;
      case '--user':
        args.user = value;
        break;
      case '--minute-ms':
        args.minuteMs = Number(value);
        break;
      case '--deadline':
        args.deadline = Number(value);
        break;
      case '--only':
        if (!SCENARIOS[value]) usage(`unknown scenario ${value}`);
        args.only.push(value);
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (!args.endpoint || !args.user) usage('--endpoint and --user are required');
  if (!args.password) usage('EWS_INTEROP_PASSWORD is required');
  if (!(args.minuteMs > 0) || !(args.deadline > 0)) usage('--minute-ms and --deadline must be positive');
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  // Bounded everything: a hung scenario ends the run.
  const deadline = setTimeout(() => {
    console.log(`FAIL deadline: the run did not finish within ${args.deadline} s`);
    process.exit(1);
  }, args.deadline * 1000);
  const versions = Object.keys(PINNED)
    .map((name) => {
      const v = installedVersion(name);
      return v === PINNED[name] ? `${name} ${v}` : `${name} ${v} (pinned ${PINNED[name]})`;
    })
    .join(', ');
  console.log(`${versions}, node ${process.versions.node} against ${args.endpoint}`);
  const ctx = new Context(args, new Wire());
  // The client lets some failures escape as unhandled rejections (a non-2xx
  // on GetStreamingEvents); Node would die of them. Each one fails the scenario.
  process.on('unhandledRejection', (e) => ctx.unhandled.push(errorCode(e)));
  const names = args.only.length ? args.only : Object.keys(SCENARIOS);
  let failed = 0;
  for (const name of names) {
    const started = now();
    ctx.unhandled.length = 0;
    try {
      const summary = await SCENARIOS[name](ctx);
      await sleep(20); // let a late rejection surface inside its scenario
      check(ctx.unhandled.length === 0, `unhandled rejections: ${ctx.unhandled.join('; ')}`);
      console.log(`PASS ${name}: ${summary} [${((now() - started) / 1000).toFixed(1)} s]`);
    } catch (e) {
      failed += 1;
      if (e instanceof Failed) {
        console.log(`FAIL ${name}: ${e.message}`);
      } else {
        console.log(`FAIL ${name}: ${e && e.constructor ? e.constructor.name : 'Error'}: ${errorCode(e)}`);
        console.error(e && e.stack ? e.stack : e);
      }
    }
  }
  console.log(`interop-js: ${names.length - failed} passed, ${failed} failed`);
  clearTimeout(deadline);
  // Keep-alive sockets would hold the process open; the run is over.
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL run: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
