import m0000 from './20261127162458_init/migration.sql';
import m0001 from './20261127162459_notes/migration.sql';
import m0002 from './20261127162500_user_display_name/migration.sql';
import m0003 from './20261127162502_backfill_display_name/migration.sql';
import m0004 from './20261127162503_notes_pinned/migration.sql';
import m0005 from './20261127162504_notes_pinned_check/migration.sql';

  export default {
    migrations: {
      "20261127162458_init": m0000,
"20261127162459_notes": m0001,
"20261127162500_user_display_name": m0002,
"20261127162502_backfill_display_name": m0003,
"20261127162503_notes_pinned": m0004,
"20261127162504_notes_pinned_check": m0005
}
  }
  