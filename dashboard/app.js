// The shuttle dashboard: the projects and deployments of one key, from
// this server's /v1 API.  The key is asked for once per tab and kept in
// sessionStorage only; every API string reaches the page as text.

'use strict';

const KEY = 'shuttle.key';
const REFRESH_MS = 2000;
const LOG_MAX = 512 * 1024;         // characters a log view keeps
const RETRY_MS = 2000;              // a log stream that broke opens again

const $ = (id) => document.getElementById(id);

let key = sessionStorage.getItem(KEY);
let epoch = 0;                      // bumped when the key changes
let timer = null;
let refreshing = false;
let busy = false;                   // a rollback or restart in flight
let rollbackTo = 0;                 // the open project's rollback_to
let refreshFailed = false;
let follow = null;                  // the AbortController of the log streams
let view = { project: null, deployment: null };
let shown = {};                     // what is on the page, to skip redraws

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// fetch /v1 + path with the key: the JSON answer (or, with stream, the
// response); an ApiError with the API's message otherwise.  A 401 asks
// for the key again.
async function api(path, { method = 'GET', body, signal, stream } = {}) {
  const mine = epoch;
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`/v1${path}`, {
    method, headers, signal, cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (stream && res.ok) return res;
  const text = await res.text();
  let data = null;
  try { data = JSON.parse(text); } catch { /* nginx's own page */ }
  if (res.ok) return data;
  let msg = data && typeof data.error === 'string' ? data.error : '';
  if (!msg && text.length < 300 && !text.trimStart().startsWith('<')) {
    msg = text.trim();
  }
  msg = `${msg || res.statusText || 'error'} (${res.status})`;
  const err = new ApiError(res.status, msg);
  if (res.status === 401 && mine === epoch) unauthorized(err.message);
  throw err;
}

// an element with properties and children (strings become text nodes)
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'onclick') e.addEventListener('click', v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined));
  return e;
}

const stateClass = (s) => `state state-${String(s).replace(/[^a-z]/g, '')}`;

function time(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return el('time', { dateTime: iso, title: iso },
            isNaN(d) ? iso : d.toLocaleString());
}

// an http(s) link to a project's URL as the API gives it, or its text
function link(url) {
  if (!url) return '—';
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') {
      return el('a', { href: u.href, target: '_blank',
                       rel: 'noopener noreferrer' }, url);
    }
  } catch { /* not a URL */ }
  return url;
}

function notify(text, error = false) {
  const m = $('message');
  refreshFailed = false;
  m.textContent = text;
  m.className = error ? 'error' : '';
  m.hidden = !text;
}


// the key ------------------------------------------------------------------

function showLogin(error) {
  $('login').hidden = false;
  $('signout').hidden = true;
  for (const id of ['projects', 'project', 'logs']) $(id).hidden = true;
  $('key-error').textContent = error || '';
  $('key').focus();
}

function forget() {
  key = null;
  sessionStorage.removeItem(KEY);
  epoch++;
  clearTimeout(timer);
  stopFollowing();
  shown = {};
  busy = false;
  for (const id of ['project-rows', 'deployment-rows', 'log-build',
                    'log-runtime']) {
    $(id).replaceChildren();
  }
}

function unauthorized(msg) {
  forget();
  notify('');
  showLogin(`The API refused this key: ${msg}. Enter it again.`);
}

$('key-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const value = $('key').value.trim();
  if (!value) return;
  key = value;
  $('key-error').textContent = 'Checking the key…';
  try {
    await api('/projects');
  } catch (e) {
    if (e.status !== 401) {
      key = null;
      $('key-error').textContent = `The API did not answer: ${e.message}`;
    }
    return;
  }
  sessionStorage.setItem(KEY, key);
  $('key').value = '';
  showApp();
});

$('signout').addEventListener('click', () => {
  forget();
  notify('The key is forgotten.');
  showLogin();
});

function showApp() {
  $('login').hidden = true;
  $('signout').hidden = false;
  $('projects').hidden = false;
  route(true);
}


