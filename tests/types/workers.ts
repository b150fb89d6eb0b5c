import { TeleportalDurableObject, routeToRoom } from "teleportal/cloudflare";

export class Room extends TeleportalDurableObject {
  handlerOptions() {
    return { onDisconnect: (id: string) => this.server.disconnectClient(id) };
  }
}
export default {
  fetch(request: Request, env: { ROOMS: { idFromName(n: string): unknown; get(id: unknown): { fetch(r: Request): Promise<Response> } } }) {
    return routeToRoom(request, env.ROOMS);
  },
};
