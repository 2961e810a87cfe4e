import { DurableObject } from "cloudflare:workers";
import migrations from "../migrations/counter/migrations.js";

export class Counter extends DurableObject {
  migrations = migrations;
}
