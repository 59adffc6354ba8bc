// Pure logic of the browser client: backoff, close-code policy, dedupe and gap handling.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Backoff,
  backoffDelay,
  ChannelState,
  NO_RETRY_CODES,
  shouldReconnect,
} from "../../fastcomm/web/fastcomm.js";

test("backoff is full jitter under a doubling cap", () => {
  assert.equal(backoffDelay(0, 0.1, 10, () => 0.5), 0.05);
  assert.equal(backoffDelay(3, 0.1, 10, () => 0.999999) < 0.8, true);
  assert.ok(Math.abs(backoffDelay(3, 0.1, 10, () => 1 - 1e-12) - 0.8) < 1e-9);
  assert.equal(backoffDelay(10, 0.1, 10, () => 0.5), 5); // capped at the maximum
  assert.equal(backoffDelay(5000, 0.1, 10, () => 0.5), 5);
  assert.equal(backoffDelay(2, 0.1, 10, () => 0), 0);
  assert.throws(() => backoffDelay(-1), RangeError);
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(4, 0.1, 10);
    assert.ok(d >= 0 && d < 1.6);
  }
});

test("Backoff counts attempts, stops at maxAttempts and resets", () => {
  const b = new Backoff(1, 4, 3, () => 1 - 1e-12);
  const caps = [b.nextDelay(), b.nextDelay(), b.nextDelay()].map((d) => Math.round(d));
  assert.deepEqual(caps, [1, 2, 4]);
  assert.equal(b.nextDelay(), null);
  assert.equal(b.attempts, 3);
  b.reset();
  assert.equal(Math.round(b.nextDelay()), 1);
  assert.notEqual(new Backoff(0.1, 10, null).nextDelay(), null);
  assert.throws(() => new Backoff(0, 1), RangeError);
  assert.throws(() => new Backoff(2, 1), RangeError);
  assert.throws(() => new Backoff(0.1, 1, -1), RangeError);
});

test("close codes that blame the client or revoke the session are final", () => {
  for (const code of [1002, 1003, 1007, 1008, 1009, 1010, 4003]) {
    assert.equal(shouldReconnect(code), false, String(code));
  }
  for (const code of [1000, 1001, 1005, 1006, 1011, 1012, 4008, 4029, 4999]) {
    assert.equal(shouldReconnect(code), true, String(code));
  }
  assert.equal(NO_RETRY_CODES.size, 7);
});

function stream(recover = true) {
  const out = [];
  const lost = [];
  const state = new ChannelState("c", {
    recover,
    onPublication: (p) => out.push(p.offset),
    onLost: (e) => lost.push(e),
  });
  return { state, out, lost };
}

const pub = (offset, epoch = "e1") => ({ channel: "c", offset, epoch, data: offset });

test("publications are held until the subscribed reply, then released in order", () => {
  const { state, out } = stream();
  assert.equal(state.deliver(pub(6)), null);
  state.apply({ epoch: "e1", offset: 5, recovered: false });
  assert.deepEqual(out, []);
  assert.equal(state.release(), null);
  assert.deepEqual(out, [6]);
  assert.equal(state.offset, 6);
});

test("duplicates within an epoch are dropped and counted", () => {
  const { state, out } = stream();
  state.apply({ epoch: "e1", offset: 0, recovered: false });
  for (const o of [1, 2, 2, 1, 3, 3]) state.deliver(pub(o));
  assert.deepEqual(out, [1, 2, 3]);
  assert.equal(state.duplicates, 3);
});

test("a gap is reported, held, and filled from history", () => {
  const { state, out, lost } = stream();
  state.apply({ epoch: "e1", offset: 1, recovered: false });
  assert.equal(state.deliver(pub(4)), 3); // 2 and 3 are missing
  assert.equal(state.deliver(pub(5)), null); // held behind the gap
  assert.deepEqual(out, []);
  const page = { epoch: "e1", messages: [pub(2), pub(3)] };
  assert.equal(state.fill(page, 3), null);
  assert.deepEqual(out, [2, 3, 4, 5]);
  assert.deepEqual(lost, []);
  assert.equal(state.recovered, true);
});

test("a gap history no longer covers emits recovered: false and goes on", () => {
  const { state, out, lost } = stream();
  state.apply({ epoch: "e1", offset: 1, recovered: false });
  assert.equal(state.deliver(pub(10)), 9);
  const page = { epoch: "e1", messages: [pub(8), pub(9)] }; // 2..7 were trimmed
  assert.equal(state.fill(page, 9), null);
  assert.equal(lost.length, 1);
  assert.deepEqual(lost[0], {
    recovered: false, channel: "c", epoch: "e1", offset: 9, previousEpoch: "e1", previousOffset: 1,
  });
  assert.deepEqual(out, [10]);
  assert.equal(state.recovered, false);
});

test("a second gap found while releasing is reported in turn", () => {
  const { state, out } = stream();
  state.apply({ epoch: "e1", offset: 1, recovered: false });
  assert.equal(state.deliver(pub(3)), 2);
  state.deliver(pub(5));
  assert.equal(state.fill({ epoch: "e1", messages: [pub(2)] }, 2), 4);
  assert.deepEqual(out, [2, 3]);
  assert.equal(state.fill({ epoch: "e1", messages: [pub(4)] }, 4), null);
  assert.deepEqual(out, [2, 3, 4, 5]);
});

test("resubscribe replies: recovered keeps the position, a new epoch is a loss", () => {
  const a = stream();
  a.state.apply({ epoch: "e1", offset: 3, recovered: false });
  a.state.reset();
  a.state.hold();
  a.state.apply({ epoch: "e1", offset: 5, recovered: true });
  a.state.deliver(pub(4));
  a.state.deliver(pub(5));
  a.state.deliver(pub(4)); // overlap after recovery
  assert.equal(a.state.release(), null);
  assert.deepEqual(a.out, [4, 5]);
  assert.deepEqual(a.lost, []);

  const b = stream();
  b.state.apply({ epoch: "e1", offset: 3, recovered: false });
  b.state.apply({ epoch: "e2", offset: 7, recovered: false });
  assert.equal(b.lost.length, 1);
  assert.equal(b.lost[0].previousEpoch, "e1");
  assert.equal(b.state.epoch, "e2");
  assert.equal(b.state.offset, 7);
  b.state.deliver(pub(8, "e2"));
  assert.deepEqual(b.out, [8]);

  const c = stream(false); // recover: false: no loss reported, just go on
  c.state.apply({ epoch: "e1", offset: 3, recovered: false });
  c.state.apply({ epoch: "e2", offset: 0, recovered: false });
  assert.deepEqual(c.lost, []);
  assert.equal(c.state.recovered, false);
});

test("a live publication from another epoch is a loss, then delivered", () => {
  const { state, out, lost } = stream();
  state.apply({ epoch: "e1", offset: 3, recovered: false });
  state.deliver(pub(1, "e9"));
  assert.equal(lost.length, 1);
  assert.equal(lost[0].epoch, "e9");
  assert.deepEqual(out, [1]);
});
