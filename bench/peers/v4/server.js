// PostGraphile v4 + @graphile/postgis for bench/peers.py: library mode on Node's http server, one process
// (how PostGraphile runs by default). DATABASE_URL, PORT and SCHEMAS come from the environment.
"use strict";
const http = require("http");
const { postgraphile } = require("postgraphile");
const PostgisPlugin = require("@graphile/postgis").default;

const middleware = postgraphile(process.env.DATABASE_URL, (process.env.SCHEMAS || "public").split(","), {
  appendPlugins: [PostgisPlugin],
  dynamicJson: true,
  disableDefaultMutations: true,
  disableQueryLog: true,
  graphiql: false,
  watchPg: false,
  retryOnInitFail: false,
  setofFunctionsContainNulls: false,
  ignoreRBAC: false,
});

http.createServer(middleware).listen(Number(process.env.PORT), "127.0.0.1", () => {
  console.log(`PostGraphile v4 listening on http://127.0.0.1:${process.env.PORT}/graphql`);
});
process.on("SIGTERM", () => process.exit(0));
