/**
 * Shader modules and compute pipelines, compiled once and cached by (shader, entry, constants).
 * Sources come from the host (files on disk in Node, bundled text in the browser).
 */
import { KernelError } from '../../errors.ts';
import { type ExpandedSource, expandIncludes, includedFiles, isFragment } from './include.ts';
import { type ReflectedEntry, type ReflectedShader, reflectShader } from './reflect.ts';

export type ShaderSources = Readonly<Record<string, string>>;

export interface CompiledPipeline {
  /** Stable small integer, used in bind-group cache keys. */
  id: number;
  kernel: string;
  /** Shader file and `kernel[constants]`, for profiles and traces. */
  shader: string;
  label: string;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  entry: ReflectedEntry;
}

function formatCompilationMessages(
  file: string,
  expanded: ExpandedSource,
  messages: readonly GPUCompilationMessage[],
): string {
  const lines = expanded.code.split('\n');
  return messages
    .map((m) => {
      const text = lines[m.lineNum - 1] ?? '';
      const caret = m.linePos > 0 ? `${' '.repeat(m.linePos - 1)}^` : '';
      const at = expanded.origin[m.lineNum - 1] ?? { file, line: m.lineNum };
      const via = at.file === file ? '' : ` (included from shaders/${file})`;
      return `shaders/${at.file}:${at.line}:${m.linePos}: ${m.type}: ${m.message}${via}\n    ${text}\n    ${caret}`;
    })
    .join('\n');
}

/**
 * Compiles WGSL (reporting file:line:column on error) and reflects its interface. `library` holds
 * the other shader files, for `//!include`.
 */
export async function compileShader(
  device: GPUDevice,
  file: string,
  source: string,
  library: Readonly<Record<string, string>> = {},
): Promise<{ module: GPUShaderModule; reflection: ReflectedShader }> {
  const expanded = expandIncludes(file, { ...library, [file]: source });
  device.pushErrorScope('validation');
  const module = device.createShaderModule({ label: file, code: expanded.code });
  const info = await module.getCompilationInfo();
  const scopeError = await device.popErrorScope();
  const errors = info.messages.filter((m) => m.type === 'error');
  if (errors.length > 0)
    throw new KernelError(
      file,
      `WGSL compilation failed\n${formatCompilationMessages(file, expanded, errors)}`,
    );
  if (scopeError) throw new KernelError(file, `shader module creation failed: ${scopeError.message}`);
  return { module, reflection: reflectShader(file, expanded.code) };
}

/** WGSL `enable` extensions and the device features they need. */
const EXTENSION_FEATURES: Readonly<Record<string, string>> = { subgroups: 'subgroups', f16: 'shader-f16' };

/**
 * Whether this device has the features a shader's `enable` directives name: a shader written for an
 * optional feature (the subgroup matmul) is not compiled on a device without it, and its launch
 * wrapper never picks it there.
 */
export function shaderSupported(device: GPUDevice, source: string): boolean {
  for (const match of source.matchAll(/^\s*enable\s+([\w\s,]+);/gm))
    for (const extension of match[1].split(',').map((e) => e.trim()))
      if (!device.features.has(EXTENSION_FEATURES[extension] ?? extension)) return false;
  return true;
}

export class KernelRegistry {
  private readonly modules = new Map<string, { module: GPUShaderModule; reflection: ReflectedShader }>();
  private readonly pipelines = new Map<string, CompiledPipeline>();
  /** Validation results of pipelines created since the last check (creation is synchronous). */
  private pendingChecks: Promise<void>[] = [];
  /** When set, every WGSL source is printed the first time a pipeline uses it (SHARPNESS_LAB_PRINT_WGSL). */
  printSource?: (file: string, source: string, constants: Record<string, number>) => void;

  private constructor(
    private readonly device: GPUDevice,
    private readonly sources: ShaderSources,
  ) {}

  /**
   * Compiles every shader up front so syntax errors surface at start-up with file and line;
   * fragments are compiled inside the shaders that include them. A file that is included but not
   * marked `//!fragment`, or a fragment nobody includes, is refused.
   */
  static async create(device: GPUDevice, sources: ShaderSources): Promise<KernelRegistry> {
    for (const [file, source] of Object.entries(sources)) {
      for (const included of includedFiles(source)) {
        const library = sources[included];
        if (library !== undefined && !isFragment(library))
          throw new KernelError(
            included,
            `is included by ${file} but does not start with //!fragment (files that others include are fragments, compiled only inside their includers)`,
          );
      }
    }
    const registry = new KernelRegistry(device, sources);
    for (const [file, source] of Object.entries(sources)) {
      if (!isFragment(source) && shaderSupported(device, source))
        registry.modules.set(file, await compileShader(device, file, source, sources));
    }
    for (const [file, source] of Object.entries(sources)) {
      if (!isFragment(source)) continue;
      const included = [...registry.modules.keys()].some((k) =>
        expandIncludes(k, sources).origin.some((o) => o.file === file),
      );
      if (!included)
        throw new KernelError(file, 'is a //!fragment that no shader includes, so it is never compiled');
    }
    return registry;
  }

  reflection(file: string): ReflectedShader {
    const compiled = this.modules.get(file);
    if (!compiled)
      throw new KernelError(file, `no such shader (known: ${[...this.modules.keys()].join(', ')})`);
    return compiled.reflection;
  }

  /** The pipeline for a kernel: cached by every input that changes generated code. */
  pipeline(
    kernel: string,
    file: string,
    entryName: string,
    constants: Record<string, number> = {},
  ): CompiledPipeline {
    const constantKey = Object.keys(constants)
      .sort()
      .map((k) => `${k}=${constants[k]}`)
      .join(',');
    const key = `${file}|${entryName}|${constantKey}`;
    const cached = this.pipelines.get(key);
    if (cached) return cached;

    const compiled = this.modules.get(file);
    if (!compiled) throw new KernelError(kernel, `shader '${file}' is not loaded`);
    const entry = compiled.reflection.entries.get(entryName);
    if (!entry) throw new KernelError(kernel, `shader '${file}' has no compute entry point '${entryName}'`);
    const known = new Set(compiled.reflection.overrides.map((o) => o.name));
    for (const name of Object.keys(constants)) {
      if (!known.has(name))
        throw new KernelError(
          kernel,
          `shader '${file}' has no override '${name}' (has: ${[...known].join(', ') || 'none'})`,
        );
    }
    this.printSource?.(file, expandIncludes(file, this.sources).code, constants);

    const label = `${kernel}[${constantKey}]`;
    this.device.pushErrorScope('validation');
    const layout = this.device.createBindGroupLayout({
      label,
      entries: entry.bindings.map((b) => ({
        binding: b.binding,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind },
      })),
    });
    const pipeline = this.device.createComputePipeline({
      label,
      layout: this.device.createPipelineLayout({ label, bindGroupLayouts: [layout] }),
      compute: { module: compiled.module, entryPoint: entryName, constants },
    });
    this.pendingChecks.push(
      this.device.popErrorScope().then((error) => {
        if (error)
          throw new KernelError(
            kernel,
            `pipeline creation failed (${file}:${entryName}, constants {${constantKey}}): ${error.message}`,
          );
      }),
    );
    const result: CompiledPipeline = {
      id: this.pipelines.size,
      kernel,
      shader: file,
      label,
      pipeline,
      layout,
      entry,
    };
    this.pipelines.set(key, result);
    return result;
  }

  /** Rejects with the first pipeline-creation error since the last call. */
  async checkPipelines(): Promise<void> {
    const checks = this.pendingChecks;
    this.pendingChecks = [];
    await Promise.all(checks);
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }
}
