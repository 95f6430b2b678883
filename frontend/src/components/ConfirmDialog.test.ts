import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";
import { ConfirmDialog } from "./ConfirmDialog";

const render = (danger?: boolean) =>
  renderToStaticMarkup(
    createElement(ConfirmDialog, {
      title: "Delete 12 tasks?",
      body: "This cannot be undone.",
      confirm: "Delete",
      danger,
      onConfirm: () => undefined,
      onCancel: () => undefined,
    }),
  );

describe("ConfirmDialog", () => {
  it("is a modal dialog named by its question and described by what will happen", () => {
    const html = render();
    expect(html).toContain('role="alertdialog"');
    expect(html).toContain('aria-modal="true"');
    const labelled = /aria-labelledby="([^"]+)"/.exec(html)?.[1];
    const described = /aria-describedby="([^"]+)"/.exec(html)?.[1];
    expect(html).toContain(`<h2 id="${labelled}">Delete 12 tasks?</h2>`);
    expect(html).toContain(`<p id="${described}">This cannot be undone.</p>`);
  });

  it("puts Cancel first and styles the confirm button as dangerous unless told not to", () => {
    const html = render();
    expect(html.indexOf(">Cancel<")).toBeLessThan(html.indexOf(">Delete<"));
    expect(html).toContain('<button class="danger apart">Delete</button>');
    expect(render(false)).toContain('<button class="apart">Delete</button>');
  });
});
