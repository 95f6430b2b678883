// A slider plus a number box for "how many lines", as the seed's Live/Output Lines controls.
export function LineControl(props: { label: string; value: number; max: number; onChange: (n: number) => void }) {
  const set = (raw: string) => props.onChange(Math.min(Math.max(1, Math.round(Number(raw)) || 1), props.max));
  return (
    <label className="row live-lines">
      {props.label}
      <input type="range" min={1} max={props.max} value={props.value} onChange={(e) => set(e.target.value)} aria-label={`${props.label} slider`} />
      <input type="number" min={1} max={props.max} value={props.value} onChange={(e) => set(e.target.value)} aria-label={props.label} />
    </label>
  );
}
