import { DurableObject } from "cloudflare:workers";
import { SessionStore } from "./store";

export class Sessions extends DurableObject {
  store = new SessionStore(this.ctx.storage);
}
