/** The page config that the server (jupyterhub-singleuser, extensions/cookieless.py) writes. */

/** The keys of page config this extension reads. */
export interface ILearnHubPageConfig {
  /** The server's base URL, e.g. "/user/learner/". */
  baseUrl?: string;
  /** The hub's prefix ("/hub/"), set by jupyterhub-singleuser. */
  hubPrefix?: string;
  /** The hub's origin when it has a domain of its own, else absent. */
  hubHost?: string;
  /** The session's token: an LMS launch's, or a direct login's cookie token. */
  token?: string;
  /** "true" only for a session that its token authenticated. */
  appendToken?: string | boolean;
  /** Whether the person is staff (instructor or TA) of the course. */
  learnhubStaff?: boolean;
}

/**
 * The page config JupyterLab itself reads at start-up (the jupyter-config-data script),
 * read again on each call rather than through @jupyterlab/coreutils' PageConfig, whose
 * copy is taken once.
 */
export function pageConfig(): ILearnHubPageConfig {
  const element =
    typeof document === 'undefined' ? null : document.getElementById('jupyter-config-data');
  try {
    return element ? JSON.parse(element.textContent || '') : {};
  } catch (e) {
    return {};
  }
}

/**
 * The token of a session that its token authenticated (an LMS launch), or "". The server
 * sets appendToken only for those (extensions/cookieless.py); jupyterhub-singleuser puts
 * a direct login's cookie token in page config too, and that session needs no help.
 */
export function launchToken(): string {
  const config = pageConfig();
  return String(config.appendToken).toLowerCase() === 'true' ? config.token || '' : '';
}