// the views: #/ the projects, #/NAME a project, #/NAME/ID its logs ----------

function route(force = false) {
  let [project, id] = [null, null];
  try {
    [project, id] = location.hash.replace(/^#\/?/, '').split('/')
      .map(decodeURIComponent);
  } catch { /* a bad escape: the list */ }
  project = project || null;
  id = /^\d+$/.test(id || '') ? Number(id) : null;

  if (project !== view.project) {
    $('deployment-rows').replaceChildren();
    $('project-name').textContent = project || '';
    shown = {};
  }
  const logs = force || project !== view.project || id !== view.deployment;
  view = { project, deployment: id };
  if (!key) return;
  $('project').hidden = !project;
  if (logs) showLogs(project && id);
  refreshNow();
}

window.addEventListener('hashchange', () => route());

function refreshNow() {
  clearTimeout(timer);
  refresh();
}

async function refresh() {
  if (!key || refreshing) return;
  const mine = epoch;
  refreshing = true;
  try {
    const { projects } = await api('/projects');
    if (mine !== epoch) return;
    renderProjects(projects);
    const name = view.project;
    if (name) {
      const path = `/projects/${encodeURIComponent(name)}`;
      const p = await api(path);      // with rollback_to, which the list has not
      const { deployments } = await api(`${path}/deployments`);
      if (mine !== epoch || name !== view.project) return;
      renderProject(p, deployments);
    }
    if (refreshFailed) notify('');
  } catch (e) {
    if (mine === epoch && e.status !== 401) {
      notify(`Could not refresh: ${e.message}`, true);
      refreshFailed = true;
    }
  } finally {
    refreshing = false;
    if (key) {                      // the one loop, whichever key began it
      clearTimeout(timer);
      timer = setTimeout(refresh, REFRESH_MS);
    }
  }
}

function renderProjects(projects) {
  const sig = JSON.stringify([view.project, projects.map(
    (p) => [p.name, p.state, p.url, p.current])]);
  if (sig === shown.projects) return;
  shown.projects = sig;

  $('no-projects').hidden = projects.length > 0;
  $('project-rows').replaceChildren(...projects.map((p) => el('tr', {
    className: p.name === view.project ? 'selected' : '',
    dataset: { project: p.name },
  },
  el('td', {}, el('a', { href: `#/${encodeURIComponent(p.name)}` }, p.name)),
  el('td', { className: stateClass(p.state) }, p.state),
  el('td', { className: 'url' }, link(p.url)),
  el('td', {}, p.current ? `#${p.current}` : '—'))));
}

const replaced = (d) => d.state === 'superseded' || d.state === 'stopped';

function renderProject(p, deployments) {
  const sig = JSON.stringify([busy, view, p.state, p.url, p.current,
                              p.rollback_to, deployments]);
  if (sig === shown.deployments) return;
  shown.deployments = sig;

  $('project-name').textContent = p.name;
  $('project-state').textContent = p.state;
  $('project-state').className = stateClass(p.state);
  $('project-current').textContent = p.current ? `#${p.current}` : 'none';
  $('project-url').replaceChildren(link(p.url));
  // where a rollback with no ID goes, as the builder says
  rollbackTo = p.rollback_to || 0;
  $('rollback-prev').textContent = rollbackTo
    ? `Roll back to previous (#${rollbackTo})` : 'Roll back to previous';
  $('rollback-prev').disabled = busy || !rollbackTo;
  $('restart').disabled = busy || !p.current;

  $('deployment-rows').replaceChildren(...deployments.map((d) => {
    const serving = d.id === p.current;
    const href = `#/${encodeURIComponent(p.name)}/${d.id}`;
    return el('tr', {
      className: serving ? 'serving' : '',
      dataset: { id: String(d.id), state: d.state },
    },
    el('td', {}, `#${d.id}`),
    el('td', {},
       el('span', { className: stateClass(d.state) }, d.state),
       serving ? el('span', { className: 'badge' }, 'serving') : null),
    el('td', {}, time(d.created)),
    el('td', {}, time(d.updated)),
    el('td', { className: 'reason' }, d.reason || ''),
    el('td', { className: 'actions' },
       el('a', {
         href,
         ariaCurrent: d.id === view.deployment ? 'true' : null,
       }, 'logs'), ' ',
       replaced(d) ? el('button', {
         type: 'button',
         className: 'rollback',
         disabled: busy,
         onclick: () => rollback(p.name, d.id),
       }, `Roll back to #${d.id}`) : null));
  }));
}


// rollback and restart --------------------------------------------------------

async function act(question, doing, path, body, done) {
  if (busy || !window.confirm(question)) return;
  const mine = epoch;
  busy = true;
  shown.deployments = null;
  for (const b of $('project').querySelectorAll('button')) b.disabled = true;
  notify(doing);
  try {
    const r = await api(path, { method: 'POST', body });
    if (mine === epoch) notify(done(r));
  } catch (e) {
    if (mine === epoch && e.status !== 401) {
      notify(`${doing} failed: ${e.message}`, true);
    }
  } finally {
    if (mine === epoch) {
      busy = false;
      shown.deployments = null;
      refreshNow();
    }
  }
}

function rollback(name, id) {
  const to = id ? `deployment #${id}`
    : `the deployment it ran before (#${rollbackTo})`;
  act(`Roll ${name} back to ${to}?`, `Rolling ${name} back to ${to}…`,
      `/projects/${encodeURIComponent(name)}/rollback`,
      id ? { deployment: id } : {},
      (r) => `${name} now runs deployment #${r.id} again.`);
}

$('rollback-prev').addEventListener('click', () => rollback(view.project, 0));

$('restart').addEventListener('click', () => {
  const name = view.project;
  act(`Restart ${name} (a fresh loader, no downtime)?`, `Restarting ${name}…`,
      `/projects/${encodeURIComponent(name)}/restart`, {},
      (r) => `${name} restarted: deployment #${r.id} serves from a new `
             + 'loader.');
});


// logs: followed while shown -----------------------------------------------

function stopFollowing() {
  if (follow) follow.abort();
  follow = null;
}

function showLogs(id) {
  stopFollowing();
  $('logs').hidden = !id;
  $('log-build').replaceChildren();
  $('log-runtime').replaceChildren();
  if (!id) return;
  $('logs-id').textContent = `#${id}`;
  follow = new AbortController();
  followLog(id, false, follow.signal);
  followLog(id, true, follow.signal);
}

$('logs-close').addEventListener('click', () => {
  location.hash = `#/${encodeURIComponent(view.project)}`;
});

// GET /v1/deployments/ID/logs?follow=1: the API ends the stream once the
// build settles (the build log) or the deployment no longer runs
async function followLog(id, runtime, signal) {
  const pre = $(runtime ? 'log-runtime' : 'log-build');
  const status = $(runtime ? 'log-runtime-status' : 'log-build-status');
  status.className = '';
  status.textContent = '(following)';
  pre.replaceChildren();
  try {
    const res = await api(`/deployments/${id}/logs?follow=1`
                          + (runtime ? '&runtime=1' : ''),
                          { signal, stream: true });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      append(pre, value);
    }
    status.textContent = runtime ? '(ended: the deployment does not run)'
                                 : '(complete)';
  } catch (e) {
    if (signal.aborted || e.status === 401) return;
    status.className = 'error';
    status.textContent = `(${e.message})`;
    if (!(e instanceof ApiError)) {
      setTimeout(() => signal.aborted || followLog(id, runtime, signal),
                 RETRY_MS);
    }
  }
}

function append(pre, text) {
  const bottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  pre.append(text);
  if (pre.textContent.length > LOG_MAX) {
    pre.textContent = pre.textContent.slice(-LOG_MAX / 2);
  }
  if (bottom) pre.scrollTop = pre.scrollHeight;
}


if (key) showApp(); else showLogin();
