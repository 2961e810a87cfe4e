import type { Config } from "drizzle-kit";

export default {
  schema: "./src/schema.ts",
  dialect: "sqlite",
  driver: "durable-sqlite",
} satisfies Config;
