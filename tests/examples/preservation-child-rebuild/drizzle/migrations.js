import journal from './meta/_journal.json';
import m0000 from './0000_users_posts.sql';
import m0001 from './0001_posts_author_set_null.sql';
import m0002 from './0002_users_add_bio.sql';

  export default {
    journal,
    migrations: {
      m0000,
m0001,
m0002
    }
  }
  