import journal from './meta/_journal.json';
import m0000 from './0000_teams.sql';
import m0001 from './0001_reset_sessions.sql';
import m0002 from './0002_drop_all_teams.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001,
m0002
    }
  }
  