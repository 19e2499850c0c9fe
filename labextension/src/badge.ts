/**
 * Masked-output badges. An output whose metadata carries
 * `jupyter_secure: {"masked": true, …}` gets `.jp-secure-masked-badge` with
 * the reason as its title, live (the kernel's or the server's mark) and in
 * saved notebooks (the save mark). Watches every notebook the tracker sees,
 * its cell list and each code cell's output model.
 *
 * Printed output has no metadata in nbformat, so the server's mark on a
 * `stream` message cannot reach the output; the watcher reads it from the
 * message itself (the session's iopub signal), finds the cell that ran it by
 * the parent message id and keeps the note beside that stream output's model.
 * Live only: a saved notebook's printed output carries no mark to show.
 */

import type { Cell, CodeCell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { OutputArea } from '@jupyterlab/outputarea';
import type { KernelMessage } from '@jupyterlab/services';

import { badgeLabel, badgeReason, maskNoteOf, mergeMaskNotes } from './core/format';
import type { IMaskNote } from './core/types';
import { h } from './dom';

type IOutputModel = ReturnType<OutputArea['model']['get']>;

/** Notes of printed (stream) outputs, beside their models: nbformat has no place for them. */
const streamNotes = new WeakMap<IOutputModel, IMaskNote>();

/** How often, 50 ms apart, to look for a printed output that has not been added yet. */
const STREAM_TRIES = 20;

const BADGE = 'jp-secure-masked-badge';
const MASKED_CHILD = 'jp-secure-masked';

/** Put, update or remove the badges of one output area to match its model. */
export function syncBadges(area: OutputArea): void {
  if (area.isDisposed) {
    return;
  }
  const widgets = area.widgets;
  const n = Math.min(area.model.length, widgets.length);
  for (let i = 0; i < widgets.length; i++) {
    const child = widgets[i].node;
    const model = i < n ? area.model.get(i) : null;
    const note = model ? (maskNoteOf(model.metadata) ?? streamNotes.get(model) ?? null) : null;
    let badge = child.querySelector<HTMLElement>(`:scope > .${BADGE}`);
    if (!note) {
      badge?.remove();
      child.classList.remove(MASKED_CHILD);
      continue;
    }
    const reason = badgeReason(note);
    if (!badge) {
      badge = h('span', { class: BADGE, role: 'note', tabindex: 0 });
      child.appendChild(badge);
    }
    child.classList.add(MASKED_CHILD);
    badge.textContent = badgeLabel(note);
    badge.title = reason;
    badge.setAttribute('aria-label', reason);
    badge.dataset.by = note.by ?? '';
    badge.classList.toggle('jp-mod-failed', !!note.failed);
  }
}

export class BadgeWatcher {
  constructor(tracker: INotebookTracker) {
    tracker.forEach(panel => this.watchPanel(panel));
    tracker.widgetAdded.connect((_, panel) => this.watchPanel(panel));
  }

  private watchPanel(panel: NotebookPanel): void {
    if (this.panels.has(panel)) {
      return;
    }
    this.panels.add(panel);
    const schedule = () => this.schedule(panel);
    void panel.context.ready.then(schedule);
    panel.content.modelChanged.connect(() => {
      panel.content.model?.cells.changed.connect(schedule);
      schedule();
    });
    panel.content.model?.cells.changed.connect(schedule);
    panel.sessionContext.iopubMessage.connect((_, msg) => this.onIOPub(panel, msg));
    schedule();
  }

  /** A masked `stream` message: note it beside the printed output it went into. */
  private onIOPub(panel: NotebookPanel, msg: KernelMessage.IMessage): void {
    if (msg.header.msg_type !== 'stream') {
      return;
    }
    const note = maskNoteOf(msg.metadata);
    if (!note) {
      return;
    }
    const parent = (msg.parent_header as Partial<KernelMessage.IHeader>).msg_id;
    const name = (msg.content as { name?: unknown }).name;
    let tries = 0;
    const attach = () => {
      if (panel.isDisposed) {
        return;
      }
      for (const cell of panel.content.widgets) {
        const area = cell.model.type === 'code' ? (cell as Cell as CodeCell).outputArea : null;
        if (!area || area.future?.msg.header.msg_id !== parent) {
          continue;
        }
        for (let i = area.model.length - 1; i >= 0; i--) {
          const output = area.model.get(i);
          if (output.type === 'stream' && output.toJSON().name === name) {
            streamNotes.set(output, mergeMaskNotes(streamNotes.get(output), note));
            this.watchCell(cell as Cell as CodeCell);
            syncBadges(area);
            return;
          }
        }
      }
      // The output area adds the message after this signal, or a little later.
      if (++tries < STREAM_TRIES) {
        window.setTimeout(attach, 50);
      }
    };
    window.setTimeout(attach, 0);
  }

  /** Scan a notebook after the current change has been rendered. */
  private schedule(panel: NotebookPanel): void {
    if (this.pending.has(panel)) {
      return;
    }
    this.pending.add(panel);
    window.setTimeout(() => {
      this.pending.delete(panel);
      if (!panel.isDisposed) {
        this.scan(panel);
      }
    }, 0);
  }

  private scan(panel: NotebookPanel): void {
    for (const cell of panel.content.widgets) {
      if (cell.model.type === 'code') {
        this.watchCell(cell as Cell as CodeCell);
      }
    }
  }

  private watchCell(cell: CodeCell): void {
    const area = cell.outputArea;
    if (!area) {
      return;
    }
    if (!this.areas.has(area)) {
      this.areas.add(area);
      const sync = () => {
        // Now, and after the output area has re-rendered a replaced child.
        syncBadges(area);
        window.setTimeout(() => syncBadges(area), 0);
      };
      area.model.changed.connect(sync);
      area.outputLengthChanged.connect(sync);
    }
    syncBadges(area);
  }

  private panels = new WeakSet<NotebookPanel>();
  private areas = new WeakSet<OutputArea>();
  private pending = new Set<NotebookPanel>();
}
