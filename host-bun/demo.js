// The first-run demo served by scripts/serve: the page at /, its bundle, and a development-only
// endpoint that hands out short-lived read+write tokens for one demo room. It is on only when
// the server generated its secret at start-up or TELEPORTAL_DEMO=1 is set: a production server
// with its own TELEPORTAL_SECRET hands out no tokens (every demo path is a 404 there).
// The bundle is built by scripts/build (host-bun/demo/build.mjs) into build/demo/.
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const USER_ID = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * @param {object} options
 * @param {boolean} options.devSecret the secret was generated at start-up (no TELEPORTAL_SECRET)
 * @param {{ generateToken(userId: string, room: string, access: object[], options?: object): Promise<string> }} options.tokens
 * @param {Record<string, string | undefined>} [options.env] default process.env
 * @param {string} [options.room] default "demo"
 * @param {number} [options.expiresIn] token lifetime in seconds, default 600
 * @returns {((request: Request) => Response | Promise<Response> | undefined) & { enabled: boolean }}
 */
export function demoRoutes({ devSecret, tokens, env = process.env, room = "demo", expiresIn = 600 }) {
  const enabled = Boolean(devSecret) || env.TELEPORTAL_DEMO === "1";
  const files = {
    "/": { path: here("./demo/index.html"), type: "text/html; charset=utf-8" },
    "/demo/app.js": { path: here("../build/demo/app.js"), type: "text/javascript; charset=utf-8" },
  };

  async function token(url) {
    const asked = url.searchParams.get("user");
    if (asked !== null && !USER_ID.test(asked)) {
      return new Response("user must be 1-64 letters, digits, '-' or '_'", { status: 400 });
    }
    // A refresh must name the same user (the server refuses a token for another user in-band).
    const userId = asked ?? `guest-${crypto.randomUUID().slice(0, 8)}`;
    const access = [{ pattern: "*", permissions: ["read", "write"] }];
    const body = { token: await tokens.generateToken(userId, room, access, { expiresIn }), userId, room, expiresIn };
    return Response.json(body, { headers: { "cache-control": "no-store" } });
  }

  const route = (request) => {
    if (!enabled || request.method !== "GET") return undefined;
    const url = new URL(request.url);
    if (url.pathname === "/demo/token") return token(url);
    const file = files[url.pathname];
    if (!file) return undefined;
    const body = Bun.file(file.path);
    return body.exists().then((exists) =>
      exists
        ? new Response(body, { headers: { "content-type": file.type, "cache-control": "no-cache" } })
        : new Response("The demo bundle is missing: run scripts/build", { status: 503 }),
    );
  };
  route.enabled = enabled;
  return route;
}
