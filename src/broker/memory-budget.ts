/** Estimated heap cost of a ready message beyond its bytes (entry, message, buffers). */
export const ENTRY_OVERHEAD = 256;

/**
 * The bytes of ready messages the broker keeps in memory, across all queues. Past the limit,
 * queues with a store stop keeping new messages in memory and keep them only on disk.
 */
export class MemoryBudget {
  readonly limit: number;
  used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get exceeded(): boolean {
    return this.used > this.limit;
  }
}
