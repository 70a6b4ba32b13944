// GraphiQL for Anju, from the project's own npm install (no CDN). The Authorization header comes from the map page's
// login in this tab (sessionStorage), else a placeholder to replace with a token of `anju token NAME` or POST /auth/login.
'use strict';
(() => {
  let session = null;
  try { session = JSON.parse(sessionStorage.getItem('anju-session') || 'null'); } catch (e) { session = null; }
  const token = session && session.access ? session.access : '<token: anju token NAME, or POST /auth/login>';
  const fetcher = GraphiQL.createFetcher({ url: '/graphql', headers: { accept: 'application/graphql-response+json' } });
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher,
    defaultHeaders: JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2),
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: false,
  }));
})();
