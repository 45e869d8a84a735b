// Which methods a path's routes take, read from the routes the app registers (so it cannot drift from them):
// a request with another method is 405 METHOD_NOT_ALLOWED with an Allow header, never 404 "No such endpoint".

import type { Context } from 'hono';
import { errorResponse } from './errors.js';

/** A registered route as Hono lists it (`app.routes`): middleware is method `ALL`. */
export interface RegisteredRoute {
  method: string;
  path: string;
}

const METHOD_ORDER = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

const patterns = new Map<string, RegExp>();

/** A Hono route path (`/v1/rate-cards/:id`) as a regular expression over request paths. */
function patternOf(routePath: string): RegExp {
  let pattern = patterns.get(routePath);
  if (pattern === undefined) {
    const segments = routePath
      .split('/')
      .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    pattern = new RegExp(`^${segments.join('/')}$`);
    patterns.set(routePath, pattern);
  }
  return pattern;
}

/**
 * The methods the routes at `path` take, in a fixed order, HEAD wherever GET is (Hono answers HEAD with the
 * GET route); `[]` when no route has that path. Middleware (`ALL`) and catch-alls (`/*`: the dashboard's
 * files) are not routes of a path: a path only they match has none.
 */
export function allowedMethods(routes: readonly RegisteredRoute[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.method === 'ALL' || route.path.includes('*')) continue;
    if (patternOf(route.path).test(path)) methods.add(route.method);
  }
  if (methods.has('GET')) methods.add('HEAD');
  const rank = (method: string) => {
    const at = METHOD_ORDER.indexOf(method);
    return at === -1 ? METHOD_ORDER.length : at;
  };
  return [...methods].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** 404 NOT_FOUND for a path no route has; 405 METHOD_NOT_ALLOWED, with Allow, for one whose routes take others. */
export function noRouteResponse(c: Context, routes: readonly RegisteredRoute[]): Response {
  const allowed = allowedMethods(routes, c.req.path);
  const method = c.req.method;
  if (allowed.length === 0 || allowed.includes(method)) return errorResponse(c, 'NOT_FOUND');
  return errorResponse(c, 'METHOD_NOT_ALLOWED', `${method} ${c.req.path}: it takes ${allowed.join(', ')}.`, {
    Allow: allowed.join(', '),
  });
}
