// The package's `main` is a CommonJS file inside a "type": "module" package, which Node cannot load;
// its ES module build carries the same API.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
