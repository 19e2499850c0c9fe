/**
 * Masked-output badges. An output whose metadata carries
 * `jupyter_secure: {"masked": true, …}` gets `.jp-secure-masked-badge` with
 * the reason as its title, live (the kernel's or the server's mark) and in
 * saved notebooks (the save mark). Watches every notebook the tracker sees,
 * its cell list and each code cell's output model.
 */

import type { Cell, CodeCell } from '@jupyterlab/cells';
import type { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import type { OutputArea } from '@jupyterlab/outputarea';

import { badgeLabel, badgeReason, maskNoteOf } from './core/format';
import { h } from './dom';

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
    const note = i < n ? maskNoteOf(area.model.get(i).metadata) : null;
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
    schedule();
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
