// PostGraphile v5 (amber preset; no PostGIS plugin: GeoJSON through SQL functions) for bench/peers.py: library mode on Node's http server via
// grafserv, one process (how PostGraphile runs by default). DATABASE_URL, PORT and SCHEMAS come from the environment.
import { createServer } from "node:http";
import { postgraphile } from "postgraphile";
import { grafserv } from "postgraphile/grafserv/node";
import { makePgService } from "postgraphile/adaptors/pg";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";

const preset = {
  extends: [PostGraphileAmberPreset],
  disablePlugins: ["MutationPlugin"],
  pgServices: [
    makePgService({
      connectionString: process.env.DATABASE_URL,
      schemas: (process.env.SCHEMAS || "public").split(","),
    }),
  ],
  grafserv: { graphiql: false, watch: false },
  grafast: { explain: false },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.once("listening", () => console.log(`PostGraphile v5 listening on http://127.0.0.1:${process.env.PORT}/graphql`));
await serv.addTo(server);
server.listen(Number(process.env.PORT), "127.0.0.1");
process.on("SIGTERM", async () => {
  server.close();
  await pgl.release();
  process.exit(0);
});
