/*
 * @learnhub/lab: cookieless learner sessions in JupyterLab, and the privacy policy in its
 * Help menu.
 *
 * Hand-written in the shape of a webpack module-federation remote entry, the interface
 * through which JupyterLab loads prebuilt extensions: its bootstrap.js adds this script,
 * calls window._JUPYTERLAB['@learnhub/lab'].init(shareScope), and its index.js later calls
 * get('./extension') and registers the plugins of the module's default export. The one
 * module taken from the shared scope, @jupyterlab/application (for its Router), is looked
 * up there at run time, so no build step is needed. Plain ES2019.
 */
(function () {
  'use strict';

  var NAME = '@learnhub/lab';

  /** A Storage kept in this page's memory, for when the browser refuses web storage. */
  function memoryStorage() {
    var items = new Map();
    return {
      get length() {
        return items.size;
      },
      key: function (index) {
        return Array.from(items.keys())[index] === undefined ? null : Array.from(items.keys())[index];
      },
      getItem: function (key) {
        return items.has(String(key)) ? items.get(String(key)) : null;
      },
      setItem: function (key, value) {
        items.set(String(key), String(value));
      },
      removeItem: function (key) {
        items.delete(String(key));
      },
      clear: function () {
        items.clear();
      }
    };
  }

  /**
   * A browser that blocks cookies also blocks localStorage and sessionStorage in a frame:
   * reading window.localStorage throws a SecurityError. JupyterLab's window resolver
   * needs localStorage, and when it throws, JupyterLab reloads itself into a new
   * workspace, again and again. This script runs before any plugin is activated, so
   * replacing the refused storage with one in memory keeps JupyterLab working; nothing
   * is lost that the server does not keep (workspaces and settings are saved there).
   */
  function keepStorageUsable() {
    ['localStorage', 'sessionStorage'].forEach(function (name) {
      try {
        var storage = window[name];
        var probe = '__learnhub_probe__';
        storage.setItem(probe, probe);
        storage.removeItem(probe);
      } catch (e) {
        Object.defineProperty(window, name, {
          value: memoryStorage(),
          configurable: true,
          enumerable: true
        });
      }
    });
  }

  keepStorageUsable();

  /** The decoded name of one raw "name=value" query part. */
  function paramName(part) {
    var name = part.split('=')[0].replace(/\+/g, ' ');
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
  function withoutToken(search) {
    if (search.length <= 1) {
      return search;
    }
    var kept = search
      .slice(1)
      .split('&')
      .filter(function (part) {
        return paramName(part) !== 'token';
      });
    return kept.length ? '?' + kept.join('&') : '';
  }

  /**
   * Take the token out of the address bar, so it is not bookmarked, shared or shown;
   * the session keeps it in page config. replaceState adds no history entry and keeps
   * the path, the other parameters and the hash.
   */
  function removeTokenFromAddressBar() {
    var location = window.location;
    var search = withoutToken(location.search);
    if (search !== location.search) {
      window.history.replaceState(
        window.history.state,
        '',
        location.pathname + search + location.hash
      );
    }
  }

  function withToken(url, token) {
    var parsed = new URL(url, window.location.href);
    parsed.searchParams.set('token', token);
    return parsed.href;
  }

  /**
   * The default drive builds download URLs as <baseUrl>files/<path> plus an _xsrf taken
   * from document.cookie, and the browser fetches them itself (file-browser downloads,
   * <img> for relative images in Markdown), so no Authorization header goes along. Without
   * a cookie the server would refuse them; the session's token in the URL authenticates
   * them instead. Only the default drive (this server's files) is wrapped, so the token
   * never goes to another drive's URLs. ContentsManager.getDownloadUrl delegates here.
   */
  function addTokenToDownloadUrls(contents) {
    var drive = contents.defaultDrive || contents;
    // ServerConnection settings take the token from page config ("token").
    var token = drive.serverSettings ? drive.serverSettings.token : '';
    if (!token) {
      return;
    }
    var getDownloadUrl = drive.getDownloadUrl.bind(drive);
    drive.getDownloadUrl = function (path) {
      return getDownloadUrl(path).then(function (url) {
        return withToken(url, token);
      });
    };
  }

  /** specs with every resource URL (kernel logos) carrying the token. */
  function specsWithToken(specs, token) {
    var kernelspecs = {};
    Object.keys(specs.kernelspecs || {}).forEach(function (name) {
      var spec = specs.kernelspecs[name];
      if (!spec || !spec.resources) {
        kernelspecs[name] = spec;
        return;
      }
      var resources = {};
      Object.keys(spec.resources).forEach(function (key) {
        resources[key] = withToken(spec.resources[key], token);
      });
      kernelspecs[name] = Object.assign({}, spec, { resources: resources });
    });
    return Object.assign({}, specs, { kernelspecs: kernelspecs });
  }

  /**
   * Kernel logos in the launcher are <img> elements pointing at the kernelspec resource
   * URLs, which carry no token either; serve the specs with the token in those URLs.
   * The manager's own `specs` getter stays the source; each result is rewritten once.
   */
  function addTokenToKernelLogos(kernelspecs, token) {
    if (!kernelspecs) {
      return;
    }
    var descriptor = null;
    for (var p = Object.getPrototypeOf(kernelspecs); p && !descriptor; p = Object.getPrototypeOf(p)) {
      descriptor = Object.getOwnPropertyDescriptor(p, 'specs');
    }
    if (!token || !descriptor || !descriptor.get) {
      return;
    }
    var rewritten = new WeakMap();
    Object.defineProperty(kernelspecs, 'specs', {
      configurable: true,
      get: function () {
        var specs = descriptor.get.call(kernelspecs);
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

  /** Whether `pathname` is a page of JupyterLab under `base` (jupyterlab_server's route). */
  function isLabPage(pathname, base) {
    if (pathname.indexOf(base) !== 0) {
      return false;
    }
    return /^(lab|doc)(\/workspaces\/[a-zA-Z0-9_-]+)?(\/tree\/.*)?\/?$/.test(
      pathname.slice(base.length)
    );
  }

  /**
   * The token of a session that its token authenticated (an LMS launch), or "". The server
   * sets appendToken only for those (extensions/cookieless.py); jupyterhub-singleuser puts
   * a direct login's cookie token in page config too, and that session needs no help.
   */
  function launchToken() {
    var config = pageConfig();
    return String(config.appendToken).toLowerCase() === 'true' ? config.token || '' : '';
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
   * The Router class is changed, not its instance: get('./extension') does this before
   * any plugin is activated, so the resolver cannot navigate first. Navigations inside the
   * page, pages other than JupyterLab's (log out), and sessions with a cookie are left as
   * they are.
   */
  function keepTokenOnPageLoads(Router) {
    var proto = Router && Router.prototype;
    if (!proto || typeof proto.navigate !== 'function' || typeof proto.reload !== 'function') {
      console.warn(NAME + ": JupyterLab's Router was not found: its page loads lose the token");
      return;
    }
    if (proto.navigate.learnhubKeepsToken) {
      return;
    }
    var navigate = proto.navigate;
    var reload = proto.reload;

    /** The session's token if `url` is a page of JupyterLab under `router`, else "". */
    function tokenFor(router, url) {
      var token = launchToken();
      if (!token || typeof router.base !== 'string' || url.origin !== window.location.origin) {
        return '';
      }
      return isLabPage(url.pathname, router.base) ? token : '';
    }

    proto.reload = function () {
      // navigate() to another page (log out) pushes that URL, then reloads: left as it is.
      var url = new URL(window.location.href);
      var token = tokenFor(this, url);
      if (!token) {
        return reload.call(this);
      }
      window.location.replace(withToken(url.href, token));
    };
    proto.navigate = function (path, options) {
      if (!(options && options.hard) || typeof this.base !== 'string') {
        return navigate.call(this, path, options);
      }
      // As Router.navigate: a path not under the base is relative to it.
      var target = String(path || '');
      if (target.indexOf(this.base) !== 0) {
        target = this.base + target.replace(/^\//, '');
      }
      var url = new URL(target, window.location.href);
      var token = tokenFor(this, url);
      if (!token) {
        return navigate.call(this, path, options);
      }
      window.location.replace(withToken(url.href, token));
    };
    proto.navigate.learnhubKeepsToken = true;
  }

  var plugin = {
    id: NAME + ':cookieless-session',
    description:
      'Removes the token from the address bar and adds it to download and logo URLs (and, ' +
      "through the router, to JupyterLab's loads of its own page).",
    autoStart: true,
    activate: function (app) {
      removeTokenFromAddressBar();
      addTokenToDownloadUrls(app.serviceManager.contents);
      var settings = app.serviceManager.serverSettings;
      addTokenToKernelLogos(app.serviceManager.kernelspecs, settings ? settings.token : '');
    }
  };

  var PRIVACY_COMMAND = 'learnhub:open-privacy-policy';

  /** The page config JupyterLab itself reads at start-up (the jupyter-config-data script). */
  function pageConfig() {
    var element = typeof document === 'undefined' ? null : document.getElementById('jupyter-config-data');
    try {
      return element ? JSON.parse(element.textContent) : {};
    } catch (e) {
      return {};
    }
  }

  /**
   * The hub's privacy policy. jupyterhub-singleuser puts the hub's prefix in page config
   * (hubPrefix, "/hub/") and, when the hub has a domain of its own, its origin (hubHost).
   */
  function privacyPolicyUrl(config) {
    var prefix = config.hubPrefix || '/hub/';
    return (config.hubHost || '') + prefix.replace(/\/?$/, '/') + 'privacy';
  }

  /**
   * The command of the Help menu's "Privacy Policy" item. The item itself is declared in
   * this plugin's settings schema (schemas/@learnhub/lab/privacy-link.json, under
   * "jupyter.lab.menus"), which JupyterLab's main menu reads: no import of the menu's token
   * from the shared scope is needed. A new tab, because inside an LMS frame navigating
   * away would leave the learner's work.
   */
  var privacyLink = {
    id: NAME + ':privacy-link',
    description: "Adds this LearnHub site's privacy policy to the Help menu.",
    autoStart: true,
    activate: function (app) {
      var url = privacyPolicyUrl(pageConfig());
      app.commands.addCommand(PRIVACY_COMMAND, {
        label: 'Privacy Policy',
        caption: 'Open the privacy policy of this LearnHub site in a new tab',
        execute: function () {
          window.open(url, '_blank', 'noopener');
        }
      });
    }
  };

  var MY_DATA_COMMAND = 'learnhub:open-my-data';

  /**
   * The learner's data page, served by this server (extensions/mydata.py): what is kept,
   * one archive of it, erase now. A new tab, opened by a form that posts the session's
   * token (an LMS frame without cookies has nothing else), so the token never goes in the
   * tab's address, its history or a server's log.
   */
  function openMyData(config) {
    var base = (config.baseUrl || '/').replace(/\/?$/, '/');
    if (!config.token) {
      // A direct login's session: its cookie opens the page.
      window.open(base + 'learnhub/my-data', '_blank', 'noopener');
      return;
    }
    var form = document.createElement('form');
    form.method = 'POST';
    form.action = base + 'learnhub/my-data';
    form.target = '_blank';
    form.rel = 'noopener';
    var field = document.createElement('input');
    field.type = 'hidden';
    field.name = 'token';
    field.value = config.token || '';
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
    document.body.removeChild(form);
  }

  var myDataLink = {
    id: NAME + ':my-data-link',
    description: 'Adds "My data" (what this site keeps about you) to the Help menu.',
    autoStart: true,
    activate: function (app) {
      app.commands.addCommand(MY_DATA_COMMAND, {
        label: 'My Data',
        caption: 'See, download or erase what this site keeps about you',
        execute: function () {
          openMyData(pageConfig());
        }
      });
    }
  };

  var FORMGRADER_COMMAND = 'learnhub:open-formgrader';

  /**
   * Formgrader, for instructors and TAs (page config learnhubStaff). An LMS session has no
   * hub cookie, and a token must not go in a URL: the launch token is posted to the hub in
   * a form whose target is a new tab, where the hub sets its cookie (first party there) and
   * sends the person on to their course's formgrader.
   */
  function openFormgrader(config) {
    var prefix = (config.hubPrefix || '/hub/').replace(/\/?$/, '/');
    var form = document.createElement('form');
    form.method = 'POST';
    form.action = (config.hubHost || '') + prefix + 'learnhub/formgrader';
    form.target = '_blank';
    form.rel = 'noopener';
    var field = document.createElement('input');
    field.type = 'hidden';
    field.name = 'token';
    field.value = config.token || '';
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
    document.body.removeChild(form);
  }

  var formgraderLink = {
    id: NAME + ':formgrader-link',
    description: "Adds Course > Formgrader for a course's instructors and TAs.",
    autoStart: true,
    activate: function (app) {
      var config = pageConfig();
      app.commands.addCommand(FORMGRADER_COMMAND, {
        label: 'Formgrader',
        caption: 'Grade and give feedback in your course (opens a new tab)',
        isVisible: function () {
          return !!config.learnhubStaff;
        },
        execute: function () {
          openFormgrader(config);
        }
      });
    }
  };

  /** a < b as versions (4.6.10 after 4.6.9): the order webpack picks a singleton by. */
  function compareVersions(a, b) {
    var x = a.split(/[.+-]/);
    var y = b.split(/[.+-]/);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      var m = parseInt(x[i], 10) || 0;
      var n = parseInt(y[i], 10) || 0;
      if (m !== n) {
        return m - n;
      }
    }
    return 0;
  }

  var shareScope = null;

  /**
   * The module `name` as JupyterLab's own code has it: the shared scope (passed to init)
   * maps each shared package to its versions, each with a get() that resolves to the
   * module's factory. JupyterLab's packages are singletons there: the newest is the one.
   * Null when it is not there, so this extension still loads without what needs it.
   */
  function sharedModule(name) {
    var versions = shareScope && shareScope[name];
    if (!versions || !Object.keys(versions).length) {
      return Promise.resolve(null);
    }
    var newest = Object.keys(versions).sort(compareVersions).pop();
    return Promise.resolve()
      .then(function () {
        return versions[newest].get();
      })
      .then(function (factory) {
        return factory();
      })
      .catch(function (e) {
        console.warn(NAME + ': ' + name + ' is not in the shared scope', e);
        return null;
      });
  }

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = {
    // Nothing to share; the scope is kept to take JupyterLab's modules from it.
    init: function (scope) {
      shareScope = scope || null;
      return Promise.resolve();
    },
    get: function (module) {
      if (module !== './extension') {
        return Promise.reject(new Error('Module "' + module + '" does not exist in ' + NAME));
      }
      return sharedModule('@jupyterlab/application').then(function (application) {
        keepTokenOnPageLoads(application && application.Router);
        // __esModule makes JupyterLab read the plugins from `default`, as for a built module.
        return function () {
          return { __esModule: true, default: [plugin, privacyLink, myDataLink, formgraderLink] };
        };
      });
    }
  };
})();
