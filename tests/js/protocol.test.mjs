// tests/vectors/protocol.json through the wasm module via `teleportal/protocol`, under Node
// (node:test), and the same cases under Bun: this file re-run by Bun in a child process with
// TP_PROTOCOL_BUN=1, printing a JSON summary {pass, fail, failures}.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as P from "teleportal/protocol";

const here = fileURLToPath(import.meta.url);
const V = JSON.parse(readFileSync(new URL("../vectors/protocol.json", import.meta.url), "utf8"));

const hex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
};
const varUint = (n) => {
  const out = [];
  while (n > 127) (out.push(0x80 | (n % 128)), (n = Math.floor(n / 128)));
  out.push(n);
  return Uint8Array.from(out);
};
const FRAME_PREFIX = "Failed to decode update message: ";

/** Vector JSON conventions -> JS values. */
function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v === null || typeof v !== "object") return v;
  const keys = Object.keys(v);
  if (keys.length === 1) {
    if (keys[0] === "$hex") return hex(v.$hex);
    if (keys[0] === "$bigint") return BigInt(v.$bigint);
    if (keys[0] === "$undefined") return undefined;
    if (keys[0] === "$number") return { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, "-0": -0 }[v.$number];
  }
  const o = {};
  for (const k of keys) o[k] = revive(v[k]);
  return o;
}

/** The reference's innermost error -> our stable code. */
function codeFor(inner) {
  const m = inner.message;
  const table = {
    "Invalid magic number": "bad_magic",
    "Invalid version": "bad_version",
    "Unexpected end of array": "truncated",
    "Integer out of Range": "integer_out_of_range",
    "Invalid target type": "unknown_message_type",
    "Failed to decode doc update, unexpected value": "unknown_subtype",
    "Invalid presence sub-type": "bad_presence_subtype",
    "Invalid presence data: expected an object": "bad_presence_data",
    "Invalid RPC request type": "bad_rpc_request_type",
    "Invalid message": "invalid_message",
  };
  if (table[m]) return table[m];
  if (m.startsWith("Unsupported content-encrypted version")) return "unsupported_envelope_version";
  if (/utf-8/i.test(m)) return "invalid_utf8";
  if (inner.name === "RangeError") return "length_out_of_range";
  if (inner.name === "TypeError") return "bad_any_tag";
  return `unmapped: ${m}`;
}

function chainOf(err) {
  const out = [];
  for (let e = err; e instanceof Error; e = e.cause) out.push(e.message);
  return out;
}

/** Asserts a thrown error against a reference chain [{name, message}, ...]. */
function checkError(fn, refChain) {
  let err;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, "expected a throw");
  const code = codeFor(refChain.at(-1));
  assert.equal(err.code, code);
  const want = refChain.map((e) => e.message);
  if (code === "bad_any_tag") {
    // The reference text is a runtime-specific TypeError; only the project prefix is defined.
    assert.equal(chainOf(err).length, want.length);
    if (want[0].startsWith(FRAME_PREFIX)) assert.ok(err.message.startsWith(FRAME_PREFIX));
  } else {
    assert.deepEqual(chainOf(err), want);
  }
}

// An RPC request frame whose success payload is the given `any` bytes.
const rpcWithAny = (anyBytes) =>
  concat(hex("594a530103646f630004016d0000"), varUint(anyBytes.length), anyBytes);

// ---- cases (shared by Node and the Bun child) -----------------------------------------------------
const cases = [];
const add = (group, name, fn) => cases.push({ group, name, fn });

for (const v of V.valid) {
  add("valid", v.name, () => {
    const bytes = hex(v.hex);
    const m = P.decodeMessage(bytes);
    assert.deepStrictEqual(m, revive(v.decoded));
    assert.equal(m.id, v.id);
    assert.equal(P.getMessageId(bytes), v.id);
    if (v.reencodeIdentical) assert.equal(toHex(P.encodeMessage(m)), v.hex);
  });
}

