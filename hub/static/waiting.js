/*
 * The waiting page after an LMS launch: follows the server's start, then opens JupyterLab.
 * A file, not an inline script, so pages can send Content-Security-Policy: default-src 'self'.
 */
(function () {
  "use strict";
  // The token lives only in this page's memory and in the next URL, which JupyterLab
  // removes from the address bar as soon as it has loaded.
  var config = JSON.parse(document.getElementById("learnhub-session").textContent);
  document.getElementById("learnhub-session").remove();
  var statusEl = document.getElementById("status");
  var bar = document.getElementById("progress");
  var attempts = 0;

  function open() {
    statusEl.textContent = "Your server is ready. Opening JupyterLab…";
    bar.value = 100;
    window.location.replace(config.labUrl + "?token=" + encodeURIComponent(config.token));
  }

  // The hub's reason, in words for a learner: without the "Spawn failed:" prefix and
  // without the internal addresses of servers, which mean nothing to them.
  function plain(message) {
    var text = String(message || "").replace(/^\s*Spawn failed:\s*/i, "");
    text = text.replace(/\bServer at \S+/g, "Your server").replace(/https?:\/\/\S+/g, "your server");
    return text || "The server failed to start.";
  }

  function fail(message) {
    document.getElementById("heading").textContent = "Your workspace could not be opened";
    statusEl.textContent = "Your server could not start.";
    bar.hidden = true;
    document.getElementById("hint").hidden = true;
    document.getElementById("failure-message").textContent = "What happened: " + plain(message);
    document.getElementById("failure").hidden = false;
  }

  function handle(event) {
    if (typeof event.progress === "number") { bar.value = event.progress; }
    if (event.message) { statusEl.textContent = event.message; }
    if (event.ready) { open(); return true; }
    if (event.failed) { fail(event.message || "The server failed to start."); return true; }
    return false;
  }

  async function watch() {
    attempts += 1;
    var response;
    try {
      response = await fetch(config.progressUrl, {
        headers: { Authorization: "token " + config.token, Accept: "text/event-stream" },
        credentials: "omit",
        cache: "no-store"
      });
    } catch (e) {
      return retry("The hub cannot be reached.");
    }
    if (!response.ok || !response.body) {
      return retry("The hub answered " + response.status + ".");
    }
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      buffer += decoder.decode(chunk.value, { stream: true });
      var parts = buffer.split("\n\n");
      buffer = parts.pop();
      for (var i = 0; i < parts.length; i++) {
        var line = parts[i].split("\n").filter(function (l) { return l.indexOf("data:") === 0; })[0];
        if (!line) { continue; }
        try {
          if (handle(JSON.parse(line.slice(5)))) { return; }
        } catch (e) { /* a partial or non-JSON line: wait for the next one */ }
      }
    }
    retry("The hub stopped reporting progress.");
  }

  function retry(reason) {
    if (attempts >= 60) { fail(reason); return; }
    setTimeout(watch, 1000);
  }

  watch();
})();
