export { ChatRoom } from "./chat-room";
export { Presence } from "./presence";

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const id = env.ROOM.idFromName("lobby");
    return env.ROOM.get(id).fetch(request);
  },
};
