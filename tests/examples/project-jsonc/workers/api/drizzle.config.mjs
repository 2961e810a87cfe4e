const out = "./migrations/counter";

export default {
  out,
  dialect: "sqlite",
  driver: "durable-sqlite",
  schema: ["./src/counter-schema.ts", "./src/shared-schema.ts"],
};
