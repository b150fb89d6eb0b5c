// Fan-out benchmark fixture: the floor set by the socket layer. A bare Bun.serve relay that speaks
// just enough of the Teleportal wire for the load generator: every update is published verbatim to
// the other sockets of its room (ws.publish, as our Bun host fans out), every non-ack frame gets an
// ack, a sync-step-1 gets an empty sync-step-2 + sync-step-1, a sync-step-2 gets a sync-done.
// No validation, no storage, no tokens. Room: ?room= (default "bench"). Prints {"port": N}.
const HEX = "0123456789abcdef";

// The message id of spec 1.8 (two 32-bit multiplicative hashes), as the ack frame it goes in.
function ackFor(frame) {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < frame.length; i++) {
    h1 = Math.imul(h1 ^ frame[i], 0x01000193);
    h2 = Math.imul(h2 ^ frame[i], 0x100001b3);
  }
  const ack = new Uint8Array(25);
  ack.set([0x59, 0x4a, 0x53, 1, 0, 0, 2, 16]);
  for (let i = 0; i < 8; i++) {
    ack[8 + i] = HEX.charCodeAt((h1 >>> (28 - 4 * i)) & 15);
    ack[16 + i] = HEX.charCodeAt((h2 >>> (28 - 4 * i)) & 15);
  }
  return ack;
}

// A doc frame for `name` (raw name bytes) with sub-type `sub` and `body`.
function docFrame(name, sub, body) {
  return new Uint8Array([0x59, 0x4a, 0x53, 1, name.length, ...name, 0, 0, sub, ...body]);
}
const EMPTY_STEP2 = [2, 4, 1, 0, 0, 0]; // version 2, vb(empty envelope)
const EMPTY_STEP1 = [1, 0]; // vb(state vector of an empty doc)

const bun = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req, srv) {
    const room = new URL(req.url).searchParams.get("room") ?? "bench";
    if (srv.upgrade(req, { data: { room } })) return undefined;
    return new Response("upgrade expected", { status: 426 });
  },
  websocket: {
    open(ws) {
      ws.subscribe(ws.data.room);
    },
    message(ws, m) {
      if (typeof m === "string" || m.length < 8 || m[4] > 127) return;
      const nameEnd = 5 + m[4];
      const type = m[nameEnd + 1];
      if (type === 2) return; // the client's ack
      if (type === 0) {
        const sub = m[nameEnd + 2];
        if (sub === 2) ws.publish(ws.data.room, m);
        const name = m.subarray(5, nameEnd);
        if (sub === 0) ws.send(docFrame(name, 1, EMPTY_STEP2)), ws.send(docFrame(name, 0, EMPTY_STEP1));
        if (sub === 1) ws.send(docFrame(name, 3, []));
      }
      ws.send(ackFor(m));
    },
  },
});
console.log(JSON.stringify({ port: bun.port }));
