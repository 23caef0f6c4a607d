import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

import { Api } from './api';
import { clearSession, loadSession, saveSession, type Session } from './session';
import { SignIn } from './pages/SignIn';
import { SourcesPage } from './pages/Sources';
import { DestinationsPage } from './pages/Destinations';
import { ForwardingRulesPage } from './pages/ForwardingRules';
import { LivePage } from './pages/Live';
import { VolumePage } from './pages/Volume';
import { ContractsPage } from './pages/Contracts';
import { TransformationsPage } from './pages/Transformations';
import { ReplayPage } from './pages/Replay';
import { PrivacyPage } from './pages/Privacy';

// Pages live in the URL's fragment (#/live): only the page's name, never a token or a filter.
const PAGES = [
  { id: 'sources', title: 'Sources', component: SourcesPage },
  { id: 'destinations', title: 'Destinations', component: DestinationsPage },
  { id: 'forwarding-rules', title: 'Forwarding rules', component: ForwardingRulesPage },
  { id: 'live', title: 'Live debugger', component: LivePage },
  { id: 'volume', title: 'Volume', component: VolumePage },
  { id: 'contracts', title: 'Contracts', component: ContractsPage },
  { id: 'transformations', title: 'Transformations', component: TransformationsPage },
  { id: 'replay', title: 'Dead letters & quarantine', component: ReplayPage },
  { id: 'privacy', title: 'Privacy', component: PrivacyPage },
] as const;

type PageId = (typeof PAGES)[number]['id'];

function pageFromHash(): PageId {
  const id = window.location.hash.replace(/^#\/?/, '');
  return (PAGES.find((page) => page.id === id)?.id ?? 'sources') as PageId;
}

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [expired, setExpired] = useState(false);
  const [page, setPage] = useState<PageId>(() => pageFromHash());
  const heading = useRef<HTMLHeadingElement>(null);
  const firstRender = useRef(true);

  useEffect(() => {
    const onHash = () => setPage(pageFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    const current = PAGES.find((p) => p.id === page)!;
    document.title = `${current.title} · Streams console`;
    // Move focus to the new page's heading, so keyboard and screen-reader users land on it.
    if (firstRender.current) firstRender.current = false;
    else heading.current?.focus();
  }, [page, session]);

  const signOut = () => {
    clearSession();
    setSession(null);
  };

  const api = useMemo(
    () =>
      session
        ? new Api(session, () => {
            clearSession();
            setExpired(true);
            setSession(null);
          })
        : null,
    [session],
  );

  if (!session || !api) {
    return (
      <SignIn
        expired={expired}
        onSignedIn={(next) => {
          saveSession(next);
          setExpired(false);
          setSession(next);
        }}
      />
    );
  }

  const current = PAGES.find((p) => p.id === page)!;
  const Page = current.component;
  return (
    <div class="layout">
      <a class="skip-link" href="#main" onClick={(e) => { e.preventDefault(); heading.current?.focus(); }}>
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">Streams</span>
        <span class="workspace" title={session.workspaceId}>
          Workspace <strong>{session.workspaceName}</strong>
        </span>
        <button type="button" class="secondary small" onClick={signOut}>Sign out</button>
      </header>
      <nav class="sidebar" aria-label="Console pages">
        <ul>
          {PAGES.map((p) => (
            <li key={p.id}>
              <a href={`#/${p.id}`} aria-current={p.id === page ? 'page' : undefined}>{p.title}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" class="content">
        <h1 ref={heading} tabIndex={-1}>{current.title}</h1>
        <Page key={page} api={api} />
      </main>
    </div>
  );
}
