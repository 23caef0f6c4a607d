// The signed-in session: the management API token and its workspace, kept in this tab's
// sessionStorage only (gone when the tab closes; never in a URL, a cookie or a log).

const KEY = 'streams.console.session';

export interface Session {
  token: string;
  workspaceId: string;
  workspaceName: string;
  tokenName: string;
}

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const value = JSON.parse(raw) as Partial<Session>;
    if (typeof value.token !== 'string' || typeof value.workspaceId !== 'string') return null;
    return {
      token: value.token,
      workspaceId: value.workspaceId,
      workspaceName: value.workspaceName ?? value.workspaceId,
      tokenName: value.tokenName ?? '',
    };
  } catch {
    return null;
  }
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}
