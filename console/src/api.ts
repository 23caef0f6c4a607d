// The Streams management API, on this page's own origin, with the session's Bearer token.

import type { Session } from './session';

export class ApiError extends Error {
  readonly status: number;
  readonly field: string | null;
  readonly details: string | null;

  constructor(status: number, message: string, field: string | null = null, details: string | null = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.field = field;
    this.details = details;
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>;

export function queryString(query: Query | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === '') continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

async function errorOf(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`;
  let field: string | null = null;
  let details: string | null = null;
  try {
    const body = (await response.json()) as { message?: string; field?: string; details?: string };
    if (body && typeof body.message === 'string') message = body.message;
    field = body?.field ?? null;
    details = body?.details ?? null;
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(response.status, message, field, details);
}

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** Reads a successful answer's headers (a paged list's X-Next-Cursor and X-Total-Count). */
  onHeaders?: (headers: Headers) => void;
}

export async function send<T>(
  token: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, Accept: 'application/json' };
  let body: string | undefined;
  if (options.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(options.body);
  }
  let response: Response;
  try {
    response = await fetch(path + queryString(options.query), {
      method,
      headers,
      body,
      signal: options.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError(0, 'Streams could not be reached: is the gateway running?');
  }
  if (!response.ok) throw await errorOf(response);
  options.onHeaders?.(response.headers);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface Me {
  workspace_id: string;
  workspace_name: string;
  token_id: string;
  token_name: string;
}

export function whoAmI(token: string): Promise<Me> {
  return send<Me>(token, 'GET', '/api/v1/me');
}

export class Api {
  private readonly session: Session;
  private readonly onUnauthorized: () => void;

  constructor(session: Session, onUnauthorized: () => void) {
    this.session = session;
    this.onUnauthorized = onUnauthorized;
  }

  get token(): string {
    return this.session.token;
  }

  /** A path under this workspace: /api/v1/workspaces/{id}<path>. */
  workspacePath(path: string): string {
    return `/api/v1/workspaces/${encodeURIComponent(this.session.workspaceId)}${path}`;
  }

  async request<T>(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<T> {
    try {
      return await send<T>(this.session.token, method, this.workspacePath(path), options);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.onUnauthorized();
      throw error;
    }
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, { query, signal });
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path);
  }
}

export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
