// Sortable, paginated table for ops, fallbacks and comparisons: at most `pageSize` rows
// exist in the DOM, so thousands of ops stay responsive.
import { clear, h } from "./dom";
import { isActivate } from "./format";

export interface Column<T> {
  key: string;
  label: string;
  title?: string;
  num?: boolean;
  value: (row: T) => number | string | null;
  render?: (row: T) => Node | string;
}

export class DataTable<T> {
  readonly el: HTMLElement;
  private rows: T[] = [];
  private sortKey: string;
  private sortDesc = true;
  private page = 0;
  private tbody: HTMLElement;
  private thead: HTMLElement;
  private pager: HTMLElement;

  constructor(private columns: Column<T>[], opts: { sortKey: string; pageSize?: number; testid?: string; rowAttrs?: (r: T) => Record<string, string>; onRow?: (r: T) => void }) {
    this.sortKey = opts.sortKey;
    this.pageSize = opts.pageSize ?? 50;
    this.rowAttrs = opts.rowAttrs;
    this.onRow = opts.onRow;
    this.thead = h("thead");
    this.tbody = h("tbody");
    this.pager = h("div", { class: "pager" });
    this.el = h("div", { class: "data-table-wrap" }, h("table", { class: "data-table", "data-testid": opts.testid ?? null }, this.thead, this.tbody), this.pager);
  }

  private pageSize: number;
  private rowAttrs?: (r: T) => Record<string, string>;
  private onRow?: (r: T) => void;

  setRows(rows: T[]): void {
    this.rows = rows;
    this.page = 0;
    this.render();
  }

  private sorted(): T[] {
    const col = this.columns.find((c) => c.key === this.sortKey);
    if (!col) return this.rows;
    const dir = this.sortDesc ? -1 : 1;
    return [...this.rows].sort((a, b) => {
      const va = col.value(a), vb = col.value(b);
      // Missing values sort last whatever the direction.
      if (va === null && vb === null) return 0;
      if (va === null) return 1;
      if (vb === null) return -1;
      return va < vb ? -dir : va > vb ? dir : 0;
    });
  }

  private render(): void {
    clear(this.thead);
    const tr = h("tr");
    for (const c of this.columns) {
      const active = c.key === this.sortKey;
      const sort = () => {
        if (this.sortKey === c.key) this.sortDesc = !this.sortDesc;
        else { this.sortKey = c.key; this.sortDesc = !!c.num; }
        this.render();
        // The header was re-created: keep the keyboard on it.
        (this.thead.querySelector(`th[data-key="${CSS.escape(c.key)}"]`) as HTMLElement | null)?.focus();
      };
      // Headers sort by click or, focused, by Enter/Space (keyboard users reach them by Tab).
      tr.appendChild(h("th", {
        class: (c.num ? "num" : "") + (active ? " sorted" : ""),
        title: (c.title ?? c.label) + " (click to sort)",
        tabindex: 0,
        "data-key": c.key,
        "aria-sort": active ? (this.sortDesc ? "descending" : "ascending") : "none",
        onclick: sort,
        onkeydown: (ev: Event) => { if (isActivate(ev)) { ev.preventDefault(); sort(); } },
      }, c.label, active ? (this.sortDesc ? " ▾" : " ▴") : ""));
    }
    this.thead.appendChild(tr);

    const rows = this.sorted();
    const pages = Math.max(1, Math.ceil(rows.length / this.pageSize));
    this.page = Math.min(this.page, pages - 1);
    clear(this.tbody);
    for (const r of rows.slice(this.page * this.pageSize, (this.page + 1) * this.pageSize)) {
      // A clickable row is a Tab stop that Enter/Space activate (keys inside its own
      // controls, e.g. a remedy's <details>, stay theirs).
      const row = h("tr", {
        ...(this.rowAttrs?.(r) ?? {}),
        class: this.onRow ? "clickable" : null,
        tabindex: this.onRow ? 0 : null,
        onclick: this.onRow ? () => this.onRow!(r) : null,
        onkeydown: this.onRow ? (ev: Event) => { if (ev.target === ev.currentTarget && isActivate(ev)) { ev.preventDefault(); this.onRow!(r); } } : null,
      });
      for (const c of this.columns) {
        const v = c.render ? c.render(r) : String(c.value(r) ?? "–");
        row.appendChild(h("td", { class: c.num ? "num" : null }, v));
      }
      this.tbody.appendChild(row);
    }
    if (!rows.length) this.tbody.appendChild(h("tr", null, h("td", { colspan: this.columns.length, class: "empty-cell" }, "nothing to show")));

    clear(this.pager);
    if (pages > 1) {
      const go = (p: number) => { this.page = Math.max(0, Math.min(pages - 1, p)); this.render(); };
      this.pager.append(
        h("button", { onclick: () => go(0), disabled: this.page === 0 }, "«"),
        h("button", { onclick: () => go(this.page - 1), disabled: this.page === 0 }, "‹"),
        h("span", null, ` page ${this.page + 1} of ${pages} (${rows.length} rows) `),
        h("button", { onclick: () => go(this.page + 1), disabled: this.page >= pages - 1 }, "›"),
        h("button", { onclick: () => go(pages - 1), disabled: this.page >= pages - 1 }, "»"),
      );
    } else if (rows.length) {
      this.pager.append(h("span", null, `${rows.length} row${rows.length === 1 ? "" : "s"}`));
    }
  }
}