for (const v of V.lenient) {
  add("lenient", v.name, () => {
    const bytes = hex(v.hex);
    const m = P.decodeMessage(bytes);
    assert.deepStrictEqual(m, revive(v.decoded));
    assert.equal(P.getMessageId(bytes), v.hashOfRawBytes);
    const again = P.decodeMessage(P.encodeMessage(m));
    assert.deepStrictEqual({ ...again, id: 0 }, { ...m, id: 0 });
  });
}

for (const v of V.invalid) {
  add("invalid", v.name, () => {
    checkError(() => P.decodeMessage(hex(v.hex)), v.errorChain);
    if (codeFor(v.errorChain.at(-1)) !== "bad_any_tag") {
      try {
        P.decodeMessage(hex(v.hex));
      } catch (e) {
        assert.equal(e.message, v.message);
      }
    }
  });
}

{
  const s = V.special;
  for (const key of ["ping", "pong", "pingWithTrailingBytes", "truncatedPing"]) {
    add("special", key, () => {
      const b = hex(s[key].hex);
      if ("isPingMessage" in s[key]) assert.equal(P.isPingMessage(b), s[key].isPingMessage);
      if ("isPongMessage" in s[key]) assert.equal(P.isPongMessage(b), s[key].isPongMessage);
      if ("isBinaryMessage" in s[key]) assert.equal(P.isBinaryMessage(b), s[key].isBinaryMessage);
    });
  }
  add("special", "ping/pong bytes", () => {
    assert.equal(toHex(P.encodePingMessage()), s.ping.hex);
    assert.equal(toHex(P.encodePongMessage()), s.pong.hex);
  });
  add("special", "decodeMessage(ping) throws", () => checkError(() => P.decodeMessage(hex(s.ping.hex)), s.decodePingThrows));
  for (const c of s.isBinaryMessage) {
    add("special", `isBinaryMessage(${c.hex || "empty"})`, () => assert.equal(P.isBinaryMessage(hex(c.hex)), c.expect));
  }
}

{
  const a = V.messageArray;
  add("messageArray", "decode", () => assert.deepStrictEqual(P.decodeMessageArray(hex(a.hex)), revive(a.decoded)));
  add("messageArray", "encode from messages and from frames", () => {
    const msgs = P.decodeMessageArray(hex(a.hex));
    assert.equal(toHex(P.encodeMessageArray(msgs)), a.hex);
    assert.equal(toHex(P.encodeMessageArray(msgs.map((m) => P.encodeMessage(m)))), a.hex);
  });
  add("messageArray", "empty", () => assert.equal(P.decodeMessageArray(hex(a.empty.hex)).length, a.empty.decodedCount));
  add("messageArray", "invalid element", () => checkError(() => P.decodeMessageArray(hex(a.invalidElement.hex)), a.invalidElement.error));
}

add("pubsub", "decode and encode", () => {
  const p = V.pubsub;
  const d = P.decodePubSubMessage(hex(p.hex));
  assert.equal(d.sourceId, p.sourceId);
  assert.equal(toHex(d.message), p.messageHex);
  assert.equal(toHex(P.encodePubSubMessage(hex(p.messageHex), p.sourceId)), p.hex);
});

for (const v of V.contentEncryptedEnvelope.vectors) {
  add("envelope", v.name, () => {
    const d = P.decodeContentEncryptedPayload(hex(v.hex));
    assert.deepStrictEqual(d, revive(v.decoded));
    assert.equal(toHex(P.encodeContentEncryptedPayload(d)), v.hex);
    assert.deepStrictEqual(P.decodeContentEncryptedPayload(hex(v.hex), { strict: true }), d);
  });
}
for (const v of V.contentEncryptedEnvelope.decodeErrors) {
  add("envelope", v.name, () => {
    if (v.error === null) assert.deepStrictEqual(P.decodeContentEncryptedPayload(hex(v.hex)), revive(v.decoded));
    else checkError(() => P.decodeContentEncryptedPayload(hex(v.hex)), v.error);
  });
}
add("envelope", "empty constant and strict mode", () => {
  assert.equal(toHex(P.getEmptyContentEncryptedPayload()), V.constants.emptyContentEncryptedPayload);
  assert.equal(toHex(P.encodeContentEncryptedPayload({ structureUpdate: new Uint8Array() })), "01000000");
  assert.throws(() => P.decodeContentEncryptedPayload(hex("01010100040101740568656c6c6f00"), { strict: true }), {
    code: "non_canonical_envelope",
  });
});

