// RPC handlers, milestone options and the provider's RPC and milestone clients, type-checked.
import { Server, type RpcHandlerEntry, type RpcContext } from "teleportal/server";
import { MemoryDocumentStorage } from "teleportal/storage";
import { encodeAny, decodeAny } from "teleportal/protocol";
import { TeleportalProvider, RpcError, type Milestone } from "teleportal/provider";

const echo: RpcHandlerEntry = {
  access: "read",
  handler: async (payload: unknown, ctx: RpcContext) => ({ response: { echoed: payload, by: ctx.userId, doc: ctx.documentId } }),
};
const server = new Server({
  storage: new MemoryDocumentStorage(),
  rpcTimeoutMs: 10_000,
  rpcHandlers: {
    echo,
    count: {
      handler: () => ({
        response: { total: 2 },
        stream: (async function* () {
          yield { i: 0 };
          yield { i: 1 };
        })(),
      }),
      init: (s: Server) => () => void s,
    },
    upload: {
      handler: () => ({ response: { type: "error", statusCode: 409, details: "conflict" } }),
      streamHandler: async (_payload, _ctx, frameId: string, send) => send(new Uint8Array([frameId.length])),
    },
  },
  milestones: {
    triggers: [
      { id: "every-50", type: "update-count", config: { updateCount: 50 }, autoName: "Auto" },
      { type: "time-based", config: { interval: 60_000 }, enabled: false },
    ],
    onMilestoneCreated: (milestoneId: string, documentId: string) => console.log(milestoneId, documentId),
  },
});
const bytes: Uint8Array = encodeAny({ a: 1 });
const back: unknown = decodeAny(bytes);
console.log(back);
await server.close();

const provider = new TeleportalProvider({ url: "ws://127.0.0.1:3000/" });
const notes = provider.open("notes");
const all: Milestone[] = await notes.milestones.list({ includeDeleted: true });
const v1: Milestone = await notes.milestones.create("v1");
const snapshot: Uint8Array = await notes.milestones.getSnapshot(v1.id);
await notes.milestones.updateName(v1.id, "v1-final");
await notes.milestones.delete(v1.id);
await notes.milestones.restore(v1.id);
const answer: unknown = await provider.rpc.request("notes", "count", {}, { onStream: (chunk: unknown) => console.log(chunk), timeout: 5000 });
try {
  await provider.rpc.request("notes", "upload");
} catch (err) {
  if (err instanceof RpcError) console.log(err.statusCode, err.details, err.payload);
}
console.log(all.length, snapshot.length, answer);
provider.destroy();
