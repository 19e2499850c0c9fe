/**
 * The admin / instructor panel (`#jp-secure-admin`): users, budgets,
 * alarms, the audit browser and the access review, each tab only for the
 * scope it needs. Sensitive actions go through `sensitive()`, which steps up
 * when the server asks.
 */

import { Dialog, MainAreaWidget, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import type { SecureClient } from './client';
import { describeError, isSecureApiError } from './core/errors';
import { AdminTab, adminTabs, formatAmount, formatTime, measureSymbol } from './core/format';
import { StepUpCancelled } from './core/stepup';
import type {
  BudgetAction,
  IAdminDataset,
  IAdminUser,
  IAlarm,
  IAuditQuery,
  IAuditRecord,
  UserAction
} from './core/types';
import { fill, h, table } from './dom';
import { shieldIcon } from './icons';
import type { SecureState } from './state';
import { sensitive } from './stepup';

const TAB_LABELS: Record<AdminTab, string> = {
  users: 'Users',
  budgets: 'Budgets',
  alarms: 'Alarms',
  audit: 'Audit trail',
  review: 'Access review'
};

/** A tab's body: loads on first show, reloads on Refresh. */
abstract class Tab {
  readonly node: HTMLElement;
  protected readonly status = h('p', {
    class: 'jp-secure-message',
    role: 'status',
    'aria-live': 'polite'
  });
  protected readonly content = h('div', { class: 'jp-secure-tab-content' });
  loaded = false;

  constructor(
    readonly name: AdminTab,
    protected readonly client: SecureClient,
    protected readonly state: SecureState
  ) {
    this.node = h(
      'div',
      {
        class: 'jp-secure-tabpanel',
        role: 'tabpanel',
        id: `jp-secure-admin-panel-${name}`,
        'aria-labelledby': `jp-secure-admin-tab-${name}`,
        'data-panel': name
      },
      h(
        'div',
        { class: 'jp-secure-toolbar' },
        this.toolbar(),
        h(
          'button',
          {
            type: 'button',
            class: 'jp-mod-styled jp-secure-refresh',
            onclick: () => void this.load()
          },
          'Refresh'
        )
      ),
      this.status,
      this.content
    );
  }

  protected toolbar(): (Node | null)[] {
    return [];
  }

  /** After a step-up: the status bar's count-down starts again. */
  protected readonly stepped = (): void => void this.state.refresh();

  async load(): Promise<void> {
    this.loaded = true;
    this.say('Loading…');
    try {
      await this.render();
      this.say('');
    } catch (err) {
      this.fail(err);
    }
  }

  protected abstract render(): Promise<void>;

  protected say(text: string): void {
    this.status.classList.remove('jp-secure-error');
    this.status.setAttribute('role', 'status');
    this.status.textContent = text;
  }

  protected fail(err: unknown): void {
    if (err instanceof StepUpCancelled) {
      this.say('Cancelled: the action needs a fresh second factor.');
      return;
    }
    this.status.classList.add('jp-secure-error');
    this.status.setAttribute('role', 'alert');
    this.status.textContent = isSecureApiError(err, 'unavailable')
      ? `Not available on this server: ${describeError(err)}`
      : describeError(err);
  }

  /** Run an action that changes something; say how it went. */
  protected async act(what: string, run: () => Promise<void>): Promise<void> {
    this.say(`${what}…`);
    try {
      await run();
      this.say(`${what}: done.`);
    } catch (err) {
      this.fail(err);
    }
  }
}

function button(
  label: string,
  attrs: Record<string, string>,
  onclick: () => void
): HTMLButtonElement {
  return h('button', { type: 'button', class: 'jp-mod-styled', ...attrs, onclick }, label);
}

async function confirm(title: string, body: string, label: string): Promise<boolean> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label })]
  });
  return result.button.accept;
}

class UsersTab extends Tab {
  protected async render(): Promise<void> {
    const users = await this.client.users();
    fill(
      this.content,
      table(
        ['User', 'Roles', 'Groups', 'Status', 'MFA', 'Last sign-in', 'Actions'],
        users,
        u => this.row(u),
        'Users'
      )
    );
  }

