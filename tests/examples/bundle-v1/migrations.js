import m0000 from './20250301120000_create_rooms/migration.sql';
import m0001 from './20250302093000_add_topic/migration.sql';

  export default {
    migrations: {
      "20250301120000_create_rooms": m0000,
"20250302093000_add_topic": m0001
}
  }
  