/**
 * The engine: a device, its kernel registry, a buffer pool and a scheduler. Tensors are f32 (or u32)
 * arrays on the GPU with a per-replica shape and a leading replica (batch) count.
 */
import { InputError, KernelError, positiveInteger } from '../errors.ts';
import type { GpuContext } from '../gpu/context.ts';
import { packUniforms } from '../gpu/shader/reflect.ts';
import { KernelRegistry, type ShaderSources } from '../gpu/shader/registry.ts';
import { Profiler } from '../profile/profiler.ts';
import { BufferPool } from './pool.ts';
import { type BoundBuffer, Scheduler } from './scheduler.ts';

export type DType = 'f32' | 'u32';

export class Tensor {
  private disposed = false;
  constructor(
    readonly engine: Engine,
    readonly buffer: GPUBuffer,
    /** Shape of one replica. */
    readonly shape: readonly number[],
    /** Number of replicas (leading batch dimension); 1 broadcasts against any batch. */
    readonly batch: number,
    readonly dtype: DType,
    /** Views share another tensor's buffer and never return it to the pool. */
    private readonly ownsBuffer = true,
  ) {}

  /** Elements per replica. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Elements in all replicas. */
  get length(): number {
    return this.size * this.batch;
  }

  get byteLength(): number {
    return this.length * 4;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Returns the buffer to the pool. Launches already encoded still see the old contents. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.ownsBuffer) this.engine.pool.release(this.buffer);
  }

  /** Copies to the CPU (flushes pending work). Layout: replica-major, then row-major shape. */
  read(): Promise<Float32Array | Uint32Array> {
    return this.engine.read(this);
  }

  toString(): string {
    return `Tensor(${this.dtype}, batch ${this.batch}, [${this.shape.join(', ')}])`;
  }
}

export interface LaunchSpec {
  /** Kernel name for labels, errors and profiles (e.g. 'matmul'). */
  kernel: string;
  shader: string;
  entry?: string;
  constants?: Record<string, number>;
  /** Storage bindings by WGSL variable name, each with the bytes its shapes require. */
  buffers: Record<string, { tensor: Tensor; minBytes?: number } | { buffer: GPUBuffer; minBytes: number }>;
  uniforms?: Record<string, number | readonly number[]>;
  workgroups: readonly [number, number?, number?];
}

export interface EngineOptions {
  /** Print each shader's WGSL (with its override constants) when first used. */
  printWgsl?: boolean;
}

export class Engine {
  readonly pool: BufferPool;
  readonly scheduler: Scheduler;
  /** Per-launch GPU timing (off until `profiler.start()`). */
  readonly profiler: Profiler;
  private readonly stagingFree: GPUBuffer[] = [];

  private constructor(
    readonly context: GpuContext,
    readonly registry: KernelRegistry,
  ) {
    this.pool = new BufferPool(context.device);
    this.profiler = new Profiler(context.device);
    this.scheduler = new Scheduler(context, this.profiler);
  }

  static async create(
    context: GpuContext,
    sources: ShaderSources,
    options: EngineOptions = {},
  ): Promise<Engine> {
    const registry = await KernelRegistry.create(context.device, sources);
    if (options.printWgsl) {
      registry.printSource = (file, source, constants) =>
        console.log(`// ---- shaders/${file} with overrides ${JSON.stringify(constants)}\n${source}`);
    }
    return new Engine(context, registry);
  }

  get device(): GPUDevice {
    return this.context.device;
  }

  get limits(): GPUSupportedLimits {
    return this.context.device.limits;
  }

  /** An uninitialised tensor from the pool (contents are whatever the buffer held). */
  empty(shape: readonly number[], options: { batch?: number; dtype?: DType; label?: string } = {}): Tensor {
    const batch = options.batch ?? 1;
    for (const [i, d] of shape.entries()) {
      if (!Number.isInteger(d) || d < 1)
        throw new InputError(`shape[${i}]`, `dimensions must be positive integers, got ${d}`);
    }
    positiveInteger('batch', batch);
    const elements = shape.reduce((a, b) => a * b, 1) * batch;
    const bytes = elements * 4;
    if (bytes > this.limits.maxBufferSize) {
      throw new InputError(
        'shape',
        `[${batch} × ${shape.join(' × ')}] needs ${bytes} bytes; this adapter's maxBufferSize is ${this.limits.maxBufferSize}`,
      );
    }
    const buffer = this.pool.acquire(bytes, options.label ?? `tensor [${batch}; ${shape.join('×')}]`);
    return new Tensor(this, buffer, [...shape], batch, options.dtype ?? 'f32');
  }

