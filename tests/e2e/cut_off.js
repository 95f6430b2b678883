// At phone width (tests/e2e/test_ui_phone.py): each control shown whose box reaches outside the
// screen, or outside an ancestor that clips it; and each box (other than `mayScroll`, a field, or
// text cut with an ellipsis on purpose) whose content is wider than the box.
([interactive, mayScroll]) => {
  const name = (el) => {
    const text = (el.getAttribute('aria-label') || el.textContent || el.value || '').trim();
    return `<${el.tagName.toLowerCase()} class="${el.className}"> ${text.slice(0, 40)}`;
  };
  const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
  const found = [];
  for (const el of document.querySelectorAll(interactive)) {
    if (!shown(el) || el.closest('.sr-only, .skip')) continue;
    const r = el.getBoundingClientRect();
    let left = 0, right = window.innerWidth;
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX === 'visible') continue;
      const ar = a.getBoundingClientRect();
      left = Math.max(left, ar.left);
      right = Math.min(right, ar.right);
    }
    if (r.left < left - 1 || r.right > right + 1) {
      const at = (a, b) => `${Math.round(a)}..${Math.round(b)}`;
      found.push(`${name(el)}: x ${at(r.left, r.right)}, room ${at(left, right)}`);
    }
  }
  for (const el of document.querySelectorAll('body *')) {
    if (!shown(el) || el.matches(mayScroll) || el.closest(mayScroll) || el.closest('.sr-only')) continue;
    if (el.matches('input, textarea, select')) continue; // a field scrolls its own text
    const style = getComputedStyle(el);
    if (style.textOverflow === 'ellipsis') continue; // cut on purpose, with an ellipsis
    if (style.overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1) {
      found.push(`${name(el)}: content ${el.scrollWidth} px wide in ${el.clientWidth} px`);
    }
  }
  return found;
}
