/** The cookieless-session plugin: a launch token's session without cookies in JupyterLab. */

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import type { Contents, KernelSpec } from '@jupyterlab/services';

import { NAME } from './constants';
import { withToken, withoutToken } from './urls';

/**
 * Take the token out of the address bar, so it is not bookmarked, shared or shown;
 * the session keeps it in page config. replaceState adds no history entry and keeps
 * the path, the other parameters and the hash.
 */
export function removeTokenFromAddressBar(): void {
  const location = window.location;
  const search = withoutToken(location.search);
  if (search !== location.search) {
    window.history.replaceState(
      window.history.state,
      '',
      location.pathname + search + location.hash
    );
  }
}

/** A contents manager, whose default drive ContentsManager.getDownloadUrl delegates to. */
type ContentsWithDrive = Contents.IManager & { defaultDrive?: Contents.IDrive };

/**
 * The default drive builds download URLs as <baseUrl>files/<path> plus an _xsrf taken
 * from document.cookie, and the browser fetches them itself (file-browser downloads,
 * <img> for relative images in Markdown), so no Authorization header goes along. Without
 * a cookie the server would refuse them; the session's token in the URL authenticates
 * them instead. Only the default drive (this server's files) is wrapped, so the token
 * never goes to another drive's URLs. ContentsManager.getDownloadUrl delegates here.
 */
export function addTokenToDownloadUrls(contents: ContentsWithDrive): void {
  const drive = contents.defaultDrive || contents;
  // ServerConnection settings take the token from page config ("token").
  const token = drive.serverSettings ? drive.serverSettings.token : '';
  if (!token) {
    return;
  }
  const getDownloadUrl = drive.getDownloadUrl.bind(drive);
  drive.getDownloadUrl = (path: string) =>
    getDownloadUrl(path).then(url => withToken(url, token));
}

/** specs with every resource URL (kernel logos) carrying the token. */
function specsWithToken(specs: KernelSpec.ISpecModels, token: string): KernelSpec.ISpecModels {
  const kernelspecs: KernelSpec.ISpecModels['kernelspecs'] = {};
  Object.keys(specs.kernelspecs || {}).forEach(name => {
    const spec = specs.kernelspecs[name];
    if (!spec || !spec.resources) {
      kernelspecs[name] = spec;
      return;
    }
    const resources: { [key: string]: string } = {};
    Object.keys(spec.resources).forEach(key => {
      resources[key] = withToken(spec.resources[key], token);
    });
    kernelspecs[name] = { ...spec, resources };
  });
  return { ...specs, kernelspecs };
}

/**
 * Kernel logos in the launcher are <img> elements pointing at the kernelspec resource
 * URLs, which carry no token either; serve the specs with the token in those URLs.
 * The manager's own `specs` getter stays the source; each result is rewritten once.
 */
export function addTokenToKernelLogos(
  kernelspecs: KernelSpec.IManager | null | undefined,
  token: string
): void {
  if (!kernelspecs) {
    return;
  }
  let descriptor: PropertyDescriptor | undefined;
  for (let p = Object.getPrototypeOf(kernelspecs); p && !descriptor; p = Object.getPrototypeOf(p)) {
    descriptor = Object.getOwnPropertyDescriptor(p, 'specs');
  }
  const getSpecs = descriptor && descriptor.get;
  if (!token || !getSpecs) {
    return;
  }
  const rewritten = new WeakMap<KernelSpec.ISpecModels, KernelSpec.ISpecModels>();
  Object.defineProperty(kernelspecs, 'specs', {
    configurable: true,
    get: () => {
      const specs: KernelSpec.ISpecModels | null = getSpecs.call(kernelspecs);
      if (!specs) {
        return specs;
      }
      if (!rewritten.has(specs)) {
        rewritten.set(specs, specsWithToken(specs, token));
      }
      return rewritten.get(specs);
    }
  });
}

export const cookielessSession: JupyterFrontEndPlugin<void> = {
  id: `${NAME}:cookieless-session`,
  description:
    'Removes the token from the address bar and adds it to download and logo URLs (and, ' +
    "through the router, to JupyterLab's loads of its own page).",
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    removeTokenFromAddressBar();
    addTokenToDownloadUrls(app.serviceManager.contents);
    const settings = app.serviceManager.serverSettings;
    addTokenToKernelLogos(app.serviceManager.kernelspecs, settings ? settings.token : '');
  }
};