  /**
   * The same memory seen with another per-replica shape and replica count (batch × size must agree):
   * e.g. batch R of [n] is batch 1 of [R, n]. The view does not own the buffer.
   */
  view(t: Tensor, shape: readonly number[], batch = 1): Tensor {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size * batch !== t.length)
      throw new InputError(
        'view',
        `batch ${batch} of [${shape}] does not hold the ${t.length} elements of ${t}`,
      );
    return new Tensor(this, t.buffer, [...shape], batch, t.dtype, false);
  }

  /** A tensor holding `data` (length batch × prod(shape)). */
  tensor(
    data: ArrayLike<number>,
    shape: readonly number[],
    options: { batch?: number; dtype?: DType; label?: string } = {},
  ): Tensor {
    const t = this.empty(shape, options);
    if (data.length !== t.length) {
      t.dispose();
      throw new InputError(
        'data',
        `has ${data.length} values; shape [${options.batch ?? 1}; ${shape.join(', ')}] needs ${t.length}`,
      );
    }
    this.write(t, data);
    return t;
  }

  /** Overwrites a tensor's contents from the CPU, ordered after all launches encoded so far. */
  write(t: Tensor, data: ArrayLike<number>): void {
    const typed = t.dtype === 'u32' ? Uint32Array.from(data) : Float32Array.from(data);
    // queue.writeBuffer runs before any unsubmitted command buffer; submit those first so a pooled
    // buffer still read by an encoded launch is not overwritten early.
    if (this.scheduler.pending > 0) this.flush();
    this.device.queue.writeBuffer(t.buffer, 0, typed.buffer, typed.byteOffset, typed.byteLength);
  }

  /**
   * Copies `bytes` bytes of `source` from byte `sourceOffset` into `target` at `targetOffset`, ordered
   * after the launches encoded so far. Flush before `source`'s buffer can be reused: a queue write
   * into the pooled buffer would overtake the copy.
   */
  copyBytes(source: Tensor, sourceOffset: number, target: Tensor, targetOffset: number, bytes: number): void {
    if (source.isDisposed || target.isDisposed)
      throw new KernelError('copyBytes', 'was given a disposed tensor');
    this.scheduler
      .copyEncoder()
      .copyBufferToBuffer(source.buffer, sourceOffset, target.buffer, targetOffset, bytes);
  }

  /**
   * One tensor holding the replicas of `parts` (one per-replica shape and dtype) end to end: batch
   * Σ parts' batches. Flush before disposing the parts (see `copyBytes`).
   */
  concatReplicas(parts: readonly Tensor[], options: { label?: string } = {}): Tensor {
    if (parts.length === 0) throw new InputError('concatReplicas', 'needs at least one tensor');
    const [first] = parts;
    for (const [i, part] of parts.entries()) {
      if (part.dtype !== first.dtype || part.shape.join(',') !== first.shape.join(','))
        throw new InputError(`concatReplicas[${i}]`, `${part} does not match ${first}`);
    }
    const batch = parts.reduce((sum, part) => sum + part.batch, 0);
    const whole = this.empty(first.shape, { batch, dtype: first.dtype, label: options.label });
    let byte = 0;
    for (const part of parts) {
      this.copyBytes(part, 0, whole, byte, part.byteLength);
      byte += part.byteLength;
    }
    return whole;
  }

  /** Encodes one kernel launch after checking every binding's size and the dispatch against the limits. */
  launch(spec: LaunchSpec): void {
    const entryName = spec.entry ?? 'main';
    const compiled = this.registry.pipeline(spec.kernel, spec.shader, entryName, spec.constants);
    const limits = this.limits;
    const bound: BoundBuffer[] = [];
    for (const binding of compiled.entry.bindings) {
      if (binding.kind === 'uniform') continue;
      const given = spec.buffers[binding.name];
      if (!given)
        throw new KernelError(
          spec.kernel,
          `binding '${binding.name}' (@binding(${binding.binding})) was not given a buffer`,
        );
      let buffer: GPUBuffer;
      let minBytes: number;
      if ('tensor' in given) {
        if (given.tensor.isDisposed)
          throw new KernelError(spec.kernel, `binding '${binding.name}' was given a disposed tensor`);
        buffer = given.tensor.buffer;
        minBytes = given.minBytes ?? given.tensor.byteLength;
      } else {
        buffer = given.buffer;
        minBytes = given.minBytes;
      }
      if (buffer.size < minBytes) {
        throw new KernelError(
          spec.kernel,
          `binding '${binding.name}' (@binding(${binding.binding})) needs at least ${minBytes} bytes for these shapes, but its buffer has ${buffer.size}`,
        );
      }
      if (buffer.size > limits.maxStorageBufferBindingSize) {
        throw new KernelError(
          spec.kernel,
          `binding '${binding.name}' is ${buffer.size} bytes, above this adapter's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}`,
        );
      }
      bound.push({ buffer, offset: 0, size: buffer.size });
    }
    for (const name of Object.keys(spec.buffers)) {
      if (!compiled.entry.bindings.some((b) => b.name === name)) {
        throw new KernelError(spec.kernel, `entry '${entryName}' of ${spec.shader} has no binding '${name}'`);
      }
    }
    const workgroups: [number, number, number] = [
      spec.workgroups[0],
      spec.workgroups[1] ?? 1,
      spec.workgroups[2] ?? 1,
    ];
    for (const [axis, count] of workgroups.entries()) {
      if (!Number.isInteger(count) || count < 0 || count > limits.maxComputeWorkgroupsPerDimension) {
        throw new KernelError(
          spec.kernel,
          `dispatch of ${count} workgroups on axis ${'xyz'[axis]} exceeds maxComputeWorkgroupsPerDimension ${limits.maxComputeWorkgroupsPerDimension}`,
        );
      }
    }
    if (workgroups.some((c) => c === 0)) return;
    const uniforms = compiled.entry.uniform
      ? packUniforms(spec.kernel, compiled.entry.uniform, spec.uniforms ?? {})
      : undefined;
    this.scheduler.dispatch(compiled, bound, uniforms, workgroups);
  }

  /** Submits everything encoded so far. */
  flush(): void {
    this.scheduler.flush();
  }

  /** Reads a tensor back (submitting pending work first). Also surfaces pipeline-creation errors. */
  async read(t: Tensor): Promise<Float32Array | Uint32Array> {
    if (t.isDisposed) throw new KernelError('read', 'tensor was disposed');
    const bytes = t.byteLength;
    const staging = this.acquireStaging(bytes);
    this.scheduler.copyEncoder().copyBufferToBuffer(t.buffer, 0, staging, 0, bytes);
    this.flush();
    await this.registry.checkPipelines();
    try {
      await staging.mapAsync(GPUMapMode.READ, 0, bytes);
    } catch (error) {
      throw new KernelError(
        'read',
        `mapping the result failed${this.context.lost ? ` (device lost: ${this.context.lost})` : ''}: ${(error as Error).message}`,
      );
    }
    const copy = staging.getMappedRange(0, bytes).slice(0);
    staging.unmap();
    this.stagingFree.push(staging);
    return t.dtype === 'u32' ? new Uint32Array(copy) : new Float32Array(copy);
  }

  private acquireStaging(bytes: number): GPUBuffer {
    const index = this.stagingFree.findIndex((b) => b.size >= bytes && b.size <= 4 * bytes + 4096);
    if (index >= 0) return this.stagingFree.splice(index, 1)[0];
    return this.device.createBuffer({
      label: 'readback',
      size: Math.ceil(bytes / 4) * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** Waits until the GPU has finished all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.registry.checkPipelines();
  }

  destroy(): void {
    this.pool.trim();
    for (const b of this.stagingFree) b.destroy();
    this.stagingFree.length = 0;
    this.profiler.destroy();
    this.device.destroy();
  }
}
