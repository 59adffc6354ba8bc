// MessagePack codec of the browser client: exact bytes from the spec and round trips.
import assert from "node:assert/strict";
import { test } from "node:test";

import { decode, encode, Ext, MsgpackError } from "../../fastcomm/web/msgpack.js";

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));

test("integers use the smallest format", () => {
  const cases = [
    [0, "00"], [127, "7f"], [128, "cc80"], [255, "ccff"], [256, "cd0100"],
    [65535, "cdffff"], [65536, "ce00010000"], [2 ** 32 - 1, "ceffffffff"],
    [2 ** 32, "cf0000000100000000"], [-1, "ff"], [-32, "e0"], [-33, "d0df"],
    [-128, "d080"], [-129, "d1ff7f"], [-32768, "d18000"], [-32769, "d2ffff7fff"],
    [-(2 ** 31), "d280000000"], [-(2 ** 31) - 1, "d3ffffffff7fffffff"],
    [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"],
  ];
  for (const [value, bytes] of cases) {
    assert.equal(hex(encode(value)), bytes, `encode(${value})`);
    assert.equal(decode(unhex(bytes)), value, `decode(${bytes})`);
  }
});

test("64-bit integers beyond 2**53 come back as BigInt", () => {
  for (const big of [2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2n ** 53n + 1n]) {
    assert.equal(decode(encode(big)), big);
  }
  assert.equal(hex(encode(2n ** 64n - 1n)), "cfffffffffffffffff");
  assert.equal(decode(encode(5n)), 5); // a small BigInt is a plain number on the way back
  assert.throws(() => encode(2n ** 64n), RangeError);
  assert.throws(() => encode(-(2n ** 63n) - 1n), RangeError);
});

test("floats, nil, bool, strings, bin", () => {
  assert.equal(hex(encode(1.5)), "cb3ff8000000000000");
  assert.equal(decode(unhex("ca3fc00000")), 1.5); // float 32
  assert.equal(hex(encode(null)), "c0");
  assert.equal(hex(encode(undefined)), "c0");
  assert.equal(hex(encode(true)), "c3");
  assert.equal(hex(encode(false)), "c2");
  assert.equal(hex(encode("a")), "a161");
  assert.equal(hex(encode("")), "a0");
  assert.equal(hex(encode("x".repeat(32))), "d920" + "78".repeat(32));
  assert.equal(decode(encode("é€😀")), "é€😀");
  const long = "y".repeat(70000);
  assert.equal(hex(encode(long)).slice(0, 10), "db00011170");
  assert.equal(decode(encode(long)), long);
  assert.equal(hex(encode(new Uint8Array([1, 2]))), "c4020102");
  assert.deepEqual(decode(unhex("c4020102")), new Uint8Array([1, 2]));
  assert.deepEqual(decode(encode(new Uint8Array(300))), new Uint8Array(300));
  assert.ok(Number.isNaN(decode(encode(NaN))));
  assert.equal(decode(encode(-Infinity)), -Infinity);
});

test("arrays and maps, nested", () => {
  assert.equal(hex(encode([1, [2]])), "920191" + "02");
  assert.equal(hex(encode({ a: 1 })), "81a16101");
  const value = {
    type: "message",
    channel: "chat:lobby",
    offset: 42,
    data: { text: "hi", list: Array.from({ length: 20 }, (_, i) => i), nested: { deep: [null, true] } },
  };
  assert.deepEqual(decode(encode(value)), value);
  const bigMap = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]));
  assert.equal(hex(encode(bigMap)).slice(0, 6), "de0014");
  assert.deepEqual(decode(encode(bigMap)), bigMap);
  assert.deepEqual(decode(encode(new Map([["x", 1]]))), { x: 1 });
  assert.deepEqual(decode(encode({ skipped: undefined, kept: 1 })), { kept: 1 });
  const proto = decode(unhex("81a95f5f70726f746f5f5f01")); // {"__proto__": 1}
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.equal(proto.__proto__, 1);
});

test("timestamps and other extensions", () => {
  const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));
  assert.equal(decode(encode(date)).getTime(), date.getTime());
  assert.equal(decode(unhex("d6ff00000001")).getTime(), 1000); // timestamp 32
  const old = new Date(Date.UTC(1900, 0, 1));
  assert.equal(decode(encode(old)).getTime(), old.getTime()); // timestamp 96
  const ext = decode(encode(new Ext(5, new Uint8Array([9, 9, 9]))));
  assert.ok(ext instanceof Ext);
  assert.equal(ext.type, 5);
  assert.deepEqual(ext.data, new Uint8Array([9, 9, 9]));
});

test("malformed input is refused", () => {
  for (const bad of ["c1", "a261", "92", "cd01", "c0c0", "a1ff"]) {
    assert.throws(() => decode(unhex(bad)), MsgpackError, bad);
  }
  const deep = new Uint8Array(600).fill(0x91);
  assert.throws(() => decode(deep), MsgpackError);
  assert.throws(() => encode(() => 1), TypeError);
});
