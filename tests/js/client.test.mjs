// The Client state machine against a scripted in-memory WebSocket (no network).
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { Client, ConnectionClosed, RequestFailed, TimeoutError } from "../../fastcomm/web/fastcomm.js";

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

/** A fake server side: every `new WebSocket` becomes a socket the test drives. */
function fakeServer() {
  const sockets = [];
  class FakeWS {
    constructor(url, protocols) {
      this.url = new URL(url);
      this.protocols = protocols;
      this.sent = [];
      this.readyState = 0;
      sockets.push(this);
    }
    send(data) {
      this.sent.push(JSON.parse(data));
    }
    close(code = 1000) {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code, reason: "" }), 0);
    }
    // test side
    push(msg) {
      this.onmessage?.({ data: JSON.stringify(msg) });
    }
    welcome(extra = {}) {
      this.readyState = 1;
      this.push({
        type: "welcome", session: "s1", resume_token: "tok1", resumed: false,
        heartbeat: 25, max_message_size: 1048576, protocol: "fastcomm.v1", ...extra,
      });
    }
    /** Answer the client's `resume` request (the first thing it sends after a welcome). */
    resumed(extra = {}) {
      const req = this.sent.find((m) => m.type === "resume");
      this.push({ type: "resumed", id: req.id, session: "s1", resume_token: "tok2", resumed: true, ...extra });
      return req;
    }
    drop(code = 1006) {
      this.readyState = 3;
      this.onclose?.({ code, reason: "" });
    }
    last() {
      return this.sent[this.sent.length - 1];
    }
  }
  return { FakeWS, sockets };
}

