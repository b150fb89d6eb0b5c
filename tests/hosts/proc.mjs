// What a server process holds, read from outside through /proc (Linux): resident memory, open
// file descriptors, and the TCP connections the kernel has on its listening port. Used by
// tests/hosts/faults.test.mjs and scripts/soak for their figures.
import { readFileSync, readdirSync } from "node:fs";

/** Resident set size of `pid` in MiB (VmRSS). */
export function rssMiB(pid) {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return Math.round(kb / 102.4) / 10;
}

/** Open file descriptors of `pid` (sockets, the database, pipes, the runtime's own). */
export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const TCP_STATES = { "01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING" };

/**
 * The server side of every TCP connection on local port `port` (not the listener), as
 * { remotePort, state } (states by name: ESTABLISHED, CLOSE_WAIT, ...).
 */
export function serverSockets(port) {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const rows = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || !f[1].endsWith(`:${hex}`)) continue;
      const state = TCP_STATES[f[3]] ?? f[3];
      if (state === "LISTEN") continue;
      rows.push({ remotePort: parseInt(f[2].split(":")[1], 16), state });
    }
  }
  return rows;
}

/** Server-side connections on `port` that are still open (ESTABLISHED or waiting for the app to close: CLOSE_WAIT). */
export function openServerSockets(port) {
  return serverSockets(port).filter((s) => s.state === "ESTABLISHED" || s.state === "CLOSE_WAIT");
}

/** Whether the process is still alive. */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
