import type { Config } from "drizzle-kit";

export default {
  out: process.env.SESSIONS_OUT ?? "./migrations/sessions",
  dialect: "sqlite",
  driver: "durable-sqlite",
  schema: "./src/sessions-schema.ts",
} satisfies Config;
