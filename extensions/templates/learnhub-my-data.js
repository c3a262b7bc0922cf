/* The "My data" page: download and erase with the session's token, never a cookie. */
(function () {
  'use strict';
  var session = JSON.parse(document.getElementById('learnhub-my-data').textContent);
  var base = window.location.pathname.replace(/\/$/, '');
  var status = document.getElementById('status');

  // Keep the token out of the address bar, history and bookmarks.
  if (/[?&]token=/.test(window.location.search)) {
    window.history.replaceState(null, '', base + window.location.hash);
  }

  function call(path, options) {
    options = options || {};
    options.headers = Object.assign({ Authorization: 'token ' + session.token }, options.headers || {});
    return fetch(base + '/' + path, options).then(function (response) {
      if (!response.ok) {
        throw new Error('The server answered ' + response.status + '.');
      }
      return response;
    });
  }

  document.getElementById('download').addEventListener('click', function () {
    status.textContent = 'Preparing your archive…';
    call('archive')
      .then(function (response) { return response.blob(); })
      .then(function (blob) {
        var link = document.createElement('a');
        link.href = URL.createObjectURL(blob);
        link.download = 'my-data-' + session.username + '.zip';
        document.body.appendChild(link);
        link.click();
        link.remove();
        status.textContent = 'Downloaded.';
      })
      .catch(function (e) { status.textContent = e.message; });
  });

  document.getElementById('erase').addEventListener('submit', function (event) {
    event.preventDefault();
    var typed = event.target.elements.confirm.value.trim();
    if (typed !== session.username) {
      status.textContent = 'Type ' + session.username + ' exactly to confirm.';
      return;
    }
    call('erase', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ confirm: typed })
    })
      .then(function () {
        document.body.innerHTML =
          '<h1>Your data is being erased</h1><p>Your account, files, submissions and grades ' +
          'on this site are being deleted now; this workspace will stop. You can close this tab.</p>';
      })
      .catch(function (e) { status.textContent = e.message; });
  });
})();
