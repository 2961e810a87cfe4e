import { DurableObject } from 'cloudflare:workers';
import { drizzle } from 'drizzle-orm/durable-sqlite';
import { migrate } from 'drizzle-orm/durable-sqlite/migrator';
import migrations from '../drizzle/migrations';

export class NotesRoom extends DurableObject {
  db = drizzle(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      await migrate(this.db, migrations);
    });
  }
}

export default {
  async fetch(request: Request, env: Env) {
    const stub = env.NOTES_ROOM.get(env.NOTES_ROOM.idFromName('main'));
    return stub.fetch(request);
  },
};
