// Prometheus text format (0.0.4) for the Server's and the connection hub's counters. The counters
// the core decides are kept in C++ (tp/server/metrics.hpp) and read once per scrape; what only a
// host can measure (storage latency, upgrade outcomes, socket closes) is counted here, in JS.
// Samples are [name with labels, without the "teleportal_" prefix, value].

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
const PREFIX = "teleportal_";

// family -> [type, help]. Names the reference uses (teleportal-spec-extensions 4.6) keep their meaning.
const FAMILIES = {
  clients_active: ["gauge", "Open client connections"],
  sessions_active: ["gauge", "Documents loaded in memory"],
  clients_connected_total: ["counter", "Clients the server accepted"],
  clients_disconnected_total: ["counter", "Clients that left the server"],
  documents_opened_total: ["counter", "Documents loaded from storage"],
  documents_unloaded_total: ["counter", "Documents unloaded from memory after their last client left"],
  document_load_failures_total: ["counter", "Document loads that failed"],
  messages_total: ["counter", "Frames received from clients, by message type"],
  messages_total_all: ["counter", "Frames received from clients (all types)"],
  messages_sent_total: ["counter", "Frames sent to clients (once per recipient), by message type"],
  bytes_received_total: ["counter", "Bytes of frames received from clients"],
  bytes_sent_total: ["counter", "Bytes of frames sent to clients (once per recipient)"],
  acks_total: ["counter", "Successful acks sent"],
  nacks_total: ["counter", "Client messages refused (NACK, or a denial for reason permission and document_limit), by reason"],
  rate_limit_exceeded_total: ["counter", "Frames refused by a rate limit"],
  storage_batches_total: ["counter", "Group commits of accepted updates, by result"],
  storage_entries_written_total: ["counter", "Entries appended to storage by committed batches"],
  storage_bytes_written_total: ["counter", "Bytes appended to storage by committed batches"],
  server_closes_total: ["counter", "Connections the server core closed, by close code"],
  errors_total: ["counter", "Error events of the server core"],
  storage_operations_total: ["counter", "Storage operations, by operation and result"],
  storage_operation_duration_seconds: ["histogram", "Duration of storage operations"],
  upgrades_total: ["counter", "WebSocket upgrade requests, by outcome and HTTP status"],
  websocket_closes_total: ["counter", "Closed WebSocket connections, by close code"],
};

/** Histogram buckets (seconds): the reference's. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5];

/** A Prometheus histogram per label set (`labels` is the label text, e.g. `operation="commit"`). */
export class Histogram {
  #series = new Map();
  constructor(name, buckets = DURATION_BUCKETS) {
    this.name = name;
    this.buckets = buckets;
  }
  /** Makes the series for `labels` exist (at zero) before anything was observed. */
  series(labels) {
    let s = this.#series.get(labels);
    if (!s) this.#series.set(labels, (s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 }));
    return s;
  }
  observe(labels, value) {
    const s = this.series(labels);
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
    s.sum += value;
    s.count++;
  }
  samples() {
    const out = [];
    for (const [labels, s] of this.#series) {
      const sep = labels ? "," : "";
      this.buckets.forEach((le, i) => out.push([`${this.name}_bucket{${labels}${sep}le="${le}"}`, s.counts[i]]));
      out.push([`${this.name}_bucket{${labels}${sep}le="+Inf"}`, s.count]);
      out.push([`${this.name}_sum${labels ? `{${labels}}` : ""}`, s.sum]);
      out.push([`${this.name}_count${labels ? `{${labels}}` : ""}`, s.count]);
    }
    return out;
  }
}

/** Counters by label text, e.g. counts.add(`code="1000"`). */
export class LabeledCounter {
  #values = new Map();
  /** `initial`: label sets that exist (at zero) from the start. */
  constructor(name, initial = []) {
    this.name = name;
    for (const labels of initial) this.#values.set(labels, 0);
  }
  add(labels, n = 1) {
    this.#values.set(labels, (this.#values.get(labels) ?? 0) + n);
  }
  get(labels) {
    return this.#values.get(labels) ?? 0;
  }
  samples() {
    return [...this.#values].map(([labels, v]) => [`${this.name}{${labels}}`, v]);
  }
}

function familyOf(name) {
  const base = name.split("{", 1)[0];
  if (FAMILIES[base]) return base;
  const m = /^(.*)_(bucket|sum|count)$/.exec(base);
  return m && FAMILIES[m[1]]?.[0] === "histogram" ? m[1] : base;
}

function value(v) {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Renders samples as Prometheus text: # HELP and # TYPE once per family, families in first-seen order. */
export function renderMetrics(samples) {
  const families = new Map();
  for (const [name, v] of samples) {
    const family = familyOf(name);
    let list = families.get(family);
    if (!list) families.set(family, (list = []));
    list.push(`${PREFIX}${name} ${value(v)}`);
  }
  let text = "";
  for (const [family, lines] of families) {
    const [type, help] = FAMILIES[family] ?? ["untyped", family];
    text += `# HELP ${PREFIX}${family} ${help}\n# TYPE ${PREFIX}${family} ${type}\n${lines.join("\n")}\n`;
  }
  return text;
}
