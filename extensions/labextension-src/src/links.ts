/**
 * The Help menu's Privacy Policy and My Data, and the Course menu's My Submissions and
 * Formgrader.
 */

import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import {
  FORMGRADER_COMMAND,
  MY_DATA_COMMAND,
  MY_SUBMISSIONS_COMMAND,
  NAME,
  PRIVACY_COMMAND
} from './constants';
import { ILearnHubPageConfig, pageConfig } from './pageconfig';

/**
 * The hub's privacy policy. jupyterhub-singleuser puts the hub's prefix in page config
 * (hubPrefix, "/hub/") and, when the hub has a domain of its own, its origin (hubHost).
 */
function privacyPolicyUrl(config: ILearnHubPageConfig): string {
  const prefix = config.hubPrefix || '/hub/';
  return (config.hubHost || '') + prefix.replace(/\/?$/, '/') + 'privacy';
}

/**
 * Post `token` to `action` from a form whose target is a new tab, so the token never goes
 * in the tab's address, its history or a server's log.
 */
function postTokenInNewTab(action: string, token: string): void {
  const form = document.createElement('form');
  form.method = 'POST';
  form.action = action;
  form.target = '_blank';
  form.rel = 'noopener';
  const field = document.createElement('input');
  field.type = 'hidden';
  field.name = 'token';
  field.value = token;
  form.appendChild(field);
  document.body.appendChild(form);
  form.submit();
  document.body.removeChild(form);
}

/**
 * The command of the Help menu's "Privacy Policy" item. The item itself is declared in
 * this plugin's settings schema (schema/privacy-link.json, under "jupyter.lab.menus"),
 * which JupyterLab's main menu reads: no import of the menu's token is needed. A new tab,
 * because inside an LMS frame navigating away would leave the learner's work.
 */
export const privacyLink: JupyterFrontEndPlugin<void> = {
  id: `${NAME}:privacy-link`,
  description: "Adds this LearnHub site's privacy policy to the Help menu.",
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    const url = privacyPolicyUrl(pageConfig());
    app.commands.addCommand(PRIVACY_COMMAND, {
      label: 'Privacy Policy',
      caption: 'Open the privacy policy of this LearnHub site in a new tab',
      execute: () => {
        window.open(url, '_blank', 'noopener');
      }
    });
  }
};

/**
 * A page of the learner's own server (extensions/learner_pages.py), in a new tab opened by
 * a form that posts the session's token (an LMS frame without cookies has nothing else).
 */
function openOwnPage(config: ILearnHubPageConfig, path: string): void {
  const base = (config.baseUrl || '/').replace(/\/?$/, '/');
  if (!config.token) {
    // A direct login's session: its cookie opens the page.
    window.open(base + path, '_blank', 'noopener');
    return;
  }
  postTokenInNewTab(base + path, config.token);
}

/** The learner's data page (extensions/mydata.py): what is kept, one archive, erase now. */
export const myDataLink: JupyterFrontEndPlugin<void> = {
  id: `${NAME}:my-data-link`,
  description: 'Adds "My data" (what this site keeps about you) to the Help menu.',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    app.commands.addCommand(MY_DATA_COMMAND, {
      label: 'My Data',
      caption: 'See, download or erase what this site keeps about you',
      execute: () => {
        openOwnPage(pageConfig(), 'learnhub/my-data');
      }
    });
  }
};

/**
 * The learner's submissions (extensions/mysubmissions.py): each one and how its grading
 * went, with the reason when it could not be graded.
 */
export const mySubmissionsLink: JupyterFrontEndPlugin<void> = {
  id: `${NAME}:my-submissions-link`,
  description: 'Adds Course > My Submissions (each submission and how its grading went).',
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    app.commands.addCommand(MY_SUBMISSIONS_COMMAND, {
      label: 'My Submissions',
      caption: 'See your submissions and how their grading went (opens a new tab)',
      execute: () => {
        openOwnPage(pageConfig(), 'learnhub/my-submissions');
      }
    });
  }
};

/**
 * Formgrader, for instructors and TAs (page config learnhubStaff). An LMS session has no
 * hub cookie, and a token must not go in a URL: the launch token is posted to the hub in
 * a form whose target is a new tab, where the hub sets its cookie (first party there) and
 * sends the person on to their course's formgrader.
 */
function openFormgrader(config: ILearnHubPageConfig): void {
  const prefix = (config.hubPrefix || '/hub/').replace(/\/?$/, '/');
  postTokenInNewTab((config.hubHost || '') + prefix + 'learnhub/formgrader', config.token || '');
}

export const formgraderLink: JupyterFrontEndPlugin<void> = {
  id: `${NAME}:formgrader-link`,
  description: "Adds Course > Formgrader for a course's instructors and TAs.",
  autoStart: true,
  activate: (app: JupyterFrontEnd): void => {
    const config = pageConfig();
    app.commands.addCommand(FORMGRADER_COMMAND, {
      label: 'Formgrader',
      caption: 'Grade and give feedback in your course (opens a new tab)',
      isVisible: () => !!config.learnhubStaff,
      execute: () => {
        openFormgrader(config);
      }
    });
  }
};
