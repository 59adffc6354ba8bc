// fastcomm browser client: an ES module with no dependencies and no build step.
//
//   import { Client } from "/fastcomm.js";
//   const client = await Client.connect("ws://127.0.0.1:8000/ws", { token: "alice" });
//   const sub = await client.subscribe("chat:lobby");
//   sub.on("publication", (pub) => console.log(pub.offset, pub.data));
//   await client.publish("chat:lobby", { text: "hi" });
//
// Events use `target.on(name, listener)`, which returns a function that removes
// the listener (`target.off(name, listener)` does the same). docs/BROWSER.md has
// the whole API; this file mirrors the Python client in fastcomm/client/.

import { decode as msgpackDecode, encode as msgpackEncode } from "./msgpack.js";

export const SUBPROTOCOLS = Object.freeze({
  json: "fastcomm.v1.json",
  msgpack: "fastcomm.v1.msgpack",
});

/** Close codes after which the client does not reconnect (as the Python client). */
export const NO_RETRY_CODES = new Set([1002, 1003, 1007, 1008, 1009, 1010, 4003]);

/** Extra seconds (at most backoffMax) before the first retry after a 4029 close. */
export const RATE_LIMITED_PAUSE = 1.0;

/** The close code a browser reports for a connection that ended without a CLOSE. */
export const ABNORMAL = 1006;

// ---------------------------------------------------------------------------------
// Errors

/** The server answered a request with an `error` reply. */
export class RequestFailed extends Error {
  constructor(code, message, details = null) {
    super(message && message !== code ? `${code}: ${message}` : code);
    this.name = "RequestFailed";
    this.code = code;
    this.details = details;
    this.serverMessage = message;
  }
}

/** The connection (or the client) is gone; `code` is the close code (1006 if none). */
export class ConnectionClosed extends Error {
  constructor(code, reason = "") {
    super(`connection closed: ${code} ${reason}`.trim());
    this.name = "ConnectionClosed";
    this.code = code;
    this.reason = reason;
  }
}

/** A request got no reply within its timeout. */
export class TimeoutError extends Error {
  constructor(message = "timed out") {
    super(message);
    this.name = "TimeoutError";
  }
}

// ---------------------------------------------------------------------------------
// Pure policy: backoff and which endings to retry

/** Seconds before retry `attempt` (0-based): full jitter over min(maximum, initial * 2**attempt). */
export function backoffDelay(attempt, initial = 0.1, maximum = 10, rand = Math.random) {
  if (!(attempt >= 0)) throw new RangeError("attempt must be >= 0");
  const cap = attempt >= 64 ? maximum : Math.min(maximum, initial * 2 ** attempt);
  return rand() * cap;
}

/** The delays of one outage; `nextDelay()` is null once `maxAttempts` were handed out. */
export class Backoff {
  constructor(initial = 0.1, maximum = 10, maxAttempts = null, rand = Math.random) {
    if (!(initial > 0 && initial <= maximum)) {
      throw new RangeError("backoff needs 0 < backoffInitial <= backoffMax");
    }
    if (maxAttempts !== null && !(maxAttempts >= 0)) {
      throw new RangeError("maxAttempts must be null or >= 0");
    }
    this.initial = initial;
    this.maximum = maximum;
    this.maxAttempts = maxAttempts;
    this.rand = rand;
    this.attempts = 0;
  }

  nextDelay() {
    if (this.maxAttempts !== null && this.attempts >= this.maxAttempts) return null;
    const delay = backoffDelay(this.attempts, this.initial, this.maximum, this.rand);
    this.attempts += 1;
    return delay;
  }

  reset() {
    this.attempts = 0;
  }
}

/** True when a connection that ended with `code` is worth replacing. */
export function shouldReconnect(code) {
  return !NO_RETRY_CODES.has(code);
}

// ---------------------------------------------------------------------------------
// Events

/** A minimal event emitter: `on(name, fn)` returns the function that removes `fn`. */
export class Emitter {
  constructor() {
    this._listeners = new Map();
  }

  on(name, listener) {
    let set = this._listeners.get(name);
    if (set === undefined) this._listeners.set(name, (set = new Set()));
    set.add(listener);
    return () => this.off(name, listener);
  }

