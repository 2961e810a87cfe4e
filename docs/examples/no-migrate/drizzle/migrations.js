import journal from './meta/_journal.json';
import m0000 from './0000_create_notes.sql';
import m0001 from './0001_add_archived.sql';
import m0002 from './0002_add_tags.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001,
m0002
    }
  }
  