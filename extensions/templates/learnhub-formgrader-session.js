/* A staff session of a grader server, kept in the page instead of a cookie
   (learnhub_singleuser.formgrader_session): formgrader's API calls carry the token in a
   header, and every navigation to a page of this server is a form POST carrying it in its
   body, never in a URL. Pages that do not hold a session are left alone. */
(function () {
  'use strict';
  var element = document.getElementById('learnhub-session');
  if (!element) {
    return;
  }
  var session = JSON.parse(element.textContent);

  function go(url, target) {
    var form = document.createElement('form');
    form.method = 'POST';
    form.action = url;
    if (target) {
      form.target = target;
    }
    var field = document.createElement('input');
    field.type = 'hidden';
    field.name = session.field;
    field.value = session.token;
    form.appendChild(field);
    document.body.appendChild(form);
    // A page's field named "submit" would shadow form.submit().
    HTMLFormElement.prototype.submit.call(form);
    form.remove();
  }

  if (session.next) {
    go(session.next);
    return;
  }

  if (window.jQuery) {
    window.jQuery.ajaxSetup({headers: {Authorization: 'token ' + session.token}});
  }

  // A page of this server (not its API, static files or another server), and not a move
  // within the current page.
  function ours(href) {
    var url;
    try {
      url = new URL(href, document.baseURI);
    } catch (e) {
      return false;
    }
    if (url.origin !== window.location.origin || url.pathname.indexOf(session.base) !== 0) {
      return false;
    }
    var rest = url.pathname.slice(session.base.length);
    if (/^(api|static|files|nbextensions|lab\/api)\//.test(rest) || /\/static\//.test(rest)) {
      return false;
    }
    // "#..." on this page: a move within it (formgrader's buttons are <a href="#">).
    var here = window.location.href.split('#')[0];
    return !(href.indexOf('#') !== -1 && url.href.split('#')[0] === here);
  }

  // Links: after the page's own handlers, which may have taken the click. A link opened
  // in a new tab (middle, Ctrl, Cmd or Shift click) gets its POST there, so that tab has
  // the session too.
  function follow(event) {
    if (event.defaultPrevented || event.altKey || event.button > 1) {
      return;
    }
    var link = event.target.closest ? event.target.closest('a[href]') : null;
    if (!link || link.hasAttribute('download') || !ours(link.getAttribute('href'))) {
      return;
    }
    var elsewhere = event.button === 1 || event.ctrlKey || event.metaKey || event.shiftKey;
    var target = elsewhere ? '_blank' : link.getAttribute('target');
    event.preventDefault();
    go(link.href, target && target !== '_self' ? target : null);
  }
  document.addEventListener('click', follow);
  document.addEventListener('auxclick', follow);

  // Navigations a script starts (formgrader's next and previous submission buttons set
  // window.location), where the browser has the Navigation API.
  if (window.navigation) {
    window.navigation.addEventListener('navigate', function (event) {
      if (!event.cancelable || event.hashChange || event.formData ||
          event.downloadRequest !== null ||
          (event.navigationType !== 'push' && event.navigationType !== 'replace') ||
          !ours(event.destination.url)) {
        return;
      }
      event.preventDefault();
      go(event.destination.url);
    });
  }
})();
