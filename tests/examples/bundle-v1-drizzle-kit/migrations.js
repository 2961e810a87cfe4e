import m0000 from './20261128122924_init/migration.sql';
import m0001 from './20261128122935_add_posts/migration.sql';

  export default {
    migrations: {
      "20261128122924_init": m0000,
"20261128122935_add_posts": m0001
}
  }
  