"""Write ``docs/lint/*.md`` and ``docs/integrity.md`` from the registries in the code.

Why a generator: a rule's id, name, severity, summary and fix, and a problem code's severity,
meaning and fix, must read exactly as the code reports them, so they are copied from
:data:`pytest_dosqlite.lint.RULES` and :data:`pytest_dosqlite.bundle.PROBLEM_CODES`, never
retyped. What the registries do not hold (an example, where the rule fires in public projects,
notes) lives here. Every example is linted when the pages are written and its real finding is
pasted under it; a rule whose example does not fire stops the generator.

Usage, from the repository root::

    PYTHONPATH=src python docs/generate.py
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BP = "--> statement-breakpoint\n"

# ------------------------------------------------------------------------- public projects

#: corpus project -> (GitHub repository, commit read, what kind of database it migrates)
PROJECTS: dict[str, tuple[str, str, str]] = {
    "GlennMm__typescript_backend_template": (
        "GlennMm/typescript_backend_template",
        "578d82a4482b2d4ea4cd9484ecc746b132d0b05d",
        "durable-sqlite bundles, run on Bun's SQLite",
    ),
    "Litengat__uno": (
        "Litengat/uno",
        "2ce09f02a656313f29783ab12547ce0f7f89a3c7",
        "a SQLite Durable Object",
    ),
    "fkrein1__crewhelm": (
        "fkrein1/crewhelm",
        "19b7e725288f1ac8e418cbd43179e1ca84e1f594",
        "a SQLite Durable Object with its own migration runner",
    ),
    "jhonsfran1165__unprice": (
        "jhonsfran1165/unprice",
        "e73917ed8a16866503c31bfc10142962ed0ad552",
        "SQLite Durable Objects",
    ),
    "karakeep-app__karakeep": (
        "karakeep-app/karakeep",
        "7ca5ee236b96cd659096b1530c5be3fdcd8e4470",
        "plain SQLite on better-sqlite3",
    ),
    "nicholasgriffintn__bitwobbly.com": (
        "nicholasgriffintn/bitwobbly.com",
        "54aed4dc5af916f26d39cfa8e04b33ef403031ab",
        "D1",
    ),
    "nicholasgriffintn__sprintjam.co.uk": (
        "nicholasgriffintn/sprintjam.co.uk",
        "f927563ea68b8766eadb80842d6f071783697b00",
        "three SQLite Durable Objects and a D1 database",
    ),
    "openstatusHQ__openstatus": (
        "openstatusHQ/openstatus",
        "22df52eb0dbdafbad2c3fa41269f7a3a3cbf044b",
        "libSQL on Turso",
    ),
}


@dataclass(frozen=True)
class Seen:
    """A finding of the rule in a corpus bundle (checked by tests/test_docs.py)."""

    #: corpus project folder
    project: str
    #: bundle folder inside it (``_history/<commit>/...`` for an older commit)
    bundle: str
    file: str
    line: int
    note: str = ""

    def url(self) -> str:
        repo, commit, _ = PROJECTS[self.project]
        path = f"{self.bundle}/{self.file}"
        if path.startswith("_history/"):
            _, commit, path = path.split("/", 2)
        return f"https://github.com/{repo}/blob/{commit}/{path}#L{self.line}"

    def commit(self) -> str:
        if self.bundle.startswith("_history/"):
            return self.bundle.split("/")[1]
        return PROJECTS[self.project][1]


@dataclass(frozen=True)
class Extra:
    """What a rule's page has beyond the registry text."""

    #: migrations of the example bundle; the last one shows the hazard
    example: tuple[str, ...]
    #: how the example is shown when its SQL is too long to print (None: printed as is)
    shown: str | None = None
    why: str = ""
    seen: tuple[Seen, ...] = ()
    #: what to say when no corpus project has it (or in addition to the list)
    wild: str = ""
    fix: str = ""
    related: tuple[str, ...] = field(default_factory=tuple)


NOTES = (
    "CREATE TABLE `notes` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
    "\t`title` text NOT NULL,\n\t`body` text,\n\t`url` text\n);\n"
)
#: drizzle-kit's recreation of NOTES making `url` NOT NULL (copied with coalesce)
RECREATE_NOTES_URL = (
    "CREATE TABLE `__new_notes` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
    "\t`title` text NOT NULL,\n\t`body` text,\n\t`url` text NOT NULL DEFAULT ''\n);\n"
    + BP
    + 'INSERT INTO `__new_notes`("id", "title", "body", "url") SELECT "id", "title", '
    '"body", coalesce("url", \'\') FROM `notes`;'
    + BP
    + "DROP TABLE `notes`;"
    + BP
    + "ALTER TABLE `__new_notes` RENAME TO `notes`;"
)
USERS_POSTS = (
    "CREATE TABLE `users` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
    "\t`name` text NOT NULL,\n\t`bio` text\n);\n"
    + BP
    + "CREATE TABLE `posts` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
    "\t`author_id` integer NOT NULL,\n"
    "\tFOREIGN KEY (`author_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE cascade\n"
    ");\n"
)


def _recreate_users(copy: str) -> str:
    return (
        "PRAGMA foreign_keys=OFF;"
        + BP
        + "CREATE TABLE `__new_users` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
        "\t`name` text NOT NULL,\n\t`bio` text DEFAULT '' NOT NULL\n);\n"
        + BP
        + f'INSERT INTO `__new_users`("id", "name", "bio") SELECT "id", "name", {copy} '
        "FROM `users`;"
        + BP
        + "DROP TABLE `users`;"
        + BP
        + "ALTER TABLE `__new_users` RENAME TO `users`;"
        + BP
        + "PRAGMA foreign_keys=ON;"
    )


