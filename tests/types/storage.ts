// A user's own storage of documents and milestones, and the built-in ones, type-checked against
// teleportal/storage (every method may be synchronous or return a Promise).
import { Server } from "teleportal/server";
import { MemoryDocumentStorage, openSqliteStorage, type DocumentStorage, type MilestoneStorage, type StoredMilestone } from "teleportal/storage";

const milestones = new Map<string, StoredMilestone[]>();
const own: DocumentStorage & MilestoneStorage = {
  load: async () => [],
  commit: async () => {},
  compact: () => {},
  delete: (key) => void milestones.delete(key),
  loadMilestones: async (key) => milestones.get(key) ?? [],
  putMilestone: async (key, id, meta, snapshot?: Uint8Array) => {
    if (snapshot === undefined) milestones.set(key, [...(milestones.get(key) ?? []), { id, meta }]);
  },
  deleteMilestone: () => {},
  loadMilestoneSnapshot: async () => undefined,
};
new Server({ storage: own });

const memory = new MemoryDocumentStorage();
memory.putMilestone("room/doc", "id", new Uint8Array());
const snapshot: Uint8Array | undefined = memory.loadMilestoneSnapshot("room/doc", "id");
const file = await openSqliteStorage({ path: ":memory:" });
const listed: StoredMilestone[] = await file.loadMilestones("room/doc");
await file.putMilestone("room/doc", "id", listed[0].meta, snapshot);
