/**
 * Reuses freed storage buffers. Buffers are bucketed by a size class so a freed buffer serves any
 * later request of the same class; reuse is stream-ordered (launches run in encoding order), so a
 * buffer released while an unflushed launch still reads it can be handed out immediately.
 */
export const STORAGE_USAGE = GPUBufferUsageFlagsForStorage();

function GPUBufferUsageFlagsForStorage(): number {
  // GPUBufferUsage is a host global; read it lazily so importing this module needs no device.
  return 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08 /* COPY_DST */;
}

/** Size classes: multiples of 256 B up to 64 KiB, then quarter-octave steps (≤ 19 % slack). */
export function sizeClass(bytes: number): number {
  const minimum = Math.max(16, bytes);
  if (minimum <= 65536) return Math.ceil(minimum / 256) * 256;
  const octave = 2 ** Math.floor(Math.log2(minimum));
  const step = octave / 4;
  return Math.ceil(minimum / step) * step;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private liveBytes = 0;
  private pooledBytes = 0;
  allocations = 0;
  reuses = 0;

  constructor(private readonly device: GPUDevice) {}

  acquire(bytes: number, label: string): GPUBuffer {
    const size = sizeClass(bytes);
    const bucket = this.free.get(size);
    const reused = bucket?.pop();
    if (reused) {
      this.reuses++;
      this.pooledBytes -= size;
      this.liveBytes += size;
      return reused;
    }
    this.allocations++;
    this.liveBytes += size;
    return this.device.createBuffer({ label, size, usage: STORAGE_USAGE });
  }

  release(buffer: GPUBuffer): void {
    const size = buffer.size;
    let bucket = this.free.get(size);
    if (!bucket) {
      bucket = [];
      this.free.set(size, bucket);
    }
    bucket.push(buffer);
    this.liveBytes -= size;
    this.pooledBytes += size;
  }

  /** Destroys the pooled (free) buffers, e.g. between experiments. */
  trim(): void {
    for (const bucket of this.free.values()) for (const buffer of bucket) buffer.destroy();
    this.free.clear();
    this.pooledBytes = 0;
  }

  stats(): { liveBytes: number; pooledBytes: number; allocations: number; reuses: number } {
    return {
      liveBytes: this.liveBytes,
      pooledBytes: this.pooledBytes,
      allocations: this.allocations,
      reuses: this.reuses,
    };
  }
}
