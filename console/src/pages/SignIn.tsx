import { useState } from 'preact/hooks';

import { ApiError, messageOf, whoAmI } from '../api';
import { Notice } from '../components/common';
import type { Session } from '../session';

export function SignIn(props: { expired: boolean; onSignedIn: (session: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (!value) {
      setError('Enter a management API token.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await whoAmI(value);
      setToken('');
      props.onSignedIn({
        token: value,
        workspaceId: me.workspace_id,
        workspaceName: me.workspace_name,
        tokenName: me.token_name,
      });
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'This token was refused.' : messageOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="signin" id="main">
      <form class="card" onSubmit={submit} aria-labelledby="signin-title" autoComplete="off">
        <h1 id="signin-title">Streams console</h1>
        {props.expired ? <Notice kind="info">Your session ended: the token was refused. Sign in again.</Notice> : null}
        <label for="token">Management API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          placeholder="stk_…"
          value={token}
          onInput={(e) => setToken((e.currentTarget as HTMLInputElement).value)}
          aria-describedby="token-help"
          aria-invalid={error ? true : undefined}
          required
        />
        <p id="token-help" class="help">
          A token of one workspace (<code>streams token create</code>; under <code>make dev</code>, the
          <code> admin_token</code> of <code>.streams/dev.json</code>). It is kept in this tab's session
          storage only, and sent to this server's API alone.
        </p>
        {error ? <Notice kind="error">{error}</Notice> : null}
        <button type="submit" disabled={busy}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
    </main>
  );
}
