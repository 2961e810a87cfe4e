import { DurableObject } from "cloudflare:workers";

export class Presence extends DurableObject<Env> {}
