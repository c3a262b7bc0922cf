/*
 * LTI 1.3 login state kept in the LMS's own storage (postMessage), for browsers without cookies.
 * A file, not an inline script, so pages can send Content-Security-Policy: default-src 'self'.
 */
(function () {
  "use strict";
  // LTI client-side storage (1EdTech "Platform Storage"): the platform's frame keeps the
  // login state for us, so a launch in a browser that blocks cookies is still bound to
  // the browser that started it.
  var config = JSON.parse(document.getElementById("learnhub-storage").textContent);
  var target = config.target === "_parent" ? window.parent
    : (window.parent.frames[config.target] || window.parent);
  var pending = {};
  var counter = 0;

  window.addEventListener("message", function (event) {
    if (event.origin !== config.origin || !event.data || !pending[event.data.message_id]) { return; }
    var resolve = pending[event.data.message_id];
    delete pending[event.data.message_id];
    resolve(event.data);
  });

  function ask(message, timeoutMs) {
    return new Promise(function (resolve) {
      var id = "learnhub-" + (++counter) + "-" + Date.now();
      message.message_id = id;
      pending[id] = resolve;
      setTimeout(function () { if (pending[id]) { delete pending[id]; resolve(null); } }, timeoutMs);
      try { target.postMessage(message, config.origin); } catch (e) { resolve(null); }
    });
  }

  async function put() {
    var keys = Object.keys(config.items);
    for (var i = 0; i < keys.length; i++) {
      await ask({ subject: "lti.put_data", key: keys[i], value: config.items[keys[i]] }, 1500);
    }
    window.location.replace(config.next);
  }

  async function get() {
    var reply = await ask({ subject: "lti.get_data", key: config.key }, 1500);
    var form = document.getElementById("relaunch");
    form.action = config.action;
    var fields = Object.assign({}, config.fields, {
      lti_storage_state: (reply && !reply.error && reply.value) ? String(reply.value) : ""
    });
    Object.keys(fields).forEach(function (name) {
      var input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = fields[name];
      form.appendChild(input);
    });
    form.submit();
  }

  (config.mode === "put" ? put : get)();
})();
