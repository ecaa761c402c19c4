// Preload: node --import ./bearer.mjs <program>
//
// Adds `Authorization: Bearer $BEARER` to every HTTP request the process makes,
// so the conformance suite (which has no option for it) can test an MCP server
// behind the gateway's OAuth check. Does nothing when BEARER is unset.
//
// It installs an undici Agent with an interceptor as the global dispatcher
// rather than patching fetch: Node's built-in fetch (used by the SDK client)
// and the npm undici's request() (used directly by the dns-rebinding scenario)
// both send through the dispatcher stored under the same global symbol, so one
// interceptor covers both. An Authorization header the request already has is
// replaced, so exactly one is sent.

import { Agent, setGlobalDispatcher } from 'undici';

const token = process.env.BEARER;

// undici accepts headers as a plain object, a flat [name, value, ...] array,
// an array of [name, value] pairs, or any iterable of pairs (e.g. Headers).
function headerPairs(headers) {
  if (headers == null) return [];
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) return headers;
    const pairs = [];
    for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
    return pairs;
  }
  if (typeof headers[Symbol.iterator] === 'function') return [...headers];
  return Object.entries(headers);
}

// A flat [name, value, ...] array (keeps repeated headers and their order)
// with any Authorization header swapped for ours.
function withBearer(headers) {
  const flat = [];
  for (const [name, value] of headerPairs(headers)) {
    if (String(name).toLowerCase() !== 'authorization') flat.push(name, value);
  }
  flat.push('authorization', `Bearer ${token}`);
  return flat;
}

const addBearer = (dispatch) => (opts, handler) => dispatch({ ...opts, headers: withBearer(opts.headers) }, handler);

if (token) {
  setGlobalDispatcher(new Agent().compose(addBearer));
}
