// teleportal/websocket-server: getWebsocketHandlers for Bun.serve and Node http + ws.
// (Cloudflare Workers: see teleportal/cloudflare, which uses the same Hub.)
import { Hub, Transport, CloseCode } from "./connections.js";
import { createBunHandlers } from "../dist/hosts/bun.js";

export { Transport, CloseCode };

/**
 * @param {import("../types/websocket-server").WebsocketHandlersOptions} options
 */
export function getWebsocketHandlers(options) {
  const hub = new Hub(options);
  const bun = createBunHandlers(hub);
  let node; // created on first Node upgrade (loads `ws` lazily so Bun never needs it)

  return {
    hub,
    websocket: bun.websocket,
    /**
     * Bun:  upgrade(request, server)       -> Promise<Response | undefined>
     * Node: upgrade(request, socket, head) -> Promise<void>
     */
    async upgrade(request, serverOrSocket, head) {
      const isBun = serverOrSocket && typeof serverOrSocket.upgrade === "function";
      const isNode = !isBun && serverOrSocket && typeof serverOrSocket.write === "function";
      if (!isBun && !isNode) {
        throw new TypeError("upgrade(request, server) for Bun or upgrade(request, socket, head) for Node");
      }
      // Never rejects: the docs call upgrade() without awaiting it, and an unhandled rejection
      // would take the process down.
      try {
        if (isBun) {
          const done = bun.upgrade(request, serverOrSocket); // at once with the built-in check
          return done instanceof Promise ? await done : done;
        }
        node ??= loadNode(hub, options);
        return await (await node).upgrade(request, serverOrSocket, head);
      } catch (err) {
        hub.log("error", "websocket_upgrade_failed", { error: err instanceof Error ? err.message : String(err) });
        if (isBun) return new Response("Internal Server Error", { status: 500 });
        serverOrSocket.destroy?.();
      }
    },
    /** Closes every connection; onDisconnect runs for each. */
    shutdown: (code, reason) => hub.shutdown(code, reason),
    /** Upgrade outcomes and socket closes by code, as samples for Server#metrics(extra). */
    metricSamples: () => hub.metricSamples(),
  };
}

async function loadNode(hub, options) {
  const [{ createNodeHandlers }, ws] = await Promise.all([import("../dist/hosts/node.js"), import("ws")]);
  return createNodeHandlers(hub, ws.WebSocketServer ?? ws.default.WebSocketServer, options);
}

/**
 * The reference's convenience wrapper: token from ?token= (or Authorization: Bearer), verified by the
 * token manager; the context is { ...hookContext, ...claims } and each connection joins `server`.
 */
export function tokenAuthenticatedWebsocketHandler({ server, tokenManager, hooks = {} }) {
  const tokenHub = new Hub({ onConnect() {}, tokenManager });
  return getWebsocketHandlers({
    ...hooks,
    async onUpgrade(request) {
      const extra = hooks.onUpgrade ? ((await hooks.onUpgrade(request)) ?? {}) : {};
      const { context: claims } = await Promise.resolve(tokenHub.authorize(request)).then((r) => {
        if (r.response) throw r.response;
        return r;
      });
      return { context: { ...(extra.context ?? {}), ...claims }, headers: extra.headers };
    },
    async onConnect(ctx) {
      await server.createClient(ctx.transport, ctx.context, ctx.id);
      await hooks.onConnect?.(ctx);
    },
    async onDisconnect(id) {
      try {
        await hooks.onDisconnect?.(id);
      } finally {
        await server.disconnectClient(id);
      }
    },
  });
}
