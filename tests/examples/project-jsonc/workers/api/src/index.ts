export { Counter } from "./counter";
export { Sessions } from "./sessions.js";

export default { fetch: () => new Response("ok") };
