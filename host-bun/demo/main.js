// The demo page: CodeMirror 6 bound to a Y.Text through y-codemirror.next, synced by
// teleportal/provider over one WebSocket; other users' cursors and names come from awareness.
import * as Y from "yjs";
import { EditorState } from "@codemirror/state";
import { EditorView, keymap, lineNumbers, drawSelection } from "@codemirror/view";
import { defaultKeymap } from "@codemirror/commands";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import { TeleportalProvider } from "teleportal/provider";

const DOCUMENTS = ["welcome", "notes", "scratch"];
const NAMES = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken"];
const COLORS = ["#d1495b", "#00798c", "#edae49", "#30638e", "#66a182", "#8d6a9f", "#e07a5f", "#3d405b"];
const STATUS_TEXT = { connecting: "connecting…", connected: "connected", disconnected: "offline, retrying", closed: "closed" };

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const pick = (list) => list[Math.floor(Math.random() * list.length)];
const colorOf = (name) => COLORS[[...name].reduce((n, c) => n + c.charCodeAt(0), 0) % COLORS.length];
const me = { name: params.get("name") || localStorage.getItem("teleportal-demo-name") || pick(NAMES) };
me.color = colorOf(me.name);

let userId; // given by the server with the first token; refreshes ask for the same user
async function getToken() {
  const res = await fetch(`/demo/token${userId ? `?user=${encodeURIComponent(userId)}` : ""}`, { cache: "no-store" });
  if (!res.ok) throw new Error(`the token endpoint answered ${res.status}`);
  const body = await res.json();
  userId = body.userId;
  return body.token;
}

const provider = new TeleportalProvider({ url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`, getToken });
provider.on("status", (status) => {
  $("status").textContent = STATUS_TEXT[status];
  $("status").dataset.status = status;
  if (status === "connected") $("error").textContent = "";
});
provider.on("error", (err) => ($("error").textContent = err.message));

/** @type {{ handle: import("teleportal/provider").TeleportalDocument, view: EditorView } | null} */
let current = null;

function renderUsers() {
  const list = $("users");
  list.replaceChildren();
  if (!current) return;
  const { awareness } = current.handle;
  for (const [id, state] of awareness.getStates()) {
    if (!state.user) continue;
    const li = document.createElement("li");
    const dot = document.createElement("span");
    dot.className = "dot";
    dot.style.background = state.user.color;
    li.append(dot, `${state.user.name}${id === awareness.clientID ? " (you)" : ""}`);
    list.append(li);
  }
}

function renderSync() {
  $("sync").textContent = current?.handle.isSynced ? `"${current.handle.name}" is in sync` : "syncing…";
}

function openDocument(name) {
  if (current?.handle.name === name) return;
  if (current) {
    current.view.destroy();
    provider.close(current.handle.name);
  }
  const handle = provider.open(name);
  handle.awareness.setLocalStateField("user", { name: me.name, color: me.color, colorLight: `${me.color}33` });
  const text = handle.doc.getText("text");
  const undoManager = new Y.UndoManager(text);
  const view = new EditorView({
    parent: $("editor"),
    state: EditorState.create({
      doc: text.toString(),
      extensions: [
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
        lineNumbers(),
        drawSelection(),
        EditorView.lineWrapping,
        yCollab(text, handle.awareness, { undoManager }),
      ],
    }),
  });
  current = { handle, view };
  handle.awareness.on("change", renderUsers);
  handle.on("synced", renderSync);
  renderUsers();
  renderSync();
  if (!DOCUMENTS.includes(name)) DOCUMENTS.push(name);
  $("doc").replaceChildren(...DOCUMENTS.map((d) => new Option(d, d, false, d === name)));
  if (location.hash.slice(1) !== name) history.replaceState(null, "", `${location.pathname}${location.search}#${name}`);
}

$("name").value = me.name;
$("name").addEventListener("input", () => {
  me.name = $("name").value.trim() || "anonymous";
  localStorage.setItem("teleportal-demo-name", me.name);
  current?.handle.awareness.setLocalStateField("user", { name: me.name, color: me.color, colorLight: `${me.color}33` });
});
$("doc").addEventListener("change", () => openDocument($("doc").value));
$("new-doc-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("new-doc").value.trim();
  if (name) openDocument(name);
  $("new-doc").value = "";
});
window.addEventListener("hashchange", () => openDocument(decodeURIComponent(location.hash.slice(1)) || DOCUMENTS[0]));

window.addEventListener("pagehide", () => provider.destroy()); // say goodbye: peers drop our cursor

openDocument(decodeURIComponent(location.hash.slice(1)) || DOCUMENTS[0]);
// For the browser tests and the curious: the provider and the open document.
window.teleportalDemo = {
  provider,
  get document() {
    return current?.handle;
  },
  /** What the editor shows. */
  editorText: () => current?.view.state.doc.toString(),
};