def _recreate_notes() -> str:
    return (
        "PRAGMA foreign_keys=OFF;"
        + BP
        + "CREATE TABLE `__new_notes` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
        "\t`title` text NOT NULL,\n\t`body` text DEFAULT '' NOT NULL,\n\t`url` text\n);\n"
        + BP
        + 'INSERT INTO `__new_notes`("id", "title", "body", "url") SELECT "id", "title", '
        'coalesce("body", \'\'), "url" FROM `notes`;'
        + BP
        + "DROP TABLE `notes`;"
        + BP
        + "ALTER TABLE `__new_notes` RENAME TO `notes`;"
        + BP
        + "PRAGMA foreign_keys=ON;"
    )


_FK_CONSTRUCTOR = """```ts
export class NotesRoom extends DurableObject {
  db = drizzle(this.ctx.storage);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      // Before any write of this event: no implicit transaction is open yet, so it applies.
      ctx.storage.sql.exec('PRAGMA foreign_keys=OFF');
      await migrate(this.db, migrations);
      // migrate() wrote inside the event's implicit transaction; ON would be a silent no-op
      // until that transaction commits, which happens at the first await of a timer or I/O.
      await new Promise((resolve) => setTimeout(resolve, 0));
      ctx.storage.sql.exec('PRAGMA foreign_keys=ON');
      const broken = ctx.storage.sql.exec('PRAGMA foreign_key_check').toArray();
      if (broken.length) throw new Error(`foreign key violations: ${JSON.stringify(broken)}`);
    });
  }
}
```

Why each line: on a Durable Object the first write of an event opens an implicit transaction
that commits at the next event-loop turn, and `transactionSync` (which `migrate()` uses) is a
savepoint inside it. SQLite ignores `PRAGMA foreign_keys` inside a transaction, so it must run
before `migrate()` writes anything, and the `ON` must wait for a timer `await` (an awaited
resolved promise is not enough). Without that `await` foreign keys stay OFF for the rest of the
instance's life (measured on workerd: `OFF; transactionSync(...); ON` in one turn leaves
`PRAGMA foreign_keys` at 0 for the next request). `PRAGMA defer_foreign_keys=ON` is no
alternative: deferring constraints does not stop `ON DELETE` actions.

Run the checks with `--dosqlite-start drizzle-fk-off` (ini `dosqlite_start`) so that
[`data_preserved`](../checks/data_preserved.md) and the fleet checks migrate the same way."""


def _seen(project: str, bundle: str, file: str, line: int, note: str = "") -> Seen:
    return Seen(project, bundle, file, line, note)


CREW = "apps/worker/control-plane-migrations"
CREW_OLD = "_history/af107f581a795e8c6c40c67dc61e5047ff366225/" + CREW
KARAKEEP = "packages/db/drizzle"
OPENSTATUS = "packages/db/drizzle"
GLENN = "drizzle/tenant"
SPRINT_AUTH = "apps/auth-worker/drizzle"
SPRINT_STANDUP_OLD = "_history/b95d7d2642e1ef3c211ee12b63d4f009c8244c86/apps/standup-worker/drizzle"