  off(name, listener) {
    this._listeners.get(name)?.delete(listener);
  }

  _emit(name, detail) {
    const set = this._listeners.get(name);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        listener(detail);
      } catch (err) {
        console.error(`fastcomm: a "${name}" listener failed`, err);
      }
    }
  }
}

// ---------------------------------------------------------------------------------
// Pure stream state of one channel: dedupe, gap detection, hold/release, fill

/**
 * The position of a subscription and the publications it lets through.
 *
 * `epoch`/`offset` is the last position delivered. Within an epoch a
 * publication at or below `offset` is a duplicate (dropped, counted in
 * `duplicates`); one above `offset + 1` reveals a gap: it is held and
 * `deliver` returns the end of the gap (`pub.offset - 1`) for the owner to
 * fill from history (`fill`). `hold`/`release` buffer publications while a
 * (re)subscription or a gap fill is in flight. `onPublication(pub)` and
 * `onLost({channel, epoch, offset, previousEpoch, previousOffset})` are
 * called synchronously.
 */
export class ChannelState {
  constructor(channel, { recover = true, onPublication = () => {}, onLost = () => {} } = {}) {
    this.channel = channel;
    this.recover = recover;
    this.epoch = null;
    this.offset = 0;
    this.recovered = true;
    this.duplicates = 0;
    this.held = null;
    this.onPublication = onPublication;
    this.onLost = onLost;
  }

  deliver(pub) {
    if (this.held !== null || this.epoch === null) {
      this.hold().push(pub);
      return null;
    }
    if (pub.epoch !== this.epoch && this.offset === 0) {
      this.epoch = pub.epoch; // nothing received yet: any epoch follows
      return this.deliver(pub);
    }
    if (pub.epoch !== this.epoch) {
      this.lost(pub.epoch, pub.offset - 1);
    } else if (pub.offset <= this.offset) {
      this.duplicates += 1;
      return null;
    } else if (pub.offset > this.offset + 1) {
      this.held = [pub];
      return pub.offset - 1;
    }
    this.accept(pub);
    return null;
  }

  accept(pub) {
    this.offset = pub.offset;
    this.onPublication(pub);
  }

  hold() {
    if (this.held === null) this.held = [];
    return this.held;
  }

  release() {
    const held = this.held;
    this.held = null;
    if (held === null) return null;
    for (let i = 0; i < held.length; i++) {
      const gap = this.deliver(held[i]);
      if (gap !== null) {
        this.hold().push(...held.slice(i + 1));
        return gap;
      }
    }
    return null;
  }

  reset() {
    if (this.epoch !== null) this.held = null;
  }

  apply(reply) {
    if (this.epoch === null) {
      this.epoch = reply.epoch;
      this.offset = reply.offset;
    } else if (reply.recovered && (reply.epoch === this.epoch || this.offset === 0)) {
      this.epoch = reply.epoch; // at offset 0 any epoch follows
      this.recovered = true;
    } else if (this.recover) {
      this.lost(reply.epoch, reply.offset);
    } else {
      this.epoch = reply.epoch;
      this.offset = reply.offset;
      this.recovered = false;
    }
  }

  fill(page, upto) {
    if (page !== null && page.epoch === this.epoch) {
      for (const pub of page.messages) {
        if (pub.offset > upto || pub.offset > this.offset + 1) break;
        if (pub.offset === this.offset + 1) {
          this.accept({ channel: this.channel, offset: pub.offset, epoch: pub.epoch, data: pub.data ?? null });
        }
      }
    }
    if (this.offset < upto) this.lost(this.epoch, upto);
    return this.release();
  }

  lost(epoch, offset) {
    const event = {
      recovered: false,
      channel: this.channel,
      epoch,
      offset,
      previousEpoch: this.epoch,
      previousOffset: this.offset,
    };
    this.epoch = epoch;
    this.offset = offset;
    this.recovered = false;
    this.onLost(event);
  }
}

// ---------------------------------------------------------------------------------
// Subscription

/**
 * One channel the client is subscribed to. Events: "publication"
 * `{channel, offset, epoch, data}` in offset order, at most once; "join" and
 * "leave" `{channel, session, user}`; "recovery" `{recovered: false, ...}`
 * when publications were lost; "closed" `{reason}` when it ends.
 */