const clients = [];
afterEach(async () => {
  // A failed assertion must not leave a client reconnecting forever.
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

async function connected(options = {}) {
  const { FakeWS, sockets } = fakeServer();
  const client = new Client("ws://example.test/ws", {
    WebSocket: FakeWS, backoffInitial: 0.001, backoffMax: 0.002, ...options,
  });
  clients.push(client);
  const states = [];
  client.on("state", (s) => states.push(s));
  const opened = client.open();
  await tick(0);
  sockets[0].welcome();
  await opened;
  return { client, sockets, states };
}

test("connect passes the token and subprotocol; call correlates ids", async () => {
  const { client, sockets } = await connected({ token: "alice" });
  assert.equal(sockets[0].url.searchParams.get("token"), "alice");
  assert.deepEqual(sockets[0].protocols, ["fastcomm.v1.json"]);
  const a = client.call({ type: "add", a: 1, b: 2 });
  const b = client.call({ type: "add", a: 3, b: 4 });
  const [first, second] = sockets[0].sent;
  sockets[0].push({ type: "result", id: second.id, data: 7 });
  sockets[0].push({ type: "result", id: first.id, data: 3 });
  assert.deepEqual(await Promise.all([a, b]), [3, 7]);
  const bad = client.call({ type: "nope" });
  sockets[0].push({ type: "error", id: sockets[0].last().id, code: "unknown_type", message: "no", details: { path: "$.type" } });
  await assert.rejects(bad, (err) => err instanceof RequestFailed && err.code === "unknown_type" && err.details.path === "$.type" && err.message === "unknown_type: no");
  // A message that only repeats the code is said once.
  const refused = client.call({ type: "secret" });
  sockets[0].push({ type: "error", id: sockets[0].last().id, code: "forbidden", message: "forbidden" });
  await assert.rejects(refused, (err) => err instanceof RequestFailed && err.message === "forbidden");
  await assert.rejects(client.call({ type: "slow" }, { timeout: 0.01 }), TimeoutError);
  await client.close();
});

test("pushes and id-less errors are events", async () => {
  const { client, sockets } = await connected();
  const pushes = [];
  const errors = [];
  client.on("push", (m) => pushes.push(m));
  client.on("error", (m) => errors.push(m));
  sockets[0].push({ type: "notice", text: "hi" });
  sockets[0].push({ type: "error", id: null, code: "rate_limited", message: "slow down" });
  assert.deepEqual(pushes, [{ type: "notice", text: "hi" }]);
  assert.equal(errors[0].code, "rate_limited");
  await client.close();
});

test("a dropped connection reconnects with resume and requests wait for it", async () => {
  const { client, sockets, states } = await connected();
  const inflight = client.call({ type: "x" });
  sockets[0].drop(1006);
  await assert.rejects(inflight, (err) => err instanceof ConnectionClosed && err.code === 1006);
  const waiting = client.call({ type: "y" });
  while (sockets.length < 2) await tick(1);
  assert.equal(sockets[1].url.searchParams.get("resume"), null); // kept out of the URL
  sockets[1].welcome({ session: "s9", resume_token: "tok9" });
  await tick(0);
  assert.deepEqual(sockets[1].sent, [{ type: "resume", id: sockets[1].sent[0].id, token: "tok1" }]);
  assert.equal(client.session, "s1"); // not the welcome's: the resumed reply decides
  sockets[1].resumed();
  await tick(0);
  assert.deepEqual([client.session, client.resumeToken, client.welcome.resumed], ["s1", "tok2", true]);
  const sent = sockets[1].sent.find((m) => m.type === "y");
  sockets[1].push({ type: "result", id: sent.id, data: "ok" });
  assert.equal(await waiting, "ok");
  const names = states.map((s) => s.state);
  assert.deepEqual(names, ["connecting", "open", "reconnecting", "open"]);
  assert.equal(states[3].resumed, true);
  assert.equal(client.reconnects, 1);
  await client.close();
});

test("the resume option goes in the first message; pushes before the reply wait for it", async () => {
  const { FakeWS, sockets } = fakeServer();
  const client = new Client("ws://example.test/ws", { WebSocket: FakeWS, resume: "old" });
  clients.push(client);
  const states = [];
  client.on("state", (s) => states.push(s.state));
  const pushes = [];
  client.on("push", (m) => pushes.push(m.type));
  const opened = client.open();
  await tick(0);
  const ws = sockets[0];
  assert.equal(ws.url.searchParams.get("resume"), null);
  ws.welcome({ session: "fresh", resume_token: "fresh-token" });
  ws.push({ type: "notice" }); // e.g. app.push to the user, before the reply
  assert.deepEqual(states, ["connecting"]);
  const req = ws.resumed({ session: "old-session", resume_token: "new-token" });
  assert.deepEqual(req, { type: "resume", id: req.id, token: "old" });
  const welcome = await opened;
  assert.deepEqual(
    [welcome.type, welcome.session, welcome.resume_token, welcome.resumed, welcome.heartbeat],
    ["welcome", "old-session", "new-token", true, 25],
  );
  assert.equal(client.welcome, welcome);
  assert.deepEqual(states, ["connecting", "open"]);
  assert.deepEqual(pushes, ["notice"]); // delivered once the link is adopted, not lost
  await client.close();
});

test("a refused resume fails the attempt; the next one resumes with the same token", async () => {
  const { client, sockets } = await connected();
  sockets[0].drop(1006);
  while (sockets.length < 2) await tick(1);
  sockets[1].welcome({ session: "s9", resume_token: "tok9" });
  const req = sockets[1].sent[0];
  sockets[1].push({ type: "error", id: req.id, code: "unavailable", message: "server is shutting down" });
  while (sockets.length < 3) await tick(1); // that link was given up
  assert.equal(sockets[1].readyState, 3);
  sockets[2].welcome({ session: "s8", resume_token: "tok8" });
  assert.equal(sockets[2].sent[0].token, "tok1"); // not the token of the refused link
  sockets[2].resumed();
  while (client.state !== "open") await tick(1);
  assert.equal(client.session, "s1");
  await client.close();
});

test("4003 and client-blaming codes end the client; maxAttempts bounds an outage", async () => {
  for (const code of [4003, 1008, 1009]) {
    const { client, sockets, states } = await connected();
    sockets[0].drop(code);
    assert.equal(client.state, "closed");
    assert.equal(states.at(-1).code, code);
    assert.equal(sockets.length, 1);
  }
  const { client, sockets, states } = await connected({ maxAttempts: 2 });
  sockets[0].drop(1006);
  for (let n = 1; n <= 2; n++) {
    while (sockets.length < n + 1) await tick(1);
    sockets[n].drop(1006); // refused before open
  }
  while (client.state !== "closed") await tick(1);
  assert.match(states.at(-1).reason, /gave up reconnecting after 2 attempts/);
  assert.equal(sockets.length, 3);
});

test("the first connection is not retried", async () => {
  const { FakeWS, sockets } = fakeServer();
  const client = new Client("ws://example.test/ws", { WebSocket: FakeWS });
  const opened = client.open();
  await tick(0);
  sockets[0].drop(1006); // e.g. HTTP 401: browsers only show 1006
  await assert.rejects(opened, (err) => err instanceof ConnectionClosed && err.code === 1006);
  assert.equal(client.state, "closed");
  assert.equal(sockets.length, 1);
});

test("a new session re-subscribes with recover and drops overlap", async () => {
  const { client, sockets } = await connected();
  const got = [];
  const subscribing = client.subscribe("c");
  const req = sockets[0].last();
  sockets[0].push({ type: "subscribed", id: req.id, channel: "c", offset: 2, epoch: "e", recovered: false });
  const sub = await subscribing;
  sub.on("publication", (p) => got.push(p.offset));
  sockets[0].push({ type: "message", channel: "c", offset: 3, epoch: "e", data: 3 });
  sockets[0].drop(1001);
  while (sockets.length < 2) await tick(1);
  sockets[1].welcome({ session: "s2", resume_token: "tok2" });
  sockets[1].resumed({ session: "s2", resume_token: "tok2", resumed: false });
  await tick(0);
  assert.equal(client.session, "s2");
  const again = sockets[1].last();
  assert.deepEqual(again.recover, { offset: 3, epoch: "e" });
  sockets[1].push({ type: "subscribed", id: again.id, channel: "c", offset: 5, epoch: "e", recovered: true });
  for (const o of [3, 4, 5, 6]) sockets[1].push({ type: "message", channel: "c", offset: o, epoch: "e", data: o });
  assert.deepEqual(got, [3, 4, 5, 6]);
  assert.equal(sub.duplicates, 1);
  await client.close();
});

test("a restored subscription ahead of the client settles with ping, then history", async () => {
  const { client, sockets } = await connected();
  const got = [];
  const subscribing = client.subscribe("c");
  sockets[0].push({ type: "subscribed", id: sockets[0].last().id, channel: "c", offset: 0, epoch: "e", recovered: false });
  const sub = await subscribing;
  sub.on("publication", (p) => got.push(p.offset));
  sockets[0].drop(1006);
  while (sockets.length < 2) await tick(1);
  const s = sockets[1];
  s.welcome({ session: "s9" });
  s.resumed();
  // The server recorded offset 2 as delivered (lost in flight): restored at top 4.
  s.push({ type: "subscribed", id: null, channel: "c", offset: 4, epoch: "e", recovered: true });
  s.push({ type: "message", channel: "c", offset: 3, epoch: "e", data: 3 });
  s.push({ type: "message", channel: "c", offset: 4, epoch: "e", data: 4 });
  await tick(0);
  const ping = s.last();
  assert.equal(ping.type, "ping");
  s.push({ type: "pong", id: ping.id });
  await tick(0);
  const history = s.last();
  assert.deepEqual([history.type, history.since, history.limit], ["history", 0, 2]);
  s.push({
    type: "history", id: history.id, channel: "c", epoch: "e",
    messages: [1, 2].map((o) => ({ type: "message", channel: "c", offset: o, epoch: "e", data: o })),
  });
  await tick(0);
  assert.deepEqual(got, [1, 2, 3, 4]);
  await client.close();
});

test("the watchdog pings an idle connection and gives up a silent one", async () => {
  const { client, sockets, states } = await connected({ heartbeatMargin: 0.05 });
  sockets[0].drop(1006); // the first welcome said heartbeat 25; reconnect with a short one
  while (sockets.length < 2) await tick(1);
  sockets[1].welcome({ heartbeat: 0.2 });
  sockets[1].resumed();
  while (!sockets[1].sent.some((m) => m.type === "ping")) await tick(5); // idle: a ping
  sockets[1].push({ type: "pong", id: sockets[1].last().id });
  assert.equal(sockets.length, 2); // answered: still the same connection
  while (sockets.length < 3) await tick(5); // then silence, and the next ping unanswered
  const pings = sockets[1].sent.filter((m) => m.type === "ping");
  assert.equal(pings.length, 2);
  const reconnecting = states.filter((s) => s.state === "reconnecting");
  assert.equal(reconnecting.length, 2);
  assert.equal(reconnecting[1].code, 1006);
  await client.close();
});

test("late timers alone do not end a link: a ping is sent first", async () => {
  const { client, sockets } = await connected();
  const realNow = Date.now;
  try {
    Date.now = () => realNow() + 60_000; // as if the tab slept for a minute
    await tick(1100);
    assert.equal(sockets.length, 1);
    assert.equal(sockets[0].last().type, "ping");
    sockets[0].push({ type: "pong", id: sockets[0].last().id });
  } finally {
    Date.now = realNow;
  }
  await tick(1100);
  assert.equal(sockets.length, 1);
  assert.equal(client.state, "open");
  await client.close();
});

test("offset 0 takes the first publication of any epoch; a server's loss notice is reported", async () => {
  const { client, sockets } = await connected();
  const got = [];
  const lost = [];
  const subscribing = client.subscribe("c");
  const req = sockets[0].last();
  // A channel never published to: offset 0 of an "empty" epoch; its stream starts another.
  sockets[0].push({ type: "subscribed", id: req.id, channel: "c", offset: 0, epoch: "e0", recovered: false });
  const sub = await subscribing;
  sub.on("publication", (p) => got.push([p.epoch, p.offset]));
  sub.on("recovery", (e) => lost.push(e));
  sockets[0].push({ type: "message", channel: "c", offset: 1, epoch: "e1", data: 1 });
  await tick(0);
  assert.deepEqual(got, [["e1", 1]]);
  assert.deepEqual(lost, []);
  // The server could not deliver 2..4 (history gone): it says so, delivery goes on.
  sockets[0].push({ type: "subscribed", id: null, channel: "c", offset: 4, epoch: "e1", recovered: false });
  sockets[0].push({ type: "message", channel: "c", offset: 5, epoch: "e1", data: 5 });
  await tick(0);
  assert.deepEqual(got, [["e1", 1], ["e1", 5]]);
  assert.equal(lost.length, 1);
  assert.deepEqual(
    [lost[0].previousEpoch, lost[0].previousOffset, lost[0].epoch, lost[0].offset],
    ["e1", 1, "e1", 4],
  );
  await client.close();
});