EXTRAS: dict[str, Extra] = {
    "DO001": Extra(
        example=(USERS_POSTS, _recreate_users("coalesce(\"bio\", '')")),
        why=(
            "drizzle-kit wraps every table recreation in `PRAGMA foreign_keys=OFF` ... "
            "`PRAGMA foreign_keys=ON` because SQLite's documented procedure for changing a table "
            "needs foreign keys off. On a Durable Object the migrator runs every migration "
            "inside `ctx.storage.transactionSync()`, a savepoint inside the event's implicit "
            "transaction, and SQLite ignores `PRAGMA foreign_keys` inside a transaction: the "
            "workerd runtime accepts both PRAGMAs and does nothing. This warning is the reason "
            "DO024 and DO026 are errors."
        ),
        seen=(
            _seen("Litengat__uno", "drizzle", "0003_ambiguous_thena.sql", 1),
            _seen("jhonsfran1165__unprice", "apps/api/drizzle", "0003_rare_talon.sql", 1),
            _seen(
                "nicholasgriffintn__sprintjam.co.uk",
                SPRINT_STANDUP_OLD,
                "0002_remarkable_martin_li.sql",
                1,
            ),
            _seen(
                "fkrein1__crewhelm",
                CREW,
                "0017_messy_argent.sql",
                1,
                "one of 46 in this bundle; crewhelm's own runner strips these PRAGMAs and turns "
                "foreign keys off outside the transaction, which is the workaround below",
            ),
        ),
        wild="Every drizzle-kit table recreation has the pair, so most bundles with one do.",
        fix=_FK_CONSTRUCTOR,
        related=("DO024", "DO026"),
    ),
    "DO002": Extra(
        example=(
            NOTES,
            "-- Custom SQL migration file, put your code below! --\n"
            "BEGIN TRANSACTION;\nUPDATE `notes` SET `title` = trim(`title`);\nCOMMIT;",
        ),
        why=(
            "workerd refuses transaction statements in `sql.exec` with `To execute a "
            "transaction, please use the state.storage.transaction() or "
            "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or "
            "SAVEPOINT statements.` The whole `migrate()` run rolls back and every start of "
            "the DO fails the same way."
        ),
        wild="No corpus project has it.",
    ),
    "DO003": Extra(
        example=(NOTES, "PRAGMA journal_mode=WAL;"),
        why=(
            "The DO authorizer allows a short list of PRAGMAs (the fix lists them); anything "
            "else fails with `not authorized: SQLITE_AUTH` and rolls the whole run back. "
            "The runtime manages journaling, page cache and synchronous mode itself."
        ),
        wild="No corpus project has it.",
    ),
    "DO004": Extra(
        example=(NOTES, "UPDATE `notes` SET `title` = printf('%s', power(length(`title`), 2));"),
        why=(
            "The DO's SQLite refuses functions that are not on its allow-list "
            "(`not authorized to use function: power`) and lacks some that other builds have "
            "(`no such function`). Both roll the whole run back."
        ),
        wild="No corpus project has it.",
    ),
    "DO005": Extra(
        example=(NOTES, "ATTACH DATABASE 'archive.db' AS `archive`;"),
        wild="No corpus project has it.",
    ),
    "DO006": Extra(
        example=(
            NOTES,
            "CREATE TEMP TABLE `_backup_notes` AS SELECT * FROM `notes`;" + BP + "DROP TABLE "
            "`_backup_notes`;",
        ),
        why=(
            "A DO has no TEMP schema: `CREATE TEMP TABLE` fails with `not authorized: "
            "SQLITE_AUTH`. Hand-written migrations use a TEMP table to back rows up around a "
            "table recreation; on a DO that migration can never run."
        ),
        seen=(
            _seen(
                "karakeep-app__karakeep",
                KARAKEEP,
                "0084_rule_engine_multi_list_support.sql",
                17,
                "`CREATE TEMPORARY TABLE _backup_ruleEngineActions`, the backup around the "
                "recreation of `ruleEngineRules` (fine on better-sqlite3, refused on a DO)",
            ),
        ),
    ),
    "DO007": Extra(example=(NOTES, "VACUUM;"), wild="No corpus project has it."),
    "DO008": Extra(
        example=(NOTES, "CREATE VIRTUAL TABLE `notes_search` USING fts4(`title`, `body`);"),
        wild="No corpus project has it.",
    ),
    "DO009": Extra(
        example=("CREATE TABLE `_cf_settings` (\n\t`key` text PRIMARY KEY NOT NULL\n);\n",),
        why=(
            "workerd keeps its own tables under the `_cf_` prefix (for example `_cf_KV`, the "
            "storage API's key-value table) and refuses any other use of it, in any case."
        ),
        wild="No corpus project has it.",
    ),
    "DO010": Extra(
        example=(
            NOTES,
            "INSERT INTO `notes` (`title`) VALUES\n"
            + ",\n".join(f"('imported note number {i:05d}')" for i in range(3_500))
            + ";",
        ),
        shown=(
            "INSERT INTO `notes` (`title`) VALUES\n('imported note number 00000'),\n"
            "-- ... 3,498 more rows ...\n('imported note number 03499');"
        ),
        why=(
            "Each chunk between `--> statement-breakpoint` markers is one `sql.exec` call, and "
            "a DO limits the SQL text of one call to 100,000 bytes (SQLITE_LIMIT_SQL_LENGTH). "
            "Seed-data migrations hit it first."
        ),
        wild="No corpus project has it.",
    ),
    "DO011": Extra(
        example=(
            "CREATE TABLE `wide` (\n\t`id` integer PRIMARY KEY NOT NULL,\n"
            + ",\n".join(f"\t`c{i:03d}` text" for i in range(1, 101))
            + "\n);\n",
        ),
        shown="CREATE TABLE `wide` (\n\t`id` integer PRIMARY KEY NOT NULL,\n\t`c001` text,\n"
        "\t-- ... c002 to c099 ...\n\t`c100` text\n);",
        wild="No corpus project has it.",
    ),
    "DO012": Extra(
        example=(
            NOTES,
            "INSERT INTO `notes` (`title`)\n"
            + "\nUNION ALL ".join(f"SELECT 'welcome {i}'" for i in range(1, 7))
            + ";",
        ),
        wild="No corpus project has it.",
    ),
    "DO013": Extra(
        example=(
            NOTES,
            "UPDATE `notes` SET `url` = NULL\n"
            "WHERE `url` LIKE 'https://old-docs.example.com/archive/2019/%/index.html';",
        ),
        wild="No corpus project has it.",
    ),
    "DO014": Extra(
        example=(NOTES, "-- Custom SQL migration file, put your code below! --"),
        why=(
            "`drizzle-kit generate --custom` writes exactly this header line and nothing "
            "else. Committed unedited, the chunk is only a comment and workerd's `sql.exec` "
            "fails with `SQL code did not contain a statement.`: the whole run rolls back "
            "and no DO starts (an empty test database shows the same, so "
            "[`upgrade_from_empty`](../checks/upgrade_from_empty.md) catches it too)."
        ),
        wild="No corpus project has it.",
    ),
    "DO015": Extra(
        example=(NOTES, "UPDATE `notes` SET `title` = trim(`title`);\n" + BP),
        wild="No corpus project has it.",
    ),
    "DO016": Extra(
        example=(NOTES, "UPDATE `notes` SET `title` = trim(`title`); -- tidy up imported titles"),
        why=(
            "workerd's `sql.exec` runs `;`-separated statements one by one and fails when "
            "what follows the last `;` holds no statement, including a comment. SQLite "
            "elsewhere (better-sqlite3, D1's console, Python) accepts it, so it passes local "
            "tests."
        ),
        wild="No corpus project has it.",
    ),
    "DO017": Extra(
        example=(
            NOTES,
            "UPDATE `notes` SET `title` = trim(`title`);\nUPDATE `notes` SET `body` = '' "
            "WHERE `body` IS NULL;",
        ),
        seen=(
            _seen(
                "fkrein1__crewhelm",
                CREW,
                "0014_closed_patriot.sql",
                32,
                "a hand-written prelude of two UPDATEs before the generated recreation",
            ),
        ),
    ),
    "DO018": Extra(
        example=(NOTES, "DROP TABLE `notes`;"),
        seen=(
            _seen("Litengat__uno", "drizzle", "0005_massive_blade.sql", 1),
            _seen("karakeep-app__karakeep", KARAKEEP, "0061_merge_user_settings.sql", 14),
            _seen("openstatusHQ__openstatus", OPENSTATUS, "0058_absent_chameleon.sql", 1),
        ),
    ),
    "DO019": Extra(
        example=(NOTES, "ALTER TABLE `notes` DROP COLUMN `url`;"),
        seen=(
            _seen("Litengat__uno", "drizzle", "0004_silky_whirlwind.sql", 1),
            _seen("jhonsfran1165__unprice", "apps/api/drizzle", "0001_nasty_baron_zemo.sql", 1),
            _seen(
                "openstatusHQ__openstatus",
                OPENSTATUS,
                "0071_breezy_trish_tilby.sql",
                1,
                "20 `deleted_at` columns dropped in one migration",
            ),
        ),
        why=(
            "Durable Objects migrate lazily, one object at a time, and a Worker rollback (or a "
            "gradual deployment) runs the previous code against objects that already "
            "migrated. Code that still selects the column then fails with `no such column`."
        ),
    ),
    "DO020": Extra(
        example=(NOTES, "ALTER TABLE `notes` RENAME TO `documents`;"),
        seen=(
            _seen("karakeep-app__karakeep", KARAKEEP, "0013_square_lady_ursula.sql", 1),
            _seen("openstatusHQ__openstatus", OPENSTATUS, "0011_bright_jazinda.sql", 4),
        ),
    ),
    "DO021": Extra(
        example=(NOTES, "ALTER TABLE `notes` RENAME COLUMN `body` TO `content`;"),
        seen=(
            _seen("karakeep-app__karakeep", KARAKEEP, "0038_calm_clint_barton.sql", 2),
            _seen("openstatusHQ__openstatus", OPENSTATUS, "0004_fixed_dakota_north.sql", 1),
        ),
    ),
    "DO022": Extra(
        example=(NOTES, "ALTER TABLE `notes` ADD `position` integer NOT NULL;"),
        why=(
            "SQLite refuses to add a `NOT NULL` column without a default to a table that has "
            "rows. A test that migrates an empty database passes; every deployed DO whose "
            "table has a row fails to start, and keeps failing on every request."
        ),
        seen=(
            _seen(
                "Litengat__uno", "drizzle", "0005_massive_blade.sql", 2, "`players_table.position`"
            ),
            _seen(
                "GlennMm__typescript_backend_template",
                GLENN,
                "0003_wealthy_metal_master.sql",
                212,
                "`customers.name`",
            ),
        ),
        fix=(
            "In the Drizzle schema: `position: integer('position').notNull().default(0)`, "
            "then `drizzle-kit generate`. The [`data_preserved`](../checks/data_preserved.md) "
            "check shows the failure with seeded rows."
        ),
    ),
    "DO023": Extra(
        example=(NOTES, "CREATE UNIQUE INDEX `notes_title_unique` ON `notes` (`title`);"),
        seen=(
            _seen(
                "nicholasgriffintn__sprintjam.co.uk",
                SPRINT_AUTH,
                "0015_team_slugs.sql",
                119,
                "`teams_slug_unique`, after a `CASE` backfill of the new slugs: the backfill "
                "decides whether it holds",
            ),
            _seen(
                "nicholasgriffintn__bitwobbly.com",
                "packages/shared/drizzle",
                "0004_funny_tag.sql",
                6,
            ),
            _seen("openstatusHQ__openstatus", OPENSTATUS, "0020_flat_bedlam.sql", 2),
        ),
    ),
    "DO024": Extra(
        example=(USERS_POSTS, _recreate_users("coalesce(\"bio\", '')")),
        why=(
            "drizzle-kit rebuilds a table for most column changes (NOT NULL, type, default, "
            "constraints): `CREATE TABLE __new_X`, copy, `DROP TABLE X`, rename. With foreign "
            "keys ON (always, inside drizzle's migrator on a DO, see DO001), `DROP TABLE X` "
            "first deletes every row of `X`, and each foreign key that references `X` acts: "
            "`ON DELETE cascade` deletes the child rows, `set null` / `set default` wipes the "
            "links, `no action` / `restrict` make the DROP fail and roll the run back. "
            "`migrate()` reports success in the first two cases. Measured on workerd: a "
            "`posts` row with `ON DELETE cascade` is gone after the recreation of `users`."
        ),
        seen=(
            _seen(
                "fkrein1__crewhelm",
                CREW,
                "0017_messy_argent.sql",
                39,
                "drops `agent_revisions` while 6 tables reference it `ON DELETE restrict`",
            ),
            _seen(
                "fkrein1__crewhelm",
                CREW,
                "0023_abnormal_sister_grimm.sql",
                122,
                "drops `agent_workflows`; `agent_workflow_stages` references it "
                "`ON DELETE cascade`",
            ),
            _seen(
                "openstatusHQ__openstatus",
                OPENSTATUS,
                "0042_great_epoch.sql",
                15,
                "`status_report`, with cascade children",
            ),
            _seen(
                "openstatusHQ__openstatus",
                OPENSTATUS,
                "0006_tired_anita_blake.sql",
                50,
                "a hand-completed recreation of `monitor` that copies the child rows to "
                "`*_new` tables first and restores them after the rename: the backup-and-"
                "restore workaround; silence the finding there once reviewed",
            ),
            _seen(
                "karakeep-app__karakeep",
                KARAKEEP,
                "0084_rule_engine_multi_list_support.sql",
                47,
                "backs `ruleEngineActions` up, but into a TEMP table (DO006)",
            ),
        ),
        fix=_FK_CONSTRUCTOR,
        related=("DO001", "DO026"),
    ),
    "DO025": Extra(
        example=(USERS_POSTS.split(BP)[0], _recreate_users('"bio"')),
        why=(
            "`INSERT INTO __new_X(...) SELECT ... FROM X` copies every value as it is; the new "
            "column's `DEFAULT` only applies to columns the INSERT leaves out. One NULL in a "
            "deployed DO makes the copy fail with `NOT NULL constraint failed`, the run rolls "
            "back, and that DO cannot start. Empty test databases pass."
        ),
        seen=(
            _seen(
                "jhonsfran1165__unprice",
                "apps/api/drizzle",
                "0003_rare_talon.sql",
                29,
                "`usage` and `accumulatedUsage` become NOT NULL DEFAULT '0' in a Durable "
                "Object's table; a DO with one NULL there never starts again",
            ),
            _seen(
                "openstatusHQ__openstatus",
                OPENSTATUS,
                "0016_certain_praxagora.sql",
                23,
                "`incident.started_at`",
            ),
        ),
        fix=(
            "The generated line and the edit:\n\n```sql\n"
            'INSERT INTO `__new_users`("id", "name", "bio") SELECT "id", "name", "bio" FROM '
            "`users`;\n"
            'INSERT INTO `__new_users`("id", "name", "bio") SELECT "id", "name", '
            "coalesce(\"bio\", '') FROM `users`;\n```"
        ),
        related=("DO029",),
    ),
    "DO026": Extra(
        example=(USERS_POSTS, "DROP TABLE `users`;"),
        wild=(
            "No corpus bundle has it. The closest is karakeep's "
            "[`0012_noisy_grim_reaper.sql`](https://github.com/karakeep-app/karakeep/blob/"
            "7ca5ee236b96cd659096b1530c5be3fdcd8e4470/packages/db/drizzle/"
            "0012_noisy_grim_reaper.sql#L8), which drops `assets` while `bookmarkAssets` "
            "references it `ON DELETE cascade`, but drops `bookmarkAssets` in the next "
            "statement, so nothing of value is lost and the rule stays quiet (the cascade is "
            "still slow; see [`startup_budget`](../checks/startup_budget.md))."
        ),
        related=("DO018", "DO024"),
    ),
    "DO027": Extra(
        example=(NOTES, 'ALTER TABLE `notes` ALTER COLUMN "title" TO "title" text;'),
        why=(
            "`ALTER TABLE ... ALTER COLUMN` is libSQL syntax (drizzle-kit emits it for "
            "`dialect: 'turso'`); the DO's SQLite rejects it, and the run rolls back."
        ),
        seen=(
            _seen("openstatusHQ__openstatus", OPENSTATUS, "0041_nasty_jigsaw.sql", 20),
            _seen("openstatusHQ__openstatus", OPENSTATUS, "0064_dusty_sunfire.sql", 17),
        ),
        wild="openstatus runs on Turso, where this is valid; the same files cannot run on a DO.",
    ),
    "DO028": Extra(
        example=(
            NOTES,
            "-- dosqlite:ignore DO180 the app stopped reading notes in v42\nDROP TABLE `notes`;",
        ),
        wild="No corpus project uses ignore comments.",
    ),
    "DO029": Extra(
        example=(
            NOTES,
            "PRAGMA foreign_keys=OFF;"
            + BP
            + "CREATE TABLE `__new_notes` (\n\t`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,\n"
            "\t`title` text NOT NULL,\n\t`body` text,\n\t`url` text,\n"
            "\t`pinned` integer DEFAULT false NOT NULL,\n"
            '\tCONSTRAINT "notes_title_not_empty" CHECK(length("__new_notes"."title") > 0)\n'
            ");\n"
            + BP
            + 'INSERT INTO `__new_notes`("id", "title", "body", "url", "pinned") SELECT "id", '
            '"title", "body", "url", "pinned" FROM `notes`;'
            + BP
            + "DROP TABLE `notes`;"
            + BP
            + "ALTER TABLE `__new_notes` RENAME TO `notes`;"
            + BP
            + "PRAGMA foreign_keys=ON;",
        ),
        why=(
            "SQLite keeps a compatibility quirk: a double-quoted name that matches no column "
            "is read as a string literal. The copy succeeds, and each existing row gets "
            "`pinned = 'pinned'` (type text, in an integer column; `if (note.pinned)` is now "
            "true for every note). With a CHECK on the column (`CHECK (pinned IN (0, 1))`) the "
            "copy fails instead, on every DO that has a row. drizzle-kit 0.31 writes this copy "
            "when one `generate` both adds a column and makes a change that needs a "
            "recreation (here: a new CHECK); verified on a real DO under `wrangler dev`. A "
            "fresh or empty database shows nothing."
        ),
        seen=(
            _seen(
                "nicholasgriffintn__sprintjam.co.uk",
                SPRINT_STANDUP_OLD,
                "0002_remarkable_martin_li.sql",
                18,
                "the standup Durable Object: `is_in_person` was added in the same generate "
                "that recreated `standup_responses`, so every existing response got "
                "`is_in_person = 'is_in_person'` (reproduced on the emulator). The chain was "
                "squashed two days later",
            ),
        ),
        fix=(
            "The generated line and the edit:\n\n```sql\n"
            'INSERT INTO `__new_notes`("id", "title", "body", "url", "pinned") SELECT "id", '
            '"title", "body", "url", "pinned" FROM `notes`;\n'
            'INSERT INTO `__new_notes`("id", "title", "body", "url") SELECT "id", "title", '
            '"body", "url" FROM `notes`;\n```\n\n'
            "A DO that already ran the broken migration needs a repair migration, e.g. "
            "`UPDATE notes SET pinned = false WHERE typeof(pinned) = 'text';`."
        ),
        related=("DO025",),
    ),
    "DO030": Extra(
        example=(
            NOTES,
            "UPDATE `notes` SET `url` = lower(`url`) WHERE `url` IS NOT NULL RETURNING `id`;",
        ),
        why=(
            "drizzle's migrator runs every statement with `run()`, which never reads the "
            "cursor. A write with RETURNING stays in progress while its rows are unread, and "
            "SQLite refuses to release a savepoint or commit then. workerd cannot end the "
            "transaction it holds for the event, fails the request with `internal error; "
            "reference = ...` (a random id, nothing about the cause) and resets the DO: the "
            "run is rolled back, and the next request constructs the DO and fails the same "
            "way. Recorded on workerd 1.20261117.1 (`tests/data/workerd/recorded.json`, cases "
            "`drizzle/... RETURNING ...` and `fatal/...`). An `UPDATE` or `DELETE` that "
            "matches no row returns nothing and passes, so a fresh DO and tests on empty "
            "tables pass too; only DOs with rows fail."
        ),
        wild="No corpus bundle has it.",
        related=("DO031",),
    ),
    "DO031": Extra(
        example=(
            NOTES,
            "INSERT OR ROLLBACK INTO `notes` (`id`, `title`) VALUES (1, 'Welcome');",
        ),
        why=(
            "ROLLBACK is the one conflict resolution that ends the whole transaction, not "
            "just the statement, and on a DO that transaction belongs to workerd: its savepoint "
            "and the event's implicit transaction are gone, so it fails the request with "
            "`internal error; reference = ...` and resets the DO, where ABORT gives the "
            "catchable `UNIQUE constraint failed: ...` error. The same holds for `UPDATE OR "
            "ROLLBACK`, a column's `ON CONFLICT ROLLBACK` (then every conflicting write of the "
            "Worker's own code resets the DO too) and `RAISE(ROLLBACK, ...)` in a trigger. "
            "Recorded on workerd 1.20261117.1 (`fatal/...` cases)."
        ),
        wild="No corpus bundle has it.",
        related=("DO030",),
    ),
    "DO032": Extra(
        example=(
            NOTES,
            "ALTER TABLE `notes` ADD `created_at` integer DEFAULT (unixepoch()) NOT NULL;",
        ),
        why=(
            "SQLite fills the new column of every existing row with the DEFAULT, and it only "
            "does that for a constant: for an expression it checks that the table is empty "
            "and otherwise stops with `Cannot add a column with non-constant default`. "
            "drizzle-kit writes such an ADD for `integer().default(sql`(unixepoch())`)` or "
            "`text().default(sql`CURRENT_TIMESTAMP`)` added to an existing table. A fresh DO "
            "and every test on empty tables pass; each deployed DO with rows fails to start. "
            "The rule agrees with SQLite on every default form in `tests/test_lint.py` "
            "(literals, signed numbers, parentheses, CAST, functions, CURRENT_*)."
        ),
        wild="No corpus bundle has it.",
        fix=(
            "```sql\nALTER TABLE `notes` ADD `created_at` integer DEFAULT 0 NOT NULL;\n"
            "--> statement-breakpoint\nUPDATE `notes` SET `created_at` = unixepoch();\n```\n\n"
            "New rows then get 0 unless the Worker sets the value; to keep the expression "
            "default for new rows, recreate the table (drizzle-kit's `__new_notes` with the "
            "default, INSERT ... SELECT, DROP, RENAME)."
        ),
        related=("DO022",),
    ),
    "DO033": Extra(
        example=(
            NOTES
            + BP
            + "CREATE TABLE `audit` (`note_id` integer, `at` integer);"
            + BP
            + "CREATE TRIGGER `notes_audit` AFTER UPDATE ON `notes` BEGIN\n"
            "  INSERT INTO `audit` VALUES (NEW.`id`, unixepoch());\nEND;",
            RECREATE_NOTES_URL,
        ),
        why=(
            "SQLite drops a table's triggers with the table. drizzle-kit's recreation creates "
            "the new table, its indexes and foreign keys from the schema it knows, and a "
            "trigger is not part of a drizzle schema: it lives in a `--custom` migration. The "
            "migration succeeds, the rows are kept, and from then on nothing writes the audit "
            "rows. No check on the tables' rows or schema fails, except a reviewed schema "
            "snapshot, where the trigger is simply missing."
        ),
        wild="No corpus bundle has it.",
        related=("DO024",),
    ),
    "DO035": Extra(
        example=(
            USERS_POSTS,
            "ALTER TABLE `posts` ADD `editor_id` integer DEFAULT 0 REFERENCES `users`(`id`);",
        ),
        why=(
            "SQLite cannot check a foreign key for the default it would give every existing "
            "row, so with foreign keys on it refuses a REFERENCES column with a non-NULL "
            "default on a table that has rows, and accepts it on an empty one. drizzle's "
            "migrator runs with foreign keys on (a DO's default; PRAGMA foreign_keys=OFF is a "
            "no-op inside its transaction), so a fresh DO passes and every DO with rows fails "
            "to start."
        ),
        wild="No corpus bundle has it.",
        related=("DO032", "DO022"),
    ),
    "DO034": Extra(
        example=(
            NOTES,
            "-- make sure no note is untitled\nSELECT count(*) FROM `notes` WHERE `title` = '';"
            + BP
            + RECREATE_NOTES_URL,
        ),
        why=(
            "drizzle's migrator runs every statement with `run()`, which does not read the "
            "cursor. A SELECT that returns a row is then still running, and SQLite refuses to "
            "destroy a table or an index while any statement reads the database: the DROP "
            "TABLE of the recreation fails with `database table is locked: SQLITE_LOCKED`, "
            "and the start fails with `DrizzleError: Rollback` on every DO. `count(*)` always "
            "returns a row, so the check above breaks even an empty DO. Recorded on workerd "
            "1.20261117.1 (`lock/...` and `drizzle/a SELECT of a table, then a DROP ...` in "
            "`tests/data/workerd/recorded.json`). A SELECT of no table (`SELECT 1;`) reads "
            "nothing and is harmless."
        ),
        wild="No corpus bundle has it.",
        related=("DO030",),
    ),
}


