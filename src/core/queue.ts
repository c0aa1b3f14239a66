import type { SchedJob } from './model';

/** Orders pending jobs: negative when `a` goes first. One comparator, so fair share can replace it. */
export type JobComparator = (a: SchedJob, b: SchedJob) => number;

/** Priority (higher first), then submit time (earlier first), then id: a total, stable order. */
export const byPriorityThenSubmitTime: JobComparator = (a, b) =>
  b.priority - a.priority || a.submittedAtMs - b.submittedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The pending queue: a binary heap with a position index, so push, pop and removal of any job
 * (cancel) are O(log n), and the head is O(1).
 */
export class JobQueue<T extends SchedJob = SchedJob> {
  private readonly heap: T[] = [];
  private readonly position = new Map<string, number>();

  constructor(private compare: JobComparator = byPriorityThenSubmitTime) {}

  get size(): number {
    return this.heap.length;
  }

  has(jobId: string): boolean {
    return this.position.has(jobId);
  }

  get(jobId: string): T | undefined {
    const i = this.position.get(jobId);
    return i === undefined ? undefined : this.heap[i];
  }

  /** The job that goes first, without removing it. */
  peek(): T | undefined {
    return this.heap[0];
  }

  push(job: T): void {
    if (this.position.has(job.id)) throw new Error(`job ${job.id} is already queued`);
    this.heap.push(job);
    this.position.set(job.id, this.heap.length - 1);
    this.siftUp(this.heap.length - 1);
  }

  pop(): T | undefined {
    const head = this.heap[0];
    if (head !== undefined) this.removeAt(0);
    return head;
  }

  /** Removes a job wherever it is; returns it, or undefined if it was not queued. */
  remove(jobId: string): T | undefined {
    const i = this.position.get(jobId);
    if (i === undefined) return undefined;
    const job = this.heap[i];
    this.removeAt(i);
    return job;
  }

  /** Replaces the order (for example when fair shares change) and re-heapifies: O(n). */
  reorder(compare: JobComparator = this.compare): void {
    this.compare = compare;
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** The queued jobs in no particular order. */
  values(): readonly T[] {
    return this.heap;
  }

  /** All queued jobs in order (O(n log n); for listings, not the hot path). */
  toSortedArray(): T[] {
    return [...this.heap].sort(this.compare);
  }

  private removeAt(i: number): void {
    const removed = this.heap[i];
    this.position.delete(removed.id);
    const last = this.heap.pop()!;
    if (last === removed) return;
    this.heap[i] = last;
    this.position.set(last.id, i);
    this.siftDown(i);
    this.siftUp(i);
  }

  private siftUp(i: number): void {
    const heap = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.compare(heap[i], heap[parent]) >= 0) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && this.compare(heap[right], heap[left]) < 0 ? right : left;
      if (this.compare(heap[child], heap[i]) >= 0) break;
      this.swap(i, child);
      i = child;
    }
  }

  private swap(i: number, j: number): void {
    const a = this.heap[i];
    const b = this.heap[j];
    this.heap[i] = b;
    this.heap[j] = a;
    this.position.set(b.id, i);
    this.position.set(a.id, j);
  }
}
