// Anju's web map (/map): log in (POST /auth/login), then the layers of the tile catalog (GET /tiles, the one layer
// registry) drawn with MapLibre GL, areas coloured by employment coverage on the chosen date (GraphQL), popups with
// coverage, nearest facilities and income linkages. No internet basemap: admin boundaries are the base, unless the
// map_page.basemap_url setting names raster tiles (AMap/Tianditu); a GCJ-02 basemap gets Anju's layers in GCJ-02.
'use strict';
(() => {
  const CONFIG = JSON.parse(document.getElementById('anju-config').textContent);
  const SESSION_KEY = 'anju-session';
  const COVERAGE_STEPS = [[0, '#d73027'], [0.2, '#fc8d59'], [0.4, '#fee08b'], [0.6, '#91cf60'], [0.8, '#1a9850']];
  const KIND_COLORS = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#666666'];
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s ?? '—').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)}%`);
  const km = (m) => (m < 1000 ? `${Math.round(m)} 米 m` : `${(m / 1000).toFixed(2)} 公里 km`);

  let session = null;
  let refreshTimer = null;
  let map = null;
  let catalog = null;
  let coverage = new Map(); // county code → {name, employmentCoverage, incomeLinkageSummary}
  const anju = (window.anju = { ready: false, map: null, catalog: null, styleLayers: {}, errors: [] });

  // "Relocation sites (安置区/安置点)" → Chinese first, English beside.
  function bilingual(title) {
    const m = /^(.*?)\s*\((.*)\)$/.exec(title);
    return m ? `${esc(m[2])} <small>${esc(m[1])}</small>` : esc(title);
  }

  async function postJSON(path, body) {
    const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const data = r.status === 204 ? null : await r.json();
    if (!r.ok) throw new Error(data?.errors?.[0]?.message || `HTTP ${r.status}`);
    return data;
  }

  function keep(tokens) {
    session = { access: tokens.accessToken, refresh: tokens.refreshToken, expires: Date.now() + tokens.expiresIn * 1000, user: tokens.user };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(refresh, Math.max(5000, tokens.expiresIn * 1000 - 60000));
  }

  async function refresh() {
    try {
      keep(await postJSON('/auth/refresh', { refreshToken: session.refresh }));
    } catch (e) {
      signOut(`会话已过期 Session ended: ${e.message}`);
    }
  }

  async function authFetch(url) {
    const r = await fetch(url, { headers: { authorization: `Bearer ${session.access}` } });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    return r.json();
  }

  async function gql(query, variables) {
    const r = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${session.access}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = await r.json();
    if (body.errors && !body.data) throw new Error(body.errors[0].message);
    return body.data;
  }

  function asOf() {
    return $('as-of').value || CONFIG.today;
  }

  function tileJsonUrl(item) {
    const params = new URLSearchParams();
    if (item.filters.includes('asOf')) params.set('asOf', asOf());
    if (CONFIG.basemapCoordSys !== 'WGS84') params.set('coordSys', CONFIG.basemapCoordSys);
    const q = params.toString();
    return item.tilejson + (q ? `?${q}` : '');
  }

  function baseStyle() {
    const style = { version: 8, sources: {}, layers: [{ id: 'background', type: 'background', paint: { 'background-color': '#eef2f5' } }] };
    if (CONFIG.basemapUrl) {
      style.sources.basemap = { type: 'raster', tiles: [CONFIG.basemapUrl], tileSize: 256, attribution: CONFIG.basemapAttribution || '' };
      style.layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
    }
    return style;
  }

  const coverageColor = ['step', ['to-number', ['coalesce', ['feature-state', 'coverage'], -1]], '#cccccc',
    ...COVERAGE_STEPS.flatMap(([v, c]) => [v, c])];
  const clustered = ['==', ['get', 'cluster'], true];
  const single = ['!', clustered];

  // Style layers for one catalog layer: polygons fill + outline; points circles (clusters grey, sized by count).
  function styleLayers(item) {
    const source = `anju-${item.name}`;
    const id = (suffix) => `${item.name}-${suffix}`;
    if (item.geometryType !== 'Point') {
      return [
        { id: id('fill'), type: 'fill', source, 'source-layer': item.name,
          paint: { 'fill-color': coverageColor, 'fill-opacity': ['case', ['==', ['feature-state', 'coverage'], null], 0.08, 0.6] } },
        { id: id('line'), type: 'line', source, 'source-layer': item.name, paint: { 'line-color': '#555', 'line-width': 1 } },
      ];
    }
    let color = '#1f4e9e';
    if (item.name === 'households') color = ['case', ['==', ['get', 'zeroEmployment'], true], '#d7301f', '#31a354'];
    if (item.name === 'facilities' && item.values && item.values.kind) {
      color = ['match', ['get', 'kind'], ...item.values.kind.flatMap((k, i) => [k, KIND_COLORS[i % KIND_COLORS.length]]), '#999999'];
    }
    const radius = item.name === 'relocation_sites' ? 8 : 5;
    const layers = [{ id: id('points'), type: 'circle', source, 'source-layer': item.name, filter: single,
      paint: { 'circle-color': color, 'circle-radius': radius, 'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } }];
    if (item.clusterBelowZoom !== null) {
      layers.push({ id: id('clusters'), type: 'circle', source, 'source-layer': item.name, filter: clustered,
        paint: { 'circle-color': 'rgba(80,80,80,0.55)', 'circle-radius': ['interpolate', ['linear'], ['get', 'point_count'], 2, 8, 500, 22],
          'circle-stroke-color': '#fff', 'circle-stroke-width': 1 } });
    }
    return layers;
  }

  function layerControls() {
    const list = $('layer-list');
    list.innerHTML = '';
    for (const item of catalog.layers) {
      const ids = anju.styleLayers[item.name];
      const label = document.createElement('label');
      label.innerHTML = `<input type="checkbox" checked data-layer="${esc(item.name)}"> ${bilingual(item.title)}`;
      label.querySelector('input').addEventListener('change', (ev) => {
        for (const id of ids) map.setLayoutProperty(id, 'visibility', ev.target.checked ? 'visible' : 'none');
      });
      list.appendChild(label);
      if (item.name === 'facilities' && item.values && item.values.kind) { // facilities by kind: a colour and a switch each
        const kinds = new Set(item.values.kind);
        item.values.kind.forEach((kind, i) => {
          const sub = document.createElement('label');
          sub.className = 'sub';
          sub.innerHTML = `<input type="checkbox" checked data-kind="${esc(kind)}"><span class="swatch" style="background:${KIND_COLORS[i % KIND_COLORS.length]}"></span>${esc(kind)}`;
          sub.querySelector('input').addEventListener('change', (ev) => {
            if (ev.target.checked) kinds.add(kind); else kinds.delete(kind);
            map.setFilter(`${item.name}-points`, ['all', single, ['in', ['get', 'kind'], ['literal', [...kinds]]]]);
          });
          list.appendChild(sub);
        });
      }
      if (item.name === 'households') {
        const note = document.createElement('div');
        note.className = 'sub';
        note.innerHTML = '<span class="swatch" style="background:#d7301f"></span>零就业家庭 <small>zero-employment</small><br>'
          + '<span class="swatch" style="background:#31a354"></span>有就业 <small>employed</small>';
        list.appendChild(note);
      }
    }
    $('legend').innerHTML = COVERAGE_STEPS.map(([v, c], i) => {
      const next = COVERAGE_STEPS[i + 1];
      return `<div><span class="swatch" style="background:${c}"></span>${Math.round(v * 100)}%${next ? `–${Math.round(next[0] * 100)}%` : '+'}</div>`;
    }).join('') + '<div><span class="swatch" style="background:#cccccc"></span>无数据 <small>no data / suppressed</small></div>';
  }

  const COVERAGE_FIELDS = 'employmentCoverage(asOf: $asOf) { households householdsWithLaborForce householdsCovered zeroEmploymentHouseholds coverageRate suppressed } '
    + 'incomeLinkageSummary(year: $year) { householdsLinked total suppressed byMechanism { mechanism amount households } }';

  // Areas coloured by employment coverage on the date: every county for admins, planners and officers (their rows);
  // a partner's paired counties only (their suppressed aggregates).
  async function loadCoverage() {
    const variables = { asOf: asOf(), year: Number(asOf().slice(0, 4)) };
    let counties;
    if (session.user.role === 'PARTNER') {
      const d = await gql(`query($asOf: Date, $year: Int!) { me { partner { pairedCounties { code name ${COVERAGE_FIELDS} } } } }`, variables);
      counties = d.me.partner ? d.me.partner.pairedCounties : [];
    } else {
      const d = await gql(`query($asOf: Date, $year: Int!) { adminAreas(level: COUNTY, first: 500) { nodes { code name ${COVERAGE_FIELDS} } } }`, variables);
      counties = d.adminAreas.nodes;
    }
    const source = 'anju-admin_areas';
    for (const code of coverage.keys()) map.removeFeatureState({ source, sourceLayer: 'admin_areas', id: Number(code) });
    coverage = new Map(counties.map((c) => [c.code, c]));
    for (const c of counties) {
      const rate = c.employmentCoverage ? c.employmentCoverage.coverageRate : null;
      if (rate !== null && rate !== undefined) map.setFeatureState({ source, sourceLayer: 'admin_areas', id: Number(c.code) }, { coverage: rate });
    }
    anju.coverage = counties;
  }

  function table(rows) {
    return `<table>${rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join('')}</table>`;
  }

  function coverageRows(cov) {
    if (!cov) return [];
    return [
      ['就业覆盖率 <small>coverage</small>', pct(cov.coverageRate)],
      ['有劳动力家庭 <small>with labor force</small>', esc(cov.householdsWithLaborForce)],
      ['零就业家庭 <small>zero-employment</small>', esc(cov.zeroEmploymentHouseholds)],
    ];
  }

  function linkageRows(sum) {
    if (!sum) return [];
    return [['利益联结 <small>income linkages</small>', `${esc(sum.householdsLinked)} 户 hh, ${esc(sum.total)} 元 yuan`],
      ...sum.byMechanism.map((x) => [`<small>${esc(x.mechanism)}</small>`, `${esc(x.amount)} 元 yuan`])];
  }

  function nearestRows(list) {
    return list.length ? [['最近设施 <small>nearest facilities</small>', list.map((x) => `${esc(x.facility.name)} <small>${esc(x.facility.kind)}</small> ${km(x.distanceMeters)}`).join('<br>')]] : [];
  }

  async function popupHtml(item, feature, lngLat) {
    const p = feature.properties;
    const vars = { asOf: asOf(), year: Number(asOf().slice(0, 4)) };
    if (p.cluster) return `<b>${esc(p.point_count)}</b> 个要素 <small>features</small> — 放大查看 <small>zoom in</small>`;
    if (item.name === 'admin_areas') {
      const c = coverage.get(String(p.code));
      return `<b>${esc(p.name)}</b> <small>${esc(p.code)}</small>${c ? table([...coverageRows(c.employmentCoverage), ...linkageRows(c.incomeLinkageSummary)]) : '<br>无数据 <small>no figures for this area</small>'}`;
    }
    if (item.name === 'relocation_sites') {
      // A partner's figures are its paired counties' (the county popup); a site's own aggregates are not for partners.
      const figures = session.user.role === 'PARTNER' ? '' : `householdCount
        employmentCoverage(asOf: $asOf) { householdsWithLaborForce zeroEmploymentHouseholds coverageRate suppressed }
        incomeLinkageSummary(year: $year) { householdsLinked total byMechanism { mechanism amount households } suppressed }`;
      const d = await gql(`query($id: ID!, $asOf: Date${figures ? ', $year: Int!' : ''}) { relocationSite(id: $id) { name
        nearestByKind(asOf: $asOf) { facility { name kind } distanceMeters } ${figures} } }`,
      figures ? { id: String(feature.id), ...vars } : { id: String(feature.id), asOf: vars.asOf });
      const s = d.relocationSite;
      return `<b>${esc(s.name)}</b>${table([['户数 <small>households</small>', esc(s.householdCount)], ...coverageRows(s.employmentCoverage), ...nearestRows(s.nearestByKind), ...linkageRows(s.incomeLinkageSummary)])}`;
    }
    if (item.name === 'households') {
      const coordSys = CONFIG.basemapCoordSys;
      const d = await gql(`query($id: ID!, $asOf: Date, $year: Int, $point: GeoJSON!, $cs: CoordSys!) { household(id: $id) { code site { name }
        size(asOf: $asOf) isZeroEmployment(asOf: $asOf) incomeLinkages(year: $year) { mechanism amount facility { name } } }
        nearestFacilities(point: $point, k: 3, asOf: $asOf, coordSys: $cs) { facility { name kind } distanceMeters } }`,
      { id: String(feature.id), ...vars, point: { type: 'Point', coordinates: [lngLat.lng, lngLat.lat] }, cs: coordSys });
      const h = d.household;
      return `<b>${esc(h.code)}</b> ${esc(h.site && h.site.name)}${table([
        ['人口 <small>members</small>', esc(h.size)],
        ['零就业 <small>zero-employment</small>', h.isZeroEmployment ? '是 yes' : '否 no'],
        ...nearestRows(d.nearestFacilities),
        ['利益联结 <small>income linkages</small>', h.incomeLinkages.map((x) => `${esc(x.mechanism)} ${esc(x.amount)} 元 ${esc(x.facility && x.facility.name)}`).join('<br>') || '—'],
      ])}`;
    }
    if (item.name === 'facilities') {
      const d = await gql(`query($id: ID!, $asOf: Date, $year: Int!) { facility(id: $id) { name kind plannedJobs employees(asOf: $asOf) linkedHouseholds(year: $year) site { name } } }`, { id: String(feature.id), ...vars });
      const f = d.facility;
      return `<b>${esc(f.name)}</b> <small>${esc(f.kind)}</small>${table([['安置区 <small>site</small>', esc(f.site && f.site.name)],
        ['就业人数 <small>employees</small>', esc(f.employees)], ['计划岗位 <small>planned jobs</small>', esc(f.plannedJobs)],
        ['联结户数 <small>linked households</small>', esc(f.linkedHouseholds)]])}`;
    }
    return table(Object.entries(p).map(([k, v]) => [esc(k), esc(v)]));
  }

  // One popup per click: the topmost feature under the pointer, of any layer (points above areas).
  function bindPopups() {
    const clickable = Object.values(anju.styleLayers).flat().filter((id) => !id.endsWith('-line'));
    const owner = (layerId) => catalog.layers.find((item) => anju.styleLayers[item.name].includes(layerId));
    let popup = null;
    map.on('click', async (ev) => {
      const feature = map.queryRenderedFeatures(ev.point, { layers: clickable })[0];
      if (popup) popup.remove();
      if (!feature) return;
      popup = new maplibregl.Popup({ maxWidth: '340px' }).setLngLat(ev.lngLat).setHTML('加载中… <small>loading…</small>').addTo(map);
      const shown = popup;
      try {
        shown.setHTML(await popupHtml(owner(feature.layer.id), feature, ev.lngLat));
      } catch (e) {
        shown.setHTML(`<span class="error">${esc(e.message)}</span>`);
      }
    });
    for (const id of clickable) {
      map.on('mouseenter', id, () => { map.getCanvas().style.cursor = 'pointer'; });
      map.on('mouseleave', id, () => { map.getCanvas().style.cursor = ''; });
    }
  }

  async function start() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('user').innerHTML = `${esc(session.user.name)} <small>${esc(session.user.role)}</small>`;
    $('as-of').value = $('as-of').value || CONFIG.today;
    catalog = await authFetch('/tiles');
    anju.catalog = catalog;
    map = anju.map = new maplibregl.Map({
      container: 'map',
      style: baseStyle(),
      center: [102.5, 28.0],
      zoom: 7,
      attributionControl: { compact: true },
      transformRequest: (url) => (url.startsWith(location.origin) ? { url, headers: { Authorization: `Bearer ${session.access}` } } : { url }),
    });
    map.addControl(new maplibregl.NavigationControl(), 'top-right');
    await new Promise((resolve) => map.on('load', resolve));
    // Drawn bottom to top: areas, then points in reverse catalog order (sites on top of facilities and households).
    const drawOrder = [...catalog.layers.filter((l) => l.geometryType !== 'Point'), ...catalog.layers.filter((l) => l.geometryType === 'Point').reverse()];
    for (const item of drawOrder) {
      map.addSource(`anju-${item.name}`, { type: 'vector', url: tileJsonUrl(item) });
      const layers = styleLayers(item);
      anju.styleLayers[item.name] = layers.map((l) => l.id);
      for (const layer of layers) map.addLayer(layer);
    }
    bindPopups();
    layerControls();
    const areas = catalog.layers.find((l) => l.name === 'admin_areas');
    if (areas) {
      const tj = await authFetch(tileJsonUrl(areas));
      map.fitBounds([[tj.bounds[0], tj.bounds[1]], [tj.bounds[2], tj.bounds[3]]], { padding: 40, duration: 0 });
      await loadCoverage();
    }
    $('as-of').addEventListener('change', async () => {
      for (const item of catalog.layers) {
        if (item.filters.includes('asOf')) map.getSource(`anju-${item.name}`).setUrl(tileJsonUrl(item));
      }
      if (areas) await loadCoverage();
      $('status').textContent = `日期 Date: ${asOf()}`;
    });
    await new Promise((resolve) => (map.loaded() ? resolve() : map.once('idle', resolve)));
    anju.ready = true;
    $('status').textContent = `日期 Date: ${asOf()}`;
  }

  function signOut(message) {
    clearTimeout(refreshTimer);
    sessionStorage.removeItem(SESSION_KEY);
    session = null;
    if (map) map.remove();
    map = anju.map = null;
    anju.ready = false;
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
  }

  $('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      keep(await postJSON('/auth/login', { name: $('name').value, password: $('password').value }));
      $('password').value = '';
      await start();
    } catch (e) {
      $('login-error').textContent = e.message;
    }
  });

  $('logout').addEventListener('click', async () => {
    const token = session && session.refresh;
    signOut('已退出 Logged out');
    if (token) await postJSON('/auth/logout', { refreshToken: token }).catch(() => {});
  });

  const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
  if (saved) {
    session = saved;
    (saved.expires - Date.now() < 60000 ? refresh() : Promise.resolve(keep({
      accessToken: saved.access, refreshToken: saved.refresh, expiresIn: (saved.expires - Date.now()) / 1000, user: saved.user,
    }))).then(() => session && start()).catch((e) => signOut(e.message));
  }
})();
