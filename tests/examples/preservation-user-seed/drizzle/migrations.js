import journal from './meta/_journal.json';
import m0000 from './0000_users.sql';
import m0001 from './0001_email_case_insensitive.sql';
import m0002 from './0002_add_created_at.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001,
m0002
    }
  }
  