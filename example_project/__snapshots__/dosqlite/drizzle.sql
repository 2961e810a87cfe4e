-- pytest-dosqlite schema snapshot of drizzle/ (render 1)
-- The schema every Durable Object has after migrate(). Review changes in pull requests;
-- regenerate with `pytest --dosqlite --snapshot-update`.
-- Pinned migrations (tag, sha256 of the .sql file): editing one of them after it was
-- recorded fails the check, because DOs that already applied it never see the edit.
-- pin 0000_init 92636cfce6c72c38e99f69edf62738b1ad8401fcdf2443481a7fa035083fa5e8
-- pin 0001_notes 2951a8fb29fd782a96a367bcb119d3193372abfce5e79abdce050433d69a70d5
-- pin 0002_user_display_name 8dfe55319766e4725a77acf0a6394f511539d048b1971005fd77efc05e8b8bcf
-- pin 0003_backfill_display_name 8cde5df59a1e3f33a59a1271158fcfb8c4bc2fded41b7a776948e2490180a242
-- pin 0004_notes_pinned 01bbb2285faaf6c1e1e4277a949a3dd3e9260bae39b69ace0581b205f091f159
-- pin 0005_notes_pinned_check 1a5717580289db083cd1fb641ce8bd737fedb282227af8e4515564e979f89fb0

CREATE TABLE notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  user_id INTEGER NOT NULL,
  title TEXT NOT NULL,
  body TEXT,
  created_at INTEGER DEFAULT (unixepoch()) NOT NULL,
  pinned INTEGER DEFAULT false NOT NULL,
  FOREIGN KEY (user_id) REFERENCES users(id) ON UPDATE NO ACTION ON DELETE CASCADE,
  CONSTRAINT notes_pinned_is_bool CHECK (notes.pinned IN (0, 1))
);

CREATE INDEX notes_user_id_idx ON notes (user_id);

CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  created_at INTEGER DEFAULT (unixepoch()) NOT NULL,
  display_name TEXT
);

CREATE UNIQUE INDEX users_email_unique ON users (email);
