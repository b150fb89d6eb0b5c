// The provider's JS codec (wasm/src/provider-codec.js) against the C++ codec (teleportal/protocol)
// and the reference vectors: same bytes, same decoded shapes, same message ids.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as wasm from "teleportal/protocol";
import * as js from "../../wasm/src/provider-codec.js";

const vectors = JSON.parse(readFileSync(new URL("../vectors/protocol.json", import.meta.url), "utf8"));
const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b) => Buffer.from(b).toString("hex");
const covered = vectors.valid;

test("provider codec: decodes every reference frame (rpc included) like the C++ codec", () => {
  assert.ok(covered.length >= 40, `only ${covered.length} vectors`);
  assert.ok(covered.some((v) => v.decoded.type === "rpc"));
  for (const v of covered) {
    const frame = hex(v.hex);
    assert.deepEqual(js.decodeMessage(frame), wasm.decodeMessage(frame), v.name);
    assert.equal(js.decodeMessage(frame).id, v.id, `${v.name}: id`);
  }
});

test("provider codec: encodes decoded frames to the C++ codec's bytes", () => {
  for (const v of covered) {
    const decoded = wasm.decodeMessage(hex(v.hex));
    assert.equal(toHex(js.encodeMessage(decoded)), toHex(wasm.encodeMessage(decoded)), v.name);
    if (v.reencodeIdentical) assert.equal(toHex(js.encodeMessage(decoded)), v.hex, `${v.name}: wire bytes`);
  }
});

test("provider codec: lenient frames decode as in the C++ codec", () => {
  let n = 0;
  for (const v of vectors.lenient) {
    const frame = hex(v.hex);
    let expected;
    try {
      expected = wasm.decodeMessage(frame);
    } catch {
      continue;
    }
    assert.deepEqual(js.decodeMessage(frame), expected, v.name);
    n++;
  }
  assert.ok(n >= 8, `only ${n} lenient vectors compared`);
});

test("provider codec: rejects what the C++ codec rejects (never returns garbage)", () => {
  let n = 0;
  for (const v of vectors.invalid) {
    const frame = hex(v.hex);
    assert.throws(() => wasm.decodeMessage(frame), v.name);
    let decoded;
    try {
      decoded = js.decodeMessage(frame);
    } catch (err) {
      assert.match(err.message, /^Failed to decode update message: /, v.name);
      n++;
      continue;
    }
    // The JS codec does not decode rpc bodies, so a broken rpc body is the only thing it may accept.
    assert.equal(decoded.type, "rpc", `${v.name} was accepted as ${decoded.type}`);
  }
  assert.ok(n >= 30, `only ${n} invalid vectors rejected`);
});

test("provider codec: the envelope matches encodeContentEncryptedPayload", () => {
  for (const v of vectors.contentEncryptedEnvelope.vectors) {
    const structure = hex(v.decoded.structureUpdate.$hex);
    assert.equal(toHex(js.decodeEnvelope(hex(v.hex))), toHex(structure), v.name);
    if (v.decoded.encryptedSidecars.length === 0 && v.decoded.compaction.$undefined) {
      assert.equal(toHex(js.encodeEnvelope(structure)), v.hex, v.name);
    }
  }
  assert.throws(() => js.decodeEnvelope(hex("020000")), /^Error: Unsupported content-encrypted version: 2$/);
});

test("provider codec: message id and ping/pong constants", () => {
  assert.equal(js.getMessageId(hex("594a530103646f6300000003010102")), "65c81c1a189f6c90");
  assert.equal(toHex(js.PING), toHex(wasm.encodePingMessage()));
  assert.equal(toHex(js.PONG), toHex(wasm.encodePongMessage()));
  assert.throws(() => js.encodeMessage({ type: "rpc", document: "d", rpcMethod: "m", requestType: "response", payload: {} }), /originalRequestId/);
  assert.throws(() => js.encodeMessage({ type: "rpc", document: "d", rpcMethod: "m", requestType: "nope", payload: {} }), /rpc request type/);
});
