// Rolldown options jco merges when it bundles src/ into one module: the host's
// interfaces (alga:extension/*) and WASI are imports of the component, not files.
export default { external: [/^alga:/, /^wasi:/] };