  private row(u: IAdminUser): HTMLTableRowElement {
    const status = u.disabled
      ? 'disabled'
      : u.locked
        ? u.lockedUntil
          ? `locked until ${formatTime(u.lockedUntil)}`
          : 'locked'
        : 'active';
    const tr = h(
      'tr',
      {
        'data-user': u.name,
        'data-status': u.disabled ? 'disabled' : u.locked ? 'locked' : 'active'
      },
      h(
        'th',
        { scope: 'row' },
        u.name,
        u.service ? h('span', { class: 'jp-secure-tag' }, ' service') : null
      ),
      h('td', {}, u.roles.join(', ') || '—'),
      h('td', {}, u.groups.join(', ') || '—'),
      h('td', { class: 'jp-secure-user-status' }, status),
      h('td', {}, u.mfaEnrolled ? 'enrolled' : 'not enrolled'),
      h('td', {}, formatTime(u.lastSignIn)),
      h(
        'td',
        { class: 'jp-secure-actions' },
        u.locked
          ? button('Unlock', { 'data-action': 'unlock', 'aria-label': `Unlock ${u.name}` }, () =>
              this.run(u, 'unlock', tr)
            )
          : button('Lock', { 'data-action': 'lock', 'aria-label': `Lock ${u.name}` }, () =>
              this.run(u, 'lock', tr)
            ),
        u.disabled
          ? button('Enable', { 'data-action': 'enable', 'aria-label': `Enable ${u.name}` }, () =>
              this.run(u, 'enable', tr)
            )
          : button('Disable', { 'data-action': 'disable', 'aria-label': `Disable ${u.name}` }, () =>
              this.run(u, 'disable', tr)
            ),
        button(
          'Reset MFA',
          { 'data-action': 'mfa-reset', 'aria-label': `Reset the second factor of ${u.name}` },
          () => this.run(u, 'mfa-reset', tr)
        )
      )
    );
    return tr;
  }

  private async run(u: IAdminUser, action: UserAction, tr: HTMLTableRowElement): Promise<void> {
    if (
      action === 'disable' &&
      !(await confirm(
        'Disable user',
        `Disable ${u.name}? Their sessions and kernels stop at once.`,
        'Disable'
      ))
    ) {
      return;
    }
    if (
      action === 'mfa-reset' &&
      !(await confirm(
        'Reset second factor',
        `Reset the second factor of ${u.name}? They must enrol again at their next sign-in; their sessions and kernels stop at once.`,
        'Reset'
      ))
    ) {
      return;
    }
    await this.act(`${action} ${u.name}`, async () => {
      const updated = await sensitive(
        this.client,
        () => this.client.userAction(u.name, action),
        this.stepped
      );
      tr.replaceWith(this.row(updated));
    });
  }
}

class BudgetsTab extends Tab {
  protected async render(): Promise<void> {
    const datasets = await this.client.adminBudgets();
    fill(
      this.content,
      datasets.length
        ? datasets.map(ds => this.section(ds))
        : h('p', { class: 'jp-secure-empty' }, 'No dataset you may manage.')
    );
  }

