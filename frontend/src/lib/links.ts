// Task ids inside a message (a toast), split out so that each can be a link to its task page.
// An id counts only as a whole word: "a" is not found inside "task(s)".

const ID_CHAR = "[A-Za-z0-9._-]";
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function linkIds(message: string, ids: string[]): { text: string; id?: string }[] {
  const wanted = [...new Set(ids)].filter(Boolean).sort((a, b) => b.length - a.length);
  if (!wanted.length) return [{ text: message }];
  const pattern = new RegExp(`(?<!${ID_CHAR})(${wanted.map(escape).join("|")})(?!${ID_CHAR})`, "g");
  const out: { text: string; id?: string }[] = [];
  let last = 0;
  for (const match of message.matchAll(pattern)) {
    const at = match.index ?? 0;
    if (at > last) out.push({ text: message.slice(last, at) });
    out.push({ text: match[0], id: match[0] });
    last = at + match[0].length;
  }
  if (last < message.length) out.push({ text: message.slice(last) });
  return out;
}
