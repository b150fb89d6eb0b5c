// teleportal/token through the wasm core: every token vector, jose interop both ways, the
// documented deviations, and the same vectors under Bun (this file re-run by Bun in a child
// process with TP_TOKEN_BUN=1, printing a JSON summary).
import { readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  createTokenManager,
  TokenManager,
  DocumentAccessBuilder,
  isTokenExpired,
  extractContextFromToken,
  hasDocumentPermission,
  getDocumentPermissions,
} from "teleportal/token";

const V = JSON.parse(readFileSync(new URL("../vectors/tokens.json", import.meta.url), "utf8"));
const DIFF = JSON.parse(
  readFileSync(new URL("../vectors/tokens.node-runtime-diff.json", import.meta.url), "utf8"),
);

const hexBytes = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
const secretOf = (s) => (typeof s === "string" ? s : hexBytes(s.$hex));

async function atTime(ms, fn) {
  const real = Date.now;
  Date.now = () => ms;
  try {
    return await fn();
  } finally {
    Date.now = real;
  }
}

function deepEqual(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// ---- vector runners (shared by Node tests and the Bun child) --------------------------------

async function mintedFailures() {
  const out = [];
  for (const m of V.minted) {
    const p = JSON.parse(m.payloadJson);
    const tm = createTokenManager({ ...m.managerOptions, secret: secretOf(m.managerOptions.secret) });
    const token = await atTime(m.nowMs, () =>
      tm.generateToken(p.userId, p.room, p.documentAccess, {
        expiresIn: p.exp - p.iat,
        issuer: p.iss,
        audience: p.aud,
      }),
    );
    if (token !== m.token) out.push(m.name);
  }
  return out;
}

async function verifyFailures() {
  const out = [];
  for (const c of V.verify) {
    const tm = createTokenManager({
      secret: secretOf(c.secret),
      issuer: c.options.issuer,
      audience: c.options.audience,
    });
    const r = await atTime(c.nowSeconds * 1000, () => tm.verifyToken(c.token));
    const ok =
      r.valid === c.expect.valid &&
      (c.expect.valid
        ? deepEqual(r.payload, c.expect.payload) && r.error === undefined
        : r.error === c.expect.error && typeof r.code === "string" && r.payload === undefined);
    if (!ok) out.push({ name: c.name, got: r, expect: c.expect });
  }
  return out;
}

// Our documented behaviour: the reference's, except that a missing documentAccess denies.
function permissionFailures() {
  const out = [];
  for (const c of V.permissions) {
    const payload = { userId: "u", room: "r" };
    if (c.documentAccess !== null) payload.documentAccess = c.documentAccess;
    const tm = createTokenManager({ secret: "s" });
    const compat = createTokenManager({ secret: "s", allowMissingDocumentAccess: true });
    const ours = c.documentAccess === null ? false : c.expect.hasDocumentPermission;
    const ok =
      tm.hasDocumentPermission(payload, c.documentName, c.permission) === ours &&
      hasDocumentPermission(payload, c.documentName, c.permission) === ours &&
      compat.hasDocumentPermission(payload, c.documentName, c.permission) ===
        c.expect.hasDocumentPermission &&
      deepEqual(tm.getDocumentPermissions(payload, c.documentName), c.expect.getDocumentPermissions);
    if (!ok) out.push(c);
  }
  return out;
}

function builderFailures() {
  const out = [];
  for (const c of V.documentAccessBuilder) {
    const call = c.call.replace(/^chain:\s*/, "");
    // eslint-disable-next-line no-new-func
    const built = new Function("b", `return b.${call};`)(new DocumentAccessBuilder()).build();
    if (!deepEqual(built, c.build)) out.push(c.call);
  }
  return out;
}

// isTokenExpired agrees with verifyToken: exp <= floor(now) is expired (reference: `>`, and
// exp 0 = no expiry). Returns [failures, deviations].
async function expiryResults() {
  const failures = [];
  let deviations = 0;
  for (const c of V.isTokenExpired) {
    const nowMs = c.nowSeconds * 1000 + (c.nowExtraMs ?? 0);
    let expected = c.expect;
    const exp = c.payload.exp;
    if (typeof exp === "number" && (exp === Math.floor(nowMs / 1000) || exp === 0)) {
      if (!expected) deviations++;
      expected = true;
    }
    const got = await atTime(nowMs, () => isTokenExpired(c.payload));
    if (got !== expected) failures.push(c);
  }
  return [failures, deviations];
}

// Random corruptions of a good token (base64url specials, whitespace, padding, non-ASCII):
// our error must equal jose's jwtVerify message. `skip` filters runtime-dependent inputs.
async function corruptionMismatches(jose, skip) {
  const secret = "interop-secret";
  const tm = createTokenManager({ secret });
  const key = new TextEncoder().encode(secret);
  const good = await tm.generateToken("u", "r", [{ pattern: "*", permissions: ["read"] }]);
  const alphabet = "AZaz09-_+/=. *\\té";
  let seed = 7;
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
  const mismatches = [];
  let compared = 0;
  for (let i = 0; i < 600; i++) {
    const chars = [...good];
    for (let k = 0; k <= i % 3; k++) chars[rnd(chars.length)] = alphabet[rnd(alphabet.length)];
    const t = chars.join("");
    if (skip(t)) continue;
    const ours = await tm.verifyToken(t);
    const theirs = await jose
      .jwtVerify(t, key, { issuer: "teleportal", audience: "teleportal", algorithms: ["HS256"] })
      .then(() => null, (e) => e.message);
    compared++;
    if ((ours.valid ? null : ours.error) !== theirs) mismatches.push({ t, ours: ours.error, theirs });
  }
  return { compared, mismatches };
}

async function summary() {
  const [expiry, deviations] = await expiryResults();
  return {
    minted: { total: V.minted.length, failures: await mintedFailures() },
    verify: { total: V.verify.length, failures: await verifyFailures() },
    permissions: { total: V.permissions.length, failures: permissionFailures() },
    builder: { total: V.documentAccessBuilder.length, failures: builderFailures() },
    expiry: { total: V.isTokenExpired.length, failures: expiry, deviations },
  };
}

if (process.env.TP_TOKEN_BUN === "1") {
  const s = await summary();
  // Under Bun jose decodes with Uint8Array.fromBase64, the behaviour we implement: compare all.
  const corruptions = await corruptionMismatches(await import("jose"), () => false);
  const runtime = typeof Bun === "object" ? `bun ${Bun.version}` : "?";
  console.log(JSON.stringify({ runtime, ...s, corruptions }));
} else {
  const { test } = await import("node:test");
  const assert = (await import("node:assert/strict")).default;
  const jose = await import("jose");

  test("minted vectors are byte-identical (generateToken at the vector clock)", async () => {
    assert.ok(V.minted.length >= 8);
    assert.deepEqual(await mintedFailures(), []);
  });

  test("createAdminToken and createToken produce the same bytes as the reference", async () => {
    const admin = V.minted.find((m) => JSON.parse(m.payloadJson).documentAccess[0]?.permissions[0] === "admin");
    const p = JSON.parse(admin.payloadJson);
    const tm = createTokenManager({ secret: secretOf(admin.managerOptions.secret) });
    assert.equal(await atTime(admin.nowMs, () => tm.createAdminToken(p.userId, p.room)), admin.token);
    for (const m of V.minted) {
      const q = JSON.parse(m.payloadJson);
      const t = createTokenManager({ ...m.managerOptions, secret: secretOf(m.managerOptions.secret) });
      const opts = { expiresIn: q.exp - q.iat, issuer: q.iss, audience: q.aud };
      assert.equal(await atTime(m.nowMs, () => t.createToken(q.userId, q.room, q.documentAccess, opts)), m.token, m.name);
      assert.equal(
        await atTime(m.nowMs, () => t.createToken({ userId: q.userId, room: q.room, documentAccess: q.documentAccess }, opts)),
        m.token,
      );
    }
  });

  test("manager defaults and per-call overrides", async () => {
    const tm = createTokenManager({ secret: "k", expiresIn: 10, issuer: "i", audience: "a" });
    const t = await atTime(1700000000999, () => tm.generateToken("u", "r"));
    const r = await atTime(1700000005000, () => tm.verifyToken(t));
    assert.equal(r.valid, true);
    assert.deepEqual(r.payload, { userId: "u", room: "r", documentAccess: [], exp: 1700000010, iat: 1700000000, iss: "i", aud: "a" });
    const t2 = await atTime(1700000000000, () => tm.generateToken("u", "r", [], { expiresIn: 60, issuer: "x", audience: "y" }));
    const r2 = await atTime(1700000000000, () => tm.verifyToken(t2));
    assert.equal(r2.error, 'unexpected "iss" claim value');
    assert.equal(r2.code, "iss_invalid");
    const other = createTokenManager({ secret: "k", issuer: "x", audience: "y" });
    const r3 = await atTime(1700000059000, () => other.verifyToken(t2));
    assert.equal(r3.payload.exp, 1700000060);
    await assert.rejects(createTokenManager({ secret: "" }).generateToken("u", "r"), {
      message: "Zero-length key is not supported",
      code: "key_empty",
    });
    await assert.rejects(tm.generateToken("u", "r", [], { expiresIn: "1h" }), TypeError);
    assert.throws(() => createTokenManager({ secret: 5 }), TypeError);
    assert.ok(tm instanceof TokenManager);
  });

  test("every verify vector through wasm (Bun column for runtime-dependent cases)", async () => {
    assert.ok(V.verify.length >= 55);
    assert.deepEqual(await verifyFailures(), []);
  });

  test("node-runtime-diff cases: we give the Bun result on Node too", async () => {
    for (const d of DIFF.diffs) {
      const c = V.verify.find((x) => x.name === d.name);
      assert.ok(c, d.name);
      const tm = createTokenManager({ secret: secretOf(c.secret) });
      const r = await atTime(c.nowSeconds * 1000, () => tm.verifyToken(c.token));
      assert.equal(r.valid, d.bun.valid);
      assert.equal(r.error, d.bun.error);
      assert.notDeepEqual({ valid: r.valid, error: r.error }, { valid: d.node.valid, error: d.node.error });
    }
  });

  test("verifyToken never rejects, for any value", async () => {
    const tm = createTokenManager({ secret: "k" });
    const weird = [undefined, null, 0, 1n, {}, [], Symbol("x"), () => 1, "", ".", "..", "a.b.c.d", "\u0000", "é.é.é", new Uint8Array([0xff, 0x2e, 0x2e])];
    for (const w of weird) {
      const r = await tm.verifyToken(w);
      assert.equal(r.valid, false);
      assert.equal(typeof r.error, "string");
    }
    assert.equal((await tm.verifyToken(null)).error, "Compact JWS must be a string or Uint8Array");
    assert.equal((await tm.verifyToken(42)).code, "not_a_string");
    const t = await tm.generateToken("u", "r");
    assert.equal((await tm.verifyToken(new TextEncoder().encode(t))).valid, true);
  });

  test("permission vectors (missing documentAccess denied; compat option restores fail-open)", () => {
    assert.ok(V.permissions.length >= 84);
    assert.deepEqual(permissionFailures(), []);
    const missing = V.permissions.filter((c) => c.documentAccess === null);
    assert.ok(missing.length >= 1);
    for (const c of missing) assert.equal(c.expect.hasDocumentPermission, true); // the reference bug
    assert.equal(hasDocumentPermission({ userId: "u" }, "x", "read"), false);
    assert.equal(hasDocumentPermission({ userId: "u" }, "x", "read", { allowMissingDocumentAccess: true }), true);
    assert.equal(hasDocumentPermission(null, "x", "read"), false);
  });

  test("malformed documentAccess entries match nothing and never throw", () => {
    const payload = {
      documentAccess: [1, null, "x", { pattern: 5, permissions: ["read"] }, { pattern: "a" }, { pattern: "b", permissions: "read" }, { pattern: "c", permissions: [1, "read"] }],
    };
    assert.equal(hasDocumentPermission(payload, "a", "read"), false);
    assert.equal(hasDocumentPermission(payload, "b", "read"), false);
    assert.equal(hasDocumentPermission(payload, "c", "read"), true);
    assert.deepEqual(getDocumentPermissions(payload, "c"), ["read"]);
    assert.equal(hasDocumentPermission({ documentAccess: "*" }, "x", "read", { allowMissingDocumentAccess: true }), false);
    assert.equal(hasDocumentPermission({ documentAccess: [{ pattern: "*", permissions: ["read"], n: 1n }] }, "x", "read"), false);
    const cyclic = [{ pattern: "*", permissions: ["read"] }];
    cyclic.push(cyclic);
    assert.equal(hasDocumentPermission({ documentAccess: cyclic }, "x", "read"), false);
    assert.deepEqual(getDocumentPermissions({ documentAccess: cyclic }, "x"), []);
  });

  test("DocumentAccessBuilder vectors", () => {
    assert.ok(V.documentAccessBuilder.length >= 14);
    assert.deepEqual(builderFailures(), []);
  });

  test("isTokenExpired vectors; exp == now and exp == 0 are documented deviations", async () => {
    const [failures, deviations] = await expiryResults();
    assert.deepEqual(failures, []);
    assert.ok(deviations >= 1);
    // Agreement with verifyToken on the same clock.
    const tm = createTokenManager({ secret: "k", expiresIn: 0 });
    const t = await atTime(1700000000000, () => tm.generateToken("u", "r"));
    const r = await atTime(1700000000000, () => tm.verifyToken(t));
    assert.equal(r.error, '"exp" claim timestamp check failed');
    const { payload } = await atTime(1699999999000, () => tm.verifyToken(t));
    assert.equal(await atTime(1699999999000, () => isTokenExpired(payload)), false);
    assert.equal(await atTime(1700000000000, () => isTokenExpired(payload)), true);
    assert.equal(isTokenExpired({ exp: "soon" }), true);
    assert.equal(isTokenExpired({}), false);
  });

  test("extractContextFromToken vectors", () => {
    for (const c of V.extractContextFromToken) assert.deepEqual(extractContextFromToken(c.payload), c.expect);
  });

  // ---- jose interop ---------------------------------------------------------------------------
  const secrets = {
    default: V.secrets.default,
    unicode: V.secrets.unicode,
    bytes: hexBytes(V.secrets.bytes.$hex),
    "32 random bytes": crypto.getRandomValues(new Uint8Array(32)),
    "100-byte key (longer than a block)": crypto.getRandomValues(new Uint8Array(100)),
    "1-byte key": new Uint8Array([7]),
  };
  const keyBytes = (s) => (typeof s === "string" ? new TextEncoder().encode(s) : s);

  for (const [name, secret] of Object.entries(secrets)) {
    test(`jose interop, ${name} secret: ours verify in jose and jose's verify here`, async () => {
      const tm = createTokenManager({ secret });
      const access = [{ pattern: "日本/*", permissions: ["read", "comment"] }, { pattern: "!日本/secret", permissions: [] }];
      const ours = await tm.generateToken("üser-日本", "röøm", access);
      const { payload, protectedHeader } = await jose.jwtVerify(ours, keyBytes(secret), { issuer: "teleportal", audience: "teleportal", algorithms: ["HS256"] });
      assert.deepEqual(protectedHeader, { alg: "HS256" });
      assert.equal(payload.userId, "üser-日本");
      assert.deepEqual(payload.documentAccess, access);

      const now = Math.floor(Date.now() / 1000);
      const claims = { userId: "üser-日本", room: "röøm", documentAccess: access, exp: now + 3600, iat: now, iss: "teleportal", aud: "teleportal" };
      const theirs = await new jose.SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(keyBytes(secret));
      const r = await tm.verifyToken(theirs);
      assert.equal(r.valid, true);
      assert.deepEqual(r.payload, claims);
      // Same clock, same claims: jose and we mint the very same bytes.
      assert.equal(theirs, await atTime(now * 1000, () => tm.generateToken("üser-日本", "röøm", access)));

      // Extra claims, typ/kid headers and an audience array are fine both ways.
      const extra = await new jose.SignJWT({ ...claims, aud: ["x", "teleportal"], custom: { a: [1, 2] } })
        .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: "k1" })
        .sign(keyBytes(secret));
      const re = await tm.verifyToken(extra);
      assert.equal(re.valid, true);
      assert.deepEqual(re.payload.custom, { a: [1, 2] });

      // Wrong key: both sides refuse.
      const wrong = createTokenManager({ secret: "not-the-key" });
      assert.equal((await wrong.verifyToken(theirs)).error, "signature verification failed");
      await assert.rejects(jose.jwtVerify(ours, new TextEncoder().encode("not-the-key")), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
      // HS384/HS512 from jose are refused with jose's message.
      for (const alg of ["HS384", "HS512"]) {
        const t = await new jose.SignJWT(claims).setProtectedHeader({ alg }).sign(keyBytes(secret));
        assert.equal((await tm.verifyToken(t)).error, '"alg" (Algorithm) Header Parameter value not allowed');
      }
      // An expired jose token: same message as jose gives.
      const old = await new jose.SignJWT({ ...claims, exp: now - 1 }).setProtectedHeader({ alg: "HS256" }).sign(keyBytes(secret));
      const ro = await tm.verifyToken(old);
      const jo = await jose.jwtVerify(old, keyBytes(secret), { issuer: "teleportal", audience: "teleportal" }).catch((e) => e);
      assert.equal(ro.error, jo.message);
    });
  }

  test("errors match jose's jwtVerify message on random corruptions", async () => {
    // Node 20's jose decodes base64url leniently ('+', '/', '=', whitespace via atob): those
    // inputs are the documented runtime differences, compared under Bun instead (below).
    const { compared, mismatches } = await corruptionMismatches(jose, (t) => /[+/=\s]/.test(t));
    assert.deepEqual(mismatches, []);
    assert.ok(compared > 100);
  });

  test("claims JSON read like JSON.parse: hand-picked and mutated payload texts agree with jose", async () => {
    const { createHmac } = await import("node:crypto");
    const secret = "claims-secret";
    const tm = createTokenManager({ secret });
    const b64u = (b) => Buffer.from(b).toString("base64url");
    const sign = (payloadBytes) => {
      const input = `${b64u('{"alg":"HS256"}')}.${b64u(payloadBytes)}`;
      return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
    };
    const base = '{"userId":"u","room":"r","documentAccess":[{"pattern":"*","permissions":["read"]}],"exp":2000000000,"iat":1700000000,"iss":"teleportal","aud":"teleportal"}';
    const texts = [
      base,
      ' \t\n\r' + base + '\n',
      '\ufeff' + base,
      '\ufeff\ufeff' + base,
      base.replace('"iss"', '"i\\u0073s"'),
      base.replace('"aud":"teleportal"', '"aud":["x","tele\\u0070ortal"]'),
      base.replace('"aud":"teleportal"', '"aud":[["teleportal"]]'),
      base.replace('"userId":"u"', '"userId":"\\ud800"'),
      base.replace('"userId":"u"', '"\\ud800":"\\udc00\\ud83d\\ude00"'),
      base.replace('2000000000', '2e9'),
      base.replace('2000000000', '1e400'),
      base.replace('2000000000', '-1e400'),
      base.replace('2000000000', '20000000000000000000000'),
      base.replace('2000000000', '1699999999.9999999999'),
      base.replace('2000000000', '01'),
      base.replace('2000000000', '-'),
      base.replace('2000000000', '1.'),
      base.replace('2000000000', '.5'),
      base.replace('2000000000', '+1'),
      base.replace('2000000000', '1e+'),
      base.replace('2000000000', 'NaN'),
      base.replace('2000000000', 'Infinity'),
      base.replace('"r"', '"a\\x"'),
      base.replace('"r"', '"a\u0001"'),
      base.replace('"r"', "'r'"),
      base.replace("}", ",}"),
      base + "x",
      base + "{}",
      '{"iss":"teleportal","aud":"teleportal","iss":"other"}',
      '{"iss":"other","aud":"teleportal","iss":"teleportal"}',
      '{"iss":"teleportal","aud":"teleportal","exp":1,"exp":3000000000}',
      '{"iss":"teleportal","aud":"teleportal","nested":{"exp":"x","iss":1}}',
      '{"iss":"teleportal","aud":"teleportal","a":[1,{"b":[true,false,null]}]}',
      '{"iss":"teleportal","aud":"teleportal","a":tru}',
      '{"iss":"teleportal","aud":"teleportal","a":nul}',
      '[' + base + ']',
      '{}',
      '',
    ];
    let seed = 11;
    const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    const pieces = ['"', "\\", "{", "}", "[", "]", ",", ":", "0", "-", "e", ".", " ", "\u00e9", "\\u", "n", "1"];
    for (let i = 0; i < 400; i++) {
      const chars = [...base];
      for (let k = 0; k <= i % 3; k++) chars.splice(rnd(chars.length), rnd(2), pieces[rnd(pieces.length)]);
      texts.push(chars.join(""));
    }
    const bytesCases = texts.map((t) => new TextEncoder().encode(t));
    // Invalid UTF-8 inside a string (TextDecoder replaces it) and a raw BOM byte sequence.
    bytesCases.push(new Uint8Array([...new TextEncoder().encode('{"iss":"teleportal","aud":"teleportal","x":"'), 0xff, 0xc3, 0x22, 0x7d]));
    bytesCases.push(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(base)]));
    const key = new TextEncoder().encode(secret);
    let valid = 0;
    await atTime(1800000000000, async () => {
      for (const bytes of bytesCases) {
        const token = sign(bytes);
        const ours = await tm.verifyToken(token);
        const theirs = await jose.jwtVerify(token, key, { issuer: "teleportal", audience: "teleportal", algorithms: ["HS256"] }).then((r) => r.payload, (e) => e.message);
        const text = new TextDecoder().decode(bytes);
        if (typeof theirs === "string") {
          assert.equal(ours.error, theirs, text);
        } else {
          valid++;
          assert.equal(ours.valid, true, text);
          assert.deepEqual(ours.payload, theirs, text);
        }
      }
    });
    assert.ok(valid >= 10);
  });

  test("the same vectors pass under Bun (child process)", () => {
    const bun = fileURLToPath(new URL("../node_modules/.bin/bun", import.meta.url));
    const here = fileURLToPath(import.meta.url);
    const run = spawnSync(bun, [here], {
      env: { ...process.env, TP_TOKEN_BUN: "1" },
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      encoding: "utf8",
      timeout: 120000,
    });
    assert.equal(run.status, 0, run.stderr);
    const s = JSON.parse(run.stdout.trim().split("\n").pop());
    assert.match(s.runtime, /^bun 1\./);
    for (const k of ["minted", "verify", "permissions", "builder", "expiry"]) {
      assert.ok(s[k].total > 0, k);
      assert.deepEqual(s[k].failures, [], k);
    }
    assert.equal(s.verify.total, V.verify.length);
    assert.ok(s.corruptions.compared >= 600);
    assert.deepEqual(s.corruptions.mismatches, []);
    assert.ok(s.expiry.deviations >= 1);
  });

  test("the token vectors pass in workerd (miniflare, bundled like wrangler)", async () => {
    const { Miniflare } = await import("miniflare");
    const { mkdir, writeFile } = await import("node:fs/promises");
    const { bundleWorker, workerModules } = await import("../hosts/workerd-host.mjs");
    const root = fileURLToPath(new URL("../../", import.meta.url));
    const dir = `${root}build/token-workerd`;
    await mkdir(dir, { recursive: true });
    // The worker replays minted + verify vectors with a fixed Date.now and reports failures.
    await writeFile(
      `${dir}/entry.js`,
      `import { createTokenManager, hasDocumentPermission } from "teleportal/token";
import V from ${JSON.stringify(`${root}tests/vectors/tokens.json`)};
const hex = (h) => new Uint8Array(h.match(/../g).map((x) => parseInt(x, 16)));
const sec = (s) => (typeof s === "string" ? s : hex(s.$hex));
export default {
  async fetch() {
    const realNow = Date.now;
    const failures = [];
    try {
      for (const m of V.minted) {
        const p = JSON.parse(m.payloadJson);
        const tm = createTokenManager({ ...m.managerOptions, secret: sec(m.managerOptions.secret) });
        Date.now = () => m.nowMs;
        const t = await tm.generateToken(p.userId, p.room, p.documentAccess, { expiresIn: p.exp - p.iat, issuer: p.iss, audience: p.aud });
        if (t !== m.token) failures.push(m.name);
      }
      for (const c of V.verify) {
        const tm = createTokenManager({ secret: sec(c.secret), issuer: c.options.issuer, audience: c.options.audience });
        Date.now = () => c.nowSeconds * 1000;
        const r = await tm.verifyToken(c.token);
        const ok = r.valid === c.expect.valid && (c.expect.valid ? JSON.stringify(r.payload) === JSON.stringify(c.expect.payload) : r.error === c.expect.error);
        if (!ok) failures.push(c.name);
      }
      for (const c of V.permissions) {
        if (c.documentAccess === null) continue;
        if (hasDocumentPermission({ documentAccess: c.documentAccess }, c.documentName, c.permission) !== c.expect.hasDocumentPermission) failures.push(c.documentName);
      }
    } finally {
      Date.now = realNow;
    }
    return Response.json({ minted: V.minted.length, verify: V.verify.length, failures });
  },
};
`,
    );
    const script = await bundleWorker(`${dir}/entry.js`, dir, { nodePaths: [`${root}tests/node_modules`] });
    const mf = new Miniflare(workerModules(script));
    try {
      const res = await mf.dispatchFetch("http://localhost/");
      const body = await res.json();
      assert.deepEqual(body.failures, []);
      assert.equal(body.verify, V.verify.length);
      assert.ok(body.minted >= 8);
    } finally {
      await mf.dispose();
    }
  });
}
