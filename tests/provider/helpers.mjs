// Shared pieces of the provider tests: providers with fast test timings, bounded waits, and a
// TCP proxy on loopback that can drop every connection abruptly (RST, no close frame) or refuse
// new ones for a while ("offline").
import net from "node:net";
import WebSocket from "ws";
import { TeleportalProvider } from "teleportal/provider";

export { WebSocket };
export { mintToken } from "../hosts/suite.mjs"; // (claims, { secret, expiresIn })

/**
 * A provider with short delays, so reconnect tests take milliseconds. WebSocket only: these tests
 * time and count WebSocket attempts (the HTTP fallback is tested in tests/hosts/suite.mjs).
 */
export function provider(url, options = {}) {
  return new TeleportalProvider({ url, WebSocket, minDelay: 20, maxDelay: 200, batchMs: 5, transports: ["websocket"], ...options });
}

/** Polls `pred` every 10 ms; rejects after `timeout` ms with `what` in the message. */
export async function until(pred, { timeout = 5000, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The next `event` from an lib0 observable (its arguments as an array); bounded. */
export function next(observable, event, { timeout = 5000, filter = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      observable.off(event, listener);
      reject(new Error(`timed out waiting for "${event}"`));
    }, timeout);
    const listener = (...args) => {
      if (!filter(...args)) return;
      clearTimeout(timer);
      observable.off(event, listener);
      resolve(args);
    };
    observable.on(event, listener);
  });
}

/** Resolves `promise` or rejects after `timeout` ms. */
export function within(promise, timeout, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), timeout))),
  ]).finally(() => clearTimeout(timer));
}

/** Everything a provider's events said, for assertions. */
export function record(p) {
  const log = { status: [], errors: [], tokens: [] };
  p.on("status", (s) => log.status.push(s));
  p.on("error", (e) => log.errors.push(e));
  p.on("token", (t) => log.tokens.push(t));
  return log;
}

/**
 * A TCP proxy 127.0.0.1:<port> -> `target` ("host:port").
 * drop(): resets every open connection; offline(): drop and refuse new connections; online().
 */
export async function startProxy(target) {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const sockets = new Set();
  let accepting = true;
  let accepted = 0;
  const server = net.createServer((client) => {
    if (!accepting) return client.resetAndDestroy();
    accepted++;
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const drop = () => {
    for (const s of sockets) s.resetAndDestroy();
  };
  return {
    address: `127.0.0.1:${server.address().port}`,
    get accepted() {
      return accepted;
    },
    get open() {
      return sockets.size / 2;
    },
    drop,
    offline() {
      accepting = false;
      drop();
    },
    online() {
      accepting = true;
    },
    stop() {
      drop();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}