export class Subscription extends Emitter {
  constructor(client, channel, recover) {
    super();
    this.client = client;
    this.channel = channel;
    this.closed = false;
    this.state = new ChannelState(channel, {
      recover,
      onPublication: (pub) => this._emit("publication", pub),
      onLost: (event) => this._emit("recovery", event),
    });
  }

  get epoch() {
    return this.state.epoch;
  }

  get offset() {
    return this.state.offset;
  }

  get recovered() {
    return this.state.recovered;
  }

  get duplicates() {
    return this.state.duplicates;
  }

  /** The members present: `[{session, user, meta}]`. */
  async presence({ timeout } = {}) {
    const reply = await this.client.request({ type: "presence", channel: this.channel }, { timeout });
    return reply.members;
  }

  /** `{epoch, messages}`: publications after `since` (the latest `limit` without it). */
  async history({ since, limit, timeout } = {}) {
    const msg = { type: "history", channel: this.channel };
    if (since !== undefined && since !== null) msg.since = since;
    if (limit !== undefined && limit !== null) msg.limit = limit;
    const reply = await this.client.request(msg, { timeout });
    return { epoch: reply.epoch, messages: reply.messages };
  }

  /** Publish `data` on this channel; resolves to its offset. */
  publish(data, options) {
    return this.client.publish(this.channel, data, options);
  }

  /** End the subscription and tell the server (no-op once ended). */
  unsubscribe({ timeout } = {}) {
    return this.client._unsubscribe(this, timeout);
  }

  _end(reason) {
    if (this.closed) return;
    this.closed = true;
    this.state.held = null;
    this._emit("closed", { channel: this.channel, reason });
  }
}

// ---------------------------------------------------------------------------------
// Client

const now = () => Date.now();

/** `promise`, or a TimeoutError(`message`) after `seconds` (null: no limit). */
function within(promise, seconds, message) {
  if (seconds === null) return promise;
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(message)), seconds * 1000);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function wsUrl(base, token) {
  const here = globalThis.location?.href;
  const url = here === undefined ? new URL(base) : new URL(base, here);
  if (url.protocol === "http:") url.protocol = "ws:";
  else if (url.protocol === "https:") url.protocol = "wss:";
  if (token !== null && token !== undefined && token !== "") url.searchParams.set("token", token);
  return url.toString();
}

/**
 * A connection to a fastcomm server that reconnects by itself; see docs/BROWSER.md.
 *
 * State events: "connecting", "open" `{resumed, reconnects}`, "reconnecting"
 * `{code, attempt, delay}`, "closed" `{code, reason}` (also all as "state"
 * `{state, ...}`). Other events: "push" (every server message that is not a
 * reply nor a channel push of a subscription) and "error" (`error` replies
 * without an id).
 */
export class Client extends Emitter {
  /** Connect and resolve once the server's `welcome` arrived; the first attempt is not retried. */
  static async connect(url, options = {}) {
    const client = new Client(url, options);
    await client.open();
    return client;
  }

  constructor(url, options = {}) {
    super();
    const subprotocol = options.subprotocol ?? "json";
    if (!(subprotocol in SUBPROTOCOLS)) throw new TypeError('subprotocol must be "json" or "msgpack"');
    this.url = url;
    this.token = options.token ?? null;
    this.subprotocol = subprotocol;
    this.reconnect = options.reconnect ?? true;
    this.backoff = new Backoff(
      options.backoffInitial ?? 0.1,
      options.backoffMax ?? 10,
      options.maxAttempts ?? null,
    );
    this.callTimeout = options.callTimeout === undefined ? 10 : options.callTimeout;
    this.connectTimeout = options.connectTimeout ?? 10;
    this.heartbeatMargin = options.heartbeatMargin ?? 5;
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this._resume = options.resume ?? null;
    this.state = "idle";
    this.welcome = null;
    this.reconnects = 0;
    this._link = null;
    this._gen = 0;
    this._nextId = 1;
    this._pending = new Map();
    this._waiting = [];
    this._subs = new Map();
    this._dropped = new Set();
    this._undoing = new Map(); // channel -> its quiet unsubscribe (a promise that never rejects)
    this._closing = false;
    this._finished = null;
    this._reconnecting = false;
    this._again = null;
    this._sleeper = null;
    this._abortDial = null;
    this._lastRx = 0;
    this._pingId = null;
    this._pingAt = 0;
  }

