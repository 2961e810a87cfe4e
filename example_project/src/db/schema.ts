import { sql } from 'drizzle-orm';
import { sqliteTable, integer, text, index, check } from 'drizzle-orm/sqlite-core';

export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  createdAt: integer('created_at', { mode: 'timestamp' })
    .notNull()
    .default(sql`(unixepoch())`),
  displayName: text('display_name'),
});

export const notes = sqliteTable(
  'notes',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    body: text('body'),
    createdAt: integer('created_at', { mode: 'timestamp' })
      .notNull()
      .default(sql`(unixepoch())`),
    pinned: integer('pinned', { mode: 'boolean' }).notNull().default(false),
  },
  (t) => [
    index('notes_user_id_idx').on(t.userId),
    // SQLite cannot add a CHECK with ALTER TABLE, so drizzle-kit recreates `notes`.
    check('notes_pinned_is_bool', sql`${t.pinned} IN (0, 1)`),
  ],
);