@dataclass(frozen=True)
class Problem:
    """An integrity problem the loader reports on a corpus bundle (checked by test_docs)."""

    code: str
    seen: Seen


#: real integrity problems of public bundles (code, where; ``line`` 0: the file as a whole)
INTEGRITY_SEEN: tuple[Problem, ...] = (
    Problem(
        "missing-key",
        _seen(
            "GlennMm__typescript_backend_template",
            "_history/67c4bdbebc90875f5dbde1d263add78839154ce7/drizzle/tenant",
            "migrations.js",
            8,
            "the journal has 4 entries, migrations.js imports m0000..m0002: every start throws "
            "`Missing migration: 0003_wealthy_metal_master` (fixed in the next commit)",
        ),
    ),
    Problem(
        "missing-sql",
        _seen(
            "nicholasgriffintn__bitwobbly.com",
            "packages/shared/drizzle",
            "meta/_journal.json",
            58,
            "`0007_hushed_lightspeed` (a hand-written `CREATE UNIQUE INDEX`) was deleted but "
            "its journal entry kept; wrangler skips it, so fresh D1 databases lack the index",
        ),
    ),
    Problem(
        "duplicate-prefix",
        _seen(
            "nicholasgriffintn__sprintjam.co.uk",
            "apps/auth-worker/drizzle",
            "0015_cuddly_unicorn.sql",
            0,
            "`0015_cuddly_unicorn.sql` and `0015_team_slugs.sql`: one branch's journal won a merge",
        ),
    ),
    Problem(
        "orphan-sql",
        _seen(
            "nicholasgriffintn__sprintjam.co.uk",
            "apps/auth-worker/drizzle",
            "0016_young_gambit.sql",
            0,
            "three .sql files outside the journal: drizzle runs 16 migrations, "
            "`wrangler d1 migrations apply` runs 19",
        ),
    ),
    Problem(
        "when-not-increasing",
        _seen(
            "openstatusHQ__openstatus",
            "_history/25c3cd68a3e4b17208da97734860399ed50e3a9a/packages/db/drizzle",
            "meta/_journal.json",
            379,
            "a hand-made `0053_groovy_doctor_strange` dated a year too early: every existing "
            "database would have skipped it silently (regenerated the same day)",
        ),
    ),
    Problem(
        "snapshot-chain",
        _seen(
            "fkrein1__crewhelm",
            CREW_OLD,
            "meta/0011_snapshot.json",
            0,
            "a copied snapshot: 0011 has the same id as 0010",
        ),
    ),
)


