/* The last page of a registration by URL: tell the LMS that opened it (its frame's parent,
   or the window that opened this one) that LearnHub is done, as LTI Dynamic Registration
   asks. The message carries nothing secret, so any origin may read it. */
(function () {
  'use strict';
  var done = document.getElementById('learnhub-registered');
  var lms = window.opener || (window.parent !== window ? window.parent : null);
  if (done && lms) {
    lms.postMessage({subject: done.dataset.close}, '*');
  }
})();