  private section(ds: IAdminDataset): HTMLElement {
    const sym = measureSymbol(ds.measure);
    const kind = h(
      'select',
      { name: 'kind', 'aria-label': 'Grant to' },
      h('option', { value: 'group' }, 'group'),
      h('option', { value: 'user' }, 'user')
    );
    const principal = h('input', {
      name: 'principal',
      type: 'text',
      class: 'jp-mod-styled',
      placeholder: 'group or user name',
      'aria-label': 'Group or user name'
    });
    const amount = h('input', {
      name: 'budget',
      type: 'text',
      inputmode: 'decimal',
      class: 'jp-mod-styled',
      placeholder: `budget (${sym}; default ${formatAmount(ds.perUserBudget)})`,
      'aria-label': `Budget in ${ds.measure}`
    });
    const section: HTMLElement = h(
      'section',
      { class: 'jp-secure-dataset', 'data-dataset': ds.name },
      h('h3', {}, `${ds.name} (${sym})`),
      ds.description ? h('p', { class: 'jp-secure-description' }, ds.description) : null,
      h(
        'p',
        {},
        `Per-user budget: ${formatAmount(ds.perUserBudget)} ${sym}`,
        ds.cap !== null && ds.cap !== undefined
          ? `; dataset cap: ${formatAmount(ds.cap)} ${sym}, ${formatAmount(ds.capSpent)} spent`
          : ''
      ),
      table(
        ['Kind', 'Principal', 'Budget'],
        ds.grants,
        g =>
          h(
            'tr',
            { 'data-grant': `${g.kind}:${g.principal}` },
            h('td', {}, g.kind),
            h('td', {}, g.principal),
            h('td', {}, `${formatAmount(g.budget)} ${sym}`)
          ),
        'Grants'
      ),
      table(
        ['User', 'Budget', 'Spent', 'Remaining', 'Change'],
        ds.users,
        u => {
          const input = h('input', {
            name: 'budget',
            type: 'text',
            inputmode: 'decimal',
            class: 'jp-mod-styled',
            value: u.budget ?? '',
            placeholder: 'no grant',
            'aria-label': `New budget for ${u.user}`
          });
          return h(
            'tr',
            { 'data-user': u.user },
            h('th', { scope: 'row' }, u.user),
            h('td', {}, formatAmount(u.budget)),
            h('td', {}, formatAmount(u.spent)),
            h(
              'td',
              { class: 'jp-secure-remaining', 'data-value': u.remaining },
              formatAmount(u.remaining)
            ),
            h(
              'td',
              { class: 'jp-secure-actions' },
              input,
              button(
                'Set',
                { 'data-action': 'set', 'aria-label': `Set the budget of ${u.user}` },
                () =>
                  this.run(section, `set ${u.user}'s budget`, {
                    action: 'set',
                    dataset: ds.name,
                    user: u.user,
                    budget: input.value.trim()
                  })
              ),
              button(
                'Reset',
                { 'data-action': 'reset', 'aria-label': `Reset the spend of ${u.user}` },
                () =>
                  this.run(section, `reset ${u.user}`, {
                    action: 'reset',
                    dataset: ds.name,
                    user: u.user
                  })
              )
            )
          );
        },
        'People'
      ),
      h(
        'form',
        {
          class: 'jp-secure-form',
          'aria-label': `Grant a budget on ${ds.name}`,
          onsubmit: (ev: Event) => {
            ev.preventDefault();
            const who = principal.value.trim();
            const budget = amount.value.trim();
            // No amount: the server grants the dataset's per-user budget.
            const extra = budget ? { budget } : {};
            const body: BudgetAction =
              kind.value === 'user'
                ? { action: 'grant', dataset: ds.name, user: who, ...extra }
                : { action: 'grant', dataset: ds.name, group: who, ...extra };
            void this.run(section, `grant ${budget || 'the per-user budget'} to ${who}`, body);
          }
        },
        'Grant to ',
        kind,
        principal,
        amount,
        h(
          'button',
          { type: 'submit', class: 'jp-mod-styled jp-mod-accept', 'data-action': 'grant' },
          'Grant'
        )
      )
    );
    return section;
  }

  private async run(section: HTMLElement, what: string, body: BudgetAction): Promise<void> {
    await this.act(what, async () => {
      const updated = await sensitive(
        this.client,
        () => this.client.budgetAction(body),
        this.stepped
      );
      section.replaceWith(this.section(updated));
    });
  }
}

class AlarmsTab extends Tab {
  private stateFilter?: HTMLSelectElement;

  protected toolbar(): (Node | null)[] {
    this.stateFilter = h(
      'select',
      { name: 'state', 'aria-label': 'Show alarms', onchange: () => void this.load() },
      ['', 'ALARM', 'unacked', 'OK', 'INSUFFICIENT_DATA'].map(v =>
        h('option', { value: v }, v || 'all')
      )
    );
    return [h('label', {}, 'Show ', this.stateFilter)];
  }

  protected async render(): Promise<void> {
    const reply = await this.client.alarms({ state: this.stateFilter?.value || undefined });
    fill(
      this.content,
      reply.alarms.length
        ? table(
            ['Raised', 'Rule', 'Key', 'Severity', 'State', 'Reason', 'Acknowledged'],
            reply.alarms,
            a => this.row(a),
            'Alarms'
          )
        : h('p', { class: 'jp-secure-empty' }, 'No alarms.')
    );
  }

  private row(a: IAlarm): HTMLTableRowElement {
    const canAck = this.state.hasScope('secure:alarms:write');
    let ack: Node;
    if (a.ackedBy) {
      ack = h(
        'span',
        {},
        `by ${a.ackedBy} ${formatTime(a.ackedAt)}`,
        a.ackNote ? `: ${a.ackNote}` : ''
      );
    } else if (canAck) {
      const note = h('input', {
        name: 'note',
        type: 'text',
        class: 'jp-mod-styled',
        maxlength: 500,
        placeholder: 'note',
        'aria-label': `Note for alarm ${a.rule}`
      });
      const tr0 = () => row;
      ack = h(
        'span',
        { class: 'jp-secure-actions' },
        note,
        button(
          'Acknowledge',
          { 'data-action': 'ack', 'aria-label': `Acknowledge alarm ${a.rule}` },
          () =>
            void this.act(`acknowledge ${a.rule}`, async () => {
              const updated = await sensitive(
                this.client,
                () => this.client.ackAlarm(a.id, note.value),
                this.stepped
              );
              tr0().replaceWith(this.row(updated));
            })
        )
      );
    } else {
      ack = h('span', {}, 'no');
    }
    const row = h(
      'tr',
      { 'data-alarm': a.id, 'data-state': a.state, 'data-severity': a.severity },
      h('td', {}, formatTime(a.raisedAt)),
      h('td', {}, a.rule),
      h('td', {}, a.key),
      h('td', {}, a.severity),
      h('td', {}, a.state),
      h('td', {}, a.reason),
      h('td', {}, ack)
    );
    return row;
  }
}

