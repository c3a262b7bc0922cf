/**
 * @learnhub/lab: cookieless learner sessions in JupyterLab, the privacy policy and the
 * learner's data in its Help menu, and My Submissions and Formgrader in a Course menu.
 *
 * JupyterLab evaluates this module when it loads the extension (its index.js calls the
 * factory that the remote entry's get('./extension') returns), before it creates the
 * application and activates any plugin: what must come first is done here, at load.
 */
import { Router } from '@jupyterlab/application';
import type { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { formgraderLink, myDataLink, mySubmissionsLink, privacyLink } from './links';
import { keepTokenOnPageLoads } from './router';
import { cookielessSession } from './session';
import { keepStorageUsable } from './storage';

keepStorageUsable();
keepTokenOnPageLoads(Router);

const plugins: JupyterFrontEndPlugin<void>[] = [
  cookielessSession,
  privacyLink,
  myDataLink,
  mySubmissionsLink,
  formgraderLink
];

export default plugins;
