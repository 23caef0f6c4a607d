import { useState } from 'preact/hooks';

import { type Api, messageOf } from '../api';
import { Loading, Notice } from '../components/common';
import { Name, Time } from '../components/text';
import { useLoad } from '../hooks';
import type { WorkspacePrivacy } from '../types';

/** The workspace's privacy settings: whether consent is required, and its PII rules (shown; they
 * are edited through the API, and sent back unchanged when consent_required is saved, since a
 * PUT replaces the whole settings). Sources' own settings are under each source. */
export function PrivacyPage(props: { api: Api }) {
  const { api } = props;
  const loaded = useLoad((signal) => api.get<WorkspacePrivacy>('/privacy', undefined, signal), [api]);
  const [saved, setSaved] = useState<WorkspacePrivacy | null>(null);
  const [required, setRequired] = useState<boolean | null>(null);
  const [said, setSaid] = useState<{ kind: 'error' | 'success'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const settings = saved ?? loaded.data;
  const consentRequired = required ?? settings?.consent_required ?? false;

  const save = async (event: Event) => {
    event.preventDefault();
    if (!settings) return;
    setBusy(true);
    setSaid(null);
    try {
      const answer = await api.put<WorkspacePrivacy>('/privacy', {
        pii_rules: settings.pii_rules.map((rule) => ({ path: rule.path, action: rule.action })),
        consent_required: consentRequired,
      });
      setSaved(answer);
      setRequired(null);
      setSaid({ kind: 'success', text: 'Saved: routing applies it within 10 s.' });
    } catch (err) {
      setSaid({ kind: 'error', text: messageOf(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="stack">
      <p class="lead">
        Settings of the whole workspace. Each source’s IP policy, bot policy and cookieless mode are under its
        <strong> Privacy</strong> button on Sources; each destination’s consent categories in its form.
      </p>
      {loaded.error ? <Notice kind="error">{loaded.error}</Notice> : null}
      {!settings && !loaded.error ? <Loading /> : null}
      {settings ? (
        <>
          <section class="card stack" aria-labelledby="consent-title">
            <h2 id="consent-title">Consent</h2>
            <form class="stack" onSubmit={save}>
              <div class="field inline">
                <input id="consent-required" type="checkbox" role="switch" checked={consentRequired} aria-describedby="consent-required-help"
                  onChange={(e) => { setSaid(null); setRequired((e.currentTarget as HTMLInputElement).checked); }} />
                <label for="consent-required">Require consent</label>
              </div>
              <p class="help" id="consent-required-help">
                On: an event without <code>context.consent.categoryPreferences</code> is held back from every destination
                that names consent categories. Off (the default, as in Segment): such events go to them.
              </p>
              <div class="button-row">
                <button type="submit" disabled={busy}>Save consent setting</button>
                {busy ? <span class="muted" role="status">Saving…</span> : null}
              </div>
              {said ? <Notice kind={said.kind}>{said.text}</Notice> : null}
            </form>
          </section>
          <section class="card stack" aria-labelledby="pii-title">
            <h2 id="pii-title">PII rules</h2>
            <p class="help">
              Applied by process before contracts, storage and routing; hashed with {settings.hashing} under a secret
              kept server-side. Changed with <code>PUT /privacy</code> (docs/PRIVACY.md).
              {settings.updated_at ? <> Last changed <Time iso={settings.updated_at} />.</> : null}
            </p>
            {settings.pii_rules.length === 0 ? (
              <p class="muted">No PII rules.</p>
            ) : (
              <div class="table-wrap">
                <table>
                  <caption class="visually-hidden">PII rules</caption>
                  <thead>
                    <tr><th scope="col">Field path</th><th scope="col">Action</th></tr>
                  </thead>
                  <tbody>
                    {settings.pii_rules.map((rule) => (
                      <tr key={rule.path}>
                        <th scope="row"><code><Name text={rule.path} /></code></th>
                        <td>{rule.action}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      ) : null}
    </div>
  );
}