class AuditTab extends Tab {
  private verify = h('p', { class: 'jp-secure-verify', role: 'status' });
  private form?: HTMLFormElement;
  private next: number | null = null;
  private tbody = h('tbody');
  private more = button('Older records', { 'data-action': 'more' }, () => void this.page(true));

  protected toolbar(): (Node | null)[] {
    const input = (name: string, label: string, placeholder: string) =>
      h(
        'label',
        {},
        `${label} `,
        h('input', { name, type: 'text', class: 'jp-mod-styled', placeholder })
      );
    this.form = h(
      'form',
      {
        class: 'jp-secure-form',
        'aria-label': 'Filter the audit trail',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          void this.load();
        }
      },
      input('user', 'User', 'name'),
      input('event', 'Event', 'e.g. CellExecuted'),
      input('since', 'Since', '24h, 7d or ISO time'),
      input('until', 'Until', 'ISO time or duration'),
      h('button', { type: 'submit', class: 'jp-mod-styled jp-mod-accept' }, 'Search')
    );
    return [this.form];
  }

  protected async render(): Promise<void> {
    if (!this.content.contains(this.verify)) {
      fill(
        this.content,
        this.verify,
        h(
          'table',
          { class: 'jp-secure-table jp-secure-audit' },
          h('caption', {}, 'Audit records, newest first'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Seq', 'Time', 'Event', 'User', 'Source', 'Error', 'Resources', 'Details'].map(t =>
                h('th', { scope: 'col' }, t)
              )
            )
          ),
          this.tbody
        ),
        this.more
      );
    }
    await Promise.all([this.checkTrail(), this.page(false)]);
  }

  private query(): IAuditQuery {
    const value = (name: string) =>
      (this.form?.elements.namedItem(name) as HTMLInputElement | null)?.value.trim() || undefined;
    return {
      user: value('user'),
      event: value('event'),
      since: value('since'),
      until: value('until'),
      limit: 100
    };
  }

  private async page(older: boolean): Promise<void> {
    const query = this.query();
    if (older) {
      if (this.next === null) {
        return;
      }
      query.before = this.next;
    }
    try {
      const reply = await this.client.audit(query);
      const rows = reply.records.map(r => this.row(r));
      if (older) {
        this.tbody.append(...rows);
      } else {
        fill(this.tbody, rows);
      }
      this.next = reply.next;
      this.more.hidden = reply.next === null;
      if (!older && !reply.records.length) {
        this.tbody.append(
          h('tr', {}, h('td', { colspan: 8, class: 'jp-secure-empty' }, 'No records match.'))
        );
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private row(r: IAuditRecord): HTMLTableRowElement {
    const details = JSON.stringify(
      { request: r.request ?? null, response: r.response ?? null, roles: r.roles ?? [] },
      null,
      2
    );
    return h(
      'tr',
      { 'data-event': r.event, 'data-seq': r.seq },
      h('td', {}, String(r.seq)),
      h('td', {}, formatTime(r.time)),
      h('td', {}, r.event),
      h('td', {}, r.user ?? '—'),
      h('td', {}, r.sourceIp ?? '—'),
      h('td', {}, r.errorCode ?? ''),
      h('td', {}, (r.resources ?? []).map(x => `${x.type}:${x.name}`).join(', ')),
      h('td', {}, h('details', {}, h('summary', {}, 'show'), h('pre', {}, details)))
    );
  }

  private async checkTrail(): Promise<void> {
    this.verify.classList.remove('jp-mod-ok', 'jp-mod-failed');
    if (!this.state.hasScope('secure:audit:admin')) {
      this.verify.textContent = 'Verifying the whole trail needs the secure:audit:admin scope.';
      return;
    }
    this.verify.textContent = 'Verifying the audit trail…';
    try {
      const v = await this.client.auditVerify();
      if (v.ok) {
        this.verify.classList.add('jp-mod-ok');
        this.verify.textContent =
          `Trail verified: ${v.records} records, ${v.checkpoints} checkpoints` +
          (v.lastCheckpoint ? `, last checkpoint ${formatTime(v.lastCheckpoint)}` : '') +
          ` (checked ${formatTime(v.checkedAt)}).` +
          (v.notices?.length ? ` ${v.notices.join(' ')}` : '');
      } else {
        this.verify.classList.add('jp-mod-failed');
        const problems = v.problems.map(p => `${p.kind} at ${p.where}: ${p.detail}`).join('; ');
        this.verify.textContent =
          `Trail verification FAILED: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}` +
          (problems ? ` — ${problems}` : '') +
          ` (checked ${formatTime(v.checkedAt)}).`;
      }
    } catch (err) {
      this.verify.classList.add('jp-mod-failed');
      this.verify.textContent = `Could not verify the trail: ${describeError(err)}`;
    }
  }
}

class ReviewTab extends Tab {
  protected async render(): Promise<void> {
    const review = await this.client.accessReview();
    const summary = Object.entries(review.summary);
    fill(
      this.content,
      h(
        'ul',
        { class: 'jp-secure-summary', 'aria-label': 'Findings' },
        summary.length
          ? summary.map(([finding, n]) => h('li', { 'data-finding': finding }, `${finding}: ${n}`))
          : h('li', {}, 'No findings.')
      ),
      table(
        ['User', 'Status', 'Roles', 'Groups', 'Last sign-in', 'Findings'],
        review.rows,
        r =>
          h(
            'tr',
            { 'data-user': r.user, class: r.findings.length ? 'jp-mod-finding' : '' },
            h('th', { scope: 'row' }, r.user),
            h('td', {}, r.status ?? ''),
            h('td', {}, r.roles.join(', ') || '—'),
            h('td', {}, r.groups.join(', ') || '—'),
            h('td', {}, formatTime(r.lastSignIn)),
            h('td', {}, r.findings.join(', ') || '—')
          ),
        'Access review'
      )
    );
  }
}

const TABS: Record<
  AdminTab,
  new (name: AdminTab, client: SecureClient, state: SecureState) => Tab
> = {
  users: UsersTab,
  budgets: BudgetsTab,
  alarms: AlarmsTab,
  audit: AuditTab,
  review: ReviewTab
};

export class AdminContent extends Widget {
  constructor(client: SecureClient, state: SecureState) {
    super();
    this.addClass('jp-secure-admin');
    const names = adminTabs(state.me.scopes);
    this.tabs = names.map(name => new TABS[name](name, client, state));
    this.buttons = names.map((name, i) =>
      h(
        'button',
        {
          type: 'button',
          role: 'tab',
          id: `jp-secure-admin-tab-${name}`,
          class: 'jp-secure-tab',
          'data-tab': name,
          'aria-controls': `jp-secure-admin-panel-${name}`,
          onclick: () => this.select(i),
          onkeydown: (ev: KeyboardEvent) => {
            if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
              const j = (i + (ev.key === 'ArrowRight' ? 1 : names.length - 1)) % names.length;
              this.select(j);
              this.buttons[j].focus();
            }
          }
        },
        TAB_LABELS[name]
      )
    );
    this.node.append(
      h(
        'div',
        { class: 'jp-secure-tabbar', role: 'tablist', 'aria-label': 'Administration' },
        this.buttons
      ),
      ...this.tabs.map(t => t.node)
    );
    if (this.tabs.length) {
      this.select(0);
    } else {
      this.node.append(h('p', {}, 'You hold none of the administration scopes.'));
    }
  }

  select(index: number): void {
    this.tabs.forEach((t, i) => {
      const on = i === index;
      t.node.hidden = !on;
      this.buttons[i].setAttribute('aria-selected', String(on));
      this.buttons[i].tabIndex = on ? 0 : -1;
      this.buttons[i].classList.toggle('jp-mod-current', on);
      if (on && !t.loaded) {
        void t.load();
      }
    });
  }

  /** Select a tab by name, if it is shown. */
  selectTab(name: AdminTab): void {
    const i = this.tabs.findIndex(t => t.name === name);
    if (i >= 0) {
      this.select(i);
    }
  }

  private tabs: Tab[];
  private buttons: HTMLButtonElement[];
}

export function createAdminPanel(
  client: SecureClient,
  state: SecureState
): MainAreaWidget<AdminContent> {
  const content = new AdminContent(client, state);
  const widget = new MainAreaWidget({ content });
  widget.id = 'jp-secure-admin';
  widget.title.label = 'jupyter-secure admin';
  widget.title.icon = shieldIcon;
  widget.title.closable = true;
  return widget;
}
