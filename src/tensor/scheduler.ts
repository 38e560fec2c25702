/**
 * Encodes many kernel launches into one compute pass and submits once per flush(). WebGPU
 * orders dispatches within a pass (each dispatch is its own usage scope), so a whole training step
 * can be one pass. Uniform values go into a per-flush arena uploaded with one writeBuffer per chunk.
 */
import { KernelError } from '../errors.ts';
import type { GpuContext } from '../gpu/context.ts';
import type { CompiledPipeline } from '../gpu/shader/registry.ts';
import type { Profiler } from '../profile/profiler.ts';

const ARENA_CHUNK_BYTES = 65536;

interface ArenaChunk {
  buffer: GPUBuffer;
  staging: Uint8Array<ArrayBuffer>;
  used: number;
}

export interface BoundBuffer {
  buffer: GPUBuffer;
  offset: number;
  size: number;
}

export class Scheduler {
  private encoder: GPUCommandEncoder | undefined;
  private pass: GPUComputePassEncoder | undefined;
  private readonly chunks: ArenaChunk[] = [];
  private chunkIndex = 0;
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private pendingKernels: string[] = [];
  private readonly alignment: number;
  /** Launches encoded since creation; submits made (for benchmarks and tests of batching). */
  launches = 0;
  submits = 0;

  constructor(
    private readonly context: GpuContext,
    /** When recording, each launch gets its own (timestamped) pass; see src/profile/profiler.ts. */
    private readonly profiler?: Profiler,
  ) {
    this.alignment = context.device.limits.minUniformBufferOffsetAlignment;
  }

  private get device(): GPUDevice {
    return this.context.device;
  }

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'sharpness-lab step' });
    if (!this.pass) this.pass = this.encoder.beginComputePass({ label: 'sharpness-lab kernels' });
    return this.pass;
  }

  /** The command encoder with no pass open, for copies between launches. */
  copyEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'sharpness-lab step' });
    return this.encoder;
  }

  private uniformSlot(bytes: ArrayBuffer): BoundBuffer {
    const size = Math.ceil(bytes.byteLength / 16) * 16;
    let chunk = this.chunks[this.chunkIndex];
    if (chunk && chunk.used + size > ARENA_CHUNK_BYTES) {
      this.chunkIndex++;
      chunk = this.chunks[this.chunkIndex];
    }
    if (!chunk) {
      chunk = {
        buffer: this.device.createBuffer({
          label: `uniform arena ${this.chunks.length}`,
          size: ARENA_CHUNK_BYTES,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
        staging: new Uint8Array(ARENA_CHUNK_BYTES),
        used: 0,
      };
      this.chunks.push(chunk);
    }
    const offset = chunk.used;
    chunk.staging.set(new Uint8Array(bytes), offset);
    chunk.used = Math.ceil((offset + size) / this.alignment) * this.alignment;
    return { buffer: chunk.buffer, offset, size };
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  /** Records one dispatch. `buffers` are in the pipeline's binding order; `uniforms` are packed bytes. */
  dispatch(
    compiled: CompiledPipeline,
    buffers: BoundBuffer[],
    uniforms: ArrayBuffer | undefined,
    workgroups: readonly [number, number, number],
  ): void {
    const resources = [...buffers];
    const entries = compiled.entry.bindings;
    const uniformIndex = entries.findIndex((b) => b.kind === 'uniform');
    if (uniformIndex >= 0) {
      if (!uniforms) throw new KernelError(compiled.kernel, 'uniform values missing');
      resources.splice(uniformIndex, 0, this.uniformSlot(uniforms));
    }
    let key = `${compiled.id}`;
    for (const r of resources) key += `|${this.bufferId(r.buffer)}:${r.offset}:${r.size}`;
    let bindGroup = this.bindGroups.get(key);
    if (!bindGroup) {
      // Training loops repeat the same launches each step, so the cache stays small; cap it anyway.
      if (this.bindGroups.size > 8192) this.bindGroups.clear();
      bindGroup = this.device.createBindGroup({
        label: compiled.kernel,
        layout: compiled.layout,
        entries: resources.map((r, i) => ({
          binding: entries[i].binding,
          resource: { buffer: r.buffer, offset: r.offset, size: r.size },
        })),
      });
      this.bindGroups.set(key, bindGroup);
    }
    const clock = this.profiler?.recording;
    if (clock) {
      // Profiled: the launch alone in a pass, so the pass's timestamps bracket exactly this kernel.
      const encoder = this.copyEncoder();
      const timestampWrites = this.profiler?.beginLaunch(encoder, {
        kernel: compiled.kernel,
        pipeline: compiled.label,
        shader: compiled.shader,
        workgroups,
      });
      const pass = encoder.beginComputePass({ label: compiled.kernel, timestampWrites });
      pass.setPipeline(compiled.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
      pass.end();
    } else {
      const pass = this.ensurePass();
      pass.setPipeline(compiled.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    }
    this.pendingKernels.push(compiled.kernel);
    this.launches++;
    // The wall-clock fallback times submits, so each launch is submitted alone.
    if (clock === 'wall-clock') this.flush();
  }

  /** Number of launches recorded but not yet submitted. */
  get pending(): number {
    return this.pendingKernels.length;
  }

  /** Ends the pass, uploads the uniform arena and submits everything encoded so far. */
  flush(): void {
    if (!this.encoder) return;
    if (this.pass) {
      this.pass.end();
      this.pass = undefined;
    }
    for (let i = 0; i <= this.chunkIndex && i < this.chunks.length; i++) {
      const chunk = this.chunks[i];
      if (chunk.used > 0) this.device.queue.writeBuffer(chunk.buffer, 0, chunk.staging, 0, chunk.used);
      chunk.used = 0;
    }
    this.chunkIndex = 0;
    this.profiler?.beforeSubmit(this.encoder);
    this.device.queue.submit([this.encoder.finish()]);
    this.profiler?.afterSubmit();
    this.encoder = undefined;
    this.context.kernelsInFlight = this.pendingKernels;
    this.pendingKernels = [];
    this.submits++;
  }

  /** Drops cached bind groups that refer to a buffer about to be destroyed. */
  forgetBuffer(buffer: GPUBuffer): void {
    const id = this.bufferIds.get(buffer);
    if (id === undefined) return;
    for (const key of this.bindGroups.keys()) if (key.includes(`|${id}:`)) this.bindGroups.delete(key);
  }
}
