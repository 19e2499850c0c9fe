/**
 * jupyter-secure for JupyterLab.
 *
 * Activation starts with the handshake: GET /secure/api/me. Without an
 * answer nothing else is set up (a 404 says the server extension is not
 * enabled); a version that differs from ours is said in a warning. The
 * scopes /me lists decide which of the status bar, the budget panel and the
 * admin panel appear; the server refuses the rest whatever the UI shows.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, Notification } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';

import { AdminContent, createAdminPanel } from './admin';
import { BadgeWatcher } from './badge';
import { BudgetPanel } from './budget';
import { SecureClient } from './client';
import { describeError, isSecureApiError } from './core/errors';
import { ADMIN_SCOPES, AdminTab, versionMismatch } from './core/format';
import { budgetIcon, shieldIcon } from './icons';
import type { IMe } from './core/types';
import { SecureState } from './state';
import { SecureStatus } from './status';
import { VERSION } from './version';

export const NOT_ENABLED = 'the jupyter-secure server extension is not enabled on this server';

/** The handshake. Resolves /me, or null (after saying why) when we must stay off. */
export async function handshake(client: SecureClient): Promise<IMe | null> {
  let me: IMe;
  try {
    me = await client.me();
  } catch (err) {
    if (isSecureApiError(err) && (err.kind === 'not-enabled' || err.status === 404)) {
      Notification.error(`jupyter-secure: ${NOT_ENABLED}.`, { autoClose: false });
    } else {
      Notification.error(`jupyter-secure could not read /secure/api/me: ${describeError(err)}`, {
        autoClose: false
      });
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

export const CMD_BUDGET = 'jupyter-secure:open-budget';
export const CMD_ADMIN = 'jupyter-secure:open-admin';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-secure:plugin',
  description: 'MFA freshness, privacy budgets, the admin panel and masked-output badges.',
  autoStart: true,
  optional: [IStatusBar, INotebookTracker, ICommandPalette, ILauncher],
  activate: async (
    app: JupyterFrontEnd,
    statusBar: IStatusBar | null,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null,
    launcher: ILauncher | null
  ) => {
    const client = new SecureClient();
    const me = await handshake(client);
    if (!me) {
      return;
    }
    const state = new SecureState(client, me);
    const category = 'jupyter-secure';

    if (statusBar) {
      statusBar.registerStatusItem('jp-secure-status', {
        item: new SecureStatus(state),
        align: 'left',
        rank: 50
      });
    }

    if (state.hasScope('secure:budgets:read')) {
      const panel = new BudgetPanel(state);
      app.shell.add(panel, 'left', { rank: 650 });
      app.commands.addCommand(CMD_BUDGET, {
        label: 'Privacy budget',
        caption: 'Show what is left of your privacy budgets',
        icon: budgetIcon,
        execute: () => {
          app.shell.activateById(panel.id);
          void state.refresh();
        }
      });
      palette?.addItem({ command: CMD_BUDGET, category });
    }

    if (ADMIN_SCOPES.some(scope => state.hasScope(scope))) {
      let admin: MainAreaWidget<AdminContent> | null = null;
      app.commands.addCommand(CMD_ADMIN, {
        label: args =>
          args['isLauncher'] ? 'Secure admin' : 'Open the jupyter-secure admin panel',
        caption: 'Users, budgets, alarms, the audit trail and the access review',
        icon: shieldIcon,
        execute: args => {
          if (!admin || admin.isDisposed) {
            admin = createAdminPanel(client, state);
            app.shell.add(admin, 'main');
          }
          const tab = args['tab'];
          if (typeof tab === 'string') {
            admin.content.selectTab(tab as AdminTab);
          }
          app.shell.activateById(admin.id);
        }
      });
      palette?.addItem({ command: CMD_ADMIN, category });
      launcher?.add({
        command: CMD_ADMIN,
        category: 'Other',
        rank: 10,
        args: { isLauncher: true }
      });
    }

    if (tracker) {
      new BadgeWatcher(tracker);
    }

    // A private query shows in the status bar and the panel as soon as its cell is done.
    NotebookActions.executed.connect(() => void state.refresh());
    state.start();
    void state.refresh({ me: false }); // the handshake has just read /me
  }
};

export default plugin;
