/** The token in the query of a URL. */

/** The decoded name of one raw "name=value" query part. */
function paramName(part: string): string {
  const name = part.split('=')[0].replace(/\+/g, ' ');
  try {
    return decodeURIComponent(name);
  } catch (e) {
    return name;
  }
}

/**
 * `search` (with its "?") less every token parameter. The other parts are kept as
 * written rather than re-encoded by URLSearchParams, so they read the same afterwards.
 */
export function withoutToken(search: string): string {
  if (search.length <= 1) {
    return search;
  }
  const kept = search
    .slice(1)
    .split('&')
    .filter(part => paramName(part) !== 'token');
  return kept.length ? '?' + kept.join('&') : '';
}

/** `url` (resolved against this page's address) with `token` as its token parameter. */
export function withToken(url: string, token: string): string {
  const parsed = new URL(url, window.location.href);
  parsed.searchParams.set('token', token);
  return parsed.href;
}

/** Whether `pathname` is a page of JupyterLab under `base` (jupyterlab_server's route). */
export function isLabPage(pathname: string, base: string): boolean {
  if (pathname.indexOf(base) !== 0) {
    return false;
  }
  return /^(lab|doc)(\/workspaces\/[a-zA-Z0-9_-]+)?(\/tree\/.*)?\/?$/.test(
    pathname.slice(base.length)
  );
}
