import { flash } from './dom.mjs';

// The management API as the UI uses it: basic auth from the login form, JSON both ways.

// ------------------------------------------------------------------ API access

/** Login state, shared by the modules (imports are read-only; properties are not). */
export const session = {
  credentials: sessionStorage.getItem('warren-auth'),
  checked: false,
  /** Called when the server stops accepting the credentials. */
  onLost: (_message) => {},
  /** Re-renders the current view (set by app.mjs). */
  refresh: async () => {},
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.reason ? `${body.error}: ${body.reason}` : `HTTP ${status}`);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const headers = { 'x-requested-with': 'XMLHttpRequest' };
  if (session.credentials) headers.authorization = `Basic ${session.credentials}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`api${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text === '' ? undefined : JSON.parse(text);
  // A 401 "Login failed" after logging in means the user or password changed: log in again.
  // Other 401s (not_authorised for one action) are just errors.
  if (res.status === 401 && session.checked && data?.reason === 'Login failed') {
    session.checked = false;
    session.onLost('Your session is no longer valid; log in again.');
    throw new ApiError(401, data);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const enc = encodeURIComponent;

/** Run an action, report its outcome, and refresh the view. */
export async function act(what, fn) {
  try {
    const result = await fn();
    flash(`${what}: done`);
    await session.refresh();
    return result;
  } catch (e) {
    flash(`${what} failed: ${e.message}`, false);
    return undefined;
  }
}
