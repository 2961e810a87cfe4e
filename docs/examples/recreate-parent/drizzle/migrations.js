import journal from './meta/_journal.json';
import m0000 from './0000_users_and_posts.sql';
import m0001 from './0001_bio_not_null.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001
    }
  }
  