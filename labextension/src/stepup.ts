/**
 * The step-up dialog (`.jp-secure-stepup`, `input[name=otp]`) and the helper
 * that wraps a sensitive call in core/stepup.withStepUp.
 */

import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import type { SecureClient } from './client';
import { SecureApiError } from './core/errors';
import { withStepUp } from './core/stepup';
import { h } from './dom';

class CodeBody extends Widget implements Dialog.IBodyWidget<string> {
  constructor(problem: string | null) {
    super();
    this.addClass('jp-secure-stepup-body');
    this._input = h('input', {
      name: 'otp',
      type: 'text',
      inputmode: 'numeric',
      autocomplete: 'one-time-code',
      maxlength: 12,
      'aria-label': 'One-time code',
      class: 'jp-mod-styled'
    });
    this.node.append(
      ...[
        h(
          'p',
          {},
          'This action needs a fresh second factor. Enter the current code from your authenticator app.'
        ),
        h('label', { class: 'jp-secure-stepup-label' }, 'Code ', this._input),
        problem
          ? h('p', { class: 'jp-secure-stepup-error', role: 'alert' }, problem)
          : h('p', { class: 'jp-secure-stepup-error', role: 'alert', hidden: true })
      ]
    );
  }

  getValue(): string {
    return this._input.value;
  }

  private _input: HTMLInputElement;
}

/** Ask for a code; null when cancelled. */
export async function askCode(problem: string | null): Promise<string | null> {
  const dialog = new Dialog<string>({
    title: 'Confirm it is you',
    body: new CodeBody(problem),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Verify' })],
    focusNodeSelector: 'input[name=otp]'
  });
  dialog.addClass('jp-secure-stepup');
  const result = await dialog.launch();
  dialog.dispose();
  return result.button.accept ? (result.value ?? '') : null;
}

/**
 * Run a sensitive call, stepping up once if the server asks. `stepped` runs
 * after a successful step-up (the status bar's count-down restarts).
 */
export function sensitive<T>(
  client: SecureClient,
  call: () => Promise<T>,
  stepped?: () => void
): Promise<T> {
  return withStepUp(call, {
    askCode,
    reauth: async code => {
      const reply = await client.reauth(code);
      stepped?.();
      return reply;
    }
  });
}

/** Step up now (from the status bar), without a call that needs it. */
export async function stepUpNow(client: SecureClient, stepped?: () => void): Promise<void> {
  let asked = false;
  await sensitive(
    client,
    async () => {
      if (!asked) {
        asked = true;
        throw new SecureApiError('step-up', 'A fresh second factor is needed', 403);
      }
    },
    stepped
  );
}
