// The console's shell: sign-in, the navigation, the language switch and the hash router (#/jobs/ID).
// Page paths live in the URL's fragment; the token never does.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, api, session } from './api.js';
import { LANGS, lang, setLang, t } from './i18n.js';
import { ErrorNote, html } from './ui.js';
import { Overview } from './pages/overview.js';
import { Jobs } from './pages/jobs.js';
import { Job } from './pages/job.js';
import { Nodes } from './pages/nodes.js';
import { Tenants } from './pages/tenants.js';
import { Usage } from './pages/usage.js';
import { Disclosure } from './pages/disclosure.js';
import { Green } from './pages/green.js';
import { Audit } from './pages/audit.js';

/** The pages in the navigation; `operators` pages are hidden from tenants (their API routes refuse tenants anyway). */
const PAGES = [
  { path: 'overview', key: 'nav.overview', component: Overview },
  { path: 'jobs', key: 'nav.jobs', component: Jobs },
  { path: 'nodes', key: 'nav.nodes', component: Nodes, operators: true },
  { path: 'tenants', key: 'nav.tenants', component: Tenants },
  { path: 'usage', key: 'nav.usage', component: Usage },
  { path: 'disclosure', key: 'nav.disclosure', component: Disclosure, operators: true },
  { path: 'green', key: 'nav.green', component: Green },
  { path: 'audit', key: 'nav.audit', component: Audit, operators: true },
];

/** The route of a location hash: `#/jobs/j123` → { path: 'jobs', id: 'j123' }. */
function parseHash(hash) {
  const [path = 'overview', id] = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  return { path: path || 'overview', id };
}

function useRoute() {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseHash(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function LanguageSwitch({ onChange }) {
  return html`<div class="lang-switch">
    <label for="lang">${t('app.language')}</label>
    <select id="lang" value=${lang()} onChange=${(e) => onChange(e.currentTarget.value)}>
      ${LANGS.map(([code, name]) => html`<option value=${code} selected=${code === lang()}>${name}</option>`)}
    </select>
  </div>`;
}

function SignIn({ onSignedIn, onLang }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState();
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const me = await api('/v1/whoami', { token: token.trim() });
      session.set(token.trim());
      onSignedIn(me);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? new ApiError(401, 'SIGN_IN_FAILED', '') : err);
      setBusy(false);
    }
  };
  return html`<main class="signin" id="main">
    <form class="signin-card" onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title">${t('app.title')}</h1>
      <p class="muted">${t('signin.intro')}</p>
      <label for="token">${t('signin.token')}</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required value=${token} onInput=${(e) => setToken(e.currentTarget.value)} aria-describedby="token-hint" />
      <small id="token-hint" class="muted">${t('signin.hint')}</small>
      <${ErrorNote} error=${error} />
      <button type="submit" class="primary" disabled=${busy || !token.trim()}>${t('signin.submit')}</button>
      <${LanguageSwitch} onChange=${onLang} />
    </form>
  </main>`;
}

function Shell({ me, route, onSignOut, onLang }) {
  const pages = PAGES.filter((p) => !p.operators || me.kind === 'operator');
  const page = route.path === 'jobs' && route.id ? { component: Job } : pages.find((p) => p.path === route.path);
  const Component = page?.component;
  const skip = () => document.querySelector('main h1')?.focus();
  return html`<button type="button" class="skip-link" onClick=${skip}>${t('app.skip')}</button>
    <header class="topbar">
      <a class="brand" href="#/overview">${t('app.title')}</a>
      <div class="topbar-right">
        <span class="whoami">${t(`role.${me.kind}`)}: <strong>${me.displayName ?? me.name}</strong></span>
        <${LanguageSwitch} onChange=${onLang} />
        <button type="button" onClick=${onSignOut}>${t('app.signOut')}</button>
      </div>
    </header>
    <div class="layout">
      <nav class="sidenav" aria-label=${t('app.navigation')}>
        <ul>
          ${pages.map((p) => html`<li><a href=${`#/${p.path}`} aria-current=${route.path === p.path ? 'page' : undefined}>${t(p.key)}</a></li>`)}
        </ul>
      </nav>
      <main id="main">
        ${Component ? html`<${Component} key=${`${route.path}/${route.id ?? ''}`} me=${me} id=${route.id} />` : html`<section class="page" data-ready="true"><h1 tabindex="-1">${t('app.notFound')}</h1><p><a href="#/overview">${t('nav.overview')}</a></p></section>`}
      </main>
    </div>`;
}

function App() {
  const [me, setMe] = useState();
  const [checking, setChecking] = useState(Boolean(session.token));
  const [, setLangState] = useState(lang());
  const route = useRoute();
  const changeLang = (code) => {
    setLang(code);
    setLangState(code);
  };
  useEffect(() => {
    if (session.token) {
      api('/v1/whoami')
        .then(setMe, () => session.clear())
        .finally(() => setChecking(false));
    }
    const signedOut = () => setMe(undefined);
    window.addEventListener('qy-signed-out', signedOut);
    return () => window.removeEventListener('qy-signed-out', signedOut);
  }, []);
  if (checking) return html`<p class="boot">${t('common.loading')}</p>`;
  if (!me) return html`<${SignIn} onSignedIn=${setMe} onLang=${changeLang} />`;
  const signOut = () => {
    session.clear();
    setMe(undefined);
    location.hash = '#/overview';
  };
  return html`<${Shell} key=${lang()} me=${me} route=${route} onSignOut=${signOut} onLang=${changeLang} />`;
}

const root = document.getElementById('app');
root.textContent = ''; // the loading note of index.html
render(html`<${App} />`, root);