# ------------------------------------------------------------------------------ rendering


def _lint_example(rule_id: str, extra: Extra) -> list[str]:
    """The real findings of ``rule_id`` on the example (as ``Finding.__str__`` prints them)."""
    from pytest_dosqlite.bundle import Bundle, Migration
    from pytest_dosqlite.lint import lint_bundle

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        migrations = []
        for i, sql in enumerate(extra.example):
            tag = f"{i:04d}_{'setup' if i < len(extra.example) - 1 else 'change'}"
            path = root / f"{tag}.sql"
            path.write_text(sql, encoding="utf-8")
            migrations.append(
                Migration(
                    idx=i,
                    tag=tag,
                    when=1_767_225_600_000 + i,
                    key=f"m{i:04d}",
                    sql=sql,
                    path=path,
                    breakpoints=True,
                )
            )
        bundle = Bundle(root=root, format="durable-sqlite", migrations=tuple(migrations))
        found = [f for f in lint_bundle(bundle) if f.rule == rule_id]
        return [str(f).replace(str(root) + "/", "") for f in found]


def example_findings(rule_id: str) -> list[str]:
    return _lint_example(rule_id, EXTRAS[rule_id])


def _slug(rule_id: str) -> str:
    from pytest_dosqlite.lint import RULES

    return f"{rule_id}-{RULES[rule_id].name}"


