/**
 * What Node and the page say to each other. Node calls `window.sharpnessLab.start(...)` through
 * `page.evaluate`; the page answers through one exposed function, `__sharpnessLabEvent`, with JSON
 * events (ready, progress, log, done, failed, fatal). Imported by both sides: no `node:*`, no DOM.
 */
import type { Engine } from '../../src/tensor/engine.ts';

/** Name of the function Node exposes on `window`; the page sends every event through it. */
export const EVENT_BINDING = '__sharpnessLabEvent';

/**
 * Faults the page can be told to inject (SHARPNESS_LAB_BROWSER_FAULT), to test the failure paths.
 * 'hang' and 'hold-device' (a device open) never finish the job; the page then sends 'armed', on
 * which the Node side injects its own faults (kill the browser, crash its GPU process).
 */
export const PAGE_FAULTS = [
  'throw',
  'uncaught',
  'console-error',
  'rejection',
  'hang',
  'hold-device',
] as const;
export type PageFault = (typeof PAGE_FAULTS)[number];

/** Sent once by Node after the page loaded: how to find the adapter and what to call the host. */
export interface PageInit {
  /** e.g. 'chromium 156 (puppeteer)'. */
  host: string;
  /** Native API underneath WebGPU, as the Node side knows it from the platform and flags. */
  backend: string;
  /** Refuse a SwiftShader (CPU) adapter. */
  requireHardware: boolean;
  /** requestAdapter gives up after this long (hardware flags can hang it on a GPU-less machine). */
  adapterTimeoutMs: number;
  /** Make every job fail this way (tests of the failure paths). */
  fault?: PageFault;
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  /** InputError's field, so Node can rethrow it as an InputError (exit code 2). */
  field?: string;
}

export type PageEvent =
  | { type: 'ready' }
  | { type: 'progress'; job: number; event: unknown }
  | { type: 'log'; job: number; line: string }
  | { type: 'done'; job: number; result: unknown }
  | { type: 'failed'; job: number; error: SerializedError }
  | { type: 'fatal'; message: string }
  | { type: 'armed'; job: number };

/** What the page puts on `window.sharpnessLab`. */
export interface PageApi {
  init(init: PageInit): Promise<void>;
  /** Starts job `name` with JSON-encoded params; returns at once, the outcome comes as an event. */
  start(job: number, name: string, params: string): void;
}

/** How a running job talks to the Node side. */
export interface JobIO<Progress = unknown> {
  /** Structured progress for the Node side's `onProgress` (all of it arrives before the result). */
  progress(event: Progress): void;
  /** A progress line for the terminal (stderr on the Node side). */
  log(line: string): void;
}

/**
 * A host-agnostic job: runs on an engine it is handed, so the same function runs in Node (on a Dawn
 * engine) and in the page (on a Chromium engine). Params and result must survive `encodeJson`.
 */
// biome-ignore lint/suspicious/noExplicitAny: job tables map names to jobs of any parameter type.
export type EngineJob<Params = any, Result = any, Progress = any> = (
  engine: Engine,
  params: Params,
  io: JobIO<Progress>,
) => Promise<Result>;

/** What a page job gets besides its params. */
export interface JobContext<Progress = unknown> extends JobIO<Progress> {
  init: PageInit;
  /** A fresh device and engine on the page's adapter; destroy it when done. */
  createEngine(): Promise<Engine>;
}

/** A page job: manages its own engines (e.g. the kernel tests, one engine per suite). */
// biome-ignore lint/suspicious/noExplicitAny: job tables map names to jobs of any parameter type.
export type PageJob<Params = any, Result = any, Progress = any> = (
  context: JobContext<Progress>,
  params: Params,
) => Promise<Result>;

export type JobTable = Record<string, PageJob>;
// biome-ignore lint/suspicious/noExplicitAny: matches both job forms (params are the second argument).
type AnyJob = (first: any, params: any, io: any) => Promise<unknown>;
export type JobParams<J> = J extends (first: never, params: infer P, ...rest: never[]) => unknown ? P : never;
export type JobResult<J> = J extends AnyJob ? Awaited<ReturnType<J>> : never;
export type JobProgress<J> =
  J extends EngineJob<never, unknown, infer E> ? E : J extends PageJob<never, unknown, infer E> ? E : never;

const TYPED_ARRAYS = {
  Float32Array,
  Float64Array,
  Uint32Array,
  Int32Array,
  Uint8Array,
} as const;
type TypedArrayName = keyof typeof TYPED_ARRAYS;

/**
 * JSON that keeps what plain JSON loses: NaN and ±Infinity (as {"$number": "NaN"}) and typed arrays
 * (as {"$typed": "Float32Array", "values": [...]}; f32 values round-trip exactly through doubles).
 */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const name = v.constructor.name;
      if (name in TYPED_ARRAYS) return { $typed: name, values: Array.from(v as Float32Array) };
    }
    return v;
  });
}

export function decodeJson(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const record = v as Record<string, unknown>;
      if (typeof record.$number === 'string' && Object.keys(record).length === 1)
        return Number(record.$number);
      if (typeof record.$typed === 'string' && record.$typed in TYPED_ARRAYS && Array.isArray(record.values))
        return TYPED_ARRAYS[record.$typed as TypedArrayName].from(record.values as number[]);
    }
    return v;
  });
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof Error) {
    const field = (error as { field?: unknown }).field;
    return {
      name: error.name,
      message: error.message,
      stack: error.stack,
      ...(typeof field === 'string' ? { field } : {}),
    };
  }
  return { name: 'Error', message: String(error) };
}