  get connected() {
    return this._link !== null && this._finished === null;
  }

  get closed() {
    return this._finished !== null;
  }

  get session() {
    return this.welcome?.session ?? null;
  }

  get resumeToken() {
    return this.welcome?.resume_token ?? this._resume;
  }

  /** The active subscriptions by channel. */
  get subscriptions() {
    return new Map(this._subs);
  }

  /** Open the first connection (Client.connect does it for you). Rejects with ConnectionClosed. */
  async open() {
    if (this.state !== "idle") throw new Error("open() was already called");
    this._setState("connecting", {});
    let welcome;
    try {
      welcome = await this._dial(this._resume);
    } catch (err) {
      const code = err instanceof ConnectionClosed ? err.code : ABNORMAL;
      this._finish(code, err.message);
      throw err instanceof ConnectionClosed ? err : new ConnectionClosed(code, err.message);
    }
    this._setState("open", { resumed: welcome.resumed, reconnects: 0 });
    return welcome;
  }

  // -- requests ---------------------------------------------------------------------

  /** Send `msg` with an id and resolve to the reply; waits while reconnecting (within timeout). */
  request(msg, { timeout } = {}) {
    return this._request(msg, timeout === undefined ? this.callTimeout : timeout, null, undefined);
  }

  /** `request`, resolving to the `data` of the `result` reply. */
  async call(msg, options = {}) {
    const reply = await this.request(msg, options);
    if (reply !== null && typeof reply === "object" && reply.type === "result") return reply.data;
    throw new Error(`expected a result reply, got ${reply?.type}`);
  }

  /** Send `msg` without waiting for anything; throws ConnectionClosed when not connected. */
  send(msg) {
    if (this._link === null) {
      throw new ConnectionClosed(this._finished?.code ?? ABNORMAL, "not connected");
    }
    this._write(this._link, msg);
  }

  /** Publish `data` on `channel`; resolves to its offset. */
  async publish(channel, data, options = {}) {
    const reply = await this.request({ type: "publish", channel, data }, options);
    return reply.offset;
  }

  /** Presence of a subscribed channel: `[{session, user, meta}]`. */
  async presence(channel, options = {}) {
    const reply = await this.request({ type: "presence", channel }, options);
    return reply.members;
  }

  /** Close for good: no reconnect, every subscription ends. */
  async close(code = 1000, reason = "") {
    if (this._finished !== null) return;
    this._closing = true;
    this._wake();
    const link = this._link;
    let done = Promise.resolve();
    if (link !== null) {
      done = new Promise((resolve) => {
        const timer = setTimeout(resolve, 2000); // the server answers CLOSE at once normally
        const finish = () => {
          clearTimeout(timer);
          resolve();
        };
        link.ws.onclose = finish;
        try {
          link.ws.close(code, reason);
        } catch {
          finish();
        }
      });
    }
    this._finish(code, reason);
    await done;
  }

  _request(msg, seconds, sync, gen) {
    return new Promise((resolve, reject) => {
      const entry = { msg, resolve, reject, sync, gen, id: null, timer: null };
      if (seconds !== null) {
        entry.timer = setTimeout(() => {
          this._drop(entry);
          reject(new TimeoutError(`no reply to ${msg.type} within ${seconds} s`));
        }, seconds * 1000);
      }
      if (this._finished !== null) return this._settle(entry, this._finished);
      if (gen !== undefined && (gen !== this._gen || this._link === null)) {
        return this._settle(entry, new ConnectionClosed(ABNORMAL, "connection lost"));
      }
      if (this._link !== null) this._transmit(entry);
      else this._waiting.push(entry);
      return undefined;
    });
  }

  _transmit(entry) {
    const id = this._nextId++;
    entry.id = id;
    this._pending.set(id, entry);
    try {
      this._write(this._link, { ...entry.msg, id });
    } catch (err) {
      this._pending.delete(id);
      this._settle(entry, err);
    }
  }