// lib0 vectors, each through a frame field that uses the primitive.
for (const v of V.lib0.varUint) {
  add("lib0", `varUint ${v.value}`, () => {
    const frame = concat(hex("594a530103646f63000300"), hex(v.hex));
    assert.equal(P.decodeMessage(frame).payload.awarenessId, v.value);
    const enc = P.encodeMessage({ type: "presence", document: "doc", encrypted: false, payload: { type: "presence-announce", awarenessId: v.value } });
    assert.equal(toHex(enc), toHex(frame));
  });
}
for (const v of V.lib0.varInt) {
  add("lib0", `varInt ${v.hex}`, () => {
    const m = P.decodeMessage(rpcWithAny(concat(hex("7d"), hex(v.hex))));
    assert.ok(Object.is(m.payload.payload, revive(v.value)));
  });
}
for (const v of V.lib0.varString) {
  add("lib0", `varString ${v.hex}`, () => {
    const frame = concat(hex("594a5301"), hex(v.hex), hex("000003"));
    assert.equal(P.decodeMessage(frame).document, v.roundTrip);
    const enc = P.encodeMessage({ type: "doc", document: v.value, encrypted: false, payload: { type: "sync-done" } });
    assert.equal(toHex(enc), toHex(frame));
  });
}
for (const v of V.lib0.varUint8Array) {
  add("lib0", `varUint8Array ${v.valueHex.length / 2} bytes`, () => {
    const frame = concat(hex("594a530103646f63000000"), hex(v.hex));
    assert.equal(toHex(P.decodeMessage(frame).payload.sv), v.valueHex);
  });
}
for (const v of V.lib0.any) {
  add("lib0", `any ${v.label}`, () => {
    const m = P.decodeMessage(rpcWithAny(hex(v.hex)));
    assert.deepStrictEqual(m.payload.payload, revive(v.readBack));
    // the writer's classification from the JS value
    const enc = P.encodeMessage({ ...m, payload: { type: "success", payload: revive(v.readBack) } });
    assert.equal(toHex(enc), toHex(rpcWithAny(hex(v.hex))));
    if (v.readBack && typeof v.readBack === "object" && !Array.isArray(v.readBack) && Object.keys(v.readBack).length > 1) {
      assert.deepEqual(Object.keys(m.payload.payload), Object.keys(v.readBack)); // key order
    }
  });
}
for (const v of V.lib0.readEdgeCases) {
  add("lib0", v.name, () => {
    const frame = concat(hex("594a530103646f63000300"), hex(v.hex));
    if ("readVarUint" in v) assert.equal(P.decodeMessage(frame).payload.awarenessId, v.readVarUint);
    else checkError(() => P.decodeMessage(frame), [{ name: "Error", message: FRAME_PREFIX + v.error[0].message }, ...v.error]);
  });
}
add("lib0", "readVarInt past the end is 0", () => {
  assert.ok(Object.is(P.decodeMessage(rpcWithAny(hex("7d"))).payload.payload, V.lib0.readVarIntPastEnd.value));
});

// Behaviour the vectors do not pin.
add("api", "errors are Errors with code and cause; bad input types throw TypeError", () => {
  assert.throws(() => P.decodeMessage("594a"), TypeError);
  assert.throws(() => P.encodeMessage({ type: "nope", payload: {} }), { code: "invalid_message_shape" });
  assert.throws(
    () => P.encodeMessage({ type: "rpc", document: "d", encrypted: false, rpcMethod: "m", requestType: "stream", originalRequestId: null, payload: { type: "success", payload: 1 } }),
    { code: "missing_original_request_id" },
  );
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(
    () => P.encodeMessage({ type: "rpc", document: "d", encrypted: false, rpcMethod: "m", requestType: "request", payload: { type: "success", payload: cyclic } }),
    { code: "nesting_too_deep" },
  );
});
add("api", "BOM in document names is preserved; NUL allowed", () => {
  const name = P.decodeMessage(hex("594a530106efbbbf610062000003")).document;
  assert.equal(name, "\ufeffa\u0000b");
  assert.equal(toHex(P.encodeMessage({ type: "doc", document: name, encrypted: false, payload: { type: "sync-done" } })), "594a530106efbbbf610062000003");
});

