import journal from './meta/_journal.json';
import m0000 from './0000_init.sql';
import m0001 from './0001_notes.sql';
import m0002 from './0002_user_display_name.sql';
import m0003 from './0003_backfill_display_name.sql';
import m0004 from './0004_notes_pinned.sql';
import m0005 from './0005_notes_pinned_check.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001,
m0002,
m0003,
m0004,
m0005
    }
  }
  