  _drop(entry) {
    if (entry.id !== null) this._pending.delete(entry.id);
    const i = this._waiting.indexOf(entry);
    if (i >= 0) this._waiting.splice(i, 1);
  }

  _settle(entry, error, reply) {
    clearTimeout(entry.timer);
    if (error) entry.reject(error);
    else entry.resolve(reply);
  }

  _write(link, msg) {
    const data = this.subprotocol === "json" ? JSON.stringify(msg) : msgpackEncode(msg);
    link.ws.send(data);
  }

  // -- connections ------------------------------------------------------------------

  _setState(state, detail) {
    this.state = state;
    this._emit(state, detail);
    this._emit("state", { state, ...detail });
  }

  /**
   * One connection attempt; resolves to the effective welcome once the link is adopted.
   * The resume token goes in the first message (`resume`), not in the URL, which
   * access logs keep; the `resumed` reply then gives the session, its new token and
   * `resumed`.
   */
  async _dial(resume) {
    const token = typeof this.token === "function" ? await this.token() : this.token;
    return this._connectLink(wsUrl(this.url, token), resume);
  }

  _connectLink(url, resume) {
    return new Promise((resolve, reject) => {
      const ws = new this._WebSocket(url, [SUBPROTOCOLS[this.subprotocol]]);
      ws.binaryType = "arraybuffer";
      const link = { ws, watchdog: null, welcomed: false };
      let welcome = null;
      let resumeId = null;
      const early = []; // pushes to the welcome's session before the `resumed` reply
      const fail = (err) => {
        clearTimeout(timer);
        if (this._abortDial === fail) this._abortDial = null;
        ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close();
        } catch {
          // already closing
        }
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new TimeoutError(`no welcome within ${this.connectTimeout} s`)),
        this.connectTimeout * 1000,
      );
      this._abortDial = fail;
      ws.onerror = () => {}; // a close event follows
      ws.onclose = (ev) => {
        if (link.welcomed) {
          this._onLinkClosed(link, ev.code || ABNORMAL, ev.reason || "");
          return;
        }
        clearTimeout(timer);
        if (this._abortDial === fail) this._abortDial = null;
        const code = ev.code || ABNORMAL;
        const why = code === ABNORMAL ? "could not connect (server unreachable or upgrade refused)" : ev.reason;
        reject(new ConnectionClosed(code, why));
      };
      ws.onmessage = (ev) => {
        if (link.welcomed) {
          if (link === this._link) this._onFrame(ev.data);
          return;
        }
        let msg;
        try {
          msg = this._decode(ev.data);
        } catch (err) {
          fail(err);
          return;
        }
        if (welcome === null) {
          if (msg?.type !== "welcome") {
            fail(new Error(`expected welcome, got ${msg?.type}`));
            return;
          }
          welcome = msg;
          if (resume) {
            resumeId = this._nextId++;
            try {
              this._write(link, { type: "resume", id: resumeId, token: resume });
            } catch (err) {
              fail(err);
            }
            return;
          }
        } else if (msg === null || typeof msg !== "object" || msg.id !== resumeId) {
          early.push(ev.data);
          return;
        } else if (msg.type === "error") {
          fail(new RequestFailed(msg.code, msg.message, msg.details ?? null));
          return;
        } else if (msg.type !== "resumed") {
          fail(new Error(`expected resumed, got ${msg.type}`));
          return;
        } else {
          const { session, resume_token, resumed } = msg;
          welcome = { ...welcome, session, resume_token, resumed };
        }
        if (this._closing || this._finished !== null) {
          fail(new ConnectionClosed(1000, "client closed"));
          return;
        }
        clearTimeout(timer);
        if (this._abortDial === fail) this._abortDial = null;
        link.welcomed = true;
        this._adopt(link, welcome);
        for (const data of early) if (link === this._link) this._onFrame(data);
        resolve(welcome);
      };
    });
  }

  _adopt(link, welcome) {
    this._link = link;
    this.welcome = welcome;
    this._lastRx = now();
    this._pingId = null;
    const beat = (welcome.heartbeat ?? 25) * 1000;
    const dead = beat + this.heartbeatMargin * 1000;
    // Given up only when a ping of ours went unanswered too: timers of a hidden
    // tab may fire minutes late, and late timers alone must not end a healthy link.
    link.watchdog = setInterval(
      () => {
        if (link !== this._link) return;
        const t = now();
        const idle = t - this._lastRx;
        if (this._pingId !== null && idle > dead && t - this._pingAt > dead - beat / 2) {
          this._abandon(link, `nothing received for ${(idle / 1000).toFixed(1)} s`);
        } else if (idle > beat / 2 && this._pingId === null) {
          this._pingId = this._nextId++;
          this._pingAt = t;
          try {
            this._write(link, { type: "ping", id: this._pingId });
          } catch {
            // the close event follows
          }
        }
      },
      Math.max(50, Math.min(1000, beat / 4)),
    );
    const waiting = this._waiting;
    this._waiting = [];
    for (const entry of waiting) this._transmit(entry);
  }

  _abandon(link, reason) {
    const ws = link.ws;
    ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(4000, "heartbeat timeout");
    } catch {
      // already closed
    }
    this._onLinkClosed(link, ABNORMAL, reason);
  }

  _onLinkClosed(link, code, reason) {
    if (link !== this._link) return;
    clearInterval(link.watchdog);
    this._link = null;
    this._gen += 1;
    const lost = new ConnectionClosed(code, reason);
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const entry of pending) this._settle(entry, lost);
    for (const sub of this._subs.values()) sub.state.reset();
    if (this._closing || this._finished !== null || !this.reconnect || !shouldReconnect(code)) {
      this._finish(code, reason);
    } else if (this._reconnecting) {
      this._again = code;
    } else {
      this._reconnectLoop(code);
    }
  }

  async _reconnectLoop(code) {
    this._reconnecting = true;
    try {
      for (;;) {
        this._again = null;
        const welcome = await this._redial(code);
        if (welcome === null || this._finished !== null) return;
        this.reconnects += 1;
        if (!welcome.resumed) await this._resubscribeAll();
        if (this._finished !== null) return;
        if (this._again === null && this._link !== null) {
          this._setState("open", { resumed: welcome.resumed, reconnects: this.reconnects });
          return;
        }
        code = this._again ?? ABNORMAL;
      }
    } catch (err) {
      console.error("fastcomm: reconnecting failed", err);
      this._finish(code, "reconnecting failed");
    } finally {
      this._reconnecting = false;
    }
  }

  async _redial(code) {
    const backoff = this.backoff;
    backoff.reset();
    let pause = code === 4029 ? Math.min(backoff.maximum, RATE_LIMITED_PAUSE) : 0;
    for (;;) {
      const delay = backoff.nextDelay();
      if (delay === null) {
        this._finish(code, `gave up reconnecting after ${backoff.attempts} attempts`);
        return null;
      }
      this._setState("reconnecting", { code, attempt: backoff.attempts, delay: delay + pause });
      await this._sleep(delay + pause);
      pause = 0;
      if (this._closing || this._finished !== null) return null;
      try {
        return await this._dial(this.resumeToken);
      } catch (err) {
        if (this._closing || this._finished !== null) return null;
      }
    }
  }

  _sleep(seconds) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this._sleeper = null;
        resolve();
      }, seconds * 1000);
      this._sleeper = () => {
        clearTimeout(timer);
        this._sleeper = null;
        resolve();
      };
    });
  }

  _wake() {
    if (this._sleeper !== null) this._sleeper();
  }

  _finish(code, reason) {
    if (this._finished !== null) return;
    this._finished = new ConnectionClosed(code, reason);
    this._gen += 1;
    if (this._abortDial !== null) this._abortDial(new ConnectionClosed(code, "client closed"));
    const link = this._link;
    this._link = null;
    if (link !== null) {
      clearInterval(link.watchdog);
      link.ws.onmessage = null;
    }
    const entries = [...this._pending.values(), ...this._waiting];
    this._pending.clear();
    this._waiting = [];
    for (const entry of entries) this._settle(entry, this._finished);
    const subs = [...this._subs.values()];
    this._subs.clear();
    for (const sub of subs) sub._end(`client closed: ${code}`);
    this._wake();
    this._setState("closed", { code, reason });
  }

  // -- incoming ---------------------------------------------------------------------

  _decode(data) {
    if (this.subprotocol === "json") {
      if (typeof data !== "string") throw new Error("binary frame on a JSON connection");
      return JSON.parse(data);
    }
    if (typeof data === "string") throw new Error("text frame on a MessagePack connection");
    return msgpackDecode(new Uint8Array(data));
  }

  _onFrame(data) {
    this._lastRx = now();
    let msg;
    try {
      msg = this._decode(data);
    } catch (err) {
      console.warn("fastcomm: undecodable frame dropped", err);
      return;
    }
    if (msg === null || typeof msg !== "object") return;
    const id = msg.id;
    if (typeof id === "number" && this._pending.has(id)) {
      const entry = this._pending.get(id);
      this._pending.delete(id);
      if (msg.type === "error") {
        this._settle(entry, new RequestFailed(msg.code, msg.message, msg.details ?? null));
      } else {
        if (entry.sync !== null) entry.sync(msg);
        this._settle(entry, null, msg);
      }
      return;
    }
    if (id !== null && id !== undefined && id === this._pingId) {
      this._pingId = null; // the watchdog's ping: a pong, or an error such as rate_limited
      if (msg.type === "pong") return;
    }
    if (this._onChannelPush(msg)) return;
    if (msg.type === "error") this._emit("error", msg);
    else this._emit("push", msg);
  }

  _onChannelPush(msg) {
    const sub = typeof msg.channel === "string" ? this._subs.get(msg.channel) : undefined;
    switch (msg.type) {
      case "message":
        if (sub === undefined) return false;
        this._follow(sub, sub.state.deliver(publication(msg)));
        return true;
      case "join":
      case "leave":
        if (sub === undefined) return false;
        sub._emit(msg.type, { channel: msg.channel, session: msg.session, user: msg.user });
        return true;
      case "subscribed":
        return msg.id == null && this._restored(msg);
      case "unsubscribed":
        if (msg.id != null || sub === undefined) return false;
        this._forget(sub, "unsubscribed by the server");
        return true;
      default:
        return false;
    }
  }

  // -- channels ---------------------------------------------------------------------

  /**
   * Subscribe to `channel`; resolves to its Subscription (publications held until then).
   * A subscribe that timed out is undone in the background (`unsubscribe`); subscribing
   * to that channel again first waits for it, within `timeout`.
   */
  async subscribe(channel, { recover = true, timeout } = {}) {
    if (this._subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    const seconds = timeout === undefined ? this.callTimeout : timeout;
    const undo = this._undoing.get(channel);
    if (undo !== undefined) {
      // The server must forget the abandoned subscribe first, or it answers already_subscribed.
      await within(undo, seconds, `still undoing an abandoned subscribe to ${channel}`);
      if (this._subs.has(channel)) throw new Error(`already subscribed to ${channel}`);
    }
    const sub = new Subscription(this, channel, recover);
    this._subs.set(channel, sub);
    this._dropped.delete(channel);
    const apply = (reply) => {
      if (reply.type === "subscribed" && this._owns(sub)) {
        sub.state.apply(reply);
        this._follow(sub, sub.state.release());
      }
    };
    let reply;
    try {
      reply = await this._request({ type: "subscribe", channel }, seconds, apply, undefined);
    } catch (err) {
      if (err instanceof RequestFailed && err.code === "already_subscribed" && sub.epoch !== null) {
        return sub; // a resumed session restored it first
      }
      this._forget(sub, String(err.message));
      if (err instanceof ConnectionClosed) this._dropped.add(channel);
      else if (err instanceof TimeoutError) this._unsubscribeLater(channel, this._gen);
      throw err;
    }
    if (reply.type !== "subscribed") {
      this._forget(sub, "unexpected reply");
      throw new Error(`expected a subscribed reply, got ${reply.type}`);
    }
    return sub;
  }

  _owns(sub, gen) {
    return this._subs.get(sub.channel) === sub && (gen === undefined || gen === this._gen);
  }

  _forget(sub, reason) {
    if (this._owns(sub)) this._subs.delete(sub.channel);
    sub._end(reason);
  }

  _restored(reply) {
    const sub = this._subs.get(reply.channel);
    if (sub === undefined) {
      if (!this._dropped.has(reply.channel)) return false;
      this._dropped.delete(reply.channel);
      this._unsubscribeLater(reply.channel, this._gen);
      return true;
    }
    const state = sub.state;
    const behind = reply.recovered && reply.epoch === state.epoch && reply.offset > state.offset;
    const fresh = state.epoch === null;
    state.apply(reply);
    if (fresh) {
      this._follow(sub, state.release());
    } else if (behind) {
      state.hold();
      this._catchUp(sub, this._gen, reply.offset, true);
    }
    return true;
  }

  _follow(sub, gap) {
    if (gap !== null) this._catchUp(sub, this._gen, gap, false);
  }

  async _catchUp(sub, gen, upto, settle) {
    const state = sub.state;
    let gap = settle ? null : upto;
    const epoch = state.epoch;
    try {
      if (settle) {
        await this._request({ type: "ping" }, this.callTimeout, null, gen);
        if (!this._owns(sub, gen)) return;
        gap = state.release();
        if (gap === null && state.epoch === epoch && state.offset < upto) {
          state.hold();
          gap = upto;
        }
      }
      while (gap !== null) {
        const since = state.offset;
        const msg = { type: "history", channel: sub.channel, since, limit: gap - since };
        const reply = await this._request(msg, this.callTimeout, null, gen);
        if (!this._owns(sub, gen)) return;
        gap = state.fill(reply.type === "history" ? reply : null, gap);
      }
    } catch (err) {
      if (err instanceof ConnectionClosed || !this._owns(sub, gen)) return;
      console.warn(`fastcomm: channel ${sub.channel}: history request failed`, err);
      gap = gap === null ? state.release() : state.fill(null, gap);
      while (gap !== null) gap = state.fill(null, gap);
    }
  }

  async _resubscribeAll() {
    this._dropped.clear();
    const gen = this._gen;
    const subs = [...this._subs.values()].filter((sub) => sub.epoch !== null);
    await Promise.all(subs.map((sub) => this._resubscribe(sub, gen)));
  }

  async _resubscribe(sub, gen) {
    const state = sub.state;
    state.hold();
    const msg = { type: "subscribe", channel: sub.channel };
    if (state.recover && state.epoch !== null) {
      msg.recover = { offset: state.offset, epoch: state.epoch };
    }
    const apply = (reply) => {
      if (reply.type === "subscribed" && this._owns(sub, gen)) {
        state.apply(reply);
        this._follow(sub, state.release());
      }
    };
    try {
      await this._request(msg, this.callTimeout, apply, gen);
    } catch (err) {
      if (err instanceof ConnectionClosed || !this._owns(sub, gen)) return;
      this._forget(sub, `re-subscribing failed: ${err.message}`);
      if (err instanceof TimeoutError) this._unsubscribeLater(sub.channel, gen);
    }
  }

  async _unsubscribe(sub, timeout) {
    if (!this._owns(sub)) return;
    this._forget(sub, "unsubscribed");
    if (this._finished !== null) return;
    if (this._link === null) {
      this._dropped.add(sub.channel);
      return;
    }
    const seconds = timeout === undefined ? this.callTimeout : timeout;
    try {
      await this._request({ type: "unsubscribe", channel: sub.channel }, seconds, null, this._gen);
    } catch (err) {
      if (err instanceof ConnectionClosed) this._dropped.add(sub.channel);
      else if (!(err instanceof RequestFailed)) throw err;
    }
  }

  _unsubscribeLater(channel, gen) {
    const run = async () => {
      if (gen !== this._gen) return;
      try {
        await this._request({ type: "unsubscribe", channel }, this.callTimeout, null, gen);
      } catch (err) {
        if (err instanceof ConnectionClosed) this._dropped.add(channel);
      }
    };
    const undoing = run().finally(() => {
      if (this._undoing.get(channel) === undoing) this._undoing.delete(channel);
    });
    this._undoing.set(channel, undoing);
  }
}

function publication(msg) {
  return { channel: msg.channel, offset: msg.offset, epoch: msg.epoch, data: msg.data ?? null };
}
