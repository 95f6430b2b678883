import { useEffect, useRef } from "react";
import { ansiToSegments } from "../lib/terminal";

// A terminal panel: ANSI colours rendered, height between minLines and maxLines, and it follows
// the newest line unless the user has scrolled up to read something.
export function Terminal(props: { lines: string[]; minLines: number; maxLines: number; testId?: string }) {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [props.lines]);
  const onScroll = () => {
    const el = ref.current;
    if (el) stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 8;
  };
  const style = {
    minHeight: `calc(${Math.max(1, props.minLines)} * 1.35em + 12px)`,
    maxHeight: `calc(${Math.max(props.minLines, props.maxLines)} * 1.35em + 12px)`,
  };
  return (
    <pre className="terminal" ref={ref} onScroll={onScroll} style={style} data-testid={props.testId}>
      {props.lines.map((line, i) => (
        <div key={i} className="term-line">
          {ansiToSegments(line).map((seg, j) => (
            <span
              key={j}
              style={{
                color: seg.fg,
                background: seg.bg,
                fontWeight: seg.bold ? 700 : undefined,
                opacity: seg.dim ? 0.7 : undefined,
                fontStyle: seg.italic ? "italic" : undefined,
                textDecoration: seg.underline ? "underline" : undefined,
              }}
            >
              {seg.text}
            </span>
          ))}
          {line === "" ? "\u00a0" : null}
        </div>
      ))}
    </pre>
  );
}
