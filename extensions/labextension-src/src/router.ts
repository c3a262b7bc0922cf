/** JupyterLab's loads of its own page keep a launch token's session. */

import type { IRouter, Router } from '@jupyterlab/application';

import { NAME } from './constants';
import { launchToken } from './pageconfig';
import { isLabPage, withToken } from './urls';

type Navigate = (this: Router, path: string, options?: IRouter.INavOptions) => void;
type Reload = (this: Router) => void;

/** Marks a navigate() that this module installed, so a second call changes nothing. */
interface IKeepsToken {
  learnhubKeepsToken?: boolean;
}

/** The session's token if `url` is a page of JupyterLab under `router`, else "". */
function tokenFor(router: Router, url: URL): string {
  const token = launchToken();
  if (!token || typeof router.base !== 'string' || url.origin !== window.location.origin) {
    return '';
  }
  return isLabPage(url.pathname, router.base) ? token : '';
}

/**
 * JupyterLab loads its page again through its router: navigate(url, {hard: true}) when
 * the window resolver finds this tab's workspace held by another tab (the resolver sends
 * it to lab/workspaces/auto-N?reset: @jupyterlab/apputils-extension:resolver) or when a
 * workspace is opened, and reload() when the application state is reset. Those are new
 * requests of the page, and a token session has no cookie to authenticate them: they must
 * carry the token, or the server sends them to the hub's sign-in page. The page they load
 * takes it out of the address bar again, as after the launch. They replace the current
 * history entry instead of pushing one: an entry without the token cannot be loaded
 * again (Back would end on the sign-in page), and one still holding it (a page that
 * navigates before this plugin removed the token) must not stay in history.
 *
 * The Router class is changed, not its instance: JupyterLab evaluates this extension's
 * module (src/index.ts does this) before it creates the application and activates any
 * plugin, so the resolver cannot navigate first. Navigations inside the page, pages other
 * than JupyterLab's (log out), and sessions with a cookie are left as they are.
 */
export function keepTokenOnPageLoads(router: typeof Router | undefined): void {
  const proto = router && router.prototype;
  if (!proto || typeof proto.navigate !== 'function' || typeof proto.reload !== 'function') {
    console.warn(`${NAME}: JupyterLab's Router was not found: its page loads lose the token`);
    return;
  }
  if ((proto.navigate as IKeepsToken).learnhubKeepsToken) {
    return;
  }
  const navigate: Navigate = proto.navigate;
  const reload: Reload = proto.reload;

  proto.reload = function (this: Router): void {
    // navigate() to another page (log out) pushes that URL, then reloads: left as it is.
    const url = new URL(window.location.href);
    const token = tokenFor(this, url);
    if (!token) {
      return reload.call(this);
    }
    window.location.replace(withToken(url.href, token));
  };
  proto.navigate = function (this: Router, path: string, options?: IRouter.INavOptions): void {
    if (!(options && options.hard) || typeof this.base !== 'string') {
      return navigate.call(this, path, options);
    }
    // As Router.navigate: a path not under the base is relative to it.
    let target = String(path || '');
    if (target.indexOf(this.base) !== 0) {
      target = this.base + target.replace(/^\//, '');
    }
    const url = new URL(target, window.location.href);
    const token = tokenFor(this, url);
    if (!token) {
      return navigate.call(this, path, options);
    }
    window.location.replace(withToken(url.href, token));
  };
  (proto.navigate as IKeepsToken).learnhubKeepsToken = true;
}
