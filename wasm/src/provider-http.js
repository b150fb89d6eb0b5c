// The provider's HTTP/SSE transport (extensions spec 4.7): a WebSocket-shaped object (onopen,
// onmessage, onclose, send, close) over GET /sse (server -> client events) and POST /sse (client ->
// server message arrays), so the provider drives it exactly like a WebSocket. The stream is read
// with fetch() and a small SSE parser, the same code in browsers, Bun and Node (Node 20 has no
// EventSource; fetch also lets a dead stream be told apart from a reconnecting one).
import { PING, startsWith } from "./provider-codec.js";

const decoder = new TextDecoder();

/** The stream URL for a provider URL: ws -> http, wss -> https, "/sse" appended to the path. */
export function sseUrl(url) {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  if (u.protocol === "wss:") u.protocol = "https:";
  u.pathname = u.pathname.endsWith("/") ? `${u.pathname}sse` : `${u.pathname}/sse`;
  return u;
}

function fromBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// varUint8Array(frame) concatenated: the POST body (base spec 1.7).
function messageArray(frames) {
  let total = 0;
  for (const f of frames) total += f.length + 5;
  const out = new Uint8Array(total);
  let at = 0;
  for (const f of frames) {
    let n = f.length;
    while (n > 0x7f) {
      out[at++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    out[at++] = n;
    out.set(f, at);
    at += f.length;
  }
  return out.subarray(0, at);
}

export class SseSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 3;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  readyState = SseSocket.CONNECTING;
  binaryType = "arraybuffer";
  clientId = null;
  #url;
  #fetch;
  #abort = new AbortController();
  #queue = [];
  #timer = 0;
  #posting = false;
  #batchMs;
  #token;

  /**
   * @param {string | URL} url the provider's URL with its ?token= (ws: or http:)
   * @param {{fetch?: typeof fetch, batchMs?: number, token?: () => string | undefined}} [options]
   *   token: the token for each POST (a refreshed one once the server accepted it)
   */
  constructor(url, options = {}) {
    this.#url = sseUrl(url);
    this.#token = options.token ?? (() => undefined);
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#batchMs = options.batchMs ?? 20;
    if (typeof this.#fetch !== "function") throw new TypeError("No fetch() for the HTTP transport: pass { fetch }");
    this.#read();
  }

  get url() {
    return this.#url.toString();
  }

  async #read() {
    let response;
    try {
      response = await this.#fetch(this.#url, { headers: { accept: "text/event-stream" }, cache: "no-store", signal: this.#abort.signal });
    } catch (err) {
      return this.#closed(1006, `SSE request failed: ${err?.message ?? err}`);
    }
    if (!response.ok || !response.body) {
      response.body?.cancel().catch(() => {});
      return this.#closed(1006, `SSE request refused: ${response.status}`, response.status);
    }
    const reader = response.body.getReader();
    let text = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        let end;
        while ((end = text.indexOf("\n\n")) >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          this.#event(event);
          if (this.readyState === SseSocket.CLOSED) return;
        }
      }
    } catch {
      // aborted or broken: closed below
    }
    this.#closed(1006, "SSE stream ended");
  }

  #event(block) {
    let type = "message";
    let data = "";
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data = data ? `${data}\n${value}` : value;
    }
    if (type === "client-id") {
      if (this.readyState !== SseSocket.CONNECTING) return;
      this.clientId = data;
      this.readyState = SseSocket.OPEN;
      this.onopen?.({ type: "open" });
      return;
    }
    if (type !== "message" && type !== "ping") return;
    let bytes;
    try {
      bytes = fromBase64(data.trim());
    } catch {
      return; // not base64: dropped, as the reference client does
    }
    this.onmessage?.({ type: "message", data: bytes.buffer });
  }

  /** Queues a frame for the next POST (at most 10 frames each; YJSping is not sent: the server's pings keep the stream alive). */
  send(frame) {
    if (this.readyState !== SseSocket.OPEN || startsWith(frame, PING)) return;
    this.#queue.push(frame instanceof Uint8Array ? frame.slice() : new Uint8Array(frame));
    if (this.#queue.length >= 10) this.#post();
    else if (!this.#timer) this.#timer = setTimeout(() => this.#post(), this.#batchMs);
  }

  // One POST at a time, so the server reads the batches in the order they were sent.
  async #post() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    if (this.#posting || this.#queue.length === 0 || this.readyState !== SseSocket.OPEN) return;
    const batch = this.#queue.splice(0, 10);
    this.#posting = true;
    let status = 0;
    try {
      const url = new URL(this.#url);
      const token = this.#token();
      if (token) url.searchParams.set("token", token);
      const res = await this.#fetch(url, {
        method: "POST",
        headers: { "content-type": "application/octet-stream", "x-powered-by": "teleportal", "x-teleportal-client-id": this.clientId },
        body: messageArray(batch),
        cache: "no-store",
        signal: this.#abort.signal,
      });
      status = res.status;
      await res.arrayBuffer().catch(() => {});
    } catch {
      status = 0;
    }
    this.#posting = false;
    // 504: some frame got no answer (a denied frame never does): the stream says why. Anything else
    // that is not 2xx means the batch was not taken: the transport ends and the provider resyncs.
    if (status !== 504 && (status < 200 || status >= 300)) return this.close(1006, `POST /sse failed: ${status || "network error"}`);
    if (this.#queue.length >= 10) this.#post();
    else if (this.#queue.length > 0 && !this.#timer) this.#timer = setTimeout(() => this.#post(), this.#batchMs);
  }

  close(code = 1000, reason = "") {
    this.#abort.abort();
    this.#closed(code, reason);
  }

  #closed(code, reason, status) {
    if (this.readyState === SseSocket.CLOSED) return;
    const wasOpen = this.readyState === SseSocket.OPEN;
    this.readyState = SseSocket.CLOSED;
    clearTimeout(this.#timer);
    this.#queue = [];
    this.#abort.abort();
    if (!wasOpen) this.onerror?.({ type: "error", status });
    this.onclose?.({ type: "close", code, reason, wasClean: code === 1000, status });
  }
}
