import m0000 from './20261128125455_optimal_eternity/migration.sql';

  export default {
    migrations: {
      "20261128125455_optimal_eternity": m0000
}
  }
  