def lint_page(rule_id: str) -> str:
    from pytest_dosqlite.lint import RULES

    rule = RULES[rule_id]
    extra = EXTRAS[rule_id]
    findings = example_findings(rule_id)
    if not findings:
        raise SystemExit(f"{rule_id}: the example does not fire the rule")
    out = [
        f"# {rule.id} {rule.name}",
        "",
        "<!-- generated by docs/generate.py from pytest_dosqlite.lint.RULES; edit there -->",
        "",
        "| rule | name | default severity | reported by |",
        "|---|---|---|---|",
        f"| `{rule.id}` | `{rule.name}` | {rule.severity} | the [`lint`](../checks/lint.md) "
        "check |",
        "",
        "## What it finds",
        "",
        rule.summary,
        "",
    ]
    if extra.why:
        out += ["## Why it matters on a Durable Object", "", extra.why, ""]
    out += ["## Example", ""]
    tags = [
        f"{i:04d}_{'setup' if i < len(extra.example) - 1 else 'change'}.sql"
        for i in range(len(extra.example))
    ]
    for i, (tag, sql) in enumerate(zip(tags, extra.example, strict=True)):
        text = extra.shown if extra.shown is not None and i == len(extra.example) - 1 else sql
        out += [f"`{tag}`:", "", "```sql", text.rstrip("\n"), "```", ""]
    out += ["`lint` reports (real output):", "", "```text", *findings, "```", ""]
    out += ["## In public projects", ""]
    if extra.seen:
        for s in extra.seen:
            repo, _, kind = PROJECTS[s.project]
            note = f": {s.note}" if s.note else ""
            out.append(
                f"* [{repo}]({'https://github.com/' + repo}) ({kind}), commit "
                f"`{s.commit()[:7]}`: [`{s.file}:{s.line}`]({s.url()}){note}."
            )
        out.append("")
    if extra.wild:
        out += [extra.wild, ""]
    out += ["## How to fix", "", rule.fix, ""]
    if extra.fix:
        out += [extra.fix, ""]
    out += [
        "## Silence it",
        "",
        f"After review, put `-- dosqlite:ignore {rule.id}` on the line before the statement, "
        f"`-- dosqlite:ignore-file {rule.id}` anywhere in the migration, or change the "
        f"severity for the whole project in the pytest ini file:",
        "",
        "```ini",
        "[pytest]",
        f"dosqlite_lint_severity = {rule.id}=warning",
        "```",
        "",
    ]
    if extra.related:
        links = ", ".join(f"[{r} {RULES[r].name}]({_slug(r)}.md)" for r in extra.related)
        out += [f"Related: {links}.", ""]
    return "\n".join(out)


