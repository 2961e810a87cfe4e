import migrations from "../migrations/sessions/migrations";

export class SessionStore {
  constructor(readonly storage: unknown) {}
  readonly migrations = migrations;
}