// ---- runners ----------------------------------------------------------------------------------------
if (process.env.TP_PROTOCOL_BUN === "1") {
  let pass = 0;
  const failures = [];
  for (const c of cases) {
    try {
      c.fn();
      pass++;
    } catch (e) {
      failures.push(`${c.group}/${c.name}: ${e.message}`);
    }
  }
  console.log(JSON.stringify({ pass, fail: failures.length, failures }));
} else {
  const { test } = await import("node:test");
  for (const c of cases) test(`${c.group}: ${c.name}`, c.fn);


  // Differential check against the real lib0 (oracle, tests only): 3000 random JS values must be
  // written byte-identically by encodeMessage's `any` writer and read back to equal values.
  test("any writer and reader agree with lib0 on random values", async () => {
    const encoding = await import("lib0/encoding");
    const decoding = await import("lib0/decoding");
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
    const nums = [0, -0, 1, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 40, 0.5, 0.1, NaN, Infinity, -Infinity, 2 ** 53 - 1, 1e300, 3.4028234663852886e38, 1.1754943508222875e-38, 5e-324];
    function value(d) {
      const r = rnd();
      if (d > 3 || r < 0.5) {
        const k = Math.floor(rnd() * 8);
        if (k === 0) return nums[Math.floor(rnd() * nums.length)];
        if (k === 1) return (rnd() - 0.5) * 2 ** Math.floor(rnd() * 70);
        if (k === 2) return Math.floor((rnd() - 0.5) * 2 ** Math.floor(rnd() * 60));
        if (k === 3) return ["", "a", "ü😀", "\ufeffx", "\ud800"][Math.floor(rnd() * 5)];
        if (k === 4) return [null, undefined, true, false][Math.floor(rnd() * 4)];
        if (k === 5) return BigInt(Math.floor((rnd() - 0.5) * 2 ** 50)) * 1000n;
        if (k === 6) return Uint8Array.from({ length: Math.floor(rnd() * 5) }, () => Math.floor(rnd() * 256));
        return Math.fround(rnd() * 1000);
      }
      if (r < 0.75) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(d + 1));
      const o = {};
      for (let i = 0; i < Math.floor(rnd() * 4); i++) o[["a", "b", "1", "10", "z", "__x"][Math.floor(rnd() * 6)]] = value(d + 1);
      return o;
    }
    const frameFor = (v) =>
      P.encodeMessage({ type: "rpc", document: "d", encrypted: false, rpcMethod: "m", requestType: "request", originalRequestId: null, payload: { type: "success", payload: v } });
    const writeAny = (v) => {
      const e = encoding.createEncoder();
      encoding.writeAny(e, v);
      return toHex(encoding.toUint8Array(e));
    };
    for (let i = 0; i < 3000; i++) {
      const v = value(0);
      const frame = frameFor(v);
      const ref = writeAny(v);
      // header 594a5301 0164 00 04 016d 00 00, then vb(payload)
      const d = decoding.createDecoder(frame.subarray(12));
      assert.equal(toHex(decoding.readVarUint8Array(d)), ref);
      const back = P.decodeMessage(frame).payload.payload;
      assert.equal(writeAny(back), writeAny(decoding.readAny(decoding.createDecoder(hex(ref)))));
    }
  });

  test("the same vectors pass under Bun", () => {
    const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
    const r = spawnSync(bun, [here], { env: { ...process.env, TP_PROTOCOL_BUN: "1" }, encoding: "utf8", timeout: 120000 });
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split("\n").at(-1));
    assert.deepEqual(summary.failures, []);
    assert.equal(summary.pass, cases.length);
  });
}