def lint_index() -> str:
    from pytest_dosqlite.lint import RULES

    out = [
        "# Lint rules",
        "",
        "<!-- generated by docs/generate.py from pytest_dosqlite.lint.RULES; edit there -->",
        "",
        "The [`lint`](../checks/lint.md) check reads every statement of every migration the "
        "way a Durable Object's `sql.exec` cuts it, with the schema each statement sees, and "
        "reports the hazards below with file, line, rule id and a Drizzle-specific fix. "
        "Errors fail the check; warnings are reported as `DosqliteLintWarning`.",
        "",
        "| id | name | default severity | what it finds |",
        "|---|---|---|---|",
    ]
    for rule in RULES.values():
        summary = rule.summary.replace("|", r"\|")
        out.append(
            f"| [{rule.id}]({_slug(rule.id)}.md) | `{rule.name}` | {rule.severity} | {summary} |"
        )
    out += [
        "",
        "Configure severities with `dosqlite_lint_severity` (one `RULE=error|warning|off` per "
        "line, by id or name) and silence single findings with `-- dosqlite:ignore DO0NN` "
        "comments.",
        "",
    ]
    return "\n".join(out)


def integrity_page() -> str:
    from pytest_dosqlite.bundle import PROBLEM_CODES

    out = [
        "# Bundle integrity problem codes",
        "",
        "<!-- generated by docs/generate.py from pytest_dosqlite.bundle.PROBLEM_CODES -->",
        "",
        "The bundle loader reads a drizzle-kit `out` folder exactly as drizzle's migrator "
        "does and records every inconsistency between `meta/_journal.json`, `migrations.js`, "
        "the `.sql` files and the `meta/NNNN_snapshot.json` files as a problem with a stable "
        "code. The [`bundle_integrity`](checks/bundle_integrity.md) check fails on errors and "
        "reports warnings as `IntegrityWarning`. In Python: `load_bundle(path).problems`.",
        "",
        "| code | severity | problem | what it means | how to fix |",
        "|---|---|---|---|---|",
    ]

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    for c in PROBLEM_CODES.values():
        out.append(
            f"| `{c.code}` | {c.severity} | {cell(c.summary)} | {cell(c.explanation)} | "
            f"{cell(c.fix)} |"
        )
    out += ["", "## In public projects", ""]
    for p in INTEGRITY_SEEN:
        s = p.seen
        repo, _, kind = PROJECTS[s.project]
        where = f"{s.file}:{s.line}" if s.line else s.file
        url = s.url() if s.line else s.url().rsplit("#", 1)[0]
        out.append(
            f"* `{p.code}`: [{repo}](https://github.com/{repo}) ({kind}), commit "
            f"`{s.commit()[:7]}`, [`{where}`]({url}): {s.note}."
        )
    out += [
        "",
        "The [`bundle_integrity`](checks/bundle_integrity.md) page shows the check's output "
        "for a `missing-key` bundle.",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    from pytest_dosqlite.lint import RULES

    missing = sorted(set(RULES) - set(EXTRAS))
    if missing:
        print(f"no docs extras for {', '.join(missing)}: add them to EXTRAS", file=sys.stderr)
        return 1
    lint_dir = DOCS / "lint"
    lint_dir.mkdir(exist_ok=True)
    for old in lint_dir.glob("DO*.md"):
        old.unlink()
    for rule_id in RULES:
        (lint_dir / f"{_slug(rule_id)}.md").write_text(lint_page(rule_id), encoding="utf-8")
    (lint_dir / "README.md").write_text(lint_index(), encoding="utf-8")
    (DOCS / "integrity.md").write_text(integrity_page(), encoding="utf-8")
    print(f"wrote {len(RULES)} lint pages, docs/lint/README.md and docs/integrity.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
