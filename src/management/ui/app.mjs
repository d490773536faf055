// Warren's management web UI: plain DOM, no framework, no build step, nothing from a CDN.
// Every name and payload shown comes from the broker and is untrusted, so text goes in with
// textContent (through h()), never as HTML.

import { $, flash, h } from './dom.mjs';
import { api, session } from './api.mjs';
import { listViews } from './views.mjs';
import { detailViews } from './detail-views.mjs';

const views = { ...listViews, ...detailViews };

// ------------------------------------------------------------------ routing and refresh

let timer = null;
let rendering = false;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const name = parts[0] && views[parts[0]] ? parts[0] : 'overview';
  return { name, args: parts.slice(1) };
}

let renderAgain = false;

async function render() {
  if (rendering) {
    // An action finished during a refresh: show its effect right after.
    renderAgain = true;
    return;
  }
  rendering = true;
  const { name, args } = route();
  for (const a of document.querySelectorAll('#nav a')) {
    const base = a.dataset.view;
    a.classList.toggle('active', base === name || base === `${name}s`);
  }
  try {
    const content = await views[name](...args);
    // Keep what the user is typing: only list views and stats refresh wholesale.
    const view = $('#view');
    const active = document.activeElement;
    if (
      view.dataset.rendered === location.hash &&
      active &&
      view.contains(active) &&
      active.matches('input, textarea, select')
    ) {
      refreshStatsOnly(view, content);
    } else {
      view.replaceChildren(...content.filter(Boolean));
      view.dataset.rendered = location.hash;
    }
  } catch (e) {
    if (e.status !== 401) flash(`Could not load ${name}: ${e.message}`, false);
  } finally {
    rendering = false;
  }
  if (renderAgain) {
    renderAgain = false;
    await render();
  }
}

/** While a form has focus, refresh only the tables and figures, not the forms. */
function refreshStatsOnly(view, content) {
  const fresh = h('div', {}, ...content.filter(Boolean));
  const oldCards = view.querySelectorAll('section.card');
  const newCards = fresh.querySelectorAll('section.card');
  oldCards.forEach((old, i) => {
    const neu = newCards[i];
    if (!neu || old.querySelector('form, textarea')) return;
    old.replaceWith(neu);
  });
}

function schedule() {
  if (timer) clearInterval(timer);
  const ms = Number($('#refresh-interval').value);
  timer = ms > 0 ? setInterval(() => document.visibilityState === 'visible' && render(), ms) : null;
}

function showLogin(message) {
  session.credentials = null;
  sessionStorage.removeItem('warren-auth');
  if (timer) clearInterval(timer);
  $('#topbar').hidden = true;
  $('#app').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message ?? '';
}

async function login(user, password) {
  session.credentials = btoa(unescape(encodeURIComponent(`${user}:${password}`)));
  try {
    const me = await api('GET', '/whoami');
    session.checked = true;
    sessionStorage.setItem('warren-auth', session.credentials);
    $('#whoami').textContent = `${me.name} (${me.tags.join(', ') || 'no tags'})`;
    $('#login-view').hidden = true;
    $('#topbar').hidden = false;
    $('#app').hidden = false;
    await render();
    schedule();
    return true;
  } catch (e) {
    session.checked = false;
    showLogin(
      e.status === 401
        ? 'Login failed: wrong user name or password, or not a management user.'
        : e.message,
    );
    return false;
  }
}

$('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  login($('#login-user').value, $('#login-password').value);
});
$('#logout').addEventListener('click', () => {
  session.checked = false;
  showLogin();
});
$('#refresh-interval').addEventListener('change', schedule);
window.addEventListener('hashchange', () => {
  flash('');
  render();
});

if (session.credentials) {
  api('GET', '/whoami')
    .then((me) => {
      session.checked = true;
      $('#whoami').textContent = `${me.name} (${me.tags.join(', ')})`;
      $('#login-view').hidden = true;
      $('#topbar').hidden = false;
      $('#app').hidden = false;
      render();
      schedule();
    })
    .catch(() => showLogin());
} else {
  showLogin();
}

session.onLost = showLogin;
session.refresh = render;
