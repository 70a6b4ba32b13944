// GraphiQL for Anju, from the project's own npm install (no CDN). The Authorization header comes from the map page's
// login in this tab (sessionStorage), else a placeholder to replace with a token of `anju token NAME` or POST /auth/login.
// While the header holds the login's token, every request is sent with the session's current access token, refreshed
// (POST /auth/refresh, the map page's session rotated in place) when it is due within a minute: a GraphiQL tab stays
// logged in as long as the login does. A header edited by hand is sent as written.
'use strict';
(() => {
  const SESSION_KEY = 'anju-session';
  const read = () => {
    try { return JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null'); } catch (e) { return null; }
  };
  const first = read();
  const shown = first && first.access ? `Bearer ${first.access}` : 'Bearer <token: anju token NAME, or POST /auth/login>';
  let refreshing = null;

  async function refreshed(session) {
    const r = await fetch('/auth/refresh', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: session.refresh }),
    });
    if (!r.ok) return session; // the answer to the query will say why (401)
    const t = await r.json();
    const next = { access: t.accessToken, refresh: t.refreshToken, expires: Date.now() + t.expiresIn * 1000, user: t.user };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
    return next;
  }

  async function current() {
    const session = read();
    if (!session || !session.refresh || session.expires - Date.now() > 60000) return session;
    refreshing = refreshing || refreshed(session).finally(() => { refreshing = null; });
    return refreshing;
  }

  async function send(url, init) {
    const headers = new Headers(init && init.headers);
    if (first && headers.get('authorization') === shown) {
      const session = await current();
      if (session && session.access) headers.set('authorization', `Bearer ${session.access}`);
    }
    return fetch(url, { ...init, headers });
  }

  const fetcher = GraphiQL.createFetcher({ url: '/graphql', headers: { accept: 'application/graphql-response+json' }, fetch: send });
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultHeaders: JSON.stringify({ Authorization: shown }, null, 2),
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: false,
  }));
})();
