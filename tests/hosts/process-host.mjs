// Starts a fixture server in a child process (real Bun or real Node) and reads its ports.
import { spawn } from "node:child_process";
import { once } from "node:events";

export async function startProcessHost(command, args) {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TELEPORTAL_SECRET: "" },
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const ports = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
    });
    child.on("exit", (code) => reject(new Error(`${command} exited with ${code}: ${stderr}`)));
  });
  return {
    ...ports,
    url: (kind, query) => `ws://${ports[kind]}/?${new URLSearchParams(query)}`,
    stats: async (kind) => (await fetch(`http://${ports[kind]}/stats`)).json(),
    stderr: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      await once(child, "exit");
    },
  };
}
