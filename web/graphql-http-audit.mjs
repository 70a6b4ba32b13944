// The GraphQL-over-HTTP conformance audit of the npm package graphql-http (auditServer), against a running Anju.
// Usage: node graphql-http-audit.mjs URL TOKEN  → one JSON document on stdout:
// {"results": [{"id", "name", "status": "ok"|"warn"|"error", "reason"}], "counts": {"MUST": {"ok", "total"}, "SHOULD": {...}}}
// Every request carries "Authorization: Bearer TOKEN" (Anju answers nothing without one).
import { auditServer } from 'graphql-http';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node graphql-http-audit.mjs URL TOKEN');
  process.exit(2);
}
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers || {});
  headers.set('authorization', `Bearer ${token}`);
  return fetch(input, { ...init, headers });
};
const results = await auditServer({ url, fetchFn });
const out = [];
const counts = {};
for (const r of results) {
  const level = r.name.split(' ')[0];
  counts[level] ??= { ok: 0, total: 0 };
  counts[level].total += 1;
  if (r.status === 'ok') counts[level].ok += 1;
  out.push({ id: r.id, name: r.name, status: r.status, reason: r.status === 'ok' ? null : r.reason });
}
process.stdout.write(JSON.stringify({ results: out, counts }, null, 1));
