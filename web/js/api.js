// The dashboard's only way to the server: the stored API key as a Bearer header, and every refusal turned
// into an ApiError with the server's own message (contract §5 errors: {error: {code, message}}).

const KEY_STORAGE = 'wameter.apiKey';

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    /** Seconds the server asked to wait (its Retry-After header), or null. */
    this.retryAfter = retryAfter;
  }
}

/** Worth asking again as it is: the server could not be reached, was busy (429) or unavailable (502–504). */
export function isRetryable(error) {
  return Boolean(error) && [0, 429, 502, 503, 504].includes(error.status) && error.code !== 'NO_API_KEY';
}

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function setKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/** Query object → "?a=1&b=2", leaving out empty values. */
export function queryString(query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

export async function request(path, { method = 'GET', query, json } = {}) {
  const key = getKey();
  if (!key)
    throw new ApiError(0, 'NO_API_KEY', 'Enter your API key in the box at the top of the page first.');
  const headers = { Authorization: `Bearer ${key}` };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path + queryString(query), {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', `The wameter server cannot be reached (${error.message}).`);
  }
  if (!response.ok) {
    let code = `HTTP_${response.status}`;
    let message = `The server answered ${response.status} ${response.statusText}.`;
    try {
      const body = await response.json();
      if (body && body.error) {
        code = body.error.code ?? code;
        message = body.error.message ?? message;
      }
    } catch {
      // not JSON: keep the status line
    }
    // The server's words are for a script's author (a header, a setting): the page's reader is told what to do.
    if (response.status === 401) {
      message = `The API key kept in this browser was refused: paste a valid one in the "API key" box at the top and press "Use key". The server said: ${message}`;
    }
    if (response.status === 404 && code === 'NOT_FOUND') {
      message = `This server does not offer ${method} ${path}. ${message}`;
    }
    // The server's words point a script at its Retry-After header; a person reads the seconds instead.
    const header = response.headers.get('Retry-After');
    const retryAfter = header !== null && /^\d+$/.test(header.trim()) ? Number(header) : null;
    if (retryAfter !== null) {
      message = `${message.replace(/[\s.]*$/, '')}. Try again in ${retryAfter} second${retryAfter === 1 ? '' : 's'}.`;
    }
    throw new ApiError(response.status, code, message, retryAfter);
  }
  return response;
}

export async function getJson(path, query) {
  return (await request(path, { query })).json();
}

export async function postJson(path, json) {
  return (await request(path, { method: 'POST', json })).json();
}
