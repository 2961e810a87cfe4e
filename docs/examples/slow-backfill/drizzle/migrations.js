import journal from './meta/_journal.json';
import m0000 from './0000_users_and_notes.sql';
import m0001 from './0001_note_owner_id.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001
    }
  }
  