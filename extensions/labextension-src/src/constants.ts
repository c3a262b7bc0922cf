/** The package's name, which prefixes its plugin and command ids. */
export const NAME = '@learnhub/lab';

export const PRIVACY_COMMAND = 'learnhub:open-privacy-policy';
export const MY_DATA_COMMAND = 'learnhub:open-my-data';
export const MY_SUBMISSIONS_COMMAND = 'learnhub:open-my-submissions';
export const FORMGRADER_COMMAND = 'learnhub:open-formgrader';
