// Reordering the queue (Ongoing) by drag and drop, with @dnd-kit: it does pointer, touch and
// keyboard dragging and tells screen readers what happens, which a hand-made version on the HTML
// drag events would not (they have no keyboard and no touch). Each row has a handle: drag it, or
// focus it and press Space (pick up), the arrow keys (move), Space (drop) or Escape (cancel).
// A drop asks the server to move the task before or after its new neighbour (to the top when it
// lands first); the rows show the dropped order until the server's answer is in the task store.
import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  closestCenter,
  useSensor,
  useSensors,
  type Announcements,
  type DragEndEvent,
} from "@dnd-kit/core";
import { SortableContext, arrayMove, sortableKeyboardCoordinates, useSortable, verticalListSortingStrategy } from "@dnd-kit/sortable";
import { CSS } from "@dnd-kit/utilities";
import { createContext, useContext, useMemo, useState, type ReactNode } from "react";
import type { Place } from "../api/client";
import type { TaskOut } from "../api/types";

// Where a task dropped at index `to` of `ids` (moved from `from`) goes, said by its neighbour.
export function placeOf(ids: readonly string[], from: number, to: number): Place {
  const next = arrayMove([...ids], from, to);
  if (to === 0) return { to: "top" };
  return to < from ? { before: next[to + 1] } : { after: next[to - 1] };
}

// The queued tasks in the order to show: as dropped while a move is on its way, else as given.
function shown(tasks: TaskOut[], dropped: readonly string[] | null): TaskOut[] {
  if (!dropped) return tasks;
  const rank = new Map(dropped.map((id, i) => [id, i]));
  const far = dropped.length;
  return [...tasks].sort((a, b) => (rank.get(a.task_id) ?? far) - (rank.get(b.task_id) ?? far));
}

const announcements: Announcements = {
  onDragStart: ({ active }) => `Picked up task ${active.id}.`,
  onDragOver: ({ active, over }) => (over ? `Task ${active.id} is over task ${over.id}.` : `Task ${active.id} is not over the queue.`),
  onDragEnd: ({ active, over }) => (over ? `Task ${active.id} was dropped at task ${over.id}.` : `Task ${active.id} was dropped.`),
  onDragCancel: ({ active }) => `Moving task ${active.id} was cancelled.`,
};

export function SortableQueue({
  tasks,
  move,
  children,
}: {
  tasks: TaskOut[];
  move: (taskId: string, place: Place) => Promise<void>;
  children: (rows: TaskOut[]) => ReactNode;
}) {
  const [dropped, setDropped] = useState<string[] | null>(null);
  const rows = useMemo(() => shown(tasks, dropped), [tasks, dropped]);
  const ids = useMemo(() => rows.map((t) => t.task_id), [rows]);
  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 4 } }),
    useSensor(KeyboardSensor, { coordinateGetter: sortableKeyboardCoordinates }),
  );
  const onDragEnd = async ({ active, over }: DragEndEvent) => {
    if (!over || active.id === over.id) return;
    const from = ids.indexOf(String(active.id));
    const to = ids.indexOf(String(over.id));
    if (from < 0 || to < 0) return;
    setDropped(arrayMove([...ids], from, to));
    try {
      await move(String(active.id), placeOf(ids, from, to));
    } finally {
      setDropped(null);
    }
  };
  return (
    <DndContext
      sensors={sensors}
      collisionDetection={closestCenter}
      onDragEnd={(e) => void onDragEnd(e)}
      accessibility={{
        announcements,
        screenReaderInstructions: {
          draggable:
            "To move a queued task, press Space or Enter, then the arrow keys; Space or Enter drops it, Escape cancels.",
        },
      }}
    >
      <SortableContext items={ids} strategy={verticalListSortingStrategy}>
        {children(rows)}
      </SortableContext>
    </DndContext>
  );
}

type Handle = ReturnType<typeof useSortable>;
const HandleContext = createContext<Handle | null>(null);

// A table row that can be dragged by the DragHandle inside it.
export function SortableRow({ id, testId, children }: { id: string; testId: string; children: ReactNode }) {
  const sortable = useSortable({ id });
  const style = { transform: CSS.Translate.toString(sortable.transform), transition: sortable.transition };
  return (
    <tr ref={sortable.setNodeRef} style={style} data-testid={testId} className={sortable.isDragging ? "dragging" : undefined}>
      <HandleContext.Provider value={sortable}>{children}</HandleContext.Provider>
    </tr>
  );
}

export function DragHandle({ id }: { id: string }) {
  const sortable = useContext(HandleContext);
  if (!sortable) return null;
  return (
    <button
      type="button"
      className="ghost drag-handle"
      ref={sortable.setActivatorNodeRef}
      {...sortable.attributes}
      {...sortable.listeners}
      aria-label={`Reorder ${id}`}
      title="Drag to reorder (or focus and press Space, then the arrow keys)"
      data-testid={`drag-${id}`}
    >
      ⠿
    </button>
  );
}
