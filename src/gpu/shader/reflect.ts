/**
 * Everything the engine knows about a shader's interface comes from reflecting its WGSL source:
 * binding order and kinds, uniform struct packing, override constants, workgroup sizes.
 */
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { KernelError } from '../../errors.ts';

export type BindingKind = 'uniform' | 'storage' | 'read-only-storage';

export interface ReflectedBinding {
  name: string;
  group: number;
  binding: number;
  kind: BindingKind;
  /** Element type of a storage array (`f32`, `u32`, `vec4<f32>`, …) or the uniform struct's name. */
  elementType: string;
  /** Bytes per array element for storage arrays; the struct size for uniforms. */
  elementBytes: number;
}

export interface UniformMember {
  name: string;
  offset: number;
  /** Scalar type of each component. */
  scalar: 'f32' | 'u32' | 'i32';
  /** Number of scalar components (1 for scalars, 2–4 for vectors). */
  components: number;
}

export interface UniformLayout {
  binding: string;
  size: number;
  members: UniformMember[];
}

export interface ReflectedEntry {
  name: string;
  workgroupSize: string[];
  /** Bindings this entry point statically uses, in (group, binding) order. */
  bindings: ReflectedBinding[];
  uniform?: UniformLayout;
}

export interface ReflectedShader {
  file: string;
  entries: Map<string, ReflectedEntry>;
  overrides: { name: string; type: string }[];
}

const SCALARS = new Set(['f32', 'u32', 'i32']);

interface TypeLike {
  name: string;
  size: number;
  format?: TypeLike | null;
  members?: { name: string; offset: number; size: number; type: TypeLike }[] | null;
  stride?: number;
  isArray?: boolean;
  isStruct?: boolean;
}

function typeName(type: TypeLike): string {
  return type.format ? `${type.name}<${typeName(type.format)}>` : type.name;
}

function uniformMember(
  file: string,
  structName: string,
  member: NonNullable<TypeLike['members']>[number],
): UniformMember {
  const { type } = member;
  if (SCALARS.has(type.name))
    return {
      name: member.name,
      offset: member.offset,
      scalar: type.name as UniformMember['scalar'],
      components: 1,
    };
  const vector = /^vec([234])$/.exec(type.name);
  const scalar = type.format?.name;
  if (vector && scalar && SCALARS.has(scalar)) {
    return {
      name: member.name,
      offset: member.offset,
      scalar: scalar as UniformMember['scalar'],
      components: Number(vector[1]),
    };
  }
  throw new KernelError(
    file,
    `uniform struct ${structName}.${member.name} has type ${typeName(type)}; only scalars and vectors of f32/u32/i32 are supported`,
  );
}

/** Reflects a WGSL source. Assumes Dawn already accepted it (compile errors are reported there). */
export function reflectShader(file: string, source: string): ReflectedShader {
  let reflection: WgslReflect;
  try {
    reflection = new WgslReflect(source);
  } catch (error) {
    throw new KernelError(file, `wgsl_reflect could not parse the shader: ${(error as Error).message}`);
  }
  const all = new Map<string, ReflectedBinding & { type: TypeLike }>();
  for (const u of reflection.uniforms) {
    const type = u.type as unknown as TypeLike;
    all.set(u.name, {
      name: u.name,
      group: u.group,
      binding: u.binding,
      kind: 'uniform',
      elementType: type.name,
      elementBytes: type.size,
      type,
    });
  }
  for (const s of reflection.storage) {
    const type = s.type as unknown as TypeLike;
    const element = type.format ?? type;
    all.set(s.name, {
      name: s.name,
      group: s.group,
      binding: s.binding,
      kind: s.access === 'read' ? 'read-only-storage' : 'storage',
      elementType: typeName(element),
      elementBytes: type.isArray ? (type.stride ?? element.size) : type.size,
      type,
    });
  }
  const entries = new Map<string, ReflectedEntry>();
  for (const fn of reflection.entry.compute) {
    const used = fn.resources
      .map((r) => all.get(r.name))
      .filter((b): b is NonNullable<typeof b> => b !== undefined);
    used.sort((a, b) => a.group - b.group || a.binding - b.binding);
    for (const b of used) {
      if (b.group !== 0)
        throw new KernelError(file, `binding '${b.name}' is in @group(${b.group}); kernels use group 0 only`);
    }
    const uniforms = used.filter((b) => b.kind === 'uniform');
    if (uniforms.length > 1)
      throw new KernelError(
        file,
        `entry '${fn.name}' uses ${uniforms.length} uniform buffers; one struct per kernel`,
      );
    let uniform: UniformLayout | undefined;
    if (uniforms.length === 1) {
      const u = uniforms[0];
      const members = u.type.members ?? [];
      uniform = {
        binding: u.name,
        size: u.type.size,
        members: members.map((m) => uniformMember(file, u.type.name, m)),
      };
    }
    const workgroupAttr = fn.attributes?.find((a) => a.name === 'workgroup_size');
    const workgroupSize = workgroupAttr
      ? ([] as string[]).concat(workgroupAttr.value as string | string[])
      : [];
    entries.set(fn.name, {
      name: fn.name,
      workgroupSize,
      bindings: used.map(({ type: _type, ...binding }) => binding),
      uniform,
    });
  }
  return {
    file,
    entries,
    overrides: reflection.overrides.map((o) => ({ name: o.name, type: o.type?.name ?? 'unknown' })),
  };
}

/** Packs named values into the uniform struct's bytes at the reflected offsets. */
export function packUniforms(
  kernel: string,
  layout: UniformLayout,
  values: Record<string, number | readonly number[]>,
): ArrayBuffer {
  const bytes = new ArrayBuffer(layout.size);
  const view = new DataView(bytes);
  for (const name of Object.keys(values)) {
    if (!layout.members.some((m) => m.name === name)) {
      throw new KernelError(
        kernel,
        `uniform '${layout.binding}' has no field '${name}' (fields: ${layout.members.map((m) => m.name).join(', ')})`,
      );
    }
  }
  for (const member of layout.members) {
    const value = values[member.name];
    if (value === undefined)
      throw new KernelError(kernel, `uniform field '${layout.binding}.${member.name}' was not given`);
    const components = typeof value === 'number' ? [value] : value;
    if (components.length !== member.components) {
      throw new KernelError(
        kernel,
        `uniform field '${member.name}' needs ${member.components} components, got ${components.length}`,
      );
    }
    components.forEach((component, i) => {
      const offset = member.offset + 4 * i;
      if (member.scalar === 'f32') view.setFloat32(offset, component, true);
      else {
        if (!Number.isInteger(component))
          throw new KernelError(
            kernel,
            `uniform field '${member.name}' is ${member.scalar}, got ${component}`,
          );
        if (member.scalar === 'u32') {
          if (component < 0 || component > 0xffffffff)
            throw new KernelError(kernel, `uniform field '${member.name}' = ${component} does not fit u32`);
          view.setUint32(offset, component, true);
        } else view.setInt32(offset, component, true);
      }
    });
  }
  return bytes;
}
