// wrangler.jsonc bundles every *.sql file as a Text module (a string).
declare module '*.sql' {
  const sql: string;
  export default sql;
}
