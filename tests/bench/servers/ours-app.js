// Shared by ours-bun.js and ours-node.mjs: the documented setup with no permission checks
// (Server({}) -> permissions "none") and a context taken from ?room= in onUpgrade.
import { getWebsocketHandlers } from "teleportal/websocket-server";
import { Server } from "teleportal/server";

export function makeHandlers() {
  const server = new Server({});
  const handlers = getWebsocketHandlers({
    onUpgrade: async (request) => ({ context: { room: new URL(request.url).searchParams.get("room") ?? "default" } }),
    onConnect: ({ transport, context, id }) => server.createClient(transport, context, id),
    onDisconnect: (id) => server.disconnectClient(id),
  });
  return { server, handlers };
}
