-- pytest-dosqlite schema snapshot of drizzle/ (render 1)
-- The schema every Durable Object has after migrate(). Review changes in pull requests;
-- regenerate with `pytest --dosqlite --snapshot-update`.
-- Pinned migrations (tag, sha256 of the .sql file): editing one of them after it was
-- recorded fails the check, because DOs that already applied it never see the edit.
-- pin 0000_create_notes d838d9dcb1899128ce26c74abe4bddce2587c7d7a72d6c6ef1be286d3ca23e27
-- pin 0001_add_archived ada9af9f20f3beb72b631e529e874f0d24ba2eb6e4ab8dd73aafd7aee58ee05d

CREATE TABLE notes (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  title TEXT NOT NULL,
  body TEXT,
  archived INTEGER DEFAULT false NOT NULL
);
