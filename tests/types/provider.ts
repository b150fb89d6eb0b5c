// The provider README's example, type-checked (browser globals from lib "DOM").
import { TeleportalProvider, ProviderError, type ProviderStatus } from "teleportal/provider";

const provider = new TeleportalProvider({
  url: "ws://127.0.0.1:3000/",
  getToken: async () => (await (await fetch("/demo/token")).json()).token as string,
});
const notes = provider.open("notes");
await notes.synced;
notes.doc.getText("text").insert(0, "hello");
notes.awareness.setLocalStateField("user", { name: "Ann", color: "#d1495b" });
provider.on("status", (s: ProviderStatus) => console.log(s));
provider.on("error", (e: ProviderError) => console.warn(e.type, e.message, e.reason));
notes.on("synced", (synced: boolean) => console.log(synced));
notes.on("peer-leave", (peer) => console.log(peer.awarenessId, peer.userId));
const sent: Promise<void> = provider.flush({ timeout: 1000 });
await sent;
provider.close("notes");
provider.destroy();
