// A small, complete MessagePack codec for the fastcomm browser client.
//
//   encode(value) -> Uint8Array       decode(bytes) -> value
//
// Types, both ways:
//   null / undefined      <-> nil (undefined encodes as nil)
//   true / false          <-> bool
//   integer Number        <-> the smallest int format (positive/negative fixint, 8..64 bit)
//   BigInt                 -> int 64 (uint 64 above 2**63-1); RangeError beyond 64 bits
//   int 64 / uint 64       -> Number when it is a safe integer, else BigInt
//   other Number           <-> float 64 (float 32 is decoded too)
//   String                <-> str (UTF-8)
//   Uint8Array / ArrayBuffer / other typed-array views -> bin; bin -> Uint8Array
//   Array                 <-> array
//   plain object / Map     -> map (string keys; Map keys may be any encodable value)
//   map                    -> plain object (keys turned into strings)
//   ext -1 (timestamp)     -> Date;  Date -> ext -1 (timestamp 64 or 96)
//   other ext              -> Ext {type, data}; Ext -> ext
// Decoding rejects truncated input, trailing bytes, the reserved 0xc1 byte and
// nesting deeper than 512 levels with a MsgpackError.

export class MsgpackError extends Error {
  constructor(message) {
    super(message);
    this.name = "MsgpackError";
  }
}

/** An extension value whose type fastcomm does not interpret. */
export class Ext {
  constructor(type, data) {
    this.type = type;
    this.data = data;
  }
}

const MAX_DEPTH = 512;
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  ensure(n) {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v) {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  head(tag, size, fn) {
    this.ensure(1 + size);
    this.buf[this.pos++] = tag;
    fn(this.view, this.pos);
    this.pos += size;
  }

  bytes(b) {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  result() {
    return this.buf.slice(0, this.pos);
  }
}

function writeInt(w, n) {
  if (n >= 0) {
    if (n < 0x80) w.u8(n);
    else if (n < 0x100) w.head(0xcc, 1, (v, p) => v.setUint8(p, n));
    else if (n < 0x10000) w.head(0xcd, 2, (v, p) => v.setUint16(p, n));
    else if (n < 0x100000000) w.head(0xce, 4, (v, p) => v.setUint32(p, n));
    else w.head(0xcf, 8, (v, p) => v.setBigUint64(p, BigInt(n)));
  } else if (n >= -32) w.u8(n & 0xff);
  else if (n >= -0x80) w.head(0xd0, 1, (v, p) => v.setInt8(p, n));
  else if (n >= -0x8000) w.head(0xd1, 2, (v, p) => v.setInt16(p, n));
  else if (n >= -0x80000000) w.head(0xd2, 4, (v, p) => v.setInt32(p, n));
  else w.head(0xd3, 8, (v, p) => v.setBigInt64(p, BigInt(n)));
}

function writeBigInt(w, n) {
  if (n >= -(2n ** 53n) && n <= 2n ** 53n) {
    writeInt(w, Number(n));
  } else if (n > 0n) {
    if (n >= 2n ** 64n) throw new RangeError("integer does not fit in 64 bits");
    w.head(0xcf, 8, (v, p) => v.setBigUint64(p, n));
  } else {
    if (n < -(2n ** 63n)) throw new RangeError("integer does not fit in 64 bits");
    w.head(0xd3, 8, (v, p) => v.setBigInt64(p, n));
  }
}

function writeLength(w, n, fix, fixMax, t8, t16, t32) {
  if (fix !== null && n <= fixMax) w.u8(fix | n);
  else if (t8 !== null && n < 0x100) w.head(t8, 1, (v, p) => v.setUint8(p, n));
  else if (n < 0x10000) w.head(t16, 2, (v, p) => v.setUint16(p, n));
  else if (n < 0x100000000) w.head(t32, 4, (v, p) => v.setUint32(p, n));
  else throw new RangeError("value too large for MessagePack");
}

function writeExt(w, type, data) {
  const n = data.length;
  const fixed = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }[n];
  if (fixed !== undefined) w.u8(fixed);
  else writeLength(w, n, null, 0, 0xc7, 0xc8, 0xc9);
  w.u8(type & 0xff);
  w.bytes(data);
}

function writeDate(w, date) {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new TypeError("cannot encode an invalid Date");
  const seconds = Math.floor(ms / 1000);
  const nanos = (ms - seconds * 1000) * 1e6;
  if (seconds >= 0 && seconds < 2 ** 34) {
    const data = new Uint8Array(8);
    const v = new DataView(data.buffer);
    v.setUint32(0, nanos * 4 + Math.floor(seconds / 2 ** 32));
    v.setUint32(4, seconds >>> 0);
    writeExt(w, -1, data);
  } else {
    const data = new Uint8Array(12);
    const v = new DataView(data.buffer);
    v.setUint32(0, nanos);
    v.setBigInt64(4, BigInt(seconds));
    writeExt(w, -1, data);
  }
}

