import m0000 from './20260101000000_create_notes/migration.sql';
import m0001 from './20260102000000_trim_titles/migration.sql';
import m0002 from './20260103000000_rerun_trim_titles/migration.sql';

  export default {
    migrations: {
      "20260101000000_create_notes": m0000,
"20260102000000_trim_titles": m0001,
"20260103000000_rerun_trim_titles": m0002
}
  }
  
