export * from './errors.js';
export * from './digest.js';
export * from './reference.js';
export * from './media-types.js';
export * from './platform.js';
export * from './manifest.js';
export * from './headers.js';
export * from './scope.js';
