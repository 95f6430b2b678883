export function Progress(props: { taskId: string; value: number }) {
  return (
    <div className="progress" data-testid={`progress-${props.taskId}`}>
      <div className="progress-fill" style={{ width: `${props.value * 100}%` }} />
      <span>{(props.value * 100).toFixed(0)}%</span>
    </div>
  );
}