function write(w, value, depth) {
  if (depth > MAX_DEPTH) throw new RangeError("value nested too deeply");
  if (value === null || value === undefined) return w.u8(0xc0);
  switch (typeof value) {
    case "boolean":
      return w.u8(value ? 0xc3 : 0xc2);
    case "number":
      if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 64) {
        if (Number.isSafeInteger(value)) return writeInt(w, value);
        return writeBigInt(w, BigInt(value));
      }
      return w.head(0xcb, 8, (v, p) => v.setFloat64(p, value));
    case "bigint":
      return writeBigInt(w, value);
    case "string": {
      const b = textEncoder.encode(value);
      writeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      return w.bytes(b);
    }
    default:
      break;
  }
  if (typeof value !== "object") throw new TypeError(`cannot encode a ${typeof value}`);
  if (value instanceof Uint8Array || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    const b =
      value instanceof Uint8Array
        ? value
        : value instanceof ArrayBuffer
          ? new Uint8Array(value)
          : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    writeLength(w, b.length, null, 0, 0xc4, 0xc5, 0xc6);
    return w.bytes(b);
  }
  if (Array.isArray(value)) {
    writeLength(w, value.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of value) write(w, item, depth + 1);
    return undefined;
  }
  if (value instanceof Date) return writeDate(w, value);
  if (value instanceof Ext) return writeExt(w, value.type, value.data);
  if (value instanceof Map) {
    writeLength(w, value.size, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, v] of value) {
      write(w, k, depth + 1);
      write(w, v, depth + 1);
    }
    return undefined;
  }
  if (typeof value.toJSON === "function") return write(w, value.toJSON(), depth + 1);
  const keys = Object.keys(value).filter((k) => value[k] !== undefined);
  writeLength(w, keys.length, 0x80, 15, null, 0xde, 0xdf);
  for (const k of keys) {
    write(w, k, depth + 1);
    write(w, value[k], depth + 1);
  }
  return undefined;
}

/** Encode ``value`` as MessagePack; see the module comment for the types. */
export function encode(value) {
  const w = new Writer();
  write(w, value, 0);
  return w.result();
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }

  need(n) {
    if (this.pos + n > this.bytes.length) throw new MsgpackError("truncated MessagePack data");
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8() {
    return this.view.getUint8(this.need(1));
  }
}

function toNumber(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big;
}

function readStr(r, n) {
  const at = r.need(n);
  try {
    return textDecoder.decode(r.bytes.subarray(at, at + n));
  } catch {
    throw new MsgpackError("invalid UTF-8 in a MessagePack str");
  }
}

function readBin(r, n) {
  const at = r.need(n);
  return r.bytes.slice(at, at + n);
}

function readArray(r, n, depth) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = read(r, depth + 1);
  return out;
}

function readMap(r, n, depth) {
  const out = {};
  for (let i = 0; i < n; i++) {
    const key = read(r, depth + 1);
    const k = typeof key === "string" ? key : String(key);
    const v = read(r, depth + 1);
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function readExt(r, n) {
  const type = r.view.getInt8(r.need(1));
  const data = readBin(r, n);
  if (type !== -1) return new Ext(type, data);
  const v = new DataView(data.buffer);
  let seconds;
  let nanos;
  if (n === 4) {
    seconds = v.getUint32(0);
    nanos = 0;
  } else if (n === 8) {
    const hi = v.getUint32(0);
    nanos = Math.floor(hi / 4);
    seconds = (hi & 3) * 2 ** 32 + v.getUint32(4);
  } else if (n === 12) {
    nanos = v.getUint32(0);
    seconds = Number(v.getBigInt64(4));
  } else {
    throw new MsgpackError("invalid MessagePack timestamp");
  }
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

function read(r, depth) {
  if (depth > MAX_DEPTH) throw new MsgpackError("MessagePack data nested too deeply");
  const b = r.u8();
  const v = r.view;
  if (b < 0x80) return b;
  if (b < 0x90) return readMap(r, b & 0x0f, depth);
  if (b < 0xa0) return readArray(r, b & 0x0f, depth);
  if (b < 0xc0) return readStr(r, b & 0x1f);
  if (b >= 0xe0) return b - 0x100;
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBin(r, r.u8());
    case 0xc5:
      return readBin(r, v.getUint16(r.need(2)));
    case 0xc6:
      return readBin(r, v.getUint32(r.need(4)));
    case 0xc7:
      return readExt(r, r.u8());
    case 0xc8:
      return readExt(r, v.getUint16(r.need(2)));
    case 0xc9:
      return readExt(r, v.getUint32(r.need(4)));
    case 0xca:
      return v.getFloat32(r.need(4));
    case 0xcb:
      return v.getFloat64(r.need(8));
    case 0xcc:
      return r.u8();
    case 0xcd:
      return v.getUint16(r.need(2));
    case 0xce:
      return v.getUint32(r.need(4));
    case 0xcf:
      return toNumber(v.getBigUint64(r.need(8)));
    case 0xd0:
      return v.getInt8(r.need(1));
    case 0xd1:
      return v.getInt16(r.need(2));
    case 0xd2:
      return v.getInt32(r.need(4));
    case 0xd3:
      return toNumber(v.getBigInt64(r.need(8)));
    case 0xd4:
      return readExt(r, 1);
    case 0xd5:
      return readExt(r, 2);
    case 0xd6:
      return readExt(r, 4);
    case 0xd7:
      return readExt(r, 8);
    case 0xd8:
      return readExt(r, 16);
    case 0xd9:
      return readStr(r, r.u8());
    case 0xda:
      return readStr(r, v.getUint16(r.need(2)));
    case 0xdb:
      return readStr(r, v.getUint32(r.need(4)));
    case 0xdc:
      return readArray(r, v.getUint16(r.need(2)), depth);
    case 0xdd:
      return readArray(r, v.getUint32(r.need(4)), depth);
    case 0xde:
      return readMap(r, v.getUint16(r.need(2)), depth);
    case 0xdf:
      return readMap(r, v.getUint32(r.need(4)), depth);
    default:
      throw new MsgpackError(`invalid MessagePack byte 0x${b.toString(16)}`);
  }
}

/** Decode one MessagePack value that fills ``bytes`` (Uint8Array or ArrayBuffer) exactly. */
export function decode(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const r = new Reader(data);
  const value = read(r, 0);
  if (r.pos !== data.length) throw new MsgpackError("trailing bytes after a MessagePack value");
  return value;
}
