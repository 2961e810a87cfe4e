import { DurableObject } from 'cloudflare:workers';
import { drizzle } from 'drizzle-orm/durable-sqlite';
import * as schema from './schema';
// The bundle is imported (so wrangler bundles it), but nothing applies it: `drizzle-kit migrate`
// refuses Durable Objects, and the constructor never calls migrate().
import migrations from '../drizzle/migrations';

export class NotesRoom extends DurableObject {
  db = drizzle(this.ctx.storage, { schema });
  bundle = migrations;

  // called over RPC: env.NOTES_ROOM.get(id).listNotes()
  async listNotes() {
    return this.db.select().from(schema.notes).limit(10);
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const stub = env.NOTES_ROOM.get(env.NOTES_ROOM.idFromName('main'));
    return Response.json(await stub.listNotes());
  },
};

interface Env {
  NOTES_ROOM: DurableObjectNamespace<NotesRoom>;
